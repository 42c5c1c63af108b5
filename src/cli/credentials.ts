import { StrongroomClient, normalizeServerUrl } from '../client/strongroom-client.js';
import { StrongroomError, quote } from '../core/errors.js';
import { envValue, type CliIo } from './cli-io.js';
import { configFilePath, readConfigFile } from './config-file.js';

export const DEFAULT_URL = 'http://127.0.0.1:7700';

/** The options every command takes. */
export interface CommonOptions {
  readonly json?: boolean;
  readonly url?: string;
  readonly token?: string;
}

export interface Credentials {
  readonly url: string;
  readonly token: string | undefined;
}

function sameServer(a: string, b: string): boolean {
  try {
    return normalizeServerUrl(a) === normalizeServerUrl(b);
  } catch {
    return false;
  }
}

/**
 * Credentials in order: `--url`/`--token`, then `STRONGROOM_URL`/`STRONGROOM_TOKEN`, then the config file, then
 * the default URL. The saved token is only ever sent to the server it was saved for: `--url elsewhere` must not
 * hand it to another host.
 */
export async function resolveCredentials(io: CliIo, options: CommonOptions): Promise<Credentials> {
  const flagUrl = options.url ?? envValue(io, 'STRONGROOM_URL');
  const flagToken = options.token ?? envValue(io, 'STRONGROOM_TOKEN');
  if (flagUrl !== undefined && flagToken !== undefined) return { url: flagUrl, token: flagToken };
  const saved = await readConfigFile(configFilePath(io));
  const url = flagUrl ?? saved?.url ?? DEFAULT_URL;
  const token = flagToken ?? (saved !== undefined && sameServer(saved.url, url) ? saved.token : undefined);
  return { url, token };
}

/** A client for an authenticated command; failing early (exit 5) when there is no token at all. */
export async function connect(io: CliIo, options: CommonOptions): Promise<StrongroomClient> {
  const { url, token } = await resolveCredentials(io, options);
  if (token === undefined) {
    throw new StrongroomError(
      'unauthenticated',
      `no token for ${quote(url)}: pass --token, set STRONGROOM_TOKEN or run \`strongroom login\``,
    );
  }
  return new StrongroomClient({ url, token });
}
