import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect } from 'vitest';

import { StrongroomError } from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  createDecryptStream,
  createEncryptStream,
  decodeHeader,
  encodeHeader,
  newBlobHeader,
  planRange,
} from '../../src/crypto/stream-aead.js';

/** Deliberately awkward chunk sizes: single bytes, primes, and chunks straddling segment boundaries. */
export const ODD_CHUNKS: readonly number[] = [1, 7, 4093, 65537, 13, 100_003, 2, 30_011];
export const OTHER_CHUNKS: readonly number[] = [65552, 3, 16, 70_001, 5, 4112];

export function* chunked(data: Buffer, sizes: readonly number[] = ODD_CHUNKS): Generator<Buffer> {
  let offset = 0;
  let i = 0;
  while (offset < data.length) {
    const size = sizes[i % sizes.length] ?? 1;
    yield data.subarray(offset, offset + size);
    offset += size;
    i += 1;
  }
}

/** Streams `input` through `transform` in chunks of `sizes` and collects everything it emits. */
export async function run(transform: Transform, input: Buffer, sizes?: readonly number[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      callback();
    },
  });
  await pipeline(Readable.from(chunked(input, sizes)), transform, sink);
  return Buffer.concat(out);
}

/** A whole blob as a blob store would hold it: header bytes, then the sealed segments. */
export async function sealBlob(
  dek: Buffer,
  identity: string,
  plaintext: Buffer,
  segmentSize = SEGMENT_SIZE,
  sizes?: readonly number[],
): Promise<Buffer> {
  const header = newBlobHeader(segmentSize);
  const stream = createEncryptStream({ dek, header, identity, plaintextSize: plaintext.length });
  return Buffer.concat([encodeHeader(header), await run(stream, plaintext, sizes)]);
}

/** Reads a whole blob the way a server would: decode its header, then stream everything after it. */
export async function openBlob(
  dek: Buffer,
  identity: string,
  plaintextSize: number,
  blob: Buffer,
  sizes: readonly number[] = OTHER_CHUNKS,
): Promise<Buffer> {
  const header = decodeHeader(blob.subarray(0, HEADER_SIZE));
  const stream = createDecryptStream({ dek, header, identity, plaintextSize });
  return run(stream, blob.subarray(HEADER_SIZE), sizes);
}

/** A range read fed exactly the ciphertext bytes `planRange` names; returns the plaintext and bytes fed. */
export async function readRange(
  dek: Buffer,
  identity: string,
  plaintextSize: number,
  blob: Buffer,
  start: number,
  end: number,
): Promise<{ plaintext: Buffer; fed: number }> {
  const header = decodeHeader(blob.subarray(0, HEADER_SIZE));
  const plan = planRange(plaintextSize, header.segmentSize, start, end);
  const input = blob.subarray(plan.cipherStart, plan.cipherEnd + 1);
  const stream = createDecryptStream({ dek, header, identity, plaintextSize, start, end });
  return { plaintext: await run(stream, input, ODD_CHUNKS), fed: input.length };
}

export function newKey(): Buffer {
  return randomBytes(32);
}

/** Flips bit `bit` of byte `offset` in a copy of `data`. */
export function flipBit(data: Buffer, offset: number, bit = 0): Buffer {
  const copy = Buffer.from(data);
  copy.writeUInt8(copy.readUInt8(offset) ^ (1 << bit), offset);
  return copy;
}

export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await expect(promise).rejects.toMatchObject({ name: 'StrongroomError', code });
}

/** Runs `fn`, expects a StrongroomError with `code`, and returns it for further checks. */
export function expectThrowsCode(fn: () => unknown, code: ErrorCode): StrongroomError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(StrongroomError);
  expect((caught as StrongroomError).code).toBe(code);
  return caught as StrongroomError;
}
