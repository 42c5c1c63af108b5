import { lstat } from 'node:fs/promises';
import { StrongroomError, quote } from '../core/errors.js';
import { checkUnchangedSize, openLocalFile, readRange, type LocalFile } from './local-source.js';

/** Files whose remaining bytes are at most this big are read whole, ahead of time. */
const SMALL_FILE_BYTES = 1024 * 1024;
/** How many small files may be read ahead of the one being sent (bounds memory to 32 MiB). */
const READ_AHEAD_FILES = 32;
const COALESCE_BYTES = 1024 * 1024;

interface Slice {
  readonly file: LocalFile;
  readonly start: number;
}

/**
 * The bytes of one upload part from `offset` on: the part's files back to back, straight from disk. `offset`
 * is the server's durable `received` and may fall inside a file. Each file is checked against what was hashed
 * before its bytes are read and again before its last chunk is released, so a file that changed size fails
 * the request instead of completing a part with the wrong bytes. Small files are read a few dozen ahead, so a
 * pack of a thousand files is not a thousand sequential open/read/close round trips.
 */
export async function* partBody(
  files: readonly LocalFile[],
  offset: number,
  onBytes: (count: number) => void,
): AsyncGenerator<Buffer> {
  // The last chunk is held back until every file sent from memory is checked once more: a file edited during
  // the push fails the request before the server can complete the part.
  let held: Buffer | undefined;
  for await (const chunk of partChunks(files, offset, onBytes)) {
    if (held !== undefined) yield held;
    held = chunk;
  }
  await Promise.all(files.filter((f) => f.content !== undefined).map((f) => checkUnchanged(f)));
  if (held !== undefined) yield held;
}

async function checkUnchanged(file: LocalFile): Promise<void> {
  const now = await lstat(file.absolutePath);
  checkUnchangedSize(file.path, file.size, now.size);
  if (now.ino !== file.ino || now.dev !== file.dev || !now.isFile()) {
    throw new StrongroomError('size_mismatch', `${quote(file.path)} was replaced while it was being pushed`);
  }
}

async function* partChunks(
  files: readonly LocalFile[],
  offset: number,
  onBytes: (count: number) => void,
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

  const ahead = new Map<number, Promise<Buffer>>();
  const prefetch = (from: number) => {
    for (let i = from; i < slices.length && i < from + READ_AHEAD_FILES; i++) {
      const slice = slices[i] as Slice;
      if (
        ahead.has(i) ||
        slice.file.content !== undefined ||
        slice.file.size - slice.start > SMALL_FILE_BYTES
      )
        continue;
      const read = readSmall(slice);
      // An abandoned upload must not leave an unhandled rejection behind.
      read.catch(() => undefined);
      ahead.set(i, read);
    }
  };

  // Small files are coalesced into chunks of about 1 MiB: one write per chunk, not one per file.
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
    const early =
      slice.file.content !== undefined
        ? Promise.resolve(slice.file.content.subarray(slice.start))
        : ahead.get(index);
    if (early !== undefined) {
      ahead.delete(index);
      const bytes = await early;
      batch.push(bytes);
      batchBytes += bytes.length;
      if (batchBytes >= COALESCE_BYTES) yield takeBatch();
      continue;
    }
    if (batchBytes > 0) yield takeBatch();
    yield* streamLarge(slice, onBytes);
  }
  if (batchBytes > 0) yield takeBatch();
}

async function readSmall({ file, start }: Slice): Promise<Buffer> {
  // The bytes that were hashed are sent as they are (checked again before the part's last chunk).
  if (file.content !== undefined) return file.content.subarray(start);
  const { handle } = await openLocalFile(file.path, file.absolutePath, file);
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of readRange(handle, file.path, file.size, start)) chunks.push(chunk);
    checkUnchangedSize(file.path, file.size, (await handle.stat()).size);
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}

async function* streamLarge(
  { file, start }: Slice,
  onBytes: (count: number) => void,
): AsyncGenerator<Buffer> {
  const { handle } = await openLocalFile(file.path, file.absolutePath, file);
  try {
    let pending: Buffer | undefined;
    for await (const chunk of readRange(handle, file.path, file.size, start)) {
      if (pending !== undefined) {
        onBytes(pending.length);
        yield pending;
      }
      pending = chunk;
    }
    checkUnchangedSize(file.path, file.size, (await handle.stat()).size);
    if (pending !== undefined) {
      onBytes(pending.length);
      yield pending;
    }
  } finally {
    await handle.close();
  }
}
