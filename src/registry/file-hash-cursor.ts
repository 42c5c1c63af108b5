import { createHash, type Hash } from 'node:crypto';
import type { FileDigest } from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';

export interface PartFile {
  readonly path: string;
  readonly size: number;
  /** The declared digest, or null when the client declares it at commit (single-pass push). */
  readonly sha256: string | null;
  /** Offset of the file's first byte within the part. */
  readonly start: number;
}

/**
 * Follows a part's plaintext as it is sealed and computes every file's SHA-256 the moment its last byte passes
 * (invariant N2, case E6): the server computes the digest; the client's declaration is only what it is
 * compared with, at once when it was declared up front, at commit otherwise.
 */
export class FileHashCursor {
  private fileIndex = 0;
  private hash: Hash = createHash('sha256');
  private completed: FileDigest[] = [];

  /** A cursor at `position`, with `prefix` the bytes of the current file before `position` already fed. */
  private constructor(
    private readonly files: readonly PartFile[],
    private position: number,
  ) {}

  /** Starts at the beginning of the part. */
  static atStart(files: readonly PartFile[]): FileHashCursor {
    const cursor = new FileHashCursor(files, 0);
    cursor.settle();
    return cursor;
  }

  /**
   * Starts at `position`; `replay` must then be fed the bytes from `replayFrom()` up to `position`
   * (the part of the current file already stored) via `update`.
   */
  static resumeAt(
    files: readonly PartFile[],
    position: number,
  ): { cursor: FileHashCursor; replayFrom: number } {
    const index = files.findIndex((f) => f.start + f.size > position);
    const cursor = new FileHashCursor(files, position);
    if (index === -1) {
      cursor.fileIndex = files.length;
      return { cursor, replayFrom: position };
    }
    cursor.fileIndex = index;
    const from = files[index]?.start ?? position;
    cursor.position = from;
    cursor.settle();
    return { cursor, replayFrom: from };
  }

  get offset(): number {
    return this.position;
  }

  /** An independent copy, so a cached cursor survives a chunk that fails half way. */
  clone(): FileHashCursor {
    const copy = new FileHashCursor(this.files, this.position);
    copy.fileIndex = this.fileIndex;
    copy.hash = this.hash.copy();
    copy.completed = [...this.completed];
    return copy;
  }

  /** Digests of the files completed since the last call (to be recorded once their bytes are durable). */
  takeCompleted(): FileDigest[] {
    const done = this.completed;
    this.completed = [];
    return done;
  }

  /** Feeds plaintext that directly follows everything fed before; throws `digest_mismatch` on a bad file. */
  update(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const file = this.files[this.fileIndex];
      if (!file)
        throw new StrongroomError('size_mismatch', 'the part carries more bytes than its files declare');
      const take = Math.min(file.start + file.size - this.position, data.length - at);
      this.hash.update(data.subarray(at, at + take));
      at += take;
      this.position += take;
      this.settle();
    }
  }

  /** Completes every file whose last byte has been fed (including empty files at the cursor). */
  private settle(): void {
    for (;;) {
      const file = this.files[this.fileIndex];
      if (!file || this.position < file.start + file.size) return;
      const digest = this.hash.digest('hex');
      if (file.sha256 !== null && digest !== file.sha256) {
        throw new StrongroomError(
          'digest_mismatch',
          `file ${quote(file.path)} has sha256 ${digest}, not the declared ${file.sha256}`,
          { details: { path: file.path, expected: file.sha256, actual: digest } },
        );
      }
      this.completed.push({ path: file.path, sha256: digest });
      this.fileIndex++;
      this.hash = createHash('sha256');
    }
  }
}
