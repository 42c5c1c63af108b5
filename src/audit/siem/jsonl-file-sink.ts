import { constants } from 'node:fs';
import { chmod, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StrongroomError, quote } from '../../core/errors.js';
import type { AuditEvent } from '../audit-event.js';
import type { AuditSink } from './audit-sink.js';
import { payloadSeq, siemPayload, type SiemFormat } from './siem-payload.js';
import { firstLine, lastLine, repairTornTail } from './line-file.js';
import { formatOption, integerOption } from './sink-options.js';

/**
 * JSON lines in `DIR/audit-current.jsonl` for file-tailing shippers (Filebeat, Fluent Bit, Vector). Each batch
 * is appended and fsync'd; the file is renamed to `audit-FIRST-LAST.jsonl` (and the directory fsync'd) before a
 * line would push it past `maxBytes`, and only the newest `maxFiles` rotated files are kept.
 *
 * Crash safety: on open, a torn last line (a write cut short) is truncated away, and the highest seq already
 * on disk (the current file's last line, else the newest rotated file's name) is remembered, so a batch the
 * runner retries after a crash or a failed write appends nothing twice. Any failure closes the file; the
 * next delivery reopens it and repeats that repair.
 */

export interface JsonLinesFileSinkOptions {
  /** Exporter name under which the runner persists its position; defaults to `jsonl`. */
  readonly name?: string;
  /** Directory of the files; created with mode 0700 (and set to it). */
  readonly directory: string;
  /** Size limit of a file in bytes; defaults to 64 MiB. A single longer line gets a file of its own. */
  readonly maxBytes?: number;
  /** Rotated files kept; defaults to 10. */
  readonly maxFiles?: number;
  /** Each line is the event's canonical JSON (`json`) or its OCSF form (`ocsf`). */
  readonly format?: SiemFormat;
}

export const CURRENT_FILE = 'audit-current.jsonl';
const ROTATED = /^audit-(\d+)-(\d+)\.jsonl$/;
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

interface OpenFile {
  handle: FileHandle;
  size: number;
  /** Seq of the first line of the current file; null while it is empty. */
  firstSeq: number | null;
  /** Highest seq on disk, in this file or a rotated one; 0 when there is none. */
  lastSeq: number;
}

export class JsonLinesFileSink implements AuditSink {
  readonly name: string;
  readonly #directory: string;
  readonly #maxBytes: number;
  readonly #maxFiles: number;
  readonly #format: SiemFormat;
  #file: OpenFile | null = null;
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  /** A JSON-lines file sink (RFC 8259 lines, fsync per batch); options are checked here, files opened lazily. */
  constructor(options: JsonLinesFileSinkOptions) {
    this.name = options.name ?? 'jsonl';
    if (options.directory.length === 0)
      throw new StrongroomError('config_invalid', 'jsonl `directory` is empty');
    this.#directory = options.directory;
    this.#maxBytes = integerOption('jsonl', 'maxBytes', options.maxBytes, 64 * 1024 * 1024, 1, 2 ** 40);
    this.#maxFiles = integerOption('jsonl', 'maxFiles', options.maxFiles, 10, 1, 100_000);
    this.#format = formatOption('jsonl', options.format);
  }

  /** Appends the events newer than the last seq on disk, one line each, then fsyncs. */
  deliver(events: readonly AuditEvent[]): Promise<void> {
    const run = this.#queue.then(() => this.#append(events));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Closes the current file after any delivery in progress. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
    await this.#release();
  }

  async #append(events: readonly AuditEvent[]): Promise<void> {
    if (this.#closed) throw new StrongroomError('internal_error', 'the jsonl sink is closed');
    try {
      const file = this.#file ?? (this.#file = await this.#open());
      await this.#write(file, events);
    } catch (err) {
      await this.#release();
      if (err instanceof StrongroomError) throw err;
      throw new StrongroomError('storage_error', `writing audit lines in ${quote(this.#directory)} failed`, {
        cause: err,
      });
    }
  }

  async #write(file: OpenFile, events: readonly AuditEvent[]): Promise<void> {
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let pendingSeq = file.lastSeq;
    for (const event of events) {
      // At-least-once delivery repeats batches; what is already on disk is not written again.
      if (event.seq <= pendingSeq) continue;
      const line = Buffer.from(`${siemPayload(event, this.#format)}\n`, 'utf8');
      const size = file.size + pendingBytes;
      if (size > 0 && size + line.length > this.#maxBytes) {
        await this.#flush(file, pending, pendingSeq);
        pending = [];
        pendingBytes = 0;
        await this.#rotate(file);
      }
      file.firstSeq ??= event.seq;
      pending.push(line);
      pendingBytes += line.length;
      pendingSeq = event.seq;
    }
    await this.#flush(file, pending, pendingSeq);
  }

  async #flush(file: OpenFile, lines: readonly Buffer[], lastSeq: number): Promise<void> {
    if (lines.length === 0) return;
    const data = Buffer.concat(lines);
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await file.handle.write(
        data,
        written,
        data.length - written,
        file.size + written,
      );
      written += bytesWritten;
    }
    await file.handle.sync();
    file.size += data.length;
    file.lastSeq = lastSeq;
  }

  async #rotate(file: OpenFile): Promise<void> {
    if (file.firstSeq === null) return;
    const current = join(this.#directory, CURRENT_FILE);
    const rotated = join(this.#directory, `audit-${file.firstSeq}-${file.lastSeq}.jsonl`);
    // Until the new file is open, a failure leaves no file behind: the next delivery reopens and repairs.
    this.#file = null;
    await file.handle.close();
    await rename(current, rotated);
    await this.#syncDirectory();
    await this.#prune();
    file.handle = await openCurrent(current);
    file.size = 0;
    file.firstSeq = null;
    this.#file = file;
  }

  /** Deletes the oldest rotated files beyond `maxFiles`. */
  async #prune(): Promise<void> {
    const rotated = await this.#rotatedFiles();
    const excess = rotated.slice(0, Math.max(0, rotated.length - this.#maxFiles));
    for (const { name } of excess) await unlink(join(this.#directory, name));
    if (excess.length > 0) await this.#syncDirectory();
  }

  /** Rotated files, oldest first. */
  async #rotatedFiles(): Promise<{ name: string; first: number; last: number }[]> {
    const found = [];
    for (const name of await readdir(this.#directory)) {
      const match = ROTATED.exec(name);
      if (match) found.push({ name, first: Number(match[1]), last: Number(match[2]) });
    }
    return found.sort((a, b) => a.first - b.first);
  }

  async #open(): Promise<OpenFile> {
    await mkdir(this.#directory, { recursive: true, mode: DIR_MODE });
    await chmod(this.#directory, DIR_MODE);
    const handle = await openCurrent(join(this.#directory, CURRENT_FILE));
    try {
      const size = await repairTornTail(handle, await handle.stat());
      const rotated = await this.#rotatedFiles();
      const rotatedLast = rotated.reduce((max, f) => Math.max(max, f.last), 0);
      if (size === 0) return { handle, size, firstSeq: null, lastSeq: rotatedLast };
      const firstSeq = lineSeq(await firstLine(handle, size));
      const lastSeq = Math.max(rotatedLast, lineSeq(await lastLine(handle, size)));
      return { handle, size, firstSeq, lastSeq };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async #syncDirectory(): Promise<void> {
    const dir = await open(this.#directory, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async #release(): Promise<void> {
    const file = this.#file;
    this.#file = null;
    await file?.handle.close().catch(() => undefined);
  }
}

async function openCurrent(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, FILE_MODE);
  await handle.chmod(FILE_MODE);
  return handle;
}

function lineSeq(line: string): number {
  let seq: number | null = null;
  try {
    seq = payloadSeq(JSON.parse(line));
  } catch {
    seq = null;
  }
  if (seq === null)
    throw new StrongroomError('storage_error', 'a complete line in the audit file has no sequence number');
  return seq;
}
