import { createHash, type Hash } from 'node:crypto';
import { readFile } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { promisify } from 'node:util';
import {
  OPEN_FLAGS,
  checkUnchanged,
  checkUnchangedSize,
  openLocalFile,
  readRange,
  type LocalFile,
} from './local-source.js';

const readFileCallback = promisify(readFile);

/**
 * A whole file, never through a link, in one call of the callback API (for many small files it costs a
 * fraction of what fs/promises' FileHandle does). Node accepts numeric open flags here; its types say string.
 */
function readWhole(path: string): Promise<Buffer> {
  return readFileCallback(path, { flag: OPEN_FLAGS as unknown as string });
}

/** Files whose bytes from the offset on are at most this big are read whole, ahead of time. */
const SMALL_FILE_BYTES = 1024 * 1024;
/** How many small files may be read ahead of the one being sent (bounds memory to 32 MiB). */
const READ_AHEAD_FILES = 32;
/** Small files are coalesced into chunks of about this size: one write per chunk, not one per file. */
const COALESCE_BYTES = 1024 * 1024;

interface Slice {
  readonly file: LocalFile;
  readonly start: number;
}

/** Called with each file's SHA-256 once all of its bytes have been produced for sending. */
export type FileDigestSink = (file: LocalFile, sha256: string) => void;

/**
 * The bytes of one upload part from `offset` on: the part's files back to back, straight from disk, each file
 * hashed from the very bytes that are sent (a single-pass push: the digests are declared at commit, and the
 * server compares them with what it computed). `offset` is the server's durable `received` and may fall inside
 * a file; that file's bytes before it are read again, only to be hashed. Every file is checked against what
 * was found (size, identity, modification time) when it is opened and again before the part's last chunk is
 * released, so a file that changes during the push fails it. Small files are read a few dozen ahead, so a
 * pack of a thousand files is not a thousand sequential open/read/close round trips.
 */
export async function* partBody(
  files: readonly LocalFile[],
  offset: number,
  onBytes: (count: number) => void,
  onDigest: FileDigestSink = () => undefined,
): AsyncGenerator<Buffer> {
  const slices: Slice[] = [];
  let skip = offset;
  for (const file of files) {
    if (skip > 0 && skip >= file.size) {
      skip -= file.size;
      continue;
    }
    slices.push({ file, start: skip });
    skip = 0;
  }

  let held: Buffer | undefined;
  const digests: [LocalFile, string][] = [];
  for await (const chunk of sliceChunks(slices, onBytes, (file, sha256) => digests.push([file, sha256]))) {
    if (held !== undefined) yield held;
    held = chunk;
  }
  // Small files were read ahead of time: look at them once more before the last byte leaves (large files
  // were checked through their open descriptor as their last chunk was read).
  const small = slices.filter((s) => s.file.size - s.start <= SMALL_FILE_BYTES);
  await Promise.all(small.map(async ({ file }) => checkUnchanged(file, await lstat(file.absolutePath))));
  for (const [file, sha256] of digests) onDigest(file, sha256);
  if (held !== undefined) yield held;
}

async function* sliceChunks(
  slices: readonly Slice[],
  onBytes: (count: number) => void,
  onDigest: FileDigestSink,
): AsyncGenerator<Buffer> {
  const ahead = new Map<number, Promise<Buffer>>();
  const prefetch = (from: number) => {
    for (let i = from; i < slices.length && i < from + READ_AHEAD_FILES; i++) {
      const slice = slices[i] as Slice;
      if (ahead.has(i) || slice.file.size - slice.start > SMALL_FILE_BYTES) continue;
      const read = readSmall(slice, onDigest);
      // An abandoned upload must not leave an unhandled rejection behind.
      read.catch(() => undefined);
      ahead.set(i, read);
    }
  };

  let batch: Buffer[] = [];
  let batchBytes = 0;
  const takeBatch = () => {
    const out = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, batchBytes);
    batch = [];
    batchBytes = 0;
    onBytes(out.length);
    return out;
  };
  for (const [index, slice] of slices.entries()) {
    prefetch(index);
    const early = ahead.get(index);
    if (early !== undefined) {
      ahead.delete(index);
      const bytes = await early;
      batch.push(bytes);
      batchBytes += bytes.length;
      if (batchBytes >= COALESCE_BYTES) yield takeBatch();
      continue;
    }
    if (batchBytes > 0) yield takeBatch();
    yield* streamLarge(slice, onBytes, onDigest);
  }
  if (batchBytes > 0) yield takeBatch();
}

/** Hashes `[0, start)` of an open file: the part of it the server already holds. */
async function hashPrefix(
  handle: Awaited<ReturnType<typeof openLocalFile>>['handle'],
  file: LocalFile,
  start: number,
): Promise<Hash> {
  const hash = createHash('sha256');
  if (start > 0) for await (const chunk of readRange(handle, file.path, start, 0)) hash.update(chunk);
  return hash;
}

async function readSmall({ file, start }: Slice, onDigest: FileDigestSink): Promise<Buffer> {
  if (start === 0) {
    // One read of the whole file, never through a link; its size, identity and modification time are checked
    // (lstat) before the part's last chunk is released, see partBody.
    const bytes = await readWhole(file.absolutePath).catch(async (err: unknown) => {
      // A link planted since the scan: let the one open path say so in its own words.
      if ((err as NodeJS.ErrnoException).code === 'ELOOP')
        await openLocalFile(file.path, file.absolutePath, file);
      throw err;
    });
    checkUnchangedSize(file.path, file.size, bytes.length);
    onDigest(file, createHash('sha256').update(bytes).digest('hex'));
    return bytes;
  }
  const { handle } = await openLocalFile(file.path, file.absolutePath, file);
  try {
    const hash = await hashPrefix(handle, file, start);
    const chunks: Buffer[] = [];
    for await (const chunk of readRange(handle, file.path, file.size, start)) {
      hash.update(chunk);
      chunks.push(chunk);
    }
    // Checked again (lstat) before the part's last chunk is released, see partBody.
    onDigest(file, hash.digest('hex'));
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}

async function* streamLarge(
  { file, start }: Slice,
  onBytes: (count: number) => void,
  onDigest: FileDigestSink,
): AsyncGenerator<Buffer> {
  const { handle } = await openLocalFile(file.path, file.absolutePath, file);
  try {
    const hash = await hashPrefix(handle, file, start);
    let pending: Buffer | undefined;
    for await (const chunk of readRange(handle, file.path, file.size, start)) {
      hash.update(chunk);
      if (pending !== undefined) {
        onBytes(pending.length);
        yield pending;
      }
      pending = chunk;
    }
    checkUnchanged(file, await handle.stat());
    onDigest(file, hash.digest('hex'));
    if (pending !== undefined) {
      onBytes(pending.length);
      yield pending;
    }
  } finally {
    await handle.close();
  }
}
