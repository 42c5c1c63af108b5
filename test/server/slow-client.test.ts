import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    config: {
      limits: {
        maxFileBytes: 1024 ** 3,
        maxVersionBytes: 1024 ** 3,
        maxFiles: 1000,
        maxMetadataBytes: 1024,
        maxJsonBodyBytes: 1024 * 1024,
        idleTimeoutSeconds: 1,
      },
    },
  });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
});
afterAll(() => server.close());

describe('slow and stalled clients (F1)', () => {
  it('a client that stalls mid-chunk is cut off after the idle timeout; the whole segments it sent are kept', async () => {
    const data = randomBytes(10 * 65536);
    const created = await server.api('/api/v1/projects/p/artifacts/m/versions/1/uploads', {
      method: 'POST',
      json: { files: [{ path: 'f', size: data.length, sha256: sha256(data) }] },
    });
    const upload = (await created.json()) as { id: string };
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });
    socket.write(
      [
        `PUT /api/v1/uploads/${upload.id}/parts/0 HTTP/1.1`,
        'host: 127.0.0.1',
        `authorization: Bearer ${server.token}`,
        'content-type: application/octet-stream',
        `content-length: ${data.length}`,
        'upload-offset: 0',
        '',
        '',
      ].join('\r\n'),
    );
    socket.write(data.subarray(0, 3 * 65536 + 100));
    // ...and then nothing: the server closes the connection instead of waiting for ever.
    await closed;
    let received = 0;
    for (let i = 0; i < 50 && received === 0; i++) {
      const view = (await (await server.api(`/api/v1/uploads/${upload.id}`)).json()) as {
        parts: { received: number }[];
      };
      received = view.parts[0]!.received;
      if (received === 0) await new Promise((r) => setTimeout(r, 20));
    }
    expect(received).toBe(3 * 65536);
  });
});
