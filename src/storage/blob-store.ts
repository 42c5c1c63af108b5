import type { Readable } from 'node:stream';
import type { BlobId } from '../core/ids.js';

/**
 * Encrypted object bytes, owned by the core and implemented per backend (local files now, S3 later); every
 * implementation passes test/storage/blob-store.conformance.ts unchanged. Callers never choose locations: a
 * blob is named only by its id (C2). Objects are written to staging, made durable, then promoted; staging is
 * never readable through `read` (N2).
 */
export interface BlobStore {
  /**
   * Opens the staging object for appending at exactly `offset` bytes, discarding anything after it (a torn
   * tail left by a crash or a dropped connection). Creates the object when `offset` is 0.
   * Throws `storage_error` if the object is shorter than `offset`.
   */
  openStaging(id: BlobId, offset: number): Promise<StagingWriter>;
  /** Length of the staging object, or undefined when there is none. */
  stagingSize(id: BlobId): Promise<number | undefined>;
  /** Bytes [start, end] (inclusive) of a staging object; used to resume an interrupted upload. */
  readStaging(id: BlobId, start: number, end: number): Promise<Readable>;
  /**
   * Durably turns the staging object into the final blob (N1: after this resolves the blob survives a crash).
   * Idempotent: promoting an already promoted blob succeeds; promoting a blob that exists nowhere throws.
   */
  promote(id: BlobId): Promise<void>;
  /** Bytes [start, end] (inclusive) of a final blob. Throws `storage_error` when absent. */
  read(id: BlobId, start: number, end: number): Promise<Readable>;
  /**
   * Opens a final blob for positional reads into the caller's buffers (downloads read large pieces into
   * buffers they reuse, which a stream of fresh chunks cannot offer). Throws `storage_error` when absent.
   */
  open(id: BlobId): Promise<BlobFile>;
  /** Length of the final blob, or undefined when there is none. */
  size(id: BlobId): Promise<number | undefined>;
  /** Deletes the final blob and any staging object of that id; absent objects are not an error. */
  delete(id: BlobId): Promise<void>;
  /** Every final blob id (for orphan collection). */
  list(): AsyncIterable<BlobId>;
  /** Every staging object id with its last modification time. */
  listStaging(): AsyncIterable<{ readonly id: BlobId; readonly modifiedAt: Date }>;
  /** Throws `storage_error` when the store cannot durably write. */
  checkWritable(): Promise<void>;
}

/** A final blob open for reading; the caller closes it. */
export interface BlobFile {
  /**
   * Reads into `into` from byte `position`, filling it unless the blob ends first; resolves to the number of
   * bytes read (0 at or past the end). Failures are `storage_error`.
   */
  read(into: Buffer, position: number): Promise<number>;
  /** Releases the blob. Idempotent, never throws; waits for reads still in flight. */
  close(): Promise<void>;
}

export interface StagingWriter {
  /** Appends bytes (one buffer, or several in order); resolves when handed to the backend (not yet durable). */
  write(chunk: Buffer | readonly Buffer[]): Promise<void>;
  /**
   * Makes everything written durable and closes; resolves to the durable length. A failed sync is final: the
   * writer is unusable and the bytes are treated as lost (N6, no retry-and-acknowledge after a failed fsync).
   */
  commit(): Promise<number>;
  /**
   * A hint: start making the bytes written so far durable in the background (optional for a backend). Never
   * a promise of durability by itself; a background failure makes the next `commit` fail.
   */
  writeBackSoon?(): void;
  /** Closes without any durability promise (the bytes may or may not survive). Never throws. */
  abort(): Promise<void>;
}
