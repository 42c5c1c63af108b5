import { randomBytes } from 'node:crypto';
import { appendFile, readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
});
afterAll(() => server.close());

const SEGMENT = 65536;

async function createUpload(version: string, data: Buffer) {
  const res = await server.api(`/api/v1/projects/p/artifacts/big/versions/${version}/uploads`, {
    method: 'POST',
    json: { files: [{ path: 'model.bin', size: data.length, sha256: sha256(data) }] },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; parts: { index: number; size: number }[] };
}

/** Declares `declared` bytes but sends only `sent` of them, then drops the connection (a lying Content-Length). */
function sendThenDrop(
  uploadId: string,
  offset: number,
  body: Buffer,
  declared: number,
  sent: number,
): Promise<void> {
  const url = new URL(`${server.url}/api/v1/uploads/${uploadId}/parts/0`);
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${server.token}`,
        'content-type': 'application/octet-stream',
        'content-length': String(declared),
        'upload-offset': String(offset),
      },
    });
    req.on('error', () => resolve());
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.write(body.subarray(0, sent), () => {
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 150);
    });
  });
}

async function progress(uploadId: string): Promise<number> {
  const view = (await (await server.api(`/api/v1/uploads/${uploadId}`)).json()) as {
    parts: { received: number }[];
  };
  return view.parts[0]!.received;
}

describe('interrupted uploads (F1, truncated and lying Content-Length)', () => {
  it('a dropped connection keeps whole segments durable, and the upload resumes from there to a verified version', async () => {
    const data = randomBytes(20 * SEGMENT + 1234);
    const upload = await createUpload('1', data);
    await sendThenDrop(upload.id, 0, data, data.length, 7 * SEGMENT + 999);
    // Only whole segments survive; the torn tail is dropped.
    let received = 0;
    for (let i = 0; i < 50 && received === 0; i++) {
      received = await progress(upload.id);
      if (received === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(received).toBe(7 * SEGMENT);
    expect((await server.api('/api/v1/projects/p/artifacts/big/versions/1')).status).toBe(404);

    // A second interruption in the middle of the rest.
    await sendThenDrop(
      upload.id,
      received,
      data.subarray(received),
      data.length - received,
      5 * SEGMENT + 10,
    );
    for (let i = 0; i < 50; i++) {
      const now = await progress(upload.id);
      if (now !== received) {
        received = now;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(received).toBe(12 * SEGMENT);

    const rest = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(received) },
      body: data.subarray(received),
    });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { complete: boolean }).complete).toBe(true);
    expect((await server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' })).status).toBe(201);
    const got = await server.api('/api/v1/projects/p/artifacts/big/versions/1/file?path=model.bin');
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(data));
  });

  it('a lost hash state (another instance, or a restart) is rebuilt from the stored bytes', async () => {
    const data = randomBytes(6 * SEGMENT + 77);
    const upload = await createUpload('2', data);
    const first = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: data.subarray(0, 3 * SEGMENT),
    });
    expect(first.status).toBe(200);
    // Forget the in-memory cursor, as a fresh process would not have it.
    (
      server.ctx.registry as unknown as { receiver: { cursors: Map<string, unknown> } }
    ).receiver.cursors.clear();
    const rest = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(3 * SEGMENT) },
      body: data.subarray(3 * SEGMENT),
    });
    expect(rest.status).toBe(200);
    expect((await server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' })).status).toBe(201);
  });

  it('staged bytes beyond the durable offset make the part start over, so no nonce seals two plaintexts', async () => {
    const data = randomBytes(4 * SEGMENT + 5);
    const upload = await createUpload('3', data);
    const first = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: data.subarray(0, 2 * SEGMENT),
    });
    expect(first.status).toBe(200);
    // As if a crash struck after a segment was written but before its offset was recorded.
    const staging = join(server.dataDir, 'blobs', 'staging');
    const [name] = (await readdir(staging)).filter((n) => n.startsWith('blb_'));
    await appendFile(join(staging, name!), randomBytes(SEGMENT + 16));
    const resumed = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(2 * SEGMENT) },
      body: data.subarray(2 * SEGMENT),
    });
    expect(resumed.status).toBe(409);
    const problem = (await resumed.json()) as { code: string; details: { received: number } };
    expect(problem).toMatchObject({ code: 'upload_offset_mismatch', details: { received: 0 } });
    const again = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: data,
    });
    expect(again.status).toBe(200);
    expect((await server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' })).status).toBe(201);
    const got = await server.api('/api/v1/projects/p/artifacts/big/versions/3/file?path=model.bin');
    expect(sha256(Buffer.from(await got.arrayBuffer()))).toBe(sha256(data));
  });

  it('a chunk without Content-Length is refused (411)', async () => {
    const data = randomBytes(100);
    const upload = await createUpload('4', data);
    const res = await server.api(`/api/v1/uploads/${upload.id}/parts/0`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(data));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(411);
    expect(((await res.json()) as { code: string }).code).toBe('length_required');
  });

  it('an upload session belongs to its creator: another principal cannot see or write it (B3)', async () => {
    const data = randomBytes(100);
    const upload = await createUpload('5', data);
    const stranger = await fetch(`${server.url}/api/v1/uploads/${upload.id}`, {
      headers: { authorization: 'Bearer srt_stranger' },
    });
    expect(stranger.status).toBe(401);
    const session = await server.ctx.registry.getUpload('bootstrap-admin', upload.id);
    expect(session.session.id).toBe(upload.id);
    await expect(server.ctx.registry.getUpload('someone-else', upload.id)).rejects.toMatchObject({
      code: 'upload_not_found',
    });
    await expect(
      server.ctx.registry.writePart(
        'someone-else',
        upload.id,
        0,
        0,
        100,
        (async function* () {
          yield data;
        })(),
      ),
    ).rejects.toMatchObject({ code: 'upload_not_found' });
  });
});
