import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { StrongroomError, quote } from '../../core/errors.js';
import { parseId, type BlobId } from '../../core/ids.js';
import type { BlobFile, BlobStore, StagingWriter } from '../blob-store.js';
import { nodeFsOps, type FsEntry, type FsFileHandle, type FsOps, type FsStat } from './fs-ops.js';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const READ_CHUNK = 1024 * 1024;
const SHARD = /^[0-9a-f]{2}$/;

/**
 * BlobStore over a local directory (the embedded default, DESIGN section 10):
 * final blobs at `<root>/blobs/<2 hex>/<id>`, staging objects at `<root>/staging/<id>`. Paths are built only
 * from ids that pass `parseId`, so no caller-chosen string ever reaches the file system (C2).
 *
 * Durability (N1): a staging writer's `commit` fdatasyncs the file (and its directory when it created it);
 * `promote` renames into place and fsyncs both directories. Failure (N6): after a failed write or sync the
 * bytes of that id are treated as lost; this process refuses to promote it until it is rewritten through
 * `openStaging` from a durable offset, because a retried fsync can succeed without the lost pages on disk.
 *
 * Construct with `openFsBlobStore`, which creates the directories.
 */
export class FsBlobStore implements BlobStore {
  readonly #ops: FsOps;
  readonly #root: string;
  readonly #blobs: string;
  readonly #staging: string;
  /** Ids whose write, sync or promotion failed in this process (N6). */
  readonly #untrusted = new Set<BlobId>();
  /** Shard directories whose entry in `blobs/` this process has made durable. */
  readonly #durableShards = new Set<string>();

  constructor(root: string, ops: FsOps = nodeFsOps) {
    this.#ops = ops;
    this.#root = resolve(root);
    this.#blobs = join(this.#root, 'blobs');
    this.#staging = join(this.#root, 'staging');
  }

  async openStaging(id: BlobId, offset: number): Promise<StagingWriter> {
    const blobId = checkId(id);
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new StrongroomError(
        'invalid_request',
        `offset ${quote(String(offset))} must be a non-negative integer`,
      );
    }
    const create = offset === 0;
    let handle: FsFileHandle;
    try {
      handle = await this.#ops.open(this.#stagingPath(blobId), create ? 'create' : 'append', FILE_MODE);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw missing('staging blob', blobId, err);
      throw fsFailure('open staging blob', blobId, err);
    }
    try {
      const size = await handle.size();
      if (size < offset) {
        throw new StrongroomError(
          'storage_error',
          `staging blob ${quote(blobId)} holds ${size} bytes, fewer than ${offset}`,
        );
      }
      // Anything past `offset` is a torn tail that was never acknowledged.
      if (size !== offset) await handle.truncate(offset);
    } catch (err) {
      await closeQuietly(handle);
      throw fsFailure('prepare staging blob', blobId, err);
    }
    // The caller resumes from a durable offset, so the bytes before it are trusted again.
    this.#untrusted.delete(blobId);
    const path = this.#stagingPath(blobId);
    return new FsStagingWriter(blobId, handle, offset, {
      syncDirectory: create ? () => this.#ops.syncDir(this.#staging) : undefined,
      onLost: () => this.#untrusted.add(blobId),
      writeBack: async () => {
        const reader = await this.#ops.open(path, 'read', 0o600);
        try {
          await reader.datasync();
        } finally {
          await closeQuietly(reader);
        }
      },
    });
  }

  async stagingSize(id: BlobId): Promise<number | undefined> {
    return this.#fileSize(this.#stagingPath(checkId(id)), id);
  }

  async readStaging(id: BlobId, start: number, end: number): Promise<Readable> {
    const blobId = checkId(id);
    checkRange(start, end);
    return this.#openRange(this.#stagingPath(blobId), 'staging blob', blobId, start, end);
  }

  async promote(id: BlobId): Promise<void> {
    const blobId = checkId(id);
    if (this.#untrusted.has(blobId)) {
      throw new StrongroomError(
        'storage_error',
        `blob ${quote(blobId)} had a failed write or sync and cannot be promoted until it is rewritten`,
      );
    }
    const staging = this.#stagingPath(blobId);
    const final = this.#finalPath(blobId);
    const shard = dirname(final);
    let renamed = false;
    try {
      if ((await this.#statOrUndefined(final)) !== undefined) {
        // A final blob is immutable (N3): a second staging copy of the same id is never moved over it.
        if ((await this.#statOrUndefined(staging)) !== undefined) {
          throw new StrongroomError(
            'storage_error',
            `blob ${quote(blobId)} is already final and has a staging copy`,
          );
        }
        // An earlier promote may have died between its rename and its fsyncs; syncing again makes it durable.
        await this.#ensureShard(shard);
        await this.#ops.syncDir(shard);
        return;
      }
      await this.#ensureShard(shard);
      try {
        await this.#ops.rename(staging, final);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
        // A concurrent promote of the same id may have won the rename.
        if ((await this.#statOrUndefined(final)) === undefined) throw missing('blob', blobId, err);
      }
      renamed = true;
      await this.#ops.syncDir(shard);
      await this.#ops.syncDir(this.#staging);
    } catch (err) {
      if (renamed) this.#untrusted.add(blobId);
      throw fsFailure('promote blob', blobId, err);
    }
  }

  async read(id: BlobId, start: number, end: number): Promise<Readable> {
    const blobId = checkId(id);
    checkRange(start, end);
    return this.#openRange(this.#finalPath(blobId), 'blob', blobId, start, end);
  }

  async open(id: BlobId): Promise<BlobFile> {
    const blobId = checkId(id);
    const handle = await this.#openForReading(this.#finalPath(blobId), 'blob', blobId);
    return new FsBlobFile(handle, (err) => fsFailure('read blob', blobId, err));
  }

  async size(id: BlobId): Promise<number | undefined> {
    return this.#fileSize(this.#finalPath(checkId(id)), id);
  }

  /**
   * Not fsynced: a deletion undone by a crash leaves an orphan that start-up collection removes again (N4),
   * and erasure rests on destroying the data key, not on these bytes.
   */
  async delete(id: BlobId): Promise<void> {
    const blobId = checkId(id);
    for (const path of [this.#finalPath(blobId), this.#stagingPath(blobId)]) {
      try {
        await this.#ops.unlink(path);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw fsFailure('delete blob', blobId, err);
      }
    }
    this.#untrusted.delete(blobId);
  }

  async *list(): AsyncIterable<BlobId> {
    for (const shard of await this.#readdir(this.#blobs)) {
      if (!shard.isDirectory || !SHARD.test(shard.name)) continue;
      for (const entry of await this.#readdir(join(this.#blobs, shard.name))) {
        const id = parseId('blob', entry.name);
        if (id !== undefined && !entry.isDirectory && shardOf(id) === shard.name) yield id;
      }
    }
  }

  async *listStaging(): AsyncIterable<{ readonly id: BlobId; readonly modifiedAt: Date }> {
    for (const entry of await this.#readdir(this.#staging)) {
      const id = parseId('blob', entry.name);
      if (id === undefined || entry.isDirectory) continue;
      const stat = await this.#statOrUndefined(this.#stagingPath(id));
      if (stat?.isFile === true) yield { id, modifiedAt: stat.modifiedAt };
    }
  }

  async checkWritable(): Promise<void> {
    // The probe's name is not a blob id, so listings never report it.
    const probe = join(this.#root, `.probe-${randomBytes(8).toString('hex')}`);
    let handle: FsFileHandle | undefined;
    try {
      handle = await this.#ops.open(probe, 'createExclusive', FILE_MODE);
      await handle.write(Buffer.from('strongroom write probe\n'));
      await handle.datasync();
      const opened = handle;
      handle = undefined;
      await opened.close();
      await this.#ops.unlink(probe);
    } catch (err) {
      if (handle !== undefined) await closeQuietly(handle);
      await this.#ops.unlink(probe).catch(() => undefined);
      throw fsFailure('write to the blob store', undefined, err);
    }
  }

  #stagingPath(id: BlobId): string {
    return join(this.#staging, id);
  }

  #finalPath(id: BlobId): string {
    return join(this.#blobs, shardOf(id), id);
  }

  /** Even a shard that already exists may be the leftover of a process that died before syncing `blobs/`. */
  async #ensureShard(shard: string): Promise<void> {
    if (this.#durableShards.has(shard)) return;
    await this.#ops.mkdir(shard, DIR_MODE);
    await this.#ops.syncDir(this.#blobs);
    this.#durableShards.add(shard);
  }

  async #openRange(path: string, what: string, id: BlobId, start: number, end: number): Promise<Readable> {
    const handle = await this.#openForReading(path, what, id);
    return rangeStream(handle, start, end, (err) => fsFailure(`read ${what}`, id, err));
  }

  async #openForReading(path: string, what: string, id: BlobId): Promise<FsFileHandle> {
    try {
      return await this.#ops.open(path, 'read', FILE_MODE);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw missing(what, id, err);
      throw fsFailure(`open ${what}`, id, err);
    }
  }

  async #fileSize(path: string, id: string): Promise<number | undefined> {
    try {
      const stat = await this.#statOrUndefined(path);
      return stat?.isFile === true ? stat.size : undefined;
    } catch (err) {
      throw fsFailure('stat blob', id, err);
    }
  }

  async #statOrUndefined(path: string): Promise<FsStat | undefined> {
    try {
      return await this.#ops.stat(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async #readdir(path: string): Promise<readonly FsEntry[]> {
    try {
      return await this.#ops.readdir(path);
    } catch (err) {
      // A shard removed while listing simply has nothing left to report.
      if (errnoCode(err) === 'ENOENT') return [];
      throw fsFailure('list the blob store', undefined, err);
    }
  }
}

/** Opens the blob store under `root`, creating `root`, `blobs/` and `staging/` (mode 0700) as needed. */
export async function openFsBlobStore(root: string, ops: FsOps = nodeFsOps): Promise<FsBlobStore> {
  const base = resolve(root);
  try {
    await ensureDirectory(ops, base);
    await ensureDirectory(ops, join(base, 'blobs'));
    await ensureDirectory(ops, join(base, 'staging'));
  } catch (err) {
    throw fsFailure(`open the blob store at ${quote(base)}`, undefined, err);
  }
  return new FsBlobStore(base, ops);
}

interface WriterHooks {
  /** Makes the staging file's directory entry durable; set when this writer created the file. */
  readonly syncDirectory: (() => Promise<void>) | undefined;
  /** Called once when the writer fails: its bytes are lost (N6). */
  readonly onLost: () => void;
  /** fdatasync through a second descriptor, so write-back runs while writes continue on the first. */
  readonly writeBack: () => Promise<void>;
}

class FsStagingWriter implements StagingWriter {
  readonly #id: BlobId;
  readonly #handle: FsFileHandle;
  readonly #hooks: WriterHooks;
  #length: number;
  #state: 'open' | 'committed' | 'aborted' | 'failed' = 'open';
  #writeBack: Promise<void> | undefined;
  #writeBackError: unknown;
  #dirty = false;
  /** Operations run one at a time, in call order, even if a caller forgets to await. */
  #tail: Promise<unknown> = Promise.resolve();

  constructor(id: BlobId, handle: FsFileHandle, length: number, hooks: WriterHooks) {
    this.#id = id;
    this.#handle = handle;
    this.#length = length;
    this.#hooks = hooks;
  }

  write(chunk: Buffer | readonly Buffer[]): Promise<void> {
    return this.#serial(async () => {
      this.#assertOpen();
      const length = Buffer.isBuffer(chunk) ? chunk.length : chunk.reduce((sum, b) => sum + b.length, 0);
      if (length === 0) return;
      this.#dirty = true;
      try {
        await this.#handle.write(chunk);
      } catch (err) {
        await this.#fail();
        throw fsFailure('write staging blob', this.#id, err);
      }
      this.#length += length;
    });
  }

  /**
   * Starts writing back what has been written so far, without waiting, so the disk works while more bytes
   * arrive and `commit` has little left to flush. A failure here fails the commit: after a failed fsync the
   * kernel may forget the error, so a later fsync succeeding proves nothing (N6).
   */
  writeBackSoon(): void {
    if (this.#state !== 'open' || this.#writeBack !== undefined) return;
    this.#writeBack = this.#hooks
      .writeBack()
      .catch((err: unknown) => {
        this.#writeBackError ??= err;
      })
      .finally(() => {
        this.#writeBack = undefined;
      });
  }

  commit(): Promise<number> {
    return this.#serial(async () => {
      this.#assertOpen();
      try {
        await this.#writeBack;
        if (this.#writeBackError !== undefined) throw this.#writeBackError;
        await this.#handle.datasync();
      } catch (err) {
        // N6: a failed fsync may have dropped the dirty pages; a retry could "succeed" without them.
        await this.#fail();
        throw fsFailure('sync staging blob', this.#id, err);
      }
      try {
        this.#state = 'committed';
        await this.#handle.close();
        await this.#hooks.syncDirectory?.();
      } catch (err) {
        this.#state = 'failed';
        this.#hooks.onLost();
        throw fsFailure('sync staging blob', this.#id, err);
      }
      return this.#length;
    });
  }

  abort(): Promise<void> {
    return this.#serial(async () => {
      if (this.#state !== 'open') return;
      this.#state = 'aborted';
      // Uncommitted bytes may or may not survive, so the object is no longer fit to promote as it is.
      if (this.#dirty) this.#hooks.onLost();
      await closeQuietly(this.#handle);
    }).catch(() => undefined);
  }

  #assertOpen(): void {
    if (this.#state === 'open') return;
    const why =
      this.#state === 'failed' ? 'failed earlier; its bytes are treated as lost' : `is ${this.#state}`;
    throw new StrongroomError('storage_error', `the staging writer of blob ${quote(this.#id)} ${why}`);
  }

  async #fail(): Promise<void> {
    this.#state = 'failed';
    this.#hooks.onLost();
    await closeQuietly(this.#handle);
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(op);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}

/** A final blob's file for positional reads; `close` waits for reads in flight, so the descriptor is never reused under them. */
class FsBlobFile implements BlobFile {
  readonly #handle: FsFileHandle;
  readonly #describe: (err: unknown) => StrongroomError;
  readonly #pending = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(handle: FsFileHandle, describe: (err: unknown) => StrongroomError) {
    this.#handle = handle;
    this.#describe = describe;
  }

  read(into: Buffer, position: number): Promise<number> {
    if (this.#closing !== undefined) {
      return Promise.reject(new StrongroomError('storage_error', 'the blob was closed before this read'));
    }
    const reading = this.#fill(into, position);
    const settled = reading.catch(() => undefined).finally(() => this.#pending.delete(settled));
    this.#pending.add(settled);
    return reading;
  }

  close(): Promise<void> {
    this.#closing ??= Promise.all(this.#pending).then(() => closeQuietly(this.#handle));
    return this.#closing;
  }

  async #fill(into: Buffer, position: number): Promise<number> {
    let filled = 0;
    try {
      while (filled < into.length) {
        const n = await this.#handle.read(into.subarray(filled), position + filled);
        if (n === 0) break;
        filled += n;
      }
    } catch (err) {
      throw this.#describe(err);
    }
    return filled;
  }
}

/**
 * Bytes [start, end] of an open file as a stream, read in 64 KiB chunks (never the whole object). The handle
 * is closed when the stream ends, fails or is destroyed early; read errors surface as `storage_error`.
 */
function rangeStream(
  handle: FsFileHandle,
  start: number,
  end: number,
  describe: (err: unknown) => StrongroomError,
): Readable {
  let position = start;
  return new Readable({
    highWaterMark: READ_CHUNK,
    read() {
      const want = Math.min(READ_CHUNK, end + 1 - position);
      if (want <= 0) {
        this.push(null);
        return;
      }
      const buffer = Buffer.allocUnsafe(want);
      handle.read(buffer, position).then(
        (n) => {
          if (this.destroyed) return;
          if (n === 0) {
            this.push(null);
            return;
          }
          position += n;
          this.push(n === want ? buffer : buffer.subarray(0, n));
        },
        (err: unknown) => this.destroy(describe(err)),
      );
    },
    destroy(err, callback) {
      handle.close().then(
        () => callback(err),
        (closeErr: unknown) => callback(err ?? describe(closeErr)),
      );
    },
  });
}

async function ensureDirectory(ops: FsOps, path: string): Promise<void> {
  try {
    await ops.mkdir(path, DIR_MODE);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || dirname(path) === path) throw err;
    await ensureDirectory(ops, dirname(path));
    await ops.mkdir(path, DIR_MODE);
  }
  // Whether or not this call created it, the entry may not be durable yet (a process that died mid-way).
  await ops.syncDir(dirname(path));
}

function checkId(id: string): BlobId {
  const parsed = parseId('blob', id);
  if (parsed === undefined) throw new StrongroomError('invalid_request', `${quote(id)} is not a blob id`);
  return parsed;
}

function checkRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new StrongroomError(
      'invalid_request',
      `byte range ${quote(`${String(start)}-${String(end)}`)} must satisfy 0 <= start <= end`,
    );
  }
}

/** The first two hex digits of the random part: 256 shards keep directories small. */
function shardOf(id: BlobId): string {
  return id.slice(4, 6);
}

async function closeQuietly(handle: FsFileHandle): Promise<void> {
  await handle.close().catch(() => undefined);
}

function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

function missing(what: string, id: BlobId, cause: unknown): StrongroomError {
  return new StrongroomError('storage_error', `${what} ${quote(id)} does not exist`, { cause });
}

/** The one place file system errors become domain errors; the errno error stays as `cause`. */
function fsFailure(action: string, id: string | undefined, err: unknown): StrongroomError {
  if (err instanceof StrongroomError) return err;
  const code = errnoCode(err);
  const subject = id === undefined ? '' : ` ${quote(id)}`;
  return new StrongroomError(
    'storage_error',
    `cannot ${action}${subject}${code === undefined ? '' : ` (${code})`}`,
    {
      cause: err,
    },
  );
}
