import type { SessionTokensView } from '../api/schemas.js';
import { ApiError } from '../client/api-error.js';
import { StrongroomClient, normalizeServerUrl, type SessionKeeper } from '../client/strongroom-client.js';
import { StrongroomError, quote } from '../core/errors.js';
import { envValue, type CliIo } from './cli-io.js';
import {
  configFilePath,
  readConfigFile,
  withConfigLock,
  writeConfigFile,
  type StoredConfig,
  type StoredSession,
} from './config-file.js';
import { askStepUpCode } from './step-up.js';

export const DEFAULT_URL = 'http://127.0.0.1:7700';
/** Refresh this long before the recorded expiry, so a request does not arrive with a token just expired. */
const REFRESH_MARGIN_MS = 30_000;

/** The options every command takes. */
export interface CommonOptions {
  readonly json?: boolean;
  readonly url?: string;
  readonly token?: string;
}

export interface Credentials {
  readonly url: string;
  readonly token: string | undefined;
  /** Where the token came from. */
  readonly source: 'option' | 'environment' | 'config' | 'none';
  /** The config file's content when the token is the one saved in it. */
  readonly saved: StoredConfig | undefined;
}

/** A saved config that holds a user session. */
type SessionConfig = StoredConfig & { readonly session: StoredSession };

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
  const flagSource = options.token !== undefined ? 'option' : 'environment';
  if (flagUrl !== undefined && flagToken !== undefined)
    return { url: flagUrl, token: flagToken, source: flagSource, saved: undefined };
  const saved = await readConfigFile(configFilePath(io));
  const url = flagUrl ?? saved?.url ?? DEFAULT_URL;
  if (flagToken !== undefined) return { url, token: flagToken, source: flagSource, saved: undefined };
  if (saved !== undefined && sameServer(saved.url, url))
    return { url, token: saved.token, source: 'config', saved };
  return { url, token: undefined, source: 'none', saved: undefined };
}

/** What `login` saves after a password login or an enrolment. */
export function sessionConfig(url: string, username: string, tokens: SessionTokensView): SessionConfig {
  return {
    url,
    token: tokens.accessToken,
    session: {
      username,
      sessionId: tokens.sessionId,
      refreshToken: tokens.refreshToken,
      accessExpiresAt: tokens.accessExpiresAt,
      refreshExpiresAt: tokens.refreshExpiresAt,
    },
  };
}

function refreshDue(session: StoredSession): boolean {
  return Date.parse(session.accessExpiresAt) - Date.now() < REFRESH_MARGIN_MS;
}

function sessionEnded(url: string): StrongroomError {
  return new StrongroomError(
    'unauthenticated',
    `the session for ${quote(url)} has expired or was revoked; run \`strongroom login\` again`,
  );
}

/**
 * Trade the saved refresh token for a new pair and save it, holding the config lock. When another
 * `strongroom` process has refreshed since `used` was read, its pair is taken instead: refreshing again with a
 * spent refresh token would make the server revoke the session as stolen.
 */
async function refreshSavedSession(file: string, used: SessionConfig): Promise<SessionConfig> {
  return withConfigLock(file, async () => {
    const current = await readConfigFile(file);
    if (current?.session === undefined || !sameServer(current.url, used.url)) throw sessionEnded(used.url);
    const saved = current as SessionConfig;
    if (saved.token !== used.token && !refreshDue(saved.session)) return saved;
    const tokens = await new StrongroomClient({ url: saved.url })
      .refreshSession(saved.session.refreshToken)
      .catch((err: unknown) => {
        throw err instanceof ApiError && err.code === 'unauthenticated' ? sessionEnded(saved.url) : err;
      });
    const next = sessionConfig(saved.url, saved.session.username, tokens);
    await writeConfigFile(file, next);
    return next;
  });
}

/**
 * The client's SessionKeeper: step-up (a prompt) for any token, the server knows whether it has a session;
 * refresh only for the session saved in the config file, the one place its refresh token lives.
 */
function sessionKeeper(io: CliIo, credentials: Credentials): SessionKeeper {
  const stepUpCode = (error: ApiError): Promise<string> => askStepUpCode(io, error);
  const saved = credentials.source === 'config' ? credentials.saved : undefined;
  if (saved?.session === undefined) return { stepUpCode };
  const file = configFilePath(io);
  let current = saved as SessionConfig;
  return {
    stepUpCode,
    refreshDue: () => refreshDue(current.session),
    refresh: async () => {
      current = await refreshSavedSession(file, current);
      return current.token;
    },
  };
}

/**
 * A client for an authenticated command; failing early (exit 5) when there is no token at all. An expired
 * saved session is refreshed and a request refused with `mfa_required` is stepped up, both inside the client,
 * so no command handles either.
 */
export async function connect(io: CliIo, options: CommonOptions): Promise<StrongroomClient> {
  const credentials = await resolveCredentials(io, options);
  const { url, token } = credentials;
  if (token === undefined) {
    throw new StrongroomError(
      'unauthenticated',
      `no token for ${quote(url)}: pass --token, set STRONGROOM_TOKEN or run \`strongroom login\``,
    );
  }
  return new StrongroomClient({ url, token, session: sessionKeeper(io, credentials) });
}
