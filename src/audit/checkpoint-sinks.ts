import { mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StrongroomError, quote } from '../core/errors.js';
import type { StoredCheckpoint } from '../storage/metadata-store.js';

/**
 * Where signed checkpoints are copied outside the server (threat H2: a copy the server cannot rewrite catches
 * truncation and re-chaining later). A sink throws when the copy was not made; the delivery queue retries.
 */
export interface CheckpointSink {
  readonly name: string;
  deliver(checkpoints: readonly StoredCheckpoint[]): Promise<void>;
}

/**
 * Appends each checkpoint as an export line (`{"kind":"checkpoint","note":...}`) to a file and fsyncs it, so
 * `strongroom audit verify --checkpoints FILE` reads it directly. Mount it from storage the server's operators
 * cannot rewrite (another host, WORM storage) for it to mean anything.
 */
export class FileCheckpointSink implements CheckpointSink {
  constructor(
    readonly name: string,
    private readonly path: string,
  ) {}

  async deliver(checkpoints: readonly StoredCheckpoint[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const file = await open(this.path, 'a', 0o600);
    try {
      const lines = checkpoints.map((c) => `${JSON.stringify({ kind: 'checkpoint', note: c.note })}\n`);
      await file.write(lines.join(''));
      await file.sync();
    } finally {
      await file.close();
    }
  }
}

/**
 * POSTs each signed note (text/plain) to a witness or log service; any answer but 2xx is a failure to retry.
 * The optional Authorization value comes from the environment, never from the configuration file.
 */
export class HttpCheckpointSink implements CheckpointSink {
  constructor(
    readonly name: string,
    private readonly url: string,
    private readonly authorization: string | undefined,
    private readonly timeoutMs = 10_000,
  ) {}

  async deliver(checkpoints: readonly StoredCheckpoint[]): Promise<void> {
    for (const checkpoint of checkpoints) {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'text/plain; charset=utf-8',
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        body: checkpoint.note,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) {
        throw new StrongroomError(
          'storage_error',
          `checkpoint sink ${quote(this.name)} answered ${response.status} for size ${checkpoint.size}`,
        );
      }
    }
  }
}
