import { Readable } from 'node:stream';
import type { StoredFile } from '../core/domain.js';
import { StrongroomError } from '../core/errors.js';
import { HEADER_SIZE, RangeOpener, decodeHeader } from '../crypto/stream-aead.js';
import type { BlobFile, BlobStore } from '../storage/blob-store.js';
import type { MetadataReader } from '../storage/metadata-store.js';
import type { KeyService } from './key-service.js';

/** An inclusive byte range within a file. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

// About 1 MiB of sealed segments per read: large reads cost fewer system calls and wake-ups per byte.
const READ_BYTES = 1024 * 1024;
// Buffers per download: one being decrypted while the next read fills another (memory: READ_BYTES each).
const READ_BUFFERS = 2;

/**
 * Reads a file's plaintext out of its (possibly shared) encrypted blob, decrypting only the segments the range
 * touches. Every segment is authenticated before a byte of it is released (G1, G2).
 */
export class BlobReader {
  constructor(
    private readonly store: MetadataReader,
    private readonly blobs: BlobStore,
    private readonly keys: KeyService,
  ) {}

  async open(file: StoredFile, range: ByteRange | null): Promise<Readable> {
    if (file.size === 0) return Readable.from([]);
    const blob = await this.store.getBlob(file.blobId);
    if (!blob || blob.state !== 'committed')
      throw new StrongroomError('integrity_error', 'the object behind this file is missing');
    const dek = await this.keys.unwrap(blob.dataKeyId);
    const source = await this.blobs.open(blob.id);
    try {
      const headerBytes = Buffer.alloc(HEADER_SIZE);
      await source.read(headerBytes, 0);
      const opener = new RangeOpener({
        dek,
        header: decodeHeader(headerBytes),
        identity: blob.id,
        plaintextSize: blob.size,
        start: file.offset + (range?.start ?? 0),
        end: file.offset + (range?.end ?? file.size - 1),
      });
      return new PlaintextStream(source, opener);
    } catch (err) {
      await source.close();
      throw err;
    }
  }
}

/**
 * The plaintext of one range, read from the blob in pieces of whole sealed segments into a few buffers that are
 * reused for the whole download (ciphertext is dead once its segments are open: each opened segment is a fresh
 * buffer), with the next read in flight while the current piece is decrypted. Memory per download is the
 * buffers plus the stream's high-water mark, whatever the file size.
 */
class PlaintextStream extends Readable {
  readonly #source: BlobFile;
  readonly #opener: RangeOpener;
  readonly #free: Buffer[];
  readonly #reads: { readonly buffer: Buffer; readonly piece: Buffer; readonly bytes: Promise<number> }[] =
    [];
  readonly #end: number;
  #position: number;
  #waiting = false;

  constructor(source: BlobFile, opener: RangeOpener) {
    // Whole segments per piece: every piece but the range's last one ends on a segment boundary.
    const segment = opener.nextSealedLength;
    const pieceBytes = Math.max(1, Math.floor(READ_BYTES / segment)) * segment;
    super({ highWaterMark: pieceBytes });
    this.#source = source;
    this.#opener = opener;
    this.#position = opener.plan.cipherStart;
    this.#end = opener.plan.cipherEnd + 1;
    const bufferBytes = Math.min(pieceBytes, this.#end - this.#position);
    this.#free = Array.from({ length: READ_BUFFERS }, () => Buffer.allocUnsafe(bufferBytes));
  }

  override _read(): void {
    if (this.#waiting) return;
    this.#startReads();
    const next = this.#reads.shift();
    if (next === undefined) {
      // Every byte of [cipherStart, cipherEnd] was read in full and opened, so this holds; it is the last word.
      if (this.#opener.done) this.push(null);
      else this.destroy(truncated());
      return;
    }
    this.#waiting = true;
    next.bytes.then(
      (bytes) => {
        this.#waiting = false;
        if (this.destroyed) return;
        try {
          // A final blob holds its whole range; a short read means it was cut (or changed) under us.
          if (bytes !== next.piece.length) throw truncated();
          const pushed = this.#openPiece(next.piece);
          this.#free.push(next.buffer);
          this.#startReads();
          // With nothing pushed the stream would never ask again.
          if (!pushed) this._read();
        } catch (err) {
          this.destroy(err instanceof Error ? err : new Error(String(err)));
        }
      },
      (err: unknown) => {
        this.#waiting = false;
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    void this.#source.close().then(() => callback(err));
  }

  /** Keeps every free buffer busy with the next piece of the range (read-ahead). */
  #startReads(): void {
    while (this.#position < this.#end) {
      const buffer = this.#free.pop();
      if (buffer === undefined) return;
      const piece = buffer.subarray(0, Math.min(buffer.length, this.#end - this.#position));
      const bytes = this.#source.read(piece, this.#position);
      // A read still in flight when the stream is destroyed must not become an unhandled rejection.
      bytes.catch(() => undefined);
      this.#reads.push({ buffer, piece, bytes });
      this.#position += piece.length;
    }
  }

  /** Opens the whole sealed segments of `piece` in order; true when any plaintext was pushed. */
  #openPiece(piece: Buffer): boolean {
    let pushed = false;
    for (let offset = 0; offset < piece.length;) {
      const need = this.#opener.nextSealedLength;
      if (offset + need > piece.length) throw truncated();
      const plaintext = this.#opener.openNext(piece.subarray(offset, offset + need));
      offset += need;
      if (plaintext.length > 0) {
        this.push(plaintext);
        pushed = true;
      }
    }
    return pushed;
  }
}

function truncated(): StrongroomError {
  return new StrongroomError('integrity_error', 'blob ends before its last segment (truncated)');
}
