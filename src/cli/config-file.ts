import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { StrongroomError, quote } from '../core/errors.js';
import { envValue, type CliIo } from './cli-io.js';

/** A signed-in user's session, saved beside its access token so the CLI can refresh it. */
export interface StoredSession {
  readonly username: string;
  readonly sessionId: string;
  readonly refreshToken: string;
  readonly accessExpiresAt: string;
  readonly refreshExpiresAt: string;
}

/**
 * What `strongroom login` saves. `token` is the bearer token (an API token, or a session's access token);
 * `session` is only there after a password login. A reader that knows only `url` and `token` still works.
 */
export interface StoredConfig {
  readonly url: string;
  readonly token: string;
  readonly session?: StoredSession;
}

const SESSION_FIELDS = [
  'username',
  'sessionId',
  'refreshToken',
  'accessExpiresAt',
  'refreshExpiresAt',
] as const satisfies readonly (keyof StoredSession)[];

const MAX_CONFIG_BYTES = 64 * 1024;

/** `$STRONGROOM_CONFIG`, else `$XDG_CONFIG_HOME/strongroom/config.json`, else `~/.config/strongroom/config.json`. */
export function configFilePath(io: CliIo): string {
  const explicit = envValue(io, 'STRONGROOM_CONFIG');
  if (explicit !== undefined) return path.resolve(explicit);
  const xdg = envValue(io, 'XDG_CONFIG_HOME');
  // The XDG base directory spec ignores relative values.
  const base =
    xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(envValue(io, 'HOME') ?? homedir(), '.config');
  return path.join(base, 'strongroom', 'config.json');
}

function invalid(file: string, why: string): StrongroomError {
  return new StrongroomError('config_invalid', `config file ${quote(file)} ${why}`);
}

/**
 * Read the saved credentials, or undefined when there is no config file. Like ssh with a private key, a file
 * that others can read is refused rather than used: the token in it may already be exposed.
 */
export async function readConfigFile(file: string): Promise<StoredConfig | undefined> {
  const stats = await lstat(file).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  });
  if (stats === undefined) return undefined;
  if (!stats.isFile()) throw invalid(file, 'is not a regular file');
  if (stats.size > MAX_CONFIG_BYTES) throw invalid(file, 'is too large');
  if (process.platform !== 'win32' && (stats.mode & 0o077) !== 0) {
    throw invalid(
      file,
      `is accessible to other users (mode ${(stats.mode & 0o777).toString(8)}); run chmod 600 on it`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw invalid(file, 'is not valid JSON');
  }
  const record = parsed as Partial<Record<string, unknown>> | null;
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record['url'] !== 'string' ||
    typeof record['token'] !== 'string'
  ) {
    throw invalid(file, 'must be a JSON object with string `url` and `token`');
  }
  const session = record['session'];
  if (session === undefined) return { url: record['url'], token: record['token'] };
  return { url: record['url'], token: record['token'], session: parseSession(file, session) };
}

function parseSession(file: string, value: unknown): StoredSession {
  const record = value as Partial<Record<string, unknown>> | null;
  if (
    typeof record !== 'object' ||
    record === null ||
    SESSION_FIELDS.some((field) => typeof record[field] !== 'string')
  ) {
    throw invalid(file, `must have a \`session\` object with string ${SESSION_FIELDS.join(', ')}`);
  }
  return Object.fromEntries(
    SESSION_FIELDS.map((field) => [field, record[field]]),
  ) as unknown as StoredSession;
}

/** Exactly the known fields, in a stable order: nothing else from memory ever lands in the file. */
function serialize(config: StoredConfig): string {
  const session =
    config.session === undefined
      ? {}
      : { session: Object.fromEntries(SESSION_FIELDS.map((field) => [field, config.session?.[field]])) };
  return `${JSON.stringify({ url: config.url, token: config.token, ...session }, null, 2)}\n`;
}

/**
 * Save credentials atomically with mode 0600 in a directory created 0700: written to a private temp file,
 * fsynced, then renamed over the old file, so a crash leaves the old or the new file and the token is never
 * readable by others, not even for a moment.
 */
export async function writeConfigFile(file: string, config: StoredConfig): Promise<void> {
  const directory = path.dirname(file);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const temp = path.join(directory, `.config-${randomBytes(8).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(serialize(config), 'utf8');
    await handle.sync();
    await handle.close();
    await rename(temp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}

/** Forget the saved credentials (`strongroom logout`). */
export async function removeConfigFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

/**
 * Run `fn` holding an exclusive lock beside the config file. Refreshing a session must not race another
 * `strongroom` process: the refresh token is single-use, and the server takes a second use of one as theft
 * and revokes the whole session. A lock left behind by a crashed process is broken after LOCK_STALE_MS.
 */
export async function withConfigLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await (await open(lock, 'wx', 0o600)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) await rm(lock, { force: true });
      else if (Date.now() > deadline) throw invalid(file, `is locked by another process (${quote(lock)})`);
      else await delay(50);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}
