import { createHash, randomBytes } from 'node:crypto';

import { StrongroomError, quote } from '../core/errors.js';
import { constantTimeEqual } from '../crypto/digest.js';
import { JwtVerifier, fetchOpenIdConfiguration } from './jwt-verifier.js';
import type { VerifiedToken } from './jwt-verifier.js';
import { fetchJsonObject, outboundFetch } from './outbound-fetch.js';
import type { OutboundPolicy } from './outbound-fetch.js';

/** One OpenID Provider Strongroom's users sign in with. */
export interface OidcProviderConfig {
  /** Strongroom's name for the provider (`[a-z0-9-]`); the first half of every identity key it yields. */
  readonly id: string;
  readonly issuer: string;
  readonly clientId: string;
  /** Absent for a public client, which then relies on PKCE alone. */
  readonly clientSecret?: string;
  /** Default `openid profile email`; must contain `openid`. */
  readonly scopes?: readonly string[];
  /** The claim holding the user's groups; default `groups`. */
  readonly groupsClaim?: string;
  /**
   * A device posture claim (for example `device_posture`), read from the signed ID token only (never from
   * UserInfo): what the provider asserts about the device the user signed in from, for policies.
   */
  readonly devicePostureClaim?: string;
  /** ID token signature algorithms accepted; default `RS256`, `ES256`. */
  readonly algorithms?: readonly string[];
}

/** A person as one provider knows them. Only `provider` + `subject` identify them: see `identityKey`. */
export interface OidcIdentity {
  readonly provider: string;
  readonly issuer: string;
  readonly subject: string;
  /** Informational only; `null` when absent or when the provider says it is not verified. */
  readonly email: string | null;
  readonly name: string | null;
  readonly groups: readonly string[];
  /** The device posture the signed ID token asserts (`devicePostureClaim`); null when not configured or absent. */
  readonly devicePosture: string | null;
}

/** What `beginLogin` hands back: redirect the browser, keep the rest in the login session for the callback. */
export interface LoginRequest {
  readonly authorizationUrl: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface LoginCallback {
  /** `code`, `state` (and `iss` when present) as they arrived on the redirect URI. */
  readonly code: string;
  readonly state: string;
  /** RFC 9207 `iss` from the redirect; required when the provider advertises it. */
  readonly iss?: string;
  /** `state`, `nonce` and `codeVerifier` as kept from `beginLogin`, and the same redirect URI. */
  readonly expectedState: string;
  readonly nonce: string;
  readonly codeVerifier: string;
  readonly redirectUri: string;
}

interface ProviderEndpoints {
  readonly authorization: string;
  readonly token: string;
  readonly userinfo: string | undefined;
  readonly issParameter: boolean;
  readonly clientAuth: 'client_secret_basic' | 'client_secret_post' | 'none';
}

const PROVIDER_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/; // RFC 6749 3.3 scope-token
const DEFAULT_SCOPES = ['openid', 'profile', 'email'];
const DEFAULT_ALGORITHMS = ['RS256', 'ES256'];
const DISCOVERY_MAX_AGE_MS = 60 * 60_000;
const SECRET_BYTES = 32;

/**
 * The key that identifies a person: provider id and subject (OIDC Core 2: `sub` is unique only within its
 * issuer). The same `sub` from two providers is two people (threat A4). Provider ids cannot contain `:`, so
 * the key splits unambiguously at its first `:`.
 */
export function identityKey(identity: Pick<OidcIdentity, 'provider' | 'subject'>): string {
  return `${identity.provider}:${identity.subject}`;
}

function invalidConfig(id: string, message: string): StrongroomError {
  return new StrongroomError('config_invalid', `oidc provider ${quote(id)}: ${message}`);
}

function fail(message: string, cause?: unknown): StrongroomError {
  return new StrongroomError('unauthenticated', message, cause === undefined ? {} : { cause });
}

function checkConfig(config: OidcProviderConfig): void {
  if (!PROVIDER_ID.test(config.id)) {
    throw new StrongroomError('config_invalid', `oidc provider id ${quote(config.id)} must match [a-z0-9-]`);
  }
  if (config.clientId === '') throw invalidConfig(config.id, 'client id is empty');
  if (config.clientSecret === '') throw invalidConfig(config.id, 'client secret is empty');
  const scopes = config.scopes ?? DEFAULT_SCOPES;
  if (!scopes.includes('openid')) throw invalidConfig(config.id, 'scopes must include `openid`');
  if (!scopes.every((s) => SCOPE_TOKEN.test(s)))
    throw invalidConfig(config.id, 'a scope is not a scope token');
  if (config.groupsClaim === '') throw invalidConfig(config.id, 'groups claim is empty');
}

function base64urlSha256(input: string): string {
  return createHash('sha256').update(input).digest('base64url');
}

function randomSecret(): string {
  return randomBytes(SECRET_BYTES).toString('base64url');
}

/** `application/x-www-form-urlencoded` of one value, as RFC 6749 2.3.1 wants for Basic credentials. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

function stringClaim(claims: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Groups arrive as an array of strings, or as a lone string from providers that unwrap single values. */
function groupsOf(value: unknown): readonly string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
  return Object.freeze([...new Set(list.filter((g): g is string => typeof g === 'string' && g !== ''))]);
}

function emailOf(claims: Readonly<Record<string, unknown>>): string | null {
  const verified = claims.email_verified;
  if (verified === false || verified === 'false') return null;
  return stringClaim(claims, 'email') ?? null;
}

/**
 * The relying party of the OpenID Connect authorization code flow (OIDC Core 3.1) with PKCE S256 (RFC 7636),
 * `state` against login CSRF, `nonce` against ID token replay and `iss` against mix-up (RFC 9207).
 */
export class OidcClient {
  readonly #config: OidcProviderConfig;
  readonly #policy: OutboundPolicy;
  readonly #verifier: JwtVerifier;
  readonly #now: () => Date;
  #endpoints: { readonly value: Promise<ProviderEndpoints>; readonly fetchedAt: number } | undefined;

  constructor(config: OidcProviderConfig, policy: OutboundPolicy, now: () => Date = () => new Date()) {
    checkConfig(config);
    this.#config = config;
    this.#policy = policy;
    this.#now = now;
    this.#verifier = new JwtVerifier(
      [
        {
          issuer: config.issuer,
          audiences: [config.clientId],
          algorithms: config.algorithms ?? DEFAULT_ALGORITHMS,
        },
      ],
      policy,
      now,
    );
  }

  get id(): string {
    return this.#config.id;
  }

  /** Starts a login (OIDC Core 3.1.2.1): fresh `state`, `nonce` and PKCE verifier, each 256 random bits. */
  async beginLogin(redirectUri: string): Promise<LoginRequest> {
    checkRedirectUri(redirectUri);
    const endpoints = await this.#discover();
    const state = randomSecret();
    const nonce = randomSecret();
    const codeVerifier = randomSecret();
    const url = new URL(endpoints.authorization);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.#config.clientId);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('scope', (this.#config.scopes ?? DEFAULT_SCOPES).join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    url.searchParams.set('code_challenge', base64urlSha256(codeVerifier));
    url.searchParams.set('code_challenge_method', 'S256');
    return { authorizationUrl: url.href, state, nonce, codeVerifier };
  }

  /**
   * Finishes a login (OIDC Core 3.1.2.5-3.1.3.7): checks `state` in constant time before anything is sent,
   * redeems the code with the PKCE verifier, and verifies the ID token's signature, issuer, audience, `azp`,
   * expiry and nonce. Every failure is `unauthenticated`.
   */
  async completeLogin(params: LoginCallback): Promise<OidcIdentity> {
    for (const name of ['code', 'state', 'expectedState', 'nonce', 'codeVerifier'] as const) {
      if (typeof params[name] !== 'string' || params[name] === '') {
        throw new StrongroomError('invalid_request', `the login callback lacks ${quote(name)}`);
      }
    }
    checkRedirectUri(params.redirectUri);
    if (!constantTimeEqual(params.state, params.expectedState)) throw fail('the login state does not match');
    const endpoints = await this.#discover();
    if (params.iss !== undefined ? params.iss !== this.#config.issuer : endpoints.issParameter) {
      throw fail(`the authorization response does not come from ${quote(this.#config.issuer)}`);
    }
    const tokens = await this.#redeem(endpoints, params);
    const token = await this.#verifier.verify(tokens.idToken, {
      audience: this.#config.clientId,
      nonce: params.nonce,
    });
    this.#checkAuthorizedParty(token);
    const claims = await this.#withUserinfo(endpoints, token, tokens.accessToken);
    return Object.freeze({
      provider: this.#config.id,
      issuer: token.issuer,
      subject: token.subject,
      email: emailOf(claims),
      name: stringClaim(claims, 'name') ?? stringClaim(claims, 'preferred_username') ?? null,
      groups: groupsOf(claims[this.#config.groupsClaim ?? 'groups']),
      devicePosture: devicePostureOf(token.claims, this.#config.devicePostureClaim),
    });
  }

  /** OIDC Core 3.1.3.7 steps 4-5: with several audiences `azp` must be present; when present it must be us. */
  #checkAuthorizedParty(token: VerifiedToken): void {
    const azp = token.claims.azp;
    if (azp === undefined && token.audience.length === 1) return;
    if (azp !== this.#config.clientId) throw fail('the id token was issued to another client');
  }

  async #redeem(
    endpoints: ProviderEndpoints,
    params: LoginCallback,
  ): Promise<{ idToken: string; accessToken: string | undefined }> {
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.code,
      redirect_uri: params.redirectUri,
      code_verifier: params.codeVerifier,
    });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    const secret = this.#config.clientSecret;
    if (secret !== undefined && endpoints.clientAuth === 'client_secret_basic') {
      const credentials = `${formEncode(this.#config.clientId)}:${formEncode(secret)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    } else {
      form.set('client_id', this.#config.clientId);
      if (secret !== undefined) form.set('client_secret', secret);
    }
    const res = await this.#call(() =>
      outboundFetch(endpoints.token, this.#policy, { method: 'POST', headers, body: form.toString() }),
    );
    let body: unknown;
    try {
      body = JSON.parse(res.body.toString('utf8'));
    } catch (cause) {
      throw fail(`the token endpoint of ${quote(this.#config.issuer)} did not answer with json`, cause);
    }
    const fields = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (res.status !== 200) {
      const error = typeof fields.error === 'string' ? fields.error : `http ${res.status}`;
      throw fail(`the token endpoint of ${quote(this.#config.issuer)} refused the code: ${quote(error)}`);
    }
    if (typeof fields.id_token !== 'string') throw fail('the token response has no id token');
    const accessToken = typeof fields.access_token === 'string' ? fields.access_token : undefined;
    return { idToken: fields.id_token, accessToken };
  }

  /**
   * Providers that follow OIDC Core 5.4 strictly put profile claims in UserInfo, not the ID token. Claims the ID
   * token lacks are taken from UserInfo, whose `sub` must equal the ID token's (OIDC Core 5.3.4).
   */
  async #withUserinfo(
    endpoints: ProviderEndpoints,
    token: VerifiedToken,
    accessToken: string | undefined,
  ): Promise<Readonly<Record<string, unknown>>> {
    const wanted = ['email', 'name', this.#config.groupsClaim ?? 'groups'];
    if (wanted.every((claim) => claim in token.claims)) return token.claims;
    if (endpoints.userinfo === undefined || accessToken === undefined) return token.claims;
    const userinfo = await this.#call(() =>
      fetchJsonObject(endpoints.userinfo as string, this.#policy, {
        headers: { authorization: `Bearer ${accessToken}` },
      }),
    );
    if (userinfo.sub !== token.subject) throw fail('the userinfo response is about another subject');
    return { ...userinfo, ...token.claims };
  }

  /** Transport failures talking to the provider fail the login rather than the server. */
  async #call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (cause) {
      if (cause instanceof StrongroomError && cause.code === 'unauthenticated') throw cause;
      throw fail(`the provider ${quote(this.#config.issuer)} could not be reached`, cause);
    }
  }

  /** Provider metadata, fetched through the SSRF-safe client and cached (OIDC Discovery 4). */
  #discover(): Promise<ProviderEndpoints> {
    const now = this.#now().getTime();
    if (this.#endpoints === undefined || now - this.#endpoints.fetchedAt >= DISCOVERY_MAX_AGE_MS) {
      const value = this.#call(() => fetchOpenIdConfiguration(this.#config.issuer, this.#policy)).then((c) =>
        endpointsOf(this.#config, c.metadata),
      );
      value.catch(() => {
        if (this.#endpoints?.value === value) this.#endpoints = undefined;
      });
      this.#endpoints = { value, fetchedAt: now };
    }
    return this.#endpoints.value;
  }
}

function checkRedirectUri(redirectUri: string): void {
  let url: URL | undefined;
  try {
    url = new URL(redirectUri);
  } catch {
    url = undefined;
  }
  if (url === undefined || !['https:', 'http:'].includes(url.protocol) || url.hash !== '') {
    throw new StrongroomError(
      'invalid_request',
      `redirect uri ${quote(redirectUri)} is not an absolute http(s) url`,
    );
  }
}

function endpointsOf(
  config: OidcProviderConfig,
  metadata: Readonly<Record<string, unknown>>,
): ProviderEndpoints {
  const issuerScheme = new URL(config.issuer).protocol;
  const endpoint = (name: string, required: boolean): string | undefined => {
    const value = metadata[name];
    if (value === undefined && !required) return undefined;
    // The browser is sent to these: plain http only where the issuer itself is (a loopback test provider).
    if (
      typeof value !== 'string' ||
      !URL.canParse(value) ||
      ![issuerScheme, 'https:'].includes(new URL(value).protocol)
    ) {
      throw invalidConfig(config.id, `discovery has no usable ${quote(name)}`);
    }
    return value;
  };
  const challengeMethods = metadata.code_challenge_methods_supported;
  if (Array.isArray(challengeMethods) && !challengeMethods.includes('S256')) {
    throw invalidConfig(config.id, 'the provider does not support pkce with S256');
  }
  const authMethods = metadata.token_endpoint_auth_methods_supported;
  const clientAuth =
    config.clientSecret === undefined
      ? 'none'
      : Array.isArray(authMethods) &&
          !authMethods.includes('client_secret_basic') &&
          authMethods.includes('client_secret_post')
        ? 'client_secret_post'
        : 'client_secret_basic';
  return {
    authorization: endpoint('authorization_endpoint', true) as string,
    token: endpoint('token_endpoint', true) as string,
    userinfo: endpoint('userinfo_endpoint', false),
    issParameter: metadata.authorization_response_iss_parameter_supported === true,
    clientAuth,
  };
}

/** A short string claim of the signed ID token, or null. */
function devicePostureOf(claims: Readonly<Record<string, unknown>>, name: string | undefined): string | null {
  if (name === undefined) return null;
  const value = claims[name];
  return typeof value === 'string' && value.length > 0 && value.length <= 128 ? value : null;
}
