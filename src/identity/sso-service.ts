import { createHash, randomBytes } from 'node:crypto';
import { describeCurrent } from '../audit/audit-scope.js';
import type { Clock } from '../core/clock.js';
import type { TokenScope } from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';
import { constantTimeEqual } from '../crypto/digest.js';
import type { IdentityService, IssuedToken, SessionTokens } from './identity-service.js';
import type { JwtVerifier } from './jwt-verifier.js';
import type { OidcClient } from './oidc-client.js';
import { exchangeWorkloadToken, type FederationRule } from './workload-federation.js';

export interface SsoProvider {
  readonly client: OidcClient;
  /** Identity-provider group -> Strongroom group; memberships from the provider are kept in sync. */
  readonly groupMapping: Readonly<Record<string, string>>;
  /** Create a user at the first sign-in of an unknown identity (else an admin must link it first). */
  readonly autoCreateUsers: boolean;
  /** The operator vouches that the provider enforces MFA: its sign-ins count for step-up. */
  readonly mfaAsserted: boolean;
}

export interface ScopedFederationRule extends FederationRule {
  /** The scope of the token the exchange grants; absent = whatever the account may do. */
  readonly scope?: TokenScope;
}

interface PendingLogin {
  readonly provider: string;
  readonly loginId: string;
  readonly pollSecretHash: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly expiresAt: number;
  result?: { readonly tokens: SessionTokens } | { readonly error: StrongroomError };
}

const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

/**
 * Single sign-on (OIDC authorization code + PKCE, the server as relying party) for terminals: the CLI starts a
 * login, the user completes it in a browser, the provider redirects to the server's callback, and the CLI
 * collects the session by polling with a secret only it holds. Workload identity federation exchanges a
 * trusted issuer's token for a short-lived Strongroom token without any stored secret.
 */
export class SsoService {
  private readonly pending = new Map<string, PendingLogin>();

  constructor(
    private readonly identity: IdentityService,
    private readonly clock: Clock,
    private readonly providers: ReadonlyMap<string, SsoProvider>,
    private readonly redirectUri: string,
    private readonly federation:
      { verifier: JwtVerifier; rules: readonly ScopedFederationRule[] } | undefined,
  ) {}

  get providerIds(): string[] {
    return [...this.providers.keys()];
  }

  async start(
    providerId: string,
  ): Promise<{ loginId: string; pollSecret: string; authorizationUrl: string; expiresAt: string }> {
    const provider = this.providers.get(providerId);
    if (!provider)
      throw new StrongroomError('invalid_request', `no single sign-on provider ${quote(providerId)}`);
    this.sweep();
    if (this.pending.size >= MAX_PENDING)
      throw new StrongroomError('not_ready', 'too many sign-ins are pending; try again shortly');
    const request = await provider.client.beginLogin(this.redirectUri);
    const loginId = randomBytes(16).toString('hex');
    const pollSecret = randomBytes(32).toString('base64url');
    const expiresAt = this.clock.now().getTime() + LOGIN_TTL_MS;
    this.pending.set(request.state, {
      provider: providerId,
      loginId,
      pollSecretHash: sha256(pollSecret),
      state: request.state,
      nonce: request.nonce,
      codeVerifier: request.codeVerifier,
      expiresAt,
    });
    describeCurrent({ details: { provider: providerId } });
    return {
      loginId,
      pollSecret,
      authorizationUrl: request.authorizationUrl,
      expiresAt: new Date(expiresAt).toISOString(),
    };
  }

  /** The provider's redirect: completes the login named by `state` (once) and keeps the result for the poller. */
  async callback(params: {
    code?: string | undefined;
    state?: string | undefined;
    iss?: string | undefined;
    error?: string | undefined;
  }): Promise<void> {
    const login = params.state ? this.pending.get(params.state) : undefined;
    if (!login || login.result || login.expiresAt <= this.clock.now().getTime())
      throw new StrongroomError(
        'unauthenticated',
        'this sign-in is unknown, finished or expired; start again',
      );
    const provider = this.providers.get(login.provider) as SsoProvider;
    describeCurrent({ details: { provider: login.provider } });
    try {
      if (params.error !== undefined || params.code === undefined)
        throw new StrongroomError(
          'unauthenticated',
          `the identity provider refused the sign-in (${quote(params.error ?? 'no code')})`,
        );
      const identity = await provider.client.completeLogin({
        code: params.code,
        state: params.state as string,
        ...(params.iss !== undefined ? { iss: params.iss } : {}),
        expectedState: login.state,
        nonce: login.nonce,
        codeVerifier: login.codeVerifier,
        redirectUri: this.redirectUri,
      });
      const tokens = await this.identity.ssoSignIn(identity, provider);
      login.result = { tokens };
    } catch (err) {
      const error =
        err instanceof StrongroomError
          ? err
          : new StrongroomError('unauthenticated', 'the sign-in failed', { cause: err });
      login.result = { error };
      throw error;
    }
  }

  /** The terminal collects its session: `pending` until the browser side is done; the result is handed out once. */
  poll(
    loginId: string,
    pollSecret: string,
  ): { status: 'pending' } | { status: 'done'; tokens: SessionTokens } {
    const login = [...this.pending.values()].find((l) => l.loginId === loginId);
    if (
      !login ||
      !constantTimeEqual(sha256(pollSecret), login.pollSecretHash) ||
      login.expiresAt <= this.clock.now().getTime()
    )
      throw new StrongroomError(
        'unauthenticated',
        'this sign-in is unknown, finished or expired; start again',
      );
    if (!login.result) return { status: 'pending' };
    this.pending.delete(login.state);
    if ('error' in login.result) throw login.result.error;
    return { status: 'done', tokens: login.result.tokens };
  }

  /** Workload identity federation: a trusted issuer's token for a short-lived token of the mapped service account. */
  async federate(jwt: string): Promise<{ issued: IssuedToken; serviceAccount: string }> {
    if (!this.federation)
      throw new StrongroomError('unauthenticated', 'workload identity federation is not configured');
    const exchange = await exchangeWorkloadToken(jwt, this.federation.verifier, this.federation.rules);
    const rule = exchange.rule as ScopedFederationRule;
    describeCurrent({
      details: {
        issuer: exchange.token.issuer,
        subject: exchange.token.subject.slice(0, 256),
        serviceAccount: rule.serviceAccount,
      },
    });
    const issued = await this.identity.issueFederatedToken(
      rule.serviceAccount,
      exchange.ttlSeconds,
      rule.scope ?? null,
      `${exchange.token.issuer} ${exchange.token.subject}`,
    );
    return { issued, serviceAccount: rule.serviceAccount };
  }

  private sweep(): void {
    const now = this.clock.now().getTime();
    for (const [state, login] of this.pending) if (login.expiresAt <= now) this.pending.delete(state);
  }
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
