import { createHash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { StrongroomError, quote } from '../core/errors.js';
import { checkManifestPaths, parseFilePath } from '../core/names.js';

/** One regular file of a push: its manifest path, where it lives, and what it was when it was found. */
export interface LocalFile {
  readonly path: string;
  readonly absolutePath: string;
  readonly size: number;
  /** Identity of the inode; a file swapped for another (or for a link) during the push is caught by it. */
  readonly dev: number;
  readonly ino: number;
  /** Last modification; a file edited in place during the push is caught by it. */
  readonly mtimeMs: number;
}

export interface LocalSource {
  readonly files: readonly LocalFile[];
  readonly totalSize: number;
}

const READ_CHUNK = 1024 * 1024;
const STAT_CONCURRENCY = 16;
// O_NOFOLLOW: never open through a link planted after the walk (C1/C3). O_NONBLOCK: a FIFO swapped in after
// the walk cannot block the open; it is then refused as not a regular file. Both are absent on Windows.
export const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

function describeType(stats: Stats): string {
  if (stats.isSymbolicLink()) return 'symbolic link';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFIFO()) return 'named pipe';
  if (stats.isSocket()) return 'socket';
  if (stats.isBlockDevice() || stats.isCharacterDevice()) return 'device';
  return 'special file';
}

function refuse(relativePath: string, why: string): StrongroomError {
  return new StrongroomError('invalid_path', `${quote(relativePath)} ${why}`);
}

function refuseType(relativePath: string, stats: Stats): StrongroomError {
  return stats.isSymbolicLink()
    ? refuse(relativePath, 'is a symbolic link; strongroom never follows links out of the pushed tree')
    : refuse(
        relativePath,
        `is a ${describeType(stats)}, not a regular file; only regular files can be pushed`,
      );
}

interface Candidate {
  readonly path: string;
  readonly absolutePath: string;
}

/** Byte order of the UTF-8 encodings, the order the manifest declares files in. */
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function walk(
  directory: string,
  prefix: string,
  out: Candidate[],
  signal?: AbortSignal,
): Promise<void> {
  // Entry types come from the directory itself (lstat semantics): a link is refused whatever it points at,
  // inside the tree or out of it. Opening with O_NOFOLLOW later closes the race of a file swapped for a link.
  for (const entry of await readdir(directory, { withFileTypes: true })) {
    signal?.throwIfAborted();
    const name = entry.name;
    const absolutePath = path.join(directory, name);
    const relativePath = prefix === '' ? name : `${prefix}/${name}`;
    if (entry.isDirectory()) {
      await walk(absolutePath, relativePath, out, signal);
    } else if (entry.isFile()) {
      out.push({ path: parseFilePath(relativePath), absolutePath });
    } else {
      throw refuseType(relativePath, await lstat(absolutePath));
    }
  }
}

/**
 * Open a file the walk found, refusing anything that is no longer the same regular file: a link (O_NOFOLLOW),
 * a pipe or device, or another inode than the one that was hashed.
 */
export async function openLocalFile(
  relativePath: string,
  absolutePath: string,
  expected?: LocalFile,
): Promise<{ handle: FileHandle; stats: Stats }> {
  let handle: FileHandle;
  try {
    handle = await open(absolutePath, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw refuse(relativePath, 'is a symbolic link; strongroom never follows links out of the pushed tree');
    }
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw refuseType(relativePath, stats);
    if (expected !== undefined) checkUnchanged(expected, stats);
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

export function checkUnchangedSize(relativePath: string, expected: number, actual: number): void {
  if (actual !== expected) {
    throw new StrongroomError(
      'size_mismatch',
      `${quote(relativePath)} changed size while it was being pushed (${expected} -> ${actual} bytes); push it again once it is stable`,
    );
  }
}

/**
 * Read exactly `length` bytes from `start`, in fresh buffers (the consumer may hold them). A file that ends
 * early changed under us and fails; bytes past the range are never read.
 */
export async function* readRange(
  handle: FileHandle,
  relativePath: string,
  fileSize: number,
  start: number,
): AsyncGenerator<Buffer> {
  // One read is always in flight while the caller hashes or sends the previous chunk.
  const readAt = (position: number) => {
    const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, fileSize - position));
    const read = handle
      .read(buffer, 0, buffer.length, position)
      .then(({ bytesRead }) => ({ buffer, bytesRead }));
    // If the consumer stops early, the read still in flight must not become an unhandled rejection.
    read.catch(() => undefined);
    return read;
  };
  let position = start;
  let next = position < fileSize ? readAt(position) : undefined;
  while (next !== undefined) {
    const { buffer, bytesRead } = await next;
    if (bytesRead === 0) checkUnchangedSize(relativePath, fileSize, position);
    position += bytesRead;
    next = position < fileSize ? readAt(position) : undefined;
    yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  }
}

/**
 * The SHA-256 of a whole local file, checking that it is still the file that was found (size, inode, mtime).
 * Used for files whose bytes the server already holds from an earlier attempt of a resumed push.
 */
export async function hashLocalFile(file: LocalFile, signal?: AbortSignal): Promise<string> {
  const { handle } = await openLocalFile(file.path, file.absolutePath, file);
  try {
    const hash = createHash('sha256');
    for await (const chunk of readRange(handle, file.path, file.size, 0)) {
      signal?.throwIfAborted();
      hash.update(chunk);
    }
    checkUnchanged(file, await handle.stat());
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** A file that changed size, identity or modification time since it was found fails the push. */
export function checkUnchanged(file: LocalFile, now: Stats): void {
  checkUnchangedSize(file.path, file.size, now.size);
  if (now.ino !== file.ino || now.dev !== file.dev || now.mtimeMs !== file.mtimeMs || !now.isFile()) {
    throw new StrongroomError(
      'size_mismatch',
      `${quote(file.path)} changed while it was being pushed; push it again once it is stable`,
    );
  }
}

/**
 * Find the files of a push: `source` is one regular file (named by its base name) or a directory walked
 * without following links. Symbolic links, pipes, sockets and devices anywhere in the tree are refused, as is
 * any path the manifest validator refuses; files come back sorted by path in byte order with their size and
 * identity (their digests are computed as they are sent).
 */
export async function scanLocalSource(source: string, signal?: AbortSignal): Promise<LocalSource> {
  const absolute = path.resolve(source);
  const stats = await lstat(absolute).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new StrongroomError('invalid_request', `${quote(source)} does not exist`);
    }
    throw err;
  });
  const candidates: Candidate[] = [];
  if (stats.isFile()) {
    candidates.push({ path: parseFilePath(path.basename(absolute)), absolutePath: absolute });
  } else if (stats.isDirectory()) {
    await walk(absolute, '', candidates, signal);
  } else {
    throw refuseType(source, stats);
  }
  if (candidates.length === 0) {
    throw new StrongroomError('invalid_request', `${quote(source)} contains no files to push`);
  }
  candidates.sort((a, b) => compareBytes(a.path, b.path));
  checkManifestPaths(candidates.map((c) => c.path));
  // Sizes and identities only: the bytes are read once, while they are sent (a single-pass push).
  const files: LocalFile[] = new Array<LocalFile>(candidates.length);
  let next = 0;
  const worker = async () => {
    while (next < candidates.length) {
      const index = next++;
      const candidate = candidates[index] as Candidate;
      signal?.throwIfAborted();
      const found = await lstat(candidate.absolutePath);
      if (!found.isFile()) throw refuseType(candidate.path, found);
      files[index] = {
        path: candidate.path,
        absolutePath: candidate.absolutePath,
        size: found.size,
        dev: found.dev,
        ino: found.ino,
        mtimeMs: found.mtimeMs,
      };
    }
  };
  await Promise.all(Array.from({ length: Math.min(STAT_CONCURRENCY, candidates.length) }, worker));
  return { files, totalSize: files.reduce((sum, f) => sum + f.size, 0) };
}
