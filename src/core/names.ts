import { StrongroomError, quote } from './errors.js';

/**
 * The one place that decides which names and paths are acceptable. Every route, the CLI and the storage layer
 * call these; nothing else parses names. Rules are allow-lists, so encodings (`%2e%2e%2f`, overlong UTF-8 that
 * decoded to U+FFFD, NUL, backslashes, drive letters) never reach a file system.
 */

const PROJECT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ARTIFACT_NAME = /^[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?$/;
const VERSION_TAG = /^[A-Za-z0-9](?:[A-Za-z0-9._+-]{0,126}[A-Za-z0-9])?$/;

export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;

/** A project name: lowercase DNS-label style, 1-63 characters. */
export function parseProjectName(input: string): string {
  if (!PROJECT_NAME.test(input)) {
    throw new StrongroomError(
      'invalid_name',
      `project name ${quote(input)} must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit`,
    );
  }
  return input;
}

/** An artifact name: lowercase letters, digits, `.`, `_`, `-`; 1-128 characters; no `..`. */
export function parseArtifactName(input: string): string {
  if (!ARTIFACT_NAME.test(input) || input.includes('..')) {
    throw new StrongroomError(
      'invalid_name',
      `artifact name ${quote(input)} must be 1-128 lowercase letters, digits, '.', '_' or '-', starting and ending with a letter or digit, without '..'`,
    );
  }
  return input;
}

/** A version tag such as `1.0.0`, `2024-05-01` or `v3+cuda`; 1-128 characters; no `..`. */
export function parseVersionTag(input: string): string {
  if (!VERSION_TAG.test(input) || input.includes('..')) {
    throw new StrongroomError(
      'invalid_name',
      `version ${quote(input)} must be 1-128 letters, digits, '.', '_', '+' or '-', starting and ending with a letter or digit, without '..'`,
    );
  }
  return input;
}

export interface VersionRef {
  readonly project: string;
  readonly artifact: string;
  readonly version: string;
}

export interface ArtifactRef {
  readonly project: string;
  readonly artifact: string;
}

/** Parse `project/artifact:version` as the CLI writes it. */
export function parseVersionRef(input: string): VersionRef {
  const match = /^([^/:]+)\/([^/:]+):([^/:]+)$/.exec(input);
  if (!match) {
    throw new StrongroomError('invalid_name', `${quote(input)} is not of the form project/artifact:version`);
  }
  return {
    project: parseProjectName(match[1] ?? ''),
    artifact: parseArtifactName(match[2] ?? ''),
    version: parseVersionTag(match[3] ?? ''),
  };
}

/** Parse `project/artifact` as the CLI writes it. */
export function parseArtifactRef(input: string): ArtifactRef {
  const match = /^([^/:]+)\/([^/:]+)$/.exec(input);
  if (!match) {
    throw new StrongroomError('invalid_name', `${quote(input)} is not of the form project/artifact`);
  }
  return { project: parseProjectName(match[1] ?? ''), artifact: parseArtifactName(match[2] ?? '') };
}

const WINDOWS_RESERVED = /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)(?:\..*)?$/i;
// C0 and C1 controls, DEL, the replacement character (what a decoder leaves of overlong or invalid UTF-8),
// bidi overrides that disguise names, and characters with special meaning on some file system.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f-\u009f\ufffd\u202a-\u202e\u2066-\u2069\\:*?"<>|]/;
const PERCENT_ESCAPE = /%[0-9a-fA-F]{2}/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A file path inside a version: relative POSIX, `/`-separated, NFC, every segment a plain name.
 * Refuses traversal (`..`), absolute and drive paths, backslashes, NUL and control characters, percent escapes
 * (the MLflow traversal fixes were bypassed through decoding layers: CVE-2023-6831, CVE-2024-1483), Windows
 * reserved names and trailing dots or spaces, so a path is safe to join under any directory on any client.
 */
export function parseFilePath(input: string): string {
  const fail = (why: string): never => {
    throw new StrongroomError('invalid_path', `file path ${quote(input)} ${why}`);
  };
  if (input.length === 0) fail('is empty');
  if (LONE_SURROGATE.test(input)) fail('is not valid Unicode');
  if (Buffer.byteLength(input, 'utf8') > MAX_PATH_BYTES) fail(`is longer than ${MAX_PATH_BYTES} bytes`);
  if (input.normalize('NFC') !== input) fail('is not in Unicode normalization form C');
  if (FORBIDDEN_CHARS.test(input)) fail('contains a control, reserved or separator character');
  if (PERCENT_ESCAPE.test(input)) fail('contains a percent-encoded sequence');
  if (input.startsWith('/')) fail('is absolute');
  for (const segment of input.split('/')) {
    if (segment === '') fail('has an empty segment');
    if (segment === '.' || segment === '..') fail('contains a `.` or `..` segment');
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES)
      fail(`has a segment over ${MAX_SEGMENT_BYTES} bytes`);
    if (/[. ]$/.test(segment)) fail('has a segment ending in a dot or space');
    if (WINDOWS_RESERVED.test(segment)) fail('uses a reserved device name');
  }
  return input;
}

/**
 * A whole manifest's paths: each valid, and no two that would land on the same file on a case-insensitive
 * client, and no file that is also another file's directory.
 */
export function checkManifestPaths(paths: readonly string[]): void {
  const seen = new Set<string>();
  for (const p of paths) {
    parseFilePath(p);
    const folded = p.toLowerCase();
    if (seen.has(folded)) {
      throw new StrongroomError(
        'invalid_path',
        `file path ${quote(p)} appears twice (paths are compared case-insensitively)`,
      );
    }
    seen.add(folded);
  }
  for (const p of paths) {
    const parts = p.toLowerCase().split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) {
        throw new StrongroomError(
          'invalid_path',
          `file path ${quote(p)} lies under ${quote(dir)}, which is a file`,
        );
      }
    }
  }
}
