import type { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * Sends `stream` as the reply body through Fastify (so every onSend hook, the audit commit among them, runs before
 * the first byte), counting its bytes and coalescing what it emits within one tick into one vectored write.
 *
 * Both happen only once Fastify pipes the stream into the response: a `data` listener attached earlier would
 * start the flow at once, and while a hook is still awaiting something those bytes would go nowhere.
 * Coalescing needs room in the response buffer for a burst of chunks (the server's `highWaterMark`); with it
 * a burst of decrypted segments costs one system call and one wake-up of the reader instead of one per segment.
 */
export function sendBodyStream(
  reply: FastifyReply,
  stream: Readable,
  onBytes: (count: number) => void,
): FastifyReply {
  const response = reply.raw;
  response.once('pipe', (source: Readable) => {
    if (source !== stream) return;
    let corked = false;
    // Before the pipe's own listener, so the first chunk of a burst is already held back.
    source.prependListener('data', (chunk: Buffer) => {
      onBytes(chunk.length);
      if (corked) return;
      corked = true;
      response.cork();
      process.nextTick(() => {
        corked = false;
        response.uncork();
      });
    });
  });
  return reply.send(stream);
}
