import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// @ts-expect-error -- oidc-provider ships no type declarations; the slice used here is typed below.
import ProviderModule from 'oidc-provider';

export interface TestClient {
  readonly client_id: string;
  /** Absent for a public client (token endpoint auth `none`, PKCE only). */
  readonly client_secret?: string;
  readonly redirect_uris: readonly string[];
}

export interface TestAccount {
  readonly sub: string;
  readonly email?: string;
  readonly name?: string;
  readonly groups?: readonly string[];
  /** Released as `device_posture` with the `device` scope. */
  readonly devicePosture?: string;
}

export interface OidcProviderOptions {
  readonly clients: readonly TestClient[];
  /** Keyed by the name `login()` signs in with. */
  readonly accounts: Readonly<Record<string, TestAccount>>;
  /**
   * Put scope-requested claims (email, name, groups) into the ID token. Off by default, as in oidc-provider:
   * OIDC Core 5.4 puts them in UserInfo when an access token is issued.
   */
  readonly claimsInIdToken?: boolean;
}

export interface RunningOidcProvider {
  /** `http://127.0.0.1:<port>`, exactly as the provider's discovery document states it. */
  readonly issuer: string;
  /** Base URL of the server (the same as the issuer). */
  readonly url: string;
  close(): Promise<void>;
  /**
   * Plays the browser: follows the authorization URL through the provider's login and consent interactions
   * with a cookie jar, signs in as `account`, and returns the final redirect to the client's redirect URI
   * (with `code`, `state` and `iss`, or an `error`).
   */
  login(authorizationUrl: string, account: string): Promise<string>;
}

// The slice of oidc-provider's API the harness uses.
interface InteractionDetails {
  readonly uid: string;
  readonly prompt: { readonly name: string; readonly details: Record<string, unknown> };
  readonly params: Record<string, unknown>;
  readonly session?: { readonly accountId: string };
  readonly grantId?: string;
}
interface Grant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: readonly string[]): void;
  addResourceScope(indicator: string, scope: string): void;
  save(): Promise<string>;
}
interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(
    req: IncomingMessage,
    res: ServerResponse,
    result: Record<string, unknown>,
    options: { mergeWithLastSubmission: boolean },
  ): Promise<void>;
  readonly Grant: {
    new (init: { accountId: string; clientId: string }): Grant;
    find(id: string): Promise<Grant>;
  };
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => Provider;
const ProviderClass = ProviderModule as ProviderConstructor;

type Payload = Record<string, unknown>;

/**
 * A storage adapter private to one provider instance. oidc-provider's built-in memory adapter is one store
 * per process, so two providers in one test would share codes and sessions, which no two real providers do.
 */
function isolatedAdapter(): new (model: string) => unknown {
  const store = new Map<string, { value: unknown; expiresAt: number }>();
  const get = <T>(key: string): T | undefined => {
    const entry = store.get(key);
    if (entry !== undefined && entry.expiresAt <= Date.now()) store.delete(key);
    return entry !== undefined && entry.expiresAt > Date.now() ? (entry.value as T) : undefined;
  };
  const set = (key: string, value: unknown, expiresIn: number) =>
    store.set(key, { value, expiresAt: Date.now() + expiresIn * 1000 });
  const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode']);
  return class IsolatedAdapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    #key(id: string): string {
      return `${this.#model}:${id}`;
    }
    async upsert(id: string, payload: Payload, expiresIn: number): Promise<void> {
      const key = this.#key(id);
      if (this.#model === 'Session') set(`sessionUid:${String(payload.uid)}`, id, expiresIn);
      if (typeof payload.userCode === 'string') set(`userCode:${payload.userCode}`, id, expiresIn);
      if (grantable.has(this.#model) && typeof payload.grantId === 'string') {
        const grantKey = `grant:${payload.grantId}`;
        set(grantKey, [...(get<string[]>(grantKey) ?? []), key], expiresIn);
      }
      set(key, payload, expiresIn);
    }
    async find(id: string): Promise<Payload | undefined> {
      return get<Payload>(this.#key(id));
    }
    async findByUid(uid: string): Promise<Payload | undefined> {
      const id = get<string>(`sessionUid:${uid}`);
      return id === undefined ? undefined : this.find(id);
    }
    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const id = get<string>(`userCode:${userCode}`);
      return id === undefined ? undefined : this.find(id);
    }
    async consume(id: string): Promise<void> {
      const payload = get<Payload>(this.#key(id));
      if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string): Promise<void> {
      store.delete(this.#key(id));
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      for (const key of get<string[]>(`grant:${grantId}`) ?? []) store.delete(key);
      store.delete(`grant:${grantId}`);
    }
  };
}

const INTERACTION = /^\/interaction\/([\w-]+)(?:\/(login|consent))?$/;

/** Starts a real, certified OpenID Provider (panva/oidc-provider) on loopback with scripted interactions. */
export async function startOidcProvider(options: OidcProviderOptions): Promise<RunningOidcProvider> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const bySub = new Map(Object.values(options.accounts).map((a) => [a.sub, a]));
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

  const provider = new ProviderClass(issuer, {
    clients: options.clients.map((c) => ({
      client_id: c.client_id,
      ...(c.client_secret === undefined
        ? { token_endpoint_auth_method: 'none' }
        : { client_secret: c.client_secret, token_endpoint_auth_method: 'client_secret_basic' }),
      redirect_uris: [...c.redirect_uris],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    })),
    adapter: isolatedAdapter(),
    jwks: { keys: [{ ...signingKey, kid: 'provider-rs256', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
      device: ['device_posture'],
    },
    conformIdTokenClaims: options.claimsInIdToken !== true,
    pkce: { required: () => true },
    ttl: {
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 3600,
      IdToken: 600,
      Interaction: 600,
      Session: 3600,
    },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx: unknown, sub: string) => {
      const account = bySub.get(sub);
      if (account === undefined) return undefined;
      return {
        accountId: sub,
        claims: () => ({
          sub,
          ...(account.email === undefined ? {} : { email: account.email, email_verified: true }),
          ...(account.name === undefined ? {} : { name: account.name }),
          ...(account.groups === undefined ? {} : { groups: [...account.groups] }),
          ...(account.devicePosture === undefined ? {} : { device_posture: account.devicePosture }),
        }),
      };
    },
  });
  const callback = provider.callback();

  async function interact(
    req: IncomingMessage,
    res: ServerResponse,
    step: string | undefined,
  ): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'GET' && step === undefined) {
      // The "page": which prompt the provider wants answered.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
      return;
    }
    if (req.method === 'POST' && step === 'login') {
      const form = new URLSearchParams(await readBody(req));
      const account = options.accounts[form.get('account') ?? ''];
      const result =
        account === undefined
          ? { error: 'access_denied', error_description: 'unknown test account' }
          : { login: { accountId: account.sub } };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    if (req.method === 'POST' && step === 'consent') {
      const grantId = await grantAll(provider, details);
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    res.writeHead(405).end();
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const match = INTERACTION.exec(new URL(req.url ?? '/', issuer).pathname);
    if (match === null) {
      callback(req, res);
      return;
    }
    interact(req, res, match[2]).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });

  return {
    issuer,
    url: issuer,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
    login: (authorizationUrl, account) => playBrowser(issuer, authorizationUrl, account),
  };
}

/** Grants everything the consent prompt says is missing, as a user clicking "allow" would. */
async function grantAll(provider: Provider, details: InteractionDetails): Promise<string> {
  const grant =
    details.grantId !== undefined
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({
          accountId: details.session?.accountId ?? '',
          clientId: String(details.params.client_id),
        });
  const missing = details.prompt.details;
  if (Array.isArray(missing.missingOIDCScope)) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (Array.isArray(missing.missingOIDCClaims)) grant.addOIDCClaims(missing.missingOIDCClaims as string[]);
  const resourceScopes = (missing.missingResourceScopes ?? {}) as Record<string, string[]>;
  for (const [indicator, scopes] of Object.entries(resourceScopes))
    grant.addResourceScope(indicator, scopes.join(' '));
  return grant.save();
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

interface Cookie {
  readonly name: string;
  readonly value: string;
  readonly path: string;
}

/** Just enough of a browser cookie jar for one host: path scoping, replacement and expiry. */
class CookieJar {
  #cookies: Cookie[] = [];

  store(setCookies: readonly string[]): void {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = new Map(
        attributes.map((a) => {
          const i = a.indexOf('=');
          return i === -1 ? [a.toLowerCase(), ''] : [a.slice(0, i).toLowerCase(), a.slice(i + 1)];
        }),
      );
      const path = attr.get('path') ?? '/';
      const expires = attr.get('expires');
      const expired =
        attr.get('max-age') === '0' || (expires !== undefined && Date.parse(expires) <= Date.now());
      this.#cookies = this.#cookies.filter((c) => c.name !== name || c.path !== path);
      if (!expired) this.#cookies.push({ name, value, path });
    }
  }

  header(url: URL): string {
    return this.#cookies
      .filter((c) => c.path === '/' || url.pathname === c.path || url.pathname.startsWith(`${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

const MAX_STEPS = 20;

async function playBrowser(issuer: string, authorizationUrl: string, account: string): Promise<string> {
  const origin = new URL(issuer).origin;
  const jar = new CookieJar();
  const request = async (url: URL, init: { method?: string; body?: string } = {}) => {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: {
        cookie: jar.header(url),
        ...(init.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    jar.store(res.headers.getSetCookie());
    return res;
  };

  let url = new URL(authorizationUrl);
  let res = await request(url);
  for (let step = 0; step < MAX_STEPS; step += 1) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.body?.cancel();
      url = new URL(location, url);
      if (url.origin !== origin) return url.href;
      res = await request(url);
      continue;
    }
    const match = INTERACTION.exec(url.pathname);
    if (res.status !== 200 || match === null) {
      throw new Error(`the test provider answered ${res.status} at ${url.pathname}: ${await res.text()}`);
    }
    const page = (await res.json()) as { prompt: string };
    const body = page.prompt === 'login' ? new URLSearchParams({ account }).toString() : '';
    url = new URL(`/interaction/${match[1]}/${page.prompt}`, origin);
    res = await request(url, { method: 'POST', body });
  }
  throw new Error(`the login did not finish within ${MAX_STEPS} steps`);
}
