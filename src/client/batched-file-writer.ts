/** The one file operation the writer needs (a `FileHandle` has it); a test can make writes short. */
export interface FileSink {
  writev(buffers: Buffer[], position: number): Promise<{ readonly bytesWritten: number }>;
}

// Downloaded bytes are written in batches of about this size: one vectored write per batch, not one per chunk.
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Appends chunks to a file in batches with one vectored write in flight while the next batch fills, so the
 * download keeps streaming during a write; `append` waits only when a full batch finds the previous write
 * still running (memory stays at about two batches).
 */
export class BatchedFileWriter {
  readonly #handle: FileSink;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  #position = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(handle: FileSink) {
    this.#handle = handle;
  }

  async append(chunk: Buffer): Promise<void> {
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
    if (this.#batchBytes < WRITE_BATCH_BYTES) return;
    await this.#writing;
    this.#writing = this.#write();
    // A failure is reported by the next append or by finish; until then it must not be an unhandled rejection.
    this.#writing.catch(() => undefined);
  }

  /** Writes what is left and waits for every write. */
  async finish(): Promise<void> {
    await this.#writing;
    await this.#write();
  }

  async #write(): Promise<void> {
    let buffers = this.#batch;
    let remaining = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    while (remaining > 0) {
      const { bytesWritten } = await this.#handle.writev(buffers, this.#position);
      // A write that takes nothing would loop forever; the file system reports real failures as errors.
      if (bytesWritten <= 0) throw new Error('a write to the output file made no progress');
      this.#position += bytesWritten;
      remaining -= bytesWritten;
      if (remaining > 0) buffers = dropBytes(buffers, bytesWritten);
    }
  }
}

/** `buffers` without their first `count` bytes (after a short write). */
function dropBytes(buffers: readonly Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = count;
  for (const buffer of buffers) {
    if (skip >= buffer.length) {
      skip -= buffer.length;
      continue;
    }
    rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
    skip = 0;
  }
  return rest;
}
