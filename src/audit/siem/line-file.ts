import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Reading the ends of newline-terminated files (the JSON-lines export) without loading them: the tail is read
 * backwards and the head forwards, in 64 KiB chunks.
 */

const TAIL_CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Crash repair of an append-only line file: a last line without its newline is a write cut short (torn), so it
 * is truncated away and fsync'd. Returns the remaining size.
 */
export async function repairTornTail(handle: FileHandle, stats: Stats): Promise<number> {
  if (stats.size === 0) return 0;
  const last = Buffer.alloc(1);
  await handle.read(last, 0, 1, stats.size - 1);
  if (last[0] === NEWLINE) return stats.size;
  const end = await lastNewlineBefore(handle, stats.size);
  const size = end === -1 ? 0 : end + 1;
  await handle.truncate(size);
  await handle.sync();
  return size;
}

/** Offset of the last newline before `end`, reading backwards in chunks; -1 if there is none. */
async function lastNewlineBefore(handle: FileHandle, end: number): Promise<number> {
  const chunk = Buffer.alloc(TAIL_CHUNK);
  for (let stop = end; stop > 0;) {
    const start = Math.max(0, stop - TAIL_CHUNK);
    const { bytesRead } = await handle.read(chunk, 0, stop - start, start);
    const at = chunk.subarray(0, bytesRead).lastIndexOf(NEWLINE);
    if (at !== -1) return start + at;
    stop = start;
  }
  return -1;
}

/** The last line of a file whose `size` bytes end with a newline: where an exporter finds the last seq it wrote. */
export async function lastLine(handle: FileHandle, size: number): Promise<string> {
  const start = (await lastNewlineBefore(handle, size - 1)) + 1;
  const line = Buffer.alloc(size - 1 - start);
  await handle.read(line, 0, line.length, start);
  return line.toString('utf8');
}

/** The first line of a file whose `size` bytes end with a newline: the first seq, which names a rotated file. */
export async function firstLine(handle: FileHandle, size: number): Promise<string> {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < size;) {
    const chunk = Buffer.alloc(Math.min(TAIL_CHUNK, size - offset));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
    const at = chunk.subarray(0, bytesRead).indexOf(NEWLINE);
    if (at !== -1) return Buffer.concat([...parts, chunk.subarray(0, at)]).toString('utf8');
    parts.push(chunk.subarray(0, bytesRead));
    offset += bytesRead;
  }
  return Buffer.concat(parts).toString('utf8');
}
