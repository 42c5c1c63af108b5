import { createHash, randomBytes } from 'node:crypto';
import { link, lstat, mkdir, open, realpath, rename, rm, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { VersionDetail } from '../api/schemas.js';
import type { ManifestEntry } from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';
import {
  checkManifestPaths,
  parseArtifactName,
  parseProjectName,
  parseVersionTag,
  type VersionRef,
} from '../core/names.js';
import { BatchedFileWriter } from './batched-file-writer.js';
import { FileExistsError } from './file-exists-error.js';
import { isWholeNumber } from './is-whole-number.js';
import { isInside, resolveOutputPath } from './output-path.js';
import type { StrongroomClient } from './strongroom-client.js';

export interface PullOptions extends VersionRef {
  /** Directory to write the version's files into; created when missing. */
  readonly outDir: string;
  /** Replace files that already exist; without it an existing file fails the pull before any download. */
  readonly overwrite?: boolean;
  /** Files downloaded at once; default 4. */
  readonly concurrency?: number;
  readonly onProgress?: (received: number, total: number) => void;
  readonly signal?: AbortSignal;
}

export interface PulledFile extends ManifestEntry {
  /** Absolute path of the verified file on disk. */
  readonly localPath: string;
}

export interface PullResult {
  readonly detail: VersionDetail;
  readonly files: readonly PulledFile[];
}

/** Prefix of the temporary files a pull writes before a file is verified; never a valid final name's prefix. */
export const TEMP_PREFIX = '.strongroom-tmp-';
const DEFAULT_CONCURRENCY = 4;
const MAX_CONCURRENCY = 64;
const SHA256_HEX = /^[0-9a-f]{64}$/;
// link(2) is how a pull refuses to replace a file without a race; these say the file system cannot link.
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'ENOSYS', 'EMLINK']);

interface PullRun {
  readonly client: StrongroomClient;
  readonly ref: VersionRef;
  readonly root: string;
  readonly overwrite: boolean;
  readonly temps: Set<string>;
  readonly signal: AbortSignal;
  readonly report: (count: number) => void;
}

interface Downloaded {
  readonly file: ManifestEntry;
  readonly temp: string;
}

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Trust nothing in the answer that decides where bytes go: it must be the version asked for, available, and
 * its manifest must pass the one path validator as a whole (no `../evil`, no absolute paths, no two paths
 * that collide on a case-insensitive disk) before anything is created.
 */
function checkDetail(detail: VersionDetail, ref: VersionRef): ManifestEntry[] {
  const v = detail.version;
  if (v.project !== ref.project || v.artifact !== ref.artifact || v.version !== ref.version) {
    throw new StrongroomError(
      'integrity_error',
      'the server answered with a different version than the one asked for',
    );
  }
  if (v.state !== 'available') {
    throw new StrongroomError('version_not_found', `version ${quote(ref.version)} is not available yet`);
  }
  if (!Array.isArray(detail.files))
    throw new StrongroomError('integrity_error', 'the server sent no manifest');
  const files = detail.files.map((entry): ManifestEntry => {
    if (typeof entry.path !== 'string' || !isWholeNumber(entry.size) || typeof entry.sha256 !== 'string') {
      throw new StrongroomError('integrity_error', 'the server sent a malformed manifest entry');
    }
    if (!SHA256_HEX.test(entry.sha256)) {
      throw new StrongroomError(
        'integrity_error',
        `the manifest digest of ${quote(entry.path)} is not a SHA-256`,
      );
    }
    return { path: entry.path, size: entry.size, sha256: entry.sha256 };
  });
  checkManifestPaths(files.map((f) => f.path));
  return files;
}

function sizeMismatch(file: ManifestEntry, received: number): StrongroomError {
  return new StrongroomError(
    'size_mismatch',
    `${quote(file.path)} arrived with ${received} bytes, but the manifest says ${file.size}`,
  );
}

/** Download one file into a fresh temp file, hashing as it streams; fsynced only once size and digest match. */
async function downloadToTemp(run: PullRun, file: ManifestEntry): Promise<Downloaded> {
  const temp = path.join(run.root, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
  // 'wx' is O_CREAT|O_EXCL: never write through anything already at that name, a link included.
  const handle = await open(temp, 'wx');
  run.temps.add(temp);
  try {
    const download = await run.client.downloadFile({ ...run.ref, path: file.path, signal: run.signal });
    if (
      download.status !== 200 ||
      (download.contentLength !== undefined && download.contentLength !== file.size)
    ) {
      download.body.destroy();
      if (download.status !== 200) {
        throw new StrongroomError(
          'integrity_error',
          `${quote(file.path)}: expected the whole file, got ${download.status}`,
        );
      }
      throw sizeMismatch(file, download.contentLength ?? 0);
    }
    const hash = createHash('sha256');
    const writer = new BatchedFileWriter(handle);
    let received = 0;
    for await (const chunk of download.body as AsyncIterable<Buffer>) {
      received += chunk.length;
      // Stop at the first byte past the declared size: a server cannot fill the disk by lying.
      if (received > file.size) throw sizeMismatch(file, received);
      hash.update(chunk);
      await writer.append(chunk);
      run.report(chunk.length);
    }
    await writer.finish();
    if (received !== file.size) throw sizeMismatch(file, received);
    const digest = hash.digest('hex');
    if (digest !== file.sha256) {
      throw new StrongroomError(
        'digest_mismatch',
        `${quote(file.path)} has SHA-256 ${digest}, but the manifest says ${file.sha256}`,
      );
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { file, temp };
}

/** Run `work` over `items`, at most `concurrency` at once; the first failure stops the rest and is thrown. */
async function runPool<T, R>(
  items: readonly T[],
  concurrency: number,
  controller: AbortController,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !controller.signal.aborted) {
      const index = next++;
      const item = items[index];
      if (item === undefined) return;
      try {
        results[index] = await work(item);
      } catch (error) {
        failure ??= { error };
        controller.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
  controller.signal.throwIfAborted();
  return results;
}

/**
 * Move a verified temp file to its final name. Without `overwrite`, link(2) creates the name only if it is
 * free, so a file that appeared since the pre-check is not replaced.
 */
async function moveIntoPlace(
  temp: string,
  target: string,
  overwrite: boolean,
  filePath: string,
): Promise<void> {
  const existing = await lstat(target).catch(() => undefined);
  if (existing?.isDirectory() === true) {
    throw new StrongroomError('invalid_path', `${quote(filePath)} is a directory in the output directory`);
  }
  if (overwrite) {
    await rename(temp, target);
    return;
  }
  const exists = (): FileExistsError =>
    new FileExistsError(
      target,
      `${quote(filePath)} already exists in the output directory and overwrite was not requested`,
    );
  try {
    await link(temp, target);
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') throw exists();
    if (!NO_HARD_LINKS.has(errnoCode(err) ?? '')) throw err;
    if (existing !== undefined) throw exists();
    await rename(temp, target);
    return;
  }
  await unlink(temp);
}

async function syncDirectory(directory: string): Promise<void> {
  // Makes the renames durable; some platforms cannot open a directory, and the files are already fsynced.
  try {
    const handle = await open(directory, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // best effort
  }
}

async function placeFiles(
  run: PullRun,
  downloaded: readonly Downloaded[],
  createdDirs: string[],
): Promise<PulledFile[]> {
  const placed: PulledFile[] = [];
  try {
    for (const { file, temp } of downloaded) {
      const target = await resolveOutputPath(run.root, file.path);
      const directory = path.dirname(target);
      const created = await mkdir(directory, { recursive: true });
      if (created !== undefined) createdDirs.push(created);
      // The last word on C1: wherever links may point, the directory we write into is inside the root.
      if (!isInside(run.root, await realpath(directory))) {
        throw new StrongroomError(
          'invalid_path',
          `file path ${quote(file.path)} resolves outside the output directory`,
        );
      }
      await moveIntoPlace(temp, target, run.overwrite, file.path);
      run.temps.delete(temp);
      placed.push({ ...file, localPath: target });
    }
  } catch (err) {
    // Files this pull created are removed again; files it replaced (overwrite) cannot be restored.
    if (!run.overwrite) await Promise.all(placed.map((p) => rm(p.localPath, { force: true })));
    throw err;
  }
  const directories = new Set([run.root, ...placed.map((p) => path.dirname(p.localPath))]);
  for (const directory of directories) await syncDirectory(directory);
  return placed;
}

async function checkTargetsFree(run: PullRun, files: readonly ManifestEntry[]): Promise<void> {
  for (const file of files) {
    const target = await resolveOutputPath(run.root, file.path);
    const existing = await lstat(target).catch(() => undefined);
    if (existing !== undefined && !run.overwrite) {
      throw new FileExistsError(
        target,
        `${quote(file.path)} already exists in the output directory and overwrite was not requested`,
      );
    }
  }
}

function checkConcurrency(value: number): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_CONCURRENCY) {
    throw new StrongroomError('invalid_request', `concurrency must be between 1 and ${MAX_CONCURRENCY}`);
  }
  return value;
}

/**
 * Pull a version into `outDir` (docs/api.md, "Downloading"): every file is streamed into a temp file inside
 * `outDir`, hashed on the way, and checked against the manifest's size and SHA-256; only when every file has
 * verified are they fsynced into their final names. On any failure the temp files (and directories this pull
 * created) are removed, so a failed pull leaves nothing behind.
 */
export async function pullVersion(client: StrongroomClient, options: PullOptions): Promise<PullResult> {
  const ref: VersionRef = {
    project: parseProjectName(options.project),
    artifact: parseArtifactName(options.artifact),
    version: parseVersionTag(options.version),
  };
  const concurrency = checkConcurrency(options.concurrency ?? DEFAULT_CONCURRENCY);
  const detail = await client.getVersion(ref, options.signal);
  const files = checkDetail(detail, ref);
  const total = files.reduce((sum, f) => sum + f.size, 0);

  const outDir = path.resolve(options.outDir);
  const createdRoot = await mkdir(outDir, { recursive: true });
  const createdDirs = createdRoot === undefined ? [] : [createdRoot];
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let received = 0;
  const run: PullRun = {
    client,
    ref,
    root: await realpath(outDir),
    overwrite: options.overwrite ?? false,
    temps: new Set(),
    signal: controller.signal,
    report: (count) => {
      received += count;
      options.onProgress?.(received, total);
    },
  };
  try {
    await checkTargetsFree(run, files);
    const downloaded = await runPool(files, concurrency, controller, (file) => downloadToTemp(run, file));
    return { detail, files: await placeFiles(run, downloaded, createdDirs) };
  } catch (err) {
    await Promise.all([...run.temps].map((temp) => rm(temp, { force: true })));
    // Directories this pull created held nothing before it, so removing them removes only what it wrote.
    for (const directory of createdDirs.reverse()) await rm(directory, { recursive: true, force: true });
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}
