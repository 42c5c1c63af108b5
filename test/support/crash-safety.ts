import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyExport } from '../../src/audit/export-verifier.js';
import { spawnServer, type ServerProcess } from './server-process.js';

/**
 * I1 / N1-N4: kill -9 the server at random instants during many concurrent uploads, restart it, and check that
 * every acknowledged version is present and verifies, nothing half-written is visible, and orphaned staging
 * data is collected. The default run does 4 rounds; the integration run does more (test/integration).
 */
export function describeCrashSafety(rounds: number, writerCount = 4): void {
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  interface Pushed {
    readonly tag: string;
    readonly files: readonly { path: string; data: Buffer }[];
  }

  let dataDir: string;
  let env: Record<string, string>;
  let token: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strongroom-crash-'));
    const configFile = join(dataDir, 'test-config.json');
    await writeFile(
      configFile,
      JSON.stringify({ uploads: { sessionTtlSeconds: 3, gcIntervalSeconds: 3600 } }),
    );
    env = {
      STRONGROOM_DATA: dataDir,
      STRONGROOM_MASTER_KEY: randomBytes(32).toString('hex'),
      STRONGROOM_CONFIG_FILE: configFile,
    };
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  function makeVersion(tag: string): Pushed {
    const count = 1 + Math.floor(Math.random() * 4);
    const files = Array.from({ length: count }, (_, i) => {
      const big = Math.random() < 0.25;
      return {
        path: `f${i}.bin`,
        data: randomBytes(
          big ? 8 * 1024 * 1024 + Math.floor(Math.random() * 100_000) : Math.floor(Math.random() * 300_000),
        ),
      };
    });
    return { tag, files };
  }

  async function push(url: string, v: Pushed): Promise<boolean> {
    const auth = { authorization: `Bearer ${token}` };
    const created = await fetch(`${url}/api/v1/projects/crash/artifacts/m/versions/${v.tag}/uploads`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        files: v.files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })),
      }),
    });
    if (created.status !== 201) return false;
    const upload = (await created.json()) as { id: string; parts: { index: number; files: number[] }[] };
    const sorted = [...v.files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    for (const part of upload.parts) {
      const res = await fetch(`${url}/api/v1/uploads/${upload.id}/parts/${part.index}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'upload-offset': '0' },
        body: Buffer.concat(part.files.map((i) => sorted[i]!.data)),
      });
      if (res.status !== 200) return false;
    }
    const commit = await fetch(`${url}/api/v1/uploads/${upload.id}/commit`, {
      method: 'POST',
      headers: auth,
    });
    return commit.status === 201;
  }

  async function verifyAll(
    url: string,
    acknowledged: readonly Pushed[],
    attempted: ReadonlyMap<string, Pushed>,
  ): Promise<void> {
    const auth = { authorization: `Bearer ${token}` };
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await (
        await fetch(
          `${url}/api/v1/projects/crash/artifacts/m/versions?limit=200${cursor ? `&cursor=${cursor}` : ''}`,
          { headers: auth },
        )
      ).json()) as { items: { version: string; state: string }[]; nextCursor: string | null };
      listed.push(...page.items.map((i) => i.version));
      expect(page.items.every((i) => i.state === 'available')).toBe(true);
      cursor = page.nextCursor;
    } while (cursor);
    for (const v of acknowledged) expect(listed, `acknowledged ${v.tag} is missing`).toContain(v.tag);
    await verifyAuditLog(url);
    // Everything visible, acknowledged or not (a commit can land just before the kill), is complete and verifies.
    for (const tag of listed) {
      const v = attempted.get(tag)!;
      for (const f of v.files) {
        const res = await fetch(
          `${url}/api/v1/projects/crash/artifacts/m/versions/${tag}/file?path=${f.path}`,
          { headers: auth },
        );
        expect(res.status).toBe(200);
        expect(sha256(Buffer.from(await res.arrayBuffer())), `${tag}/${f.path}`).toBe(sha256(f.data));
      }
    }
  }

  let verifierKey = '';
  const trustedCheckpoints: string[] = [];

  /** I1: after every kill the audit chain, tree and every checkpoint verify, and checkpoints signed before stay true. */
  async function verifyAuditLog(url: string): Promise<void> {
    const auth = { authorization: `Bearer ${token}` };
    const checkpoint = (await (await fetch(`${url}/api/v1/audit/checkpoint`, { headers: auth })).json()) as {
      verifierKey: string;
      note: string;
    };
    if (verifierKey === '') verifierKey = checkpoint.verifierKey;
    expect(checkpoint.verifierKey).toBe(verifierKey);
    const text = await (await fetch(`${url}/api/v1/audit/export`, { headers: auth })).text();
    const verdict = await verifyExport(text.split('\n'), { verifierKey, trustedCheckpoints });
    expect(verdict, JSON.stringify(verdict)).toMatchObject({ ok: true, first: 1 });
    trustedCheckpoints.push(checkpoint.note);
  }

  describe('crash safety (I1)', () => {
    it(`survives ${rounds} rounds of kill -9 during concurrent uploads`, async () => {
      let server: ServerProcess = await spawnServer(env);
      token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
      await fetch(`${server.url}/api/v1/projects`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'crash' }),
      });
      const acknowledged: Pushed[] = [];
      const attempted = new Map<string, Pushed>();
      let n = 0;
      for (let round = 0; round < rounds; round++) {
        const url = server.url;
        let stop = false;
        const writers = Array.from({ length: writerCount }, async () => {
          while (!stop) {
            const v = makeVersion(`r${round}-${n++}`);
            attempted.set(v.tag, v);
            const ok = await push(url, v).catch(() => false);
            if (ok) acknowledged.push(v);
          }
        });
        await new Promise((r) => setTimeout(r, 300 + Math.random() * 1200));
        await server.kill('SIGKILL');
        stop = true;
        await Promise.all(writers);
        server = await spawnServer(env);
        await verifyAll(server.url, acknowledged, attempted);
      }
      expect(acknowledged.length).toBeGreaterThan(rounds);

      // Sessions interrupted by the kills expire (3 s here); the next start collects them and their staged bytes.
      await server.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 3200));
      server = await spawnServer(env);
      const staging = (await readdir(join(dataDir, 'blobs', 'staging'))).filter((n) => n.startsWith('blb_'));
      expect(staging).toEqual([]);
      await verifyAll(server.url, acknowledged, attempted);
      await server.kill('SIGTERM');
    });
  });
}
