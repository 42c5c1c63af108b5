import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { sendBodyStream } from '../../src/server/send-body-stream.js';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A body emitted in bursts of 64 KiB chunks, as decrypted segments are. */
function body(data: Buffer): Readable {
  let offset = 0;
  return new Readable({
    highWaterMark: 1024 * 1024,
    read() {
      setImmediate(() => {
        for (let i = 0; i < 16 && offset < data.length; i++, offset += 65536) {
          this.push(data.subarray(offset, offset + 65536));
        }
        if (offset >= data.length) this.push(null);
      });
    },
  });
}

describe('sendBodyStream', () => {
  it('a body stays whole and fully counted when an onSend hook awaits something before the first byte', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 5);
    let counted = 0;
    const app = Fastify({ http: { highWaterMark: 1024 * 1024 } });
    // Where the audit commits its event: after the handler, before any byte is sent.
    app.addHook('onSend', async (_request, _reply, payload) => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return payload;
    });
    app.get('/file', (_request, reply) => sendBodyStream(reply, body(data), (n) => (counted += n)));
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const got = Buffer.from(await (await fetch(`${url}/file`)).arrayBuffer());
      expect(got.length).toBe(data.length);
      expect(sha256(got)).toBe(sha256(data));
      expect(counted).toBe(data.length);
    } finally {
      await app.close();
    }
  });

  it('a body that fails part way cuts the response short instead of ending it', async () => {
    const app = Fastify();
    app.get('/file', (_request, reply) => {
      let sent = 0;
      const failing = new Readable({
        read() {
          if (sent++ < 4) this.push(randomBytes(65536));
          else this.destroy(new Error('segment failed authentication'));
        },
      });
      return sendBodyStream(reply.header('content-length', 1024 * 1024), failing, () => undefined);
    });
    app.setErrorHandler((_err, _request, reply) => reply.code(500).send());
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const res = await fetch(`${url}/file`);
      await expect(res.arrayBuffer()).rejects.toThrow();
    } finally {
      await app.close();
    }
  });
});
