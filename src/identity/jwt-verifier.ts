import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey } from 'jose';

import { StrongroomError, quote } from '../core/errors.js';
import { constantTimeEqual } from '../crypto/digest.js';
import { fetchJsonObject } from './outbound-fetch.js';
import type { OutboundPolicy } from './outbound-fetch.js';

/** An identity provider or workload issuer whose tokens Strongroom accepts. */
export interface TrustedIssuer {
  /** Compared exactly with the token's `iss`; also the base of OIDC discovery when `jwksUri` is absent. */
  readonly issuer: string;
  /** The token's `aud` must contain at least one of these. */
  readonly audiences: readonly string[];
  /** Explicit allow-list of asymmetric JWS algorithms; `none` and HMAC are refused at construction. */
  readonly algorithms: readonly string[];
  /** Where the signing keys live; otherwise the `jwks_uri` of the issuer's discovery document. */
  readonly jwksUri?: string;
  /** Tolerance for `exp`, `nbf` and `iat`; default 60, at most 300. */
  readonly clockSkewSeconds?: number;
}

export interface VerifyOptions {
  /** Narrows the accepted audience to one of the issuer's configured audiences. */
  readonly audience?: string;
  /** The `nonce` the token must carry (OIDC Core 3.1.3.7 step 11). */
  readonly nonce?: string;
  /** Maximum age of the token by its `iat` claim, which then becomes required. */
  readonly maxAgeSeconds?: number;
}

export interface VerifiedToken {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
  readonly expiresAt: Date;
}

/** The parts of an OpenID Provider Metadata document (OIDC Discovery 3) that Strongroom reads. */
export interface OpenIdConfiguration {
  readonly issuer: string;
  readonly jwks_uri: string;
  readonly metadata: Readonly<Record<string, unknown>>;
}

// Asymmetric JWS algorithms (RFC 7518, RFC 8037). HMAC would turn a published verification key into a signing
// key (A2, CVE-2022-23540), and `none` needs no key at all (A1).
const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);
// Header parameters that would let the token name its own verification key (A3, RFC 8725 3.10).
const KEY_SOURCING_HEADERS = ['jku', 'x5u', 'jwk'] as const;
const DEFAULT_SKEW_SECONDS = 60;
const MAX_SKEW_SECONDS = 300;
const MAX_TOKEN_LENGTH = 16 * 1024;
/** Signing keys older than this are fetched again before use, so a key the issuer removed stops working. */
const KEYS_MAX_AGE_MS = 10 * 60_000;
/** At most one key fetch per issuer in this window, however many unknown `kid`s arrive: no fetch storm. */
const KEYS_REFRESH_COOLDOWN_MS = 30_000;

function fail(message: string, cause?: unknown): StrongroomError {
  return new StrongroomError('unauthenticated', message, cause === undefined ? {} : { cause });
}

function invalidConfig(message: string): StrongroomError {
  return new StrongroomError('config_invalid', message);
}

function discoveryUrl(issuer: string): string {
  // OIDC Discovery 4.1: a terminating `/` of the issuer is removed before the well-known path is appended.
  return `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.search === '' && url.hash === '';
  } catch {
    return false;
  }
}

/**
 * Fetches an issuer's OpenID Provider Metadata through the SSRF-safe client and checks that it names the very
 * issuer it was fetched for (OIDC Discovery 4.3), so one provider cannot speak for another.
 */
export async function fetchOpenIdConfiguration(
  issuer: string,
  policy: OutboundPolicy,
): Promise<OpenIdConfiguration> {
  const metadata = await fetchJsonObject(discoveryUrl(issuer), policy);
  if (metadata.issuer !== issuer) {
    throw fail(`the discovery document of ${quote(issuer)} names another issuer`);
  }
  if (typeof metadata.jwks_uri !== 'string') {
    throw fail(`the discovery document of ${quote(issuer)} has no jwks_uri`);
  }
  return { issuer, jwks_uri: metadata.jwks_uri, metadata };
}

/** A trusted issuer after validation, with its defaults filled in. */
type CheckedIssuer = TrustedIssuer & { readonly clockSkewSeconds: number };

function checkIssuer(config: TrustedIssuer): CheckedIssuer {
  if (typeof config.issuer !== 'string' || config.issuer === '')
    throw invalidConfig('an issuer needs a name');
  const name = quote(config.issuer);
  if (config.jwksUri === undefined ? !isHttpUrl(config.issuer) : !isHttpUrl(config.jwksUri)) {
    throw invalidConfig(`issuer ${name} needs an http(s) issuer url or jwks uri`);
  }
  if (config.audiences.length === 0 || config.audiences.some((a) => typeof a !== 'string' || a === '')) {
    throw invalidConfig(`issuer ${name} needs at least one non-empty audience`);
  }
  if (config.algorithms.length === 0) throw invalidConfig(`issuer ${name} needs an algorithm allow-list`);
  for (const alg of config.algorithms) {
    if (!ASYMMETRIC_ALGORITHMS.has(alg)) {
      throw invalidConfig(
        `issuer ${name} allows ${quote(alg)}, which is not an asymmetric signature algorithm`,
      );
    }
  }
  const skew = config.clockSkewSeconds ?? DEFAULT_SKEW_SECONDS;
  if (!Number.isInteger(skew) || skew < 0 || skew > MAX_SKEW_SECONDS) {
    throw invalidConfig(`issuer ${name} clock skew must be an integer from 0 to ${MAX_SKEW_SECONDS} seconds`);
  }
  return { ...config, clockSkewSeconds: skew };
}

interface KeySet {
  readonly getKey: JWTVerifyGetKey;
  readonly fetchedAt: number;
}

interface IssuerState {
  readonly config: CheckedIssuer;
  keys: KeySet | undefined;
  lastFetch: number;
  pending: Promise<KeySet> | undefined;
}

interface Unverified {
  readonly state: IssuerState;
  readonly alg: string;
}

/** Maps jose's failures to one stable code, with a message that names the check but never echoes the token. */
function explain(err: unknown): StrongroomError {
  if (err instanceof StrongroomError) return err;
  if (err instanceof errors.JWTExpired) {
    return err.claim === 'iat'
      ? fail('the token is older than the maximum age allowed', err)
      : fail('the token has expired', err);
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return err.reason === 'missing'
      ? fail(`the token lacks the required ${quote(err.claim)} claim`, err)
      : fail(`the token's ${quote(err.claim)} claim is not accepted`, err);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed)
    return fail('the token signature is invalid', err);
  if (err instanceof errors.JWKSNoMatchingKey)
    return fail('no signing key of the issuer matches the token', err);
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('the token algorithm is not allowed', err);
  return fail('the token is malformed or cannot be verified', err);
}

/**
 * Verifies ID tokens and workload tokens against configured issuers only (threats A1-A4, RFC 8725): the issuer
 * is looked up by `iss` among those configured, its keys come only from its own JWKS, algorithms come from its
 * allow-list and never from the token, and `iss`, `aud`, `exp` and `sub` are required.
 */
export class JwtVerifier {
  readonly #issuers: ReadonlyMap<string, IssuerState>;
  readonly #policy: OutboundPolicy;
  readonly #now: () => Date;

  constructor(issuers: readonly TrustedIssuer[], policy: OutboundPolicy, now: () => Date = () => new Date()) {
    const states = new Map<string, IssuerState>();
    for (const issuer of issuers) {
      const config = checkIssuer(issuer);
      if (states.has(config.issuer))
        throw invalidConfig(`issuer ${quote(config.issuer)} is configured twice`);
      states.set(config.issuer, { config, keys: undefined, lastFetch: -Infinity, pending: undefined });
    }
    this.#issuers = states;
    this.#policy = policy;
    this.#now = now;
  }

  /** The clock tokens are judged by, for callers that derive lifetimes from a verified token. */
  now(): Date {
    return this.#now();
  }

  /** Verifies `token` and returns its claims; every failure is `unauthenticated`. */
  async verify(token: string, options: VerifyOptions = {}): Promise<VerifiedToken> {
    const { state, alg } = this.#inspect(token);
    const { config } = state;
    const audience = options.audience === undefined ? [...config.audiences] : [options.audience];
    if (options.audience !== undefined && !config.audiences.includes(options.audience)) {
      throw new StrongroomError(
        'invalid_request',
        `audience ${quote(options.audience)} is not configured for issuer ${quote(config.issuer)}`,
      );
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#keyResolver(state), {
        algorithms: [alg],
        issuer: config.issuer,
        audience,
        requiredClaims: ['iss', 'aud', 'exp', 'sub'],
        clockTolerance: config.clockSkewSeconds,
        currentDate: this.#now(),
        ...(options.maxAgeSeconds === undefined ? {} : { maxTokenAge: options.maxAgeSeconds }),
      }));
    } catch (err) {
      throw explain(err);
    }
    return this.#accept(payload, config, options);
  }

  /**
   * Checks everything that needs no key before anything is fetched: an unknown issuer, a disallowed algorithm
   * or a key-sourcing header is refused without a single outbound request (A1, A3).
   */
  #inspect(token: string): Unverified {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw fail('the token is malformed');
    const parts = token.split('.');
    if (parts.length !== 3) throw fail('the token is not a compact jws');
    if (parts[2] === '') throw fail('the token has no signature');
    let header: ReturnType<typeof decodeProtectedHeader>;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch (err) {
      throw fail('the token is malformed', err);
    }
    for (const name of KEY_SOURCING_HEADERS) {
      if (name in header) throw fail(`the token header carries ${quote(name)}, which is never trusted`);
    }
    const state = typeof claims.iss === 'string' ? this.#issuers.get(claims.iss) : undefined;
    if (state === undefined) throw fail(`the token issuer ${quote(String(claims.iss))} is not trusted`);
    const alg = header.alg;
    if (typeof alg !== 'string' || !state.config.algorithms.includes(alg)) {
      throw fail(`the token algorithm ${quote(String(alg))} is not allowed for its issuer`);
    }
    return { state, alg };
  }

  #accept(payload: JWTPayload, config: CheckedIssuer, options: VerifyOptions): VerifiedToken {
    const skew = config.clockSkewSeconds;
    const nowSeconds = this.#now().getTime() / 1000;
    // jose checks `iat` only together with a maximum age; a token issued in the future is refused regardless.
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds + skew) {
      throw fail("the token's `iat` claim lies in the future");
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw fail('the token has an empty subject');
    if (typeof payload.exp !== 'number') throw fail('the token lacks the required `exp` claim');
    if (options.nonce !== undefined) {
      if (typeof payload.nonce !== 'string' || !constantTimeEqual(payload.nonce, options.nonce)) {
        throw fail('the token nonce does not match the login');
      }
    }
    const audience = typeof payload.aud === 'string' ? [payload.aud] : [...(payload.aud ?? [])];
    return Object.freeze({
      issuer: config.issuer,
      subject: payload.sub,
      audience: Object.freeze(audience),
      claims: Object.freeze({ ...payload }),
      expiresAt: new Date(payload.exp * 1000),
    });
  }

  /** Keys come from the cached JWKS; an unknown `kid` may refresh it, at most once per cooldown (A3). */
  #keyResolver(state: IssuerState): JWTVerifyGetKey {
    return async (header, token) => {
      const current = await this.#keySet(state, false);
      try {
        return await current.getKey(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
        const fresh = await this.#keySet(state, true);
        if (fresh === current) throw err;
        return fresh.getKey(header, token);
      }
    };
  }

  async #keySet(state: IssuerState, unknownKid: boolean): Promise<KeySet> {
    const now = this.#now().getTime();
    const cached = state.keys;
    const wanted = cached === undefined || unknownKid || now - cached.fetchedAt >= KEYS_MAX_AGE_MS;
    if (!wanted) return cached;
    if (state.pending !== undefined) return state.pending;
    if (now - state.lastFetch < KEYS_REFRESH_COOLDOWN_MS) {
      if (cached !== undefined) return cached;
      throw fail(`the signing keys of ${quote(state.config.issuer)} are unavailable; retry later`);
    }
    state.lastFetch = now;
    state.pending = this.#fetchKeys(state, now).finally(() => {
      state.pending = undefined;
    });
    return state.pending;
  }

  async #fetchKeys(state: IssuerState, now: number): Promise<KeySet> {
    const { config } = state;
    try {
      const jwksUri =
        config.jwksUri ?? (await fetchOpenIdConfiguration(config.issuer, this.#policy)).jwks_uri;
      const jwks = await fetchJsonObject(jwksUri, this.#policy);
      const keys: KeySet = { getKey: createLocalJWKSet(jwks as unknown as JSONWebKeySet), fetchedAt: now };
      state.keys = keys;
      return keys;
    } catch (cause) {
      if (cause instanceof StrongroomError && cause.code === 'unauthenticated') throw cause;
      throw fail(`the signing keys of ${quote(config.issuer)} could not be fetched`, cause);
    }
  }
}
