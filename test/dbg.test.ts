import { randomBytes } from 'node:crypto';
import { it } from 'vitest';
import { nodeFsOps, type FsOps } from '../src/storage/fs/fs-ops.js';
import { faultyFsOps } from './storage/faulty-fs-ops.js';
import { sha256, startTestServer } from './support/server-harness.js';
const holder: { ops: FsOps } = { ops: nodeFsOps };
const sw: FsOps = { open: (...a) => holder.ops.open(...a), rename: (...a) => holder.ops.rename(...a), unlink: (...a) => holder.ops.unlink(...a), mkdir: (...a) => holder.ops.mkdir(...a), readdir: (...a) => holder.ops.readdir(...a), stat: (...a) => holder.ops.stat(...a), syncDir: (...a) => holder.ops.syncDir(...a) };
it('dbg', async () => {
  const s = await startTestServer({ fsOps: sw });
  await s.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
  const files = [ { path: 'small/a.txt', data: randomBytes(70_000) }, { path: 'small/b.txt', data: randomBytes(10) }, { path: 'large.bin', data: randomBytes(8 * 1024 * 1024 + 5) } ];
  const f = faultyFsOps(nodeFsOps, 27, 'EIO'); holder.ops = f;
  const created = await s.api(`/api/v1/projects/p/artifacts/m/versions/1/uploads`, { method: 'POST', json: { files: files.map((x) => ({ path: x.path, size: x.data.length, sha256: sha256(x.data) })) } });
  const upload = (await created.json()) as { id: string; parts: { index: number; files: number[] }[] };
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const part of upload.parts) {
    const body = Buffer.concat(part.files.map((i) => sorted[i]!.data));
    console.log('put', part.index, body.length, f.operations);
    const put = await s.api(`/api/v1/uploads/${upload.id}/parts/${part.index}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' }, body, signal: AbortSignal.timeout(3000) }).catch((e) => { console.log('ERR', String(e)); return null; });
    console.log('status', put?.status, put && await put.text(), f.log.slice(-3));
  }
  await s.close();
});
