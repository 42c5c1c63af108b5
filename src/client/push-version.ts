import { setTimeout as delay } from 'node:timers/promises';
import type {
  CreateUploadBody,
  DeclaredFileBody,
  ManifestEntryBody,
  PartProgress,
  UploadView,
  VersionDetail,
} from '../api/schemas.js';
import type { ArtifactKind, Sensitivity } from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';
import { parseArtifactName, parseProjectName, parseVersionTag, type VersionRef } from '../core/names.js';
import { ApiError } from './api-error.js';
import { ConnectionError } from './connection-error.js';
import { isWholeNumber } from './is-whole-number.js';
import { compareBytes, hashLocalFile, scanLocalSource, type LocalFile } from './local-source.js';
import { partBody } from './part-body.js';
import type { StrongroomClient } from './strongroom-client.js';

export interface PushOptions extends VersionRef {
  /** A regular file (pushed under its base name) or a directory (pushed with its relative paths). */
  readonly source: string;
  readonly kind?: ArtifactKind;
  readonly sensitivity?: Sensitivity;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Bytes the server holds plus bytes in flight, out of the total; may step back after a resume. */
  readonly onProgress?: (sent: number, total: number) => void;
  /** Called once the upload session exists (created or resumed), before any bytes are sent. */
  readonly onSession?: (upload: UploadView) => void;
  readonly signal?: AbortSignal;
  /** Failures in a row (dropped connections, 5xx) survived by resuming; default 5. */
  readonly maxRetries?: number;
  /** First backoff delay in milliseconds, doubled after each failure in a row; default 250. */
  readonly retryDelayMs?: number;
  /** Continue a session that a connection failure kept, instead of creating a new one. */
  readonly resumeUploadId?: string;
}

const DEFAULT_MAX_RETRIES = 5;
const DEFAULT_RETRY_DELAY_MS = 250;
const MAX_RETRY_DELAY_MS = 8_000;

/** One part of the server's plan, with the local files it carries and how far the server has it. */
interface PlannedPart {
  readonly index: number;
  readonly size: number;
  readonly files: readonly LocalFile[];
  received: number;
  /** Set from a part progress answer: the only way to know that a part of size 0 is complete. */
  done: boolean;
}

interface PushRun {
  /** Each file's SHA-256, computed from the bytes that were sent. */
  readonly digests: Map<string, string>;
  readonly client: StrongroomClient;
  readonly ref: VersionRef;
  readonly uploadId: string;
  readonly parts: readonly PlannedPart[];
  readonly total: number;
  readonly options: PushOptions;
  readonly maxRetries: number;
  readonly retryDelayMs: number;
  /** The manifest with every digest, once every file has one. */
  declared(): ManifestEntryBody[];
}

function checkCount(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new StrongroomError('invalid_request', `${what} must be a whole number >= 0`);
  }
  return value;
}

function planMismatch(why: string): StrongroomError {
  return new StrongroomError(
    'internal_error',
    `the server's upload plan does not match the declared files: ${why}`,
  );
}

/**
 * Check the server's plan against the local files before sending a byte: every declared file in exactly one
 * part, each part's size the sum of its files, `received` within the part. A plan that disagrees would make
 * us send the wrong bytes for a file, so it is refused instead.
 */
function checkPlan(upload: UploadView, ref: VersionRef, files: readonly LocalFile[]): PlannedPart[] {
  if (upload.project !== ref.project || upload.artifact !== ref.artifact || upload.version !== ref.version) {
    throw new StrongroomError(
      'invalid_request',
      `upload session ${quote(upload.id)} is for ${quote(`${upload.project}/${upload.artifact}:${upload.version}`)}, not ${quote(`${ref.project}/${ref.artifact}:${ref.version}`)}`,
    );
  }
  if (!Array.isArray(upload.parts)) throw planMismatch('it has no parts');
  const used = new Set<number>();
  const seenParts = new Set<number>();
  const parts = upload.parts.map((part): PlannedPart => {
    if (!isWholeNumber(part.index) || seenParts.has(part.index)) throw planMismatch('part indexes repeat');
    seenParts.add(part.index);
    if (!Array.isArray(part.files)) throw planMismatch(`part ${part.index} lists no files`);
    const partFiles = part.files.map((i) => {
      const file = files[i];
      if (!isWholeNumber(i) || file === undefined || used.has(i)) {
        throw planMismatch(`file index ${i} is unknown or repeated`);
      }
      used.add(i);
      return file;
    });
    const size = partFiles.reduce((sum, f) => sum + f.size, 0);
    if (part.size !== size) throw planMismatch(`part ${part.index} is ${part.size} bytes, its files ${size}`);
    if (!isWholeNumber(part.received) || part.received > size) {
      throw planMismatch(`part ${part.index} has a bad offset`);
    }
    return {
      index: part.index,
      size,
      files: partFiles,
      received: part.received,
      done: size > 0 && part.received === size,
    };
  });
  if (used.size !== files.length) {
    throw planMismatch(`${files.length - used.size} declared files are in no part`);
  }
  return parts.sort((a, b) => a.index - b.index);
}

function isRetryable(err: unknown): boolean {
  if (err instanceof ConnectionError) return true;
  if (!(err instanceof ApiError)) return false;
  return (
    err.status >= 500 ||
    err.status === 408 ||
    err.status === 429 ||
    err.code === 'upload_offset_mismatch' ||
    err.code === 'upload_aborted' ||
    err.code === 'request_timeout'
  );
}

async function backoff(run: PushRun, failures: number): Promise<void> {
  const base = Math.min(MAX_RETRY_DELAY_MS, run.retryDelayMs * 2 ** (failures - 1));
  const jittered = Math.round(base * (0.5 + Math.random() / 2));
  await delay(jittered, undefined, run.options.signal === undefined ? {} : { signal: run.options.signal });
}

function durableBytes(run: PushRun): number {
  return run.parts.reduce((sum, p) => sum + Math.min(p.received, p.size), 0);
}

/** The server's durable offsets are the truth after any failure: resume from them, nothing else. */
async function refreshReceived(run: PushRun): Promise<void> {
  const view = await run.client.getUpload(run.uploadId, run.options.signal);
  for (const part of run.parts) {
    const current = view.parts.find((p) => p.index === part.index);
    if (current === undefined || !isWholeNumber(current.received) || current.received > part.size) {
      throw planMismatch(`part ${part.index} changed on the server`);
    }
    part.received = current.received;
    part.done = part.size > 0 && current.received === part.size;
  }
}

function applyProgress(part: PlannedPart, progress: PartProgress): void {
  if (progress.index !== part.index || !isWholeNumber(progress.received) || progress.received > part.size) {
    throw planMismatch(`the server reported impossible progress for part ${part.index}`);
  }
  part.received = progress.complete ? part.size : progress.received;
  part.done = progress.complete;
}

/** Stream the rest of one part from its durable offset, straight from disk. */
async function sendPart(run: PushRun, part: PlannedPart): Promise<void> {
  const start = part.received;
  const durableOthers = durableBytes(run) - start;
  let streamed = 0;
  let localFailure: unknown;
  const report = (count: number): void => {
    streamed += count;
    run.options.onProgress?.(durableOthers + start + streamed, run.total);
  };
  async function* body(): AsyncGenerator<Buffer> {
    try {
      yield* partBody(part.files, start, report, (file, sha256) => run.digests.set(file.path, sha256));
    } catch (err) {
      localFailure = err;
      throw err;
    }
  }
  const stream = body();
  try {
    const progress = await run.client.uploadPart(run.uploadId, part.index, {
      offset: start,
      length: part.size - start,
      body: part.size === start ? new Uint8Array(0) : stream,
      ...(run.options.signal === undefined ? {} : { signal: run.options.signal }),
    });
    applyProgress(part, progress);
  } catch (err) {
    // A local file that changed is not a network problem; retrying would only send the wrong bytes again.
    throw localFailure ?? err;
  } finally {
    // fetch abandons a body it stopped reading (an early 409, a dropped socket) without ending it; ending it
    // here runs the generator's cleanup, which closes the file it was reading.
    await stream.return(undefined).catch(() => undefined);
  }
}

async function sendParts(run: PushRun): Promise<void> {
  let failures = 0;
  let resync = false;
  for (const part of run.parts) {
    while (!part.done) {
      try {
        if (resync) {
          await refreshReceived(run);
          resync = false;
          continue;
        }
        const before = part.received;
        await sendPart(run, part);
        if (part.received > before || part.done) failures = 0;
      } catch (err) {
        if (!isRetryable(err) || failures >= run.maxRetries) throw err;
        failures += 1;
        resync = true;
        await backoff(run, failures);
      }
    }
  }
  run.options.onProgress?.(durableBytes(run), run.total);
}

/**
 * Commit is idempotent for the session's owner, so a commit whose answer was lost is simply repeated. If the
 * lost answer was a success the session may be gone by then; the version itself is the answer, and its
 * manifest is checked against the declared one like any commit answer.
 */
async function commit(run: PushRun): Promise<VersionDetail> {
  let answerLost = false;
  for (let failures = 0; ;) {
    try {
      const files = run.declared().map(({ path, sha256 }) => ({ path, sha256 }));
      return await run.client.commitUpload(run.uploadId, { files }, run.options.signal);
    } catch (err) {
      if (answerLost && err instanceof ApiError && err.code === 'upload_not_found') {
        return run.client.getVersion(run.ref, run.options.signal);
      }
      if (!isRetryable(err) || failures >= run.maxRetries) throw err;
      answerLost ||= err instanceof ConnectionError;
      failures += 1;
      await backoff(run, failures);
    }
  }
}

function sameManifest(a: readonly ManifestEntryBody[], b: readonly ManifestEntryBody[]): boolean {
  if (a.length !== b.length) return false;
  const sorted = [...b].sort((x, y) => compareBytes(x.path, y.path));
  return a.every((entry, i) => {
    const other = sorted[i];
    return (
      other !== undefined &&
      other.path === entry.path &&
      other.size === entry.size &&
      other.sha256 === entry.sha256
    );
  });
}

/** The version the server made must be the one we pushed: same name, same files, same digests. */
function checkCommitted(
  detail: VersionDetail,
  ref: VersionRef,
  declared: readonly ManifestEntryBody[],
): VersionDetail {
  const v = detail.version;
  if (v.project !== ref.project || v.artifact !== ref.artifact || v.version !== ref.version) {
    throw new StrongroomError(
      'integrity_error',
      'the server committed a different version than the one pushed',
    );
  }
  if (!Array.isArray(detail.files) || !sameManifest(declared, detail.files)) {
    throw new StrongroomError(
      'digest_mismatch',
      'the server committed a manifest that differs from the files pushed',
    );
  }
  return detail;
}

/**
 * Files whose bytes were not sent by this run (the server already held them when a push was resumed, or their
 * part is empty) are hashed from disk, a few at a time.
 */
async function hashUnsent(run: PushRun, files: readonly LocalFile[]): Promise<void> {
  const missing = files.filter((f) => !run.digests.has(f.path));
  let next = 0;
  const worker = async () => {
    while (next < missing.length) {
      const file = missing[next++] as LocalFile;
      run.digests.set(file.path, await hashLocalFile(file, run.options.signal));
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, missing.length) }, worker));
}

function uploadBody(options: PushOptions, files: DeclaredFileBody[]): CreateUploadBody {
  return {
    files,
    ...(options.kind === undefined ? {} : { kind: options.kind }),
    ...(options.sensitivity === undefined ? {} : { sensitivity: options.sensitivity }),
    ...(options.description === undefined ? {} : { description: options.description }),
    ...(options.tags === undefined ? {} : { tags: [...options.tags] }),
    ...(options.metadata === undefined ? {} : { metadata: { ...options.metadata } }),
  };
}

/**
 * Push a file or directory as a new version through an upload session (docs/api.md) in a single pass: declare
 * the files' paths and sizes, stream each part from disk while hashing it, resume from the server's durable
 * offsets after a dropped connection or a 5xx, then commit with the digests (the server compares them with its
 * own) and check that the committed manifest is the one pushed. A session that
 * fails for good is deleted; one interrupted by the network is kept, and the ConnectionError names it so the
 * push can be resumed with `resumeUploadId`.
 */
export async function pushVersion(client: StrongroomClient, options: PushOptions): Promise<VersionDetail> {
  const ref: VersionRef = {
    project: parseProjectName(options.project),
    artifact: parseArtifactName(options.artifact),
    version: parseVersionTag(options.version),
  };
  const maxRetries = checkCount(options.maxRetries ?? DEFAULT_MAX_RETRIES, 'maxRetries');
  const retryDelayMs = checkCount(options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS, 'retryDelayMs');
  const source = await scanLocalSource(options.source, options.signal);
  // Digests are declared at commit, computed while the bytes are sent: the files are read once.
  const sizes = source.files.map(({ path, size }) => ({ path, size }));
  const upload =
    options.resumeUploadId === undefined
      ? await client.createUpload(ref, uploadBody(options, sizes), options.signal)
      : await client.getUpload(options.resumeUploadId, options.signal);
  try {
    const parts = checkPlan(upload, ref, source.files);
    options.onSession?.(upload);
    const digests = new Map<string, string>();
    const run: PushRun = {
      digests,
      client,
      ref,
      uploadId: upload.id,
      parts,
      total: source.totalSize,
      options,
      maxRetries,
      retryDelayMs,
      declared: () =>
        source.files.map(({ path, size }) => {
          const sha256 = digests.get(path);
          if (sha256 === undefined)
            throw new StrongroomError('internal_error', `no digest was computed for ${quote(path)}`);
          return { path, size, sha256 };
        }),
    };
    for (let round = 0; ; round++) {
      await sendParts(run);
      await hashUnsent(run, source.files);
      try {
        return checkCommitted(await commit(run), ref, run.declared());
      } catch (err) {
        // The server says a part is missing that we believed complete: ask where it stands and send the rest once.
        if (round > 0 || !(err instanceof ApiError) || err.code !== 'upload_incomplete') throw err;
        await refreshReceived(run);
      }
    }
  } catch (err) {
    if (err instanceof ConnectionError) {
      throw new ConnectionError(
        `${err.message}; upload session ${quote(upload.id)} is kept and can be resumed`,
        {
          cause: err.cause,
          uploadId: upload.id,
        },
      );
    }
    await client.abortUpload(upload.id).catch(() => undefined);
    throw err;
  }
}
