import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { verifyChain } from '../../src/audit/hash-chain.js';
import { openNote, parseCheckpoint, parseVerifierKey } from '../../src/audit/signed-note.js';
import { startTestServer } from '../support/server-harness.js';

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-delivery-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SIEM exporters configured on the server', () => {
  it('deliver every event once, in order, and resume from their persisted position after a restart', async () => {
    const dataDir = join(dir, 'data');
    const exportDir = join(dir, 'siem');
    const masterKey = randomBytes(32).toString('hex');
    const config = { audit: { exporters: [{ type: 'jsonl', name: 'siem', directory: exportDir }] } };
    const readExported = async () =>
      (await readFile(join(exportDir, 'audit-current.jsonl'), 'utf8').catch(() => ''))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AuditEvent);

    let server = await startTestServer({ dataDir, masterKey, config });
    for (let i = 0; i < 10; i++) await server.api(`/api/v1/projects/p${i}`);
    const size1 = (await server.ctx.rawStore.getAuditState()).size;
    await until('first delivery', async () => ((await readExported()).length >= size1 ? true : undefined));
    await server.close();

    server = await startTestServer({ dataDir, masterKey, config });
    for (let i = 0; i < 10; i++) await server.api(`/api/v1/projects/q${i}`);
    const size2 = (await server.ctx.rawStore.getAuditState()).size;
    await until('second delivery', async () => ((await readExported()).length >= size2 ? true : undefined));
    await server.close();

    const events = await readExported();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: events.length }, (_, i) => i + 1));
    expect(verifyChain(events)).toMatchObject({ ok: true });
    expect(events.some((e) => e.resource === 'q9')).toBe(true);
  });

  it('two exporters with the same name are a configuration error', async () => {
    const exporters = [
      { type: 'jsonl', name: 'same', directory: join(dir, 'a') },
      { type: 'jsonl', name: 'same', directory: join(dir, 'b') },
    ];
    await expect(startTestServer({ config: { audit: { exporters } } })).rejects.toMatchObject({
      code: 'config_invalid',
    });
  });
});

describe('HTTP checkpoint sink', () => {
  let witness: Server;
  let url: string;
  const received: string[] = [];
  let failuresLeft = 2;

  beforeAll(async () => {
    witness = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        if (failuresLeft > 0) {
          failuresLeft--;
          res.writeHead(503).end();
          return;
        }
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => witness.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(witness.address() as AddressInfo).port}/add-checkpoint`;
  });

  afterAll(async () => {
    await new Promise((r) => witness.close(r));
  });

  it('retries a failing witness and then delivers every checkpoint in order, signed', async () => {
    const server = await startTestServer({
      config: {
        audit: { checkpointEvery: 3, checkpointSinks: [{ type: 'http', name: 'witness', url }] },
      },
    });
    try {
      for (let i = 0; i < 12; i++) await server.api(`/api/v1/projects/w${i}`);
      const latest = await server.ctx.audit.checkpoint();
      // Back-off starts at one second; two failures cost about three.
      const notes = await until('the witness to catch up', async () =>
        received.some((n) => n === latest?.note) ? received : undefined,
      );
      const key = parseVerifierKey(server.ctx.auditVerifierKey);
      const sizes = notes.map((n) => parseCheckpoint(openNote(n, [key]).text).size);
      expect([...sizes].sort((a, b) => a - b)).toEqual(sizes);
      expect(new Set(sizes).size).toBe(sizes.length);
      expect(failuresLeft).toBe(0);
    } finally {
      await server.close();
    }
  }, 30_000);
});

describe('archive directory', () => {
  it('is created with the first archive only', async () => {
    const server = await startTestServer();
    try {
      expect(await readdir(server.dataDir)).not.toContain('audit-archive');
    } finally {
      await server.close();
    }
  });
});
