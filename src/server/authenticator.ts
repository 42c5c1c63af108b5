import { StrongroomError } from '../core/errors.js';
import { constantTimeEqual, sha256Hex } from '../crypto/digest.js';
import { BOOTSTRAP_ADMIN, type Principal } from '../policy/authorizer.js';
import type { MetadataReader } from '../storage/metadata-store.js';
import { BOOTSTRAP_TOKEN_SETTING } from './bootstrap-token.js';

export interface CredentialRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly url: string;
}

/** The authentication seam: the identity issue adds users, sessions and service-account tokens behind it. */
export interface Authenticator {
  /** The principal behind the request; throws `unauthenticated` for absent, malformed or unknown credentials. */
  authenticate(request: CredentialRequest): Promise<Principal>;
}

const QUERY_CREDENTIALS = /[?&](?:access_token|token|api_key)=/i;

/** Bearer credentials only: tokens in URLs leak into logs and browser history, so they are refused (A6). */
export function bearerToken(request: CredentialRequest): string {
  if (QUERY_CREDENTIALS.test(request.url)) {
    throw new StrongroomError(
      'unauthenticated',
      'credentials in the query string are not accepted; use the Authorization header',
    );
  }
  const header = request.headers.authorization;
  if (typeof header !== 'string')
    throw new StrongroomError('unauthenticated', 'the request has no credentials');
  const match = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(header);
  if (!match?.[1])
    throw new StrongroomError('unauthenticated', 'the Authorization header must be `Bearer <token>`');
  return match[1];
}

/** Accepts the bootstrap admin token, compared by hash in constant time. */
export class BootstrapTokenAuthenticator implements Authenticator {
  constructor(private readonly store: MetadataReader) {}

  async authenticate(request: CredentialRequest): Promise<Principal> {
    const token = bearerToken(request);
    const expected = await this.store.getSetting(BOOTSTRAP_TOKEN_SETTING);
    if (expected === undefined || !constantTimeEqual(sha256Hex(token), expected)) {
      throw new StrongroomError('unauthenticated', 'the token is not valid');
    }
    return { id: BOOTSTRAP_ADMIN, kind: 'user', authMethod: 'bootstrap-token' };
  }
}
