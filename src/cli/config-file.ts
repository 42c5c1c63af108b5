import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { StrongroomError, quote } from '../core/errors.js';
import { envValue, type CliIo } from './cli-io.js';

/** What `strongroom login` saves. */
export interface StoredConfig {
  readonly url: string;
  readonly token: string;
}

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
  return { url: record['url'], token: record['token'] };
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
    await handle.writeFile(`${JSON.stringify({ url: config.url, token: config.token }, null, 2)}\n`, 'utf8');
    await handle.sync();
    await handle.close();
    await rename(temp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
}
