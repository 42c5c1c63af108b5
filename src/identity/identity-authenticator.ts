import type { Clock } from '../core/clock.js';
import type { TokenRecord } from '../core/domain.js';
import { StrongroomError } from '../core/errors.js';
import type { ServiceAccountId, UserId } from '../core/ids.js';
import { constantTimeEqual, sha256Hex } from '../crypto/digest.js';
import { BOOTSTRAP_ADMIN, type Principal } from '../policy/authorizer.js';
import type { MetadataReader } from '../storage/metadata-store.js';
import { kindOfToken, tokenHash } from './credentials.js';
import { IDENTITY_EPOCH_SETTING } from './identity-service.js';

/** Where the bootstrap token's SHA-256 lives; the value `disabled` turns the break-glass credential off. */
export const BOOTSTRAP_TOKEN_SETTING = 'bootstrap_admin_token_sha256';
export const BOOTSTRAP_DISABLED = 'disabled';
const MAX_PARENT_DEPTH = 4;
const CACHE_LIMIT = 10_000;

interface Cached {
  readonly principal: Principal;
  readonly epoch: string;
  /** The earliest expiry of the token, its parents and its session. */
  readonly until: number;
}

/**
 * Turns a bearer token into a principal. Tokens are opaque, prefixed and looked up by SHA-256 (no signature
 * and no password hash on the hot path). Verified tokens are cached; every revocation, disablement or group
 * change bumps an epoch stored with the data, and a changed epoch empties the cache, so revocation takes effect
 * on the very next request (A6, A7, B6), on this instance and on any other sharing the database.
 */
export class IdentityAuthenticator {
  private readonly cache = new Map<string, Cached>();

  constructor(
    private readonly store: MetadataReader,
    private readonly clock: Clock,
  ) {}

  async authenticate(token: string): Promise<Principal> {
    if (token.startsWith('srt_')) return this.bootstrap(token);
    const kind = kindOfToken(token);
    if (kind !== 'access' && kind !== 'api' && kind !== 'federated')
      throw new StrongroomError('unauthenticated', 'the token is not valid');
    const hash = tokenHash(token);
    const epoch = (await this.store.getSetting(IDENTITY_EPOCH_SETTING)) ?? '0';
    const now = this.clock.now().getTime();
    const hit = this.cache.get(hash);
    if (hit && hit.epoch === epoch && hit.until > now) return hit.principal;
    if (hit) this.cache.delete(hash);
    if (hit?.epoch !== undefined && hit.epoch !== epoch) this.cache.clear();
    const { principal, until } = await this.resolve(hash, now);
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(hash, { principal, epoch, until });
    return principal;
  }

  /** Mutual TLS: the certificate's common name names the service account (the CA vouches for it). */
  async authenticateCertificate(commonName: string): Promise<Principal> {
    const account = /^[a-z0-9-]{1,64}$/.test(commonName)
      ? await this.store.getServiceAccountByName(commonName)
      : undefined;
    if (!account || account.disabled)
      throw new StrongroomError('unauthenticated', 'the client certificate names no enabled service account');
    return {
      id: account.id,
      kind: 'service',
      authMethod: 'mtls',
      name: account.name,
      groups: await this.store.groupsOf(account.id),
      scope: null,
      environment: account.environment,
    };
  }

  private async bootstrap(token: string): Promise<Principal> {
    const expected = await this.store.getSetting(BOOTSTRAP_TOKEN_SETTING);
    if (
      expected === undefined ||
      expected === BOOTSTRAP_DISABLED ||
      !constantTimeEqual(sha256Hex(token), expected)
    )
      throw new StrongroomError('unauthenticated', 'the token is not valid');
    return { id: BOOTSTRAP_ADMIN, kind: 'user', authMethod: 'bootstrap-token', name: BOOTSTRAP_ADMIN };
  }

  private async resolve(hash: string, now: number): Promise<{ principal: Principal; until: number }> {
    const invalid = () => new StrongroomError('unauthenticated', 'the token is not valid');
    const token = await this.store.getTokenByHash(hash);
    if (!token || (token.kind !== 'access' && token.kind !== 'api' && token.kind !== 'federated'))
      throw invalid();
    let until = Date.parse(token.expiresAt);
    // The token and every token it derives from must be live (A7).
    let link: TokenRecord | undefined = token;
    for (let depth = 0; link; depth++) {
      if (depth > MAX_PARENT_DEPTH || link.revokedAt !== null || Date.parse(link.expiresAt) <= now)
        throw invalid();
      until = Math.min(until, Date.parse(link.expiresAt));
      link = link.parentId ? await this.store.getTokenById(link.parentId) : undefined;
    }
    let mfaAt: string | null = null;
    let devicePosture: string | null = null;
    let authMethod =
      token.kind === 'api' ? 'api-token' : token.kind === 'federated' ? 'workload-federation' : '';
    let name: string;
    if (token.principalKind === 'user') {
      const user = await this.store.getUserById(token.principalId as UserId);
      if (user?.state !== 'active') throw invalid();
      name = user.username;
      if (token.sessionId !== null) {
        const session = await this.store.getSession(token.sessionId);
        if (!session || session.revokedAt !== null || Date.parse(session.expiresAt) <= now) throw invalid();
        until = Math.min(until, Date.parse(session.expiresAt));
        mfaAt = session.mfaAt;
        devicePosture = session.devicePosture;
        authMethod = session.authMethod;
      }
    } else {
      const account = await this.store.getServiceAccountById(token.principalId as ServiceAccountId);
      if (!account || account.disabled) throw invalid();
      name = account.name;
    }
    const principal: Principal = {
      id: token.principalId,
      kind: token.principalKind,
      authMethod: authMethod || 'token',
      name,
      groups: await this.store.groupsOf(token.principalId),
      tokenId: token.id,
      ...(token.sessionId !== null ? { sessionId: token.sessionId } : {}),
      mfaAt,
      ...(devicePosture === null ? {} : { devicePosture }),
      scope: token.scope,
      environment: token.environment,
    };
    return { principal, until };
  }
}
