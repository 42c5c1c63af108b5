import { StrongroomError } from '../core/errors.js';
import type { IdentityAuthenticator } from '../identity/identity-authenticator.js';
import type { Principal } from '../policy/authorizer.js';

export interface CredentialRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly url: string;
  /** A client certificate the TLS layer verified against the configured client CA (mutual TLS). */
  readonly clientCertificate?: { readonly commonName: string; readonly fingerprint256: string } | undefined;
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

/**
 * Bearer tokens of every kind (the bootstrap token, user sessions, service-account and federated tokens), or,
 * when the request carries no Authorization header and mutual TLS is on, a client certificate issued by the
 * configured CA whose common name names an enabled service account.
 */
export class TokenAuthenticator implements Authenticator {
  constructor(
    private readonly identities: IdentityAuthenticator,
    private readonly mtls: boolean = false,
  ) {}

  authenticate(request: CredentialRequest): Promise<Principal> {
    if (
      this.mtls &&
      request.headers.authorization === undefined &&
      request.clientCertificate &&
      !QUERY_CREDENTIALS.test(request.url)
    ) {
      return this.identities.authenticateCertificate(request.clientCertificate.commonName);
    }
    return this.identities.authenticate(bearerToken(request));
  }
}
