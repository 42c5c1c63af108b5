import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeFsOps, type FsOps } from '../../src/storage/fs/fs-ops.js';
import { faultyFsOps, type FaultyFsOps } from '../storage/faulty-fs-ops.js';
import { pushFiles, sha256, startTestServer, type TestServer } from '../support/server-harness.js';

/** Lets a test swap the operations under a running server's blob store. */
const holder: { ops: FsOps } = { ops: nodeFsOps };
const switchable: FsOps = {
  open: (...a) => holder.ops.open(...a),
  rename: (...a) => holder.ops.rename(...a),
  unlink: (...a) => holder.ops.unlink(...a),
  mkdir: (...a) => holder.ops.mkdir(...a),
  readdir: (...a) => holder.ops.readdir(...a),
  stat: (...a) => holder.ops.stat(...a),
  syncDir: (...a) => holder.ops.syncDir(...a),
};

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ fsOps: switchable });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
});
afterAll(() => server.close());

const files = [
  { path: 'small/a.txt', data: randomBytes(70_000) },
  { path: 'small/b.txt', data: randomBytes(10) },
  { path: 'large.bin', data: randomBytes(8 * 1024 * 1024 + 5) },
];

async function versionState(tag: string): Promise<'absent' | 'verified'> {
  const res = await server.api(`/api/v1/projects/p/artifacts/m/versions/${tag}`);
  if (res.status === 404) return 'absent';
  expect(res.status).toBe(200);
  for (const f of files) {
    const got = await server.api(`/api/v1/projects/p/artifacts/m/versions/${tag}/file?path=${f.path}`);
    expect(got.status).toBe(200);
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(f.data));
  }
  return 'verified';
}

describe('I/O errors injected at every storage operation (I2, N6)', () => {
  for (const code of ['EIO', 'ENOSPC'] as const) {
    it(`${code} at the k-th operation of a push: all or nothing, and the server keeps serving`, async () => {
      let k = 1;
      let completedWithoutFault = false;
      while (!completedWithoutFault && k < 200) {
        const faulty: FaultyFsOps = faultyFsOps(nodeFsOps, k, code);
        holder.ops = faulty;
        const tag = `${code}-${k}`;
        const res = await pushFiles(server, { project: 'p', artifact: 'm', version: tag }, files);
        holder.ops = nodeFsOps;
        if (faulty.operations < k) {
          completedWithoutFault = true;
          expect(res.status).toBe(201);
        } else {
          // The fault was hit: a storage error, never an acknowledgement of something not durable.
          expect(res.status, `k=${k} ${faulty.log.at(-1)}`).toBeGreaterThanOrEqual(500);
          expect(((await res.json()) as { code: string }).code).toBe('storage_error');
        }
        const state = await versionState(tag);
        expect(state).toBe(res.status === 201 ? 'verified' : 'absent');
        expect((await server.api('/healthz')).status).toBe(200);
        k++;
      }
      expect(completedWithoutFault).toBe(true);
      expect(k).toBeGreaterThan(5);
      // After all that, a normal push still works and collection leaves only what sessions own.
      expect(
        (await pushFiles(server, { project: 'p', artifact: 'm', version: `${code}-after` }, files)).status,
      ).toBe(201);
      expect(await versionState(`${code}-after`)).toBe('verified');
    });
  }
});
