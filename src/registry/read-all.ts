import type { Readable } from 'node:stream';

/** Collects a small stream (a header, a probe); never used for object bodies. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
