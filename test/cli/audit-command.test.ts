import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/cli-io.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { runCli } from '../../src/cli/run-cli.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-audit-cli-'));
  server = await startTestServer({ config: { audit: { checkpointEvery: 5 } } });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'vision' } });
  for (let i = 0; i < 12; i++) await server.api(`/api/v1/projects/vision/artifacts/m${i}`);
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
    stdin: Readable.from([]) as unknown as CliIo['stdin'],
    env: { STRONGROOM_URL: server.url, STRONGROOM_TOKEN: server.token, STRONGROOM_CONFIG: join(dir, 'cfg') },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

async function verifierKey(): Promise<string> {
  const { stdout } = await cli('audit', 'checkpoint', '--json');
  return (JSON.parse(stdout) as { verifierKey: string }).verifierKey;
}

describe('strongroom audit', () => {
  it('search filters and prints a table, or JSON with the cursor', async () => {
    const table = await cli('audit', 'search', '--action', 'artifact:read', '--outcome', 'failed');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/SEQ\s+TIME\s+ACTOR\s+ACTION\s+RESOURCE\s+OUTCOME/);
    expect(table.stdout).toContain('vision/m3');
    expect(table.stdout).toContain('failed artifact_not_found');
    const json = await cli('audit', 'search', '--resource', 'vision/*', '--limit', '3', '--json');
    const page = JSON.parse(json.stdout) as { items: { resource: string }[]; next: number };
    expect(page.items).toHaveLength(3);
    expect(page.items.every((e) => e.resource.startsWith('vision/'))).toBe(true);
  });

  it('export writes a file that verify accepts offline with the trusted key', async () => {
    const file = join(dir, 'audit.jsonl');
    const exported = await cli('audit', 'export', '-o', file);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/exported events 1\.\.\d+ with \d+ checkpoints/);
    expect((await cli('audit', 'export', '-o', file)).code).toBe(EXIT_CODES.conflict);
    const key = await verifierKey();
    const verified = await cli('audit', 'verify', file, '--key', key);
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/ok, events 1\.\.\d+/);
    expect(verified.stderr).toBe('');
    const selfAsserted = await cli('audit', 'verify', file);
    expect(selfAsserted.code).toBe(0);
    expect(selfAsserted.stderr).toMatch(/warning: no --key/);
  });

  it('verify names the first bad position of an edited export and exits 6', async () => {
    const file = join(dir, 'edited.jsonl');
    expect((await cli('audit', 'export', '-o', file)).code).toBe(0);
    const lines = (await readFile(file, 'utf8')).split('\n');
    const index = lines.findIndex((l) => l.includes('"seq":4,'));
    lines[index] = lines[index]!.replace('"outcome":"failed"', '"outcome":"succeeded"').replace(
      '"outcome":"succeeded"',
      '"outcome":"xx"',
    );
    await writeFile(file, lines.join('\n'));
    const result = await cli('audit', 'verify', file, '--key', await verifierKey());
    expect(result.code).toBe(EXIT_CODES.integrity);
    expect(result.stderr).toMatch(/verification failed at position 4/);
  });

  it('a truncated export is caught against checkpoints kept outside the server', async () => {
    const file = join(dir, 'truncated.jsonl');
    const outside = join(dir, 'outside.note');
    expect((await cli('audit', 'export', '-o', file)).code).toBe(0);
    const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '');
    await server.api('/api/v1/projects');
    const note = (JSON.parse((await cli('audit', 'checkpoint', '--json')).stdout) as { note: string }).note;
    await writeFile(outside, note);
    // Drop the tail: the last few events and their checkpoint.
    await writeFile(file, `${lines.slice(0, -4).join('\n')}\n`);
    const result = await cli('audit', 'verify', file, '--key', await verifierKey(), '--checkpoints', outside);
    expect(result.code).toBe(EXIT_CODES.integrity);
  });

  it('proof fetches an inclusion or consistency proof and checks it against the trusted key', async () => {
    const key = await verifierKey();
    const inclusion = await cli('audit', 'proof', '--inclusion', '3', '--key', key);
    expect(inclusion.code).toBe(0);
    expect(inclusion.stdout).toMatch(/event 3 is in the signed tree of \d+/);
    const consistency = await cli('audit', 'proof', '--consistency', '5', '--key', key, '--json');
    expect(consistency.code).toBe(0);
    expect(JSON.parse(consistency.stdout)).toMatchObject({ verdict: { ok: true, oldSize: 5 } });
    const wrongKey = await cli(
      'audit',
      'proof',
      '--inclusion',
      '3',
      '--key',
      'other+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    );
    expect(wrongKey.code).not.toBe(0);
    expect((await cli('audit', 'proof', '--key', key)).code).toBe(EXIT_CODES.usage);
  });

  it('tail prints the latest events, one per line', async () => {
    const tail = await cli('audit', 'tail', '-n', '3', '--json');
    expect(tail.code).toBe(0);
    const events = tail.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { seq: number });
    expect(events.length).toBeGreaterThanOrEqual(3);
  });
});
