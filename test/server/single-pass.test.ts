import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
});
afterAll(() => server.close());

const files = [
  { path: 'config.json', data: Buffer.from('{"a":1}') },
  { path: 'empty', data: Buffer.alloc(0) },
  { path: 'weights.bin', data: randomBytes(9 * 1024 * 1024 + 3) },
];

/** Creates a session declaring only sizes (and the digests in `upFront`), then sends every part. */
async function uploadWithoutDigests(version: string, upFront: Record<string, string> = {}) {
  const created = await server.api(`/api/v1/projects/p/artifacts/m/versions/${version}/uploads`, {
    method: 'POST',
    json: {
      files: files.map((f) => ({
        path: f.path,
        size: f.data.length,
        ...(upFront[f.path] ? { sha256: upFront[f.path] } : {}),
      })),
    },
  });
  expect(created.status).toBe(201);
  const upload = (await created.json()) as { id: string; parts: { index: number; files: number[] }[] };
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const part of upload.parts) {
    const res = await server.api(`/api/v1/uploads/${upload.id}/parts/${part.index}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: Buffer.concat(part.files.map((i) => sorted[i]!.data)),
    });
    expect(res.status).toBe(200);
  }
  return upload.id;
}

const commit = (id: string, declared?: { path: string; sha256: string }[]) =>
  server.api(`/api/v1/uploads/${id}/commit`, {
    method: 'POST',
    ...(declared ? { json: { files: declared } } : {}),
  });

const digests = () => files.map((f) => ({ path: f.path, sha256: sha256(f.data) }));

describe('single-pass push: digests declared at commit', () => {
  it('commits when the late digests match what the server computed', async () => {
    const id = await uploadWithoutDigests('1');
    const res = await commit(id, digests());
    expect(res.status).toBe(201);
    const detail = (await res.json()) as { files: { path: string; sha256: string }[] };
    expect(detail.files.map((f) => f.sha256)).toEqual(digests().map((d) => d.sha256));
    const got = await server.api('/api/v1/projects/p/artifacts/m/versions/1/file?path=weights.bin');
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(files[2]!.data));
  });

  it('mixes digests declared up front with digests declared at commit', async () => {
    const id = await uploadWithoutDigests('2', { 'config.json': sha256(files[0]!.data) });
    const late = digests().filter((d) => d.path !== 'config.json');
    expect((await commit(id, late)).status).toBe(201);
  });

  it('a wrong late digest is 422 digest_mismatch, and the whole session is gone with its bytes', async () => {
    const before = (await readdir(join(server.dataDir, 'blobs', 'staging'))).length;
    const id = await uploadWithoutDigests('3');
    const wrong = digests().map((d) =>
      d.path === 'weights.bin' ? { ...d, sha256: sha256('something else') } : d,
    );
    const res = await commit(id, wrong);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { code: string }).code).toBe('digest_mismatch');
    expect((await server.api(`/api/v1/uploads/${id}`)).status).toBe(404);
    expect((await server.api('/api/v1/projects/p/artifacts/m/versions/3')).status).toBe(404);
    expect((await readdir(join(server.dataDir, 'blobs', 'staging'))).length).toBe(before);
  });

  it('refuses a commit that leaves a digest undeclared, names an unknown file, or declares a file twice', async () => {
    const id = await uploadWithoutDigests('4');
    const cases = [
      undefined,
      digests().slice(1),
      [...digests(), { path: 'nope', sha256: sha256('x') }],
      [...digests(), digests()[0]!],
    ];
    for (const declared of cases) {
      const res = await commit(id, declared);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
    // Nothing was lost: the correct commit still works.
    expect((await commit(id, digests())).status).toBe(201);
  });

  it('a late digest that contradicts one declared up front is a mismatch', async () => {
    const id = await uploadWithoutDigests('5', { 'config.json': sha256(files[0]!.data) });
    const contradicting = digests().map((d) =>
      d.path === 'config.json' ? { ...d, sha256: sha256('other') } : d,
    );
    expect((await commit(id, contradicting)).status).toBe(422);
  });

  it('survives a restart between the upload and the commit (digests are durable with the bytes)', async () => {
    const id = await uploadWithoutDigests('6');
    (
      server.ctx.registry as unknown as { receiver: { cursors: Map<string, unknown> } }
    ).receiver.cursors.clear();
    expect((await commit(id, digests())).status).toBe(201);
  });
});
