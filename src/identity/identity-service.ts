import { describeCurrent, withoutEvent } from '../audit/audit-scope.js';
import type { Clock } from '../core/clock.js';
import {
  ENVIRONMENTS,
  type Environment,
  type Group,
  type Page,
  type PageRequest,
  type ServiceAccount,
  type Session,
  type TokenKind,
  type TokenRecord,
  type TokenScope,
  type User,
} from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';
import { newId, parseId, type DataKeyId, type SessionId, type TokenId, type UserId } from '../core/ids.js';
import { openValue, sealValue } from '../crypto/stream-aead.js';
import { ACTIONS, bumpPolicyRevision, type Action, type Principal } from '../policy/authorizer.js';
import type { MetadataStore, MetadataWriter } from '../storage/metadata-store.js';
import { newRecoveryCodes, newToken, recoveryCodeHash, tokenHash } from './credentials.js';
import {
  burnVerification,
  checkPasswordPolicy,
  hashPassword,
  needsRehash,
  verifyPassword,
} from './passwords.js';
import { newTotpSecret, totpUri, verifyTotp } from './totp.js';

export interface IdentityOptions {
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly inviteTtlSeconds: number;
  readonly apiTokenMaxTtlSeconds: number;
  readonly lockout: { readonly threshold: number; readonly baseSeconds: number; readonly maxSeconds: number };
  readonly totpIssuer: string;
}

/** The keyring operations TOTP secrets need (the registry's KeyService provides them). */
export interface SecretKeys {
  createDataKey(tx: MetadataWriter): Promise<{ readonly id: DataKeyId; readonly dek: Buffer }>;
  unwrap(id: DataKeyId): Promise<Buffer>;
}

export interface SessionTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly accessExpiresAt: string;
  readonly refreshExpiresAt: string;
  readonly sessionId: string;
}

export interface IssuedToken {
  /** Shown once; only its hash is kept. */
  readonly token: string;
  readonly record: TokenRecord;
}

const USERNAME = /^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$/;
const PRINCIPAL_NAME = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const GENERIC_LOGIN_FAILURE = 'the username, password or code is not valid';
/** Bumped on every revocation, disablement or group change: cached authentications are dropped (A7, B6). */
export const IDENTITY_EPOCH_SETTING = 'identity.epoch';

export function parseUsername(input: string): string {
  if (!USERNAME.test(input) || input.includes('..'))
    throw new StrongroomError(
      'invalid_name',
      `username ${quote(input)} must be 1-64 lowercase letters, digits, '.', '_' or '-'`,
    );
  return input;
}

export function parsePrincipalName(kind: 'group' | 'service account', input: string): string {
  if (!PRINCIPAL_NAME.test(input))
    throw new StrongroomError(
      'invalid_name',
      `${kind} name ${quote(input)} must be 1-64 lowercase letters, digits or dashes`,
    );
  return input;
}

/**
 * Users (invitation, password + TOTP enrolment, login, refresh, step-up, lockout, recovery codes), groups,
 * service accounts and their scoped tokens. Tokens are random, prefixed and stored as SHA-256 only (A6);
 * TOTP secrets are sealed under the keyring; every change runs in the caller's audit scope.
 */
export class IdentityService {
  constructor(
    private readonly store: MetadataStore,
    private readonly keys: SecretKeys,
    private readonly clock: Clock,
    private readonly options: IdentityOptions,
  ) {}

  private now(): Date {
    return this.clock.now();
  }

  private at(offsetSeconds = 0): string {
    return new Date(this.now().getTime() + offsetSeconds * 1000).toISOString();
  }

  // ---- users ---------------------------------------------------------------------------------------------

  /** An admin invites a user: the invitation token (shown once) lets them set a password and enrol TOTP. */
  async inviteUser(
    actor: Principal,
    input: { username: string; displayName?: string | undefined; email?: string | undefined },
  ): Promise<{ user: User; invite: IssuedToken }> {
    const username = parseUsername(input.username);
    const user: User = {
      id: newId('user'),
      username,
      displayName: input.displayName ?? username,
      email: input.email ?? null,
      state: 'invited',
      passwordHash: null,
      totp: null,
      totpLastStep: 0,
      failedLogins: 0,
      lockedUntil: null,
      createdAt: this.at(),
      createdBy: actor.id,
    };
    describeCurrent({ details: { user: user.id, username } });
    const invite = await this.store.transaction(async (tx) => {
      await tx.insertUser(user);
      return this.issue(tx, 'invite', { principalId: user.id, principalKind: 'user' }, actor.id, {
        ttlSeconds: this.options.inviteTtlSeconds,
      });
    });
    return { user, invite };
  }

  /** Starts enrolment over: password and TOTP cleared, every session and token revoked, a new invitation. */
  async resetUser(actor: Principal, username: string): Promise<{ user: User; invite: IssuedToken }> {
    const user = await this.userByName(username);
    describeCurrent({ details: { user: user.id, username: user.username } });
    const invite = await this.store.transaction(async (tx) => {
      const at = this.at();
      await tx.updateUser(user.id, {
        state: 'invited',
        passwordHash: null,
        totp: null,
        failedLogins: 0,
        lockedUntil: null,
        updatedAt: at,
      });
      await tx.replaceRecoveryCodes(user.id, []);
      await tx.revokeSessions({ userId: user.id }, at);
      await tx.revokeTokens({ principalId: user.id }, at);
      await this.bumpEpoch(tx);
      return this.issue(tx, 'invite', { principalId: user.id, principalKind: 'user' }, actor.id, {
        ttlSeconds: this.options.inviteTtlSeconds,
      });
    });
    return { user: (await this.store.getUserById(user.id)) as User, invite };
  }

  /** Disabling revokes every session and token of the user at once (A7). */
  async setUserDisabled(username: string, disabled: boolean): Promise<User> {
    const user = await this.userByName(username);
    describeCurrent({ details: { user: user.id, username: user.username, disabled } });
    await this.store.transaction(async (tx) => {
      const at = this.at();
      if (disabled) {
        await tx.updateUser(user.id, { state: 'disabled', updatedAt: at });
        await tx.revokeSessions({ userId: user.id }, at);
        await tx.revokeTokens({ principalId: user.id }, at);
      } else {
        await tx.updateUser(user.id, {
          state: user.passwordHash !== null && user.totp !== null ? 'active' : 'invited',
          updatedAt: at,
        });
      }
      await this.bumpEpoch(tx);
    });
    return (await this.store.getUserById(user.id)) as User;
  }

  async unlockUser(username: string): Promise<User> {
    const user = await this.userByName(username);
    describeCurrent({ details: { user: user.id, username: user.username } });
    await this.store.transaction((tx) =>
      tx.updateUser(user.id, { failedLogins: 0, lockedUntil: null, updatedAt: this.at() }),
    );
    return (await this.store.getUserById(user.id)) as User;
  }

  listUsers(page: PageRequest): Promise<Page<User>> {
    return this.store.listUsers(page);
  }

  async userByName(username: string): Promise<User> {
    const user = await this.store.getUserByName(parseUsername(username));
    if (!user) throw new StrongroomError('user_not_found', `user ${quote(username)} does not exist`);
    return user;
  }

  // ---- enrolment -----------------------------------------------------------------------------------------

  /** Step 1 with an invitation: set the password; returns the TOTP secret to enrol (not yet active). */
  async startEnrolment(
    inviteToken: string,
    password: string,
  ): Promise<{ otpauthUri: string; secret: string; username: string }> {
    const { user } = await this.inviteOf(inviteToken);
    checkPasswordPolicy(password, user.username);
    const passwordHash = await hashPassword(password);
    const secret = newTotpSecret();
    describeCurrent({
      actor: { id: user.id, type: 'user', authMethod: 'invite' },
      details: { username: user.username },
    });
    await this.store.transaction(async (tx) => {
      const key = await this.keys.createDataKey(tx);
      const sealed = sealValue(key.dek, `totp:${user.id}`, Buffer.from(secret, 'utf8'));
      await tx.updateUser(user.id, {
        passwordHash,
        totp: { dataKeyId: key.id, sealed },
        totpLastStep: 0,
        updatedAt: this.at(),
      });
    });
    return {
      otpauthUri: totpUri(secret, this.options.totpIssuer, user.username),
      secret,
      username: user.username,
    };
  }

  /**
   * Step 2: a valid code proves the authenticator works; the user becomes active, the invitation is used up,
   * recovery codes are issued (shown once) and the user is signed in.
   */
  async finishEnrolment(
    inviteToken: string,
    code: string,
  ): Promise<{ recoveryCodes: string[]; session: SessionTokens }> {
    const { user, invite } = await this.inviteOf(inviteToken);
    if (user.passwordHash === null || user.totp === null)
      throw new StrongroomError('invalid_request', 'set a password first (enrolment step 1)');
    const step = await verifyTotp(await this.totpSecret(user), code, this.now(), user.totpLastStep);
    if (step === undefined) throw new StrongroomError('unauthenticated', 'the code is not valid');
    const codes = newRecoveryCodes();
    describeCurrent({
      actor: { id: user.id, type: 'user', authMethod: 'invite+totp' },
      details: { username: user.username, enrolled: 'totp' },
    });
    const session = await this.store.transaction(async (tx) => {
      if (!(await tx.advanceTotpStep(user.id, step)))
        throw new StrongroomError('unauthenticated', 'the code was already used');
      const at = this.at();
      await tx.updateUser(user.id, { state: 'active', failedLogins: 0, lockedUntil: null, updatedAt: at });
      await tx.revokeTokens({ tokenId: invite.id }, at);
      await tx.replaceRecoveryCodes(
        user.id,
        codes.map((c) => recoveryCodeHash(user.id, c)),
      );
      return this.startSession(tx, user, 'password+totp');
    });
    return { recoveryCodes: codes, session };
  }

  private async inviteOf(inviteToken: string): Promise<{ user: User; invite: TokenRecord }> {
    const invite = await this.store.getTokenByHash(tokenHash(inviteToken));
    const now = this.at();
    if (!invite || invite.kind !== 'invite' || invite.revokedAt !== null || invite.expiresAt <= now)
      throw new StrongroomError('invite_invalid', 'the invitation is unknown, used, expired or revoked');
    const user = await this.store.getUserById(invite.principalId as UserId);
    if (!user || user.state !== 'invited')
      throw new StrongroomError('invite_invalid', 'the invitation is unknown, used, expired or revoked');
    return { user, invite };
  }

  private async totpSecret(user: User): Promise<string> {
    if (user.totp === null) throw new StrongroomError('internal_error', 'the user has no TOTP secret');
    const dek = await this.keys.unwrap(user.totp.dataKeyId);
    return openValue(dek, `totp:${user.id}`, user.totp.sealed).toString('utf8');
  }

  // ---- login ---------------------------------------------------------------------------------------------

  /**
   * Password + TOTP (or a single-use recovery code). Failures count; from `lockout.threshold` on, each one
   * locks the account for a doubling period (A5), and the answer never says which factor was wrong.
   */
  async login(input: {
    username: string;
    password: string;
    code?: string | undefined;
    recoveryCode?: string | undefined;
  }): Promise<SessionTokens> {
    const user = USERNAME.test(input.username) ? await this.store.getUserByName(input.username) : undefined;
    describeCurrent({
      ...(user ? { actor: { id: user.id, type: 'user' as const, authMethod: 'password+totp' } } : {}),
      details: { username: input.username.slice(0, 64) },
    });
    if (!user || user.state !== 'active' || user.passwordHash === null) {
      await burnVerification(input.password);
      throw new StrongroomError('unauthenticated', GENERIC_LOGIN_FAILURE);
    }
    const now = this.now();
    if (user.lockedUntil !== null && user.lockedUntil > now.toISOString()) {
      const retryAfter = Math.ceil((Date.parse(user.lockedUntil) - now.getTime()) / 1000);
      throw new StrongroomError('account_locked', `the account is locked for ${retryAfter} more seconds`, {
        details: { retryAfterSeconds: retryAfter },
      });
    }
    const passwordOk = await verifyPassword(user.passwordHash, input.password);
    let step: number | undefined;
    let recovery = false;
    if (passwordOk && input.code !== undefined) {
      step = await verifyTotp(await this.totpSecret(user), input.code, now, user.totpLastStep);
    } else if (passwordOk && input.recoveryCode !== undefined) {
      recovery = true;
    }
    if (!passwordOk || (step === undefined && !recovery)) return this.failLogin(user);

    const method = recovery ? 'password+recovery-code' : 'password+totp';
    describeCurrent({ actor: { id: user.id, type: 'user', authMethod: method } });
    const rehash = needsRehash(user.passwordHash) ? await hashPassword(input.password) : undefined;
    return this.store
      .transaction(async (tx) => {
        const used =
          step !== undefined
            ? await tx.advanceTotpStep(user.id, step)
            : await tx.useRecoveryCode(
                user.id,
                recoveryCodeHash(user.id, input.recoveryCode ?? ''),
                this.at(),
              );
        if (!used) throw new StrongroomError('unauthenticated', GENERIC_LOGIN_FAILURE);
        await tx.updateUser(user.id, {
          failedLogins: 0,
          lockedUntil: null,
          updatedAt: this.at(),
          ...(rehash ? { passwordHash: rehash } : {}),
        });
        if (recovery)
          describeCurrent({ details: { recoveryCodesLeft: await tx.countRecoveryCodes(user.id) } });
        return this.startSession(tx, user, method);
      })
      .catch(async (err: unknown) => {
        if (err instanceof StrongroomError && err.code === 'unauthenticated') return this.failLogin(user);
        throw err;
      });
  }

  private async failLogin(user: User): Promise<never> {
    const { threshold, baseSeconds, maxSeconds } = this.options.lockout;
    const failures = user.failedLogins + 1;
    const lockSeconds =
      failures >= threshold ? Math.min(maxSeconds, baseSeconds * 2 ** (failures - threshold)) : 0;
    const lockedUntil = lockSeconds > 0 ? this.at(lockSeconds) : null;
    // The counter is bookkeeping: the request's own (failed) event records the attempt and any lockout.
    await withoutEvent(() =>
      this.store.transaction((tx) =>
        tx.updateUser(user.id, { failedLogins: failures, lockedUntil, updatedAt: this.at() }),
      ),
    );
    describeCurrent({ details: { failedLogins: failures, ...(lockedUntil ? { lockedUntil } : {}) } });
    throw new StrongroomError('unauthenticated', GENERIC_LOGIN_FAILURE);
  }

  /** A new session with its access and refresh tokens (the refresh token is the access token's parent). */
  private async startSession(
    tx: MetadataWriter,
    user: User,
    authMethod: string,
    mfa = true,
    devicePosture: string | null = null,
  ): Promise<SessionTokens> {
    const session: Session = {
      id: newId('session'),
      userId: user.id,
      authMethod,
      mfaAt: mfa ? this.at() : null,
      devicePosture,
      createdAt: this.at(),
      expiresAt: this.at(this.options.refreshTokenTtlSeconds),
      revokedAt: null,
    };
    await tx.insertSession(session);
    return this.issueSessionTokens(tx, session);
  }

  private async issueSessionTokens(tx: MetadataWriter, session: Session): Promise<SessionTokens> {
    const owner = { principalId: session.userId, principalKind: 'user' as const, sessionId: session.id };
    const refresh = await this.issue(tx, 'refresh', owner, session.userId, {
      ttlSeconds: Math.max(1, Math.floor((Date.parse(session.expiresAt) - this.now().getTime()) / 1000)),
    });
    const access = await this.issue(tx, 'access', { ...owner, parentId: refresh.record.id }, session.userId, {
      ttlSeconds: this.options.accessTokenTtlSeconds,
    });
    describeCurrent({ details: { session: session.id } });
    return {
      accessToken: access.token,
      refreshToken: refresh.token,
      accessExpiresAt: access.record.expiresAt,
      refreshExpiresAt: refresh.record.expiresAt,
      sessionId: session.id,
    };
  }

  /**
   * A refresh token is good once: it is exchanged for a new pair. Presenting one that was already used means
   * it was copied, so the whole session is revoked (refresh-token reuse detection, OAuth 2.0 Security BCP).
   */
  async refresh(refreshToken: string): Promise<SessionTokens> {
    const record = await this.store.getTokenByHash(tokenHash(refreshToken));
    if (!record || record.kind !== 'refresh' || record.sessionId === null)
      throw new StrongroomError('unauthenticated', 'the refresh token is not valid');
    const session = await this.store.getSession(record.sessionId);
    const user = await this.store.getUserById(record.principalId as UserId);
    describeCurrent({
      actor: { id: record.principalId, type: 'user', authMethod: 'refresh-token' },
      details: { session: record.sessionId },
    });
    if (record.revokedAt !== null && session && session.revokedAt === null) {
      // Recorded by the request's own (failed) event, which names the reuse and the revoked session.
      await withoutEvent(() =>
        this.store.transaction(async (tx) => {
          await tx.revokeSessions({ sessionId: session.id }, this.at());
          await this.bumpEpoch(tx);
        }),
      );
      describeCurrent({ details: { reuseDetected: true, sessionRevoked: true } });
      throw new StrongroomError(
        'unauthenticated',
        'the refresh token was already used; the session is revoked',
      );
    }
    const now = this.at();
    if (
      record.revokedAt !== null ||
      record.expiresAt <= now ||
      !session ||
      session.revokedAt !== null ||
      session.expiresAt <= now ||
      user?.state !== 'active'
    )
      throw new StrongroomError('unauthenticated', 'the refresh token is not valid');
    return this.store.transaction(async (tx) => {
      // Compare-and-set: of two concurrent refreshes with one token, one wins and the other is a reuse.
      if ((await tx.revokeTokens({ tokenId: record.id }, this.at())) !== 1)
        throw new StrongroomError('unauthenticated', 'the refresh token was already used');
      return this.issueSessionTokens(tx, session);
    });
  }

  /** Revokes a session (logout) with every token issued in it. */
  async revokeSession(principal: Principal, sessionId: string): Promise<void> {
    const id = parseId('session', sessionId);
    const session = id ? await this.store.getSession(id) : undefined;
    // Only one's own session: an administrator ends someone else's by disabling the user or revoking tokens.
    if (!session || session.userId !== principal.id)
      throw new StrongroomError('token_not_found', 'no such session');
    describeCurrent({ details: { session: session.id } });
    await this.store.transaction(async (tx) => {
      await tx.revokeSessions({ sessionId: session.id }, this.at());
      await this.bumpEpoch(tx);
    });
  }

  /** Step-up: a fresh TOTP code refreshes the session's MFA time (sensitive actions check its age). */
  async stepUp(principal: Principal, code: string): Promise<{ mfaAt: string }> {
    const sessionId = principal.sessionId ? parseId('session', principal.sessionId) : undefined;
    if (principal.kind !== 'user' || !sessionId)
      throw new StrongroomError('invalid_request', 'only a signed-in user session can step up');
    const user = await this.store.getUserById(principal.id as UserId);
    if (!user || user.totp === null) throw new StrongroomError('unauthenticated', 'the code is not valid');
    const step = await verifyTotp(await this.totpSecret(user), code, this.now(), user.totpLastStep);
    if (step === undefined) return this.failLogin(user);
    const at = this.at();
    await this.store.transaction(async (tx) => {
      if (!(await tx.advanceTotpStep(user.id, step)))
        throw new StrongroomError('unauthenticated', 'the code was already used');
      await tx.setSessionMfa(sessionId, at);
      await this.bumpEpoch(tx);
    });
    return { mfaAt: at };
  }

  /**
   * A signed-in user changes their password (with a recent second factor, enforced by step-up): the current
   * password is checked, the new one must pass the policy, and every other session is revoked.
   */
  async changePassword(principal: Principal, current: string, next: string): Promise<void> {
    const user = principal.kind === 'user' ? await this.store.getUserById(principal.id as UserId) : undefined;
    if (!user || user.passwordHash === null)
      throw new StrongroomError('invalid_request', 'only a user with a password can change it');
    if (!(await verifyPassword(user.passwordHash, current))) return this.failLogin(user);
    checkPasswordPolicy(next, user.username);
    const passwordHash = await hashPassword(next);
    await this.store.transaction(async (tx) => {
      const at = this.at();
      await tx.updateUser(user.id, { passwordHash, updatedAt: at });
      for (const session of await this.otherSessions(tx, user.id, principal.sessionId))
        await tx.revokeSessions({ sessionId: session }, at);
      await this.bumpEpoch(tx);
    });
  }

  private async otherSessions(
    tx: MetadataWriter,
    userId: UserId,
    keep: string | undefined,
  ): Promise<SessionId[]> {
    const ids = new Set<SessionId>();
    for (const token of await tx.listTokens(userId, false))
      if (token.sessionId !== null && token.sessionId !== keep) ids.add(token.sessionId);
    return [...ids];
  }

  /** New single-use recovery codes (shown once); the old ones stop working. */
  async regenerateRecoveryCodes(principal: Principal): Promise<string[]> {
    const user = principal.kind === 'user' ? await this.store.getUserById(principal.id as UserId) : undefined;
    if (!user || user.totp === null)
      throw new StrongroomError('invalid_request', 'only a user with an authenticator has recovery codes');
    const codes = newRecoveryCodes();
    await this.store.transaction((tx) =>
      tx.replaceRecoveryCodes(
        user.id,
        codes.map((c) => recoveryCodeHash(user.id, c)),
      ),
    );
    return codes;
  }

  async deleteGroup(name: string): Promise<void> {
    const group = await this.groupByName(name);
    describeCurrent({ details: { group: group.name } });
    await this.store.transaction(async (tx) => {
      await tx.deleteGroup(group.id);
      // Its role bindings go with it: a group created later under the same name starts with nothing.
      const bindings = (await tx.listRoleBindings()).filter(
        (b) => b.principal.type === 'Group' && b.principal.id === group.name,
      );
      for (const b of bindings) await tx.deleteRoleBinding(b.id);
      if (bindings.length > 0) await bumpPolicyRevision(tx);
      await this.bumpEpoch(tx);
    });
  }

  // ---- single sign-on and federation -------------------------------------------------------------------

  /**
   * A verified OIDC identity signs in: the user linked to (provider, subject) (the same `sub` from two
   * providers is two people, A4), created at first sign-in when allowed; mapped provider groups are synced.
   */
  async ssoSignIn(
    identity: {
      provider: string;
      subject: string;
      email: string | null;
      name: string | null;
      groups: readonly string[];
      devicePosture?: string | null;
    },
    options: {
      groupMapping: Readonly<Record<string, string>>;
      autoCreateUsers: boolean;
      mfaAsserted: boolean;
    },
  ): Promise<SessionTokens> {
    let userId = await this.store.getFederatedUser(identity.provider, identity.subject);
    if (userId === undefined) {
      if (!options.autoCreateUsers)
        throw new StrongroomError(
          'unauthenticated',
          'no Strongroom user is linked to this identity; ask an admin',
        );
      userId = await this.createSsoUser(identity);
    }
    const user = await this.store.getUserById(userId);
    if (user?.state !== 'active') throw new StrongroomError('unauthenticated', 'the user is disabled');
    const method = `oidc:${identity.provider}`;
    describeCurrent({
      actor: { id: user.id, type: 'user', authMethod: method },
      details: {
        username: user.username,
        provider: identity.provider,
        subject: identity.subject.slice(0, 256),
      },
    });
    return this.store.transaction(async (tx) => {
      await this.syncIdpGroups(tx, user.id, identity.provider, identity.groups, options.groupMapping);
      return this.startSession(tx, user, method, options.mfaAsserted, identity.devicePosture ?? null);
    });
  }

  private async createSsoUser(identity: {
    provider: string;
    subject: string;
    email: string | null;
    name: string | null;
  }): Promise<UserId> {
    const base =
      (identity.email?.split('@')[0] ?? identity.name ?? 'user')
        .toLowerCase()
        .replace(/[^a-z0-9._-]+/g, '-')
        .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
        .slice(0, 56) || 'user';
    for (let n = 1; n < 100; n++) {
      const username = n === 1 ? base : `${base}-${n}`;
      const user: User = {
        id: newId('user'),
        username,
        displayName: identity.name ?? username,
        email: identity.email,
        state: 'active',
        passwordHash: null,
        totp: null,
        totpLastStep: 0,
        failedLogins: 0,
        lockedUntil: null,
        createdAt: this.at(),
        createdBy: `oidc:${identity.provider}`,
      };
      try {
        await this.store.transaction(async (tx) => {
          await tx.insertUser(user);
          await tx.insertFederatedIdentity(identity.provider, identity.subject, user.id, this.at());
        });
        return user.id;
      } catch (err) {
        if (!(err instanceof StrongroomError && err.code === 'user_exists')) throw err;
      }
    }
    throw new StrongroomError('internal_error', 'no free username for a new single sign-on user');
  }

  private async syncIdpGroups(
    tx: MetadataWriter,
    userId: UserId,
    provider: string,
    idpGroups: readonly string[],
    mapping: Readonly<Record<string, string>>,
  ): Promise<void> {
    const wanted = new Set(idpGroups.flatMap((g) => (mapping[g] !== undefined ? [mapping[g]] : [])));
    const source = `idp:${provider}`;
    for (const name of new Set(Object.values(mapping))) {
      const group = await tx.getGroupByName(name);
      if (!group) continue;
      if (wanted.has(name)) await tx.addGroupMember(group.id, userId, source);
      else {
        const member = (await tx.listGroupMembers(group.id)).find((m) => m.principalId === userId);
        if (member?.source === source) await tx.removeGroupMember(group.id, userId);
      }
    }
    await this.bumpEpoch(tx);
  }

  /** The short-lived token a workload receives for a trusted issuer's token (no stored secret). */
  async issueFederatedToken(
    accountName: string,
    ttlSeconds: number,
    scope: TokenScope | null,
    description: string,
  ): Promise<IssuedToken> {
    const account = await this.store.getServiceAccountByName(accountName);
    if (!account || account.disabled)
      throw new StrongroomError('unauthenticated', 'the federation rule names no enabled service account');
    return this.store.transaction((tx) =>
      this.issue(tx, 'federated', { principalId: account.id, principalKind: 'service' }, account.id, {
        ttlSeconds,
        scope: scope === null ? null : checkScope(scope),
        environment: account.environment,
        description: description.slice(0, 256),
      }),
    );
  }

  // ---- groups --------------------------------------------------------------------------------------------

  async createGroup(name: string, description = ''): Promise<Group> {
    const group: Group = {
      id: newId('group'),
      name: parsePrincipalName('group', name),
      description,
      createdAt: this.at(),
    };
    await this.store.transaction((tx) => tx.insertGroup(group));
    return group;
  }

  listGroups(page: PageRequest): Promise<Page<Group>> {
    return this.store.listGroups(page);
  }

  async groupMembers(
    name: string,
  ): Promise<{ group: Group; members: { principal: string; source: string }[] }> {
    const group = await this.groupByName(name);
    const members = await this.store.listGroupMembers(group.id);
    return {
      group,
      members: await Promise.all(
        members.map(async (m) => ({ principal: await this.principalRefOf(m.principalId), source: m.source })),
      ),
    };
  }

  /** `user:NAME` or `sa:NAME` -> principal id. */
  async resolvePrincipal(ref: string): Promise<{ id: string; kind: 'user' | 'service' }> {
    const [kind, name = ''] = ref.split(':', 2);
    if (kind === 'user') return { id: (await this.userByName(name)).id, kind: 'user' };
    if (kind === 'sa') return { id: (await this.serviceAccountByName(name)).id, kind: 'service' };
    throw new StrongroomError(
      'invalid_request',
      `principal ${quote(ref)} must be \`user:NAME\` or \`sa:NAME\``,
    );
  }

  private async principalRefOf(id: string): Promise<string> {
    if (id.startsWith('usr_')) return `user:${(await this.store.getUserById(id as UserId))?.username ?? id}`;
    const sa = parseId('serviceAccount', id);
    if (sa) return `sa:${(await this.store.getServiceAccountById(sa))?.name ?? id}`;
    return id;
  }

  async setGroupMember(groupName: string, principalRef: string, member: boolean): Promise<void> {
    const group = await this.groupByName(groupName);
    const principal = await this.resolvePrincipal(principalRef);
    describeCurrent({ details: { group: group.name, principal: principalRef, member } });
    await this.store.transaction(async (tx) => {
      if (member) await tx.addGroupMember(group.id, principal.id, 'manual');
      else if (!(await tx.removeGroupMember(group.id, principal.id)))
        throw new StrongroomError(
          'invalid_request',
          `${quote(principalRef)} is not a member of ${quote(groupName)}`,
        );
      await this.bumpEpoch(tx);
    });
  }

  private async groupByName(name: string): Promise<Group> {
    const group = await this.store.getGroupByName(parsePrincipalName('group', name));
    if (!group) throw new StrongroomError('group_not_found', `group ${quote(name)} does not exist`);
    return group;
  }

  // ---- service accounts and tokens -----------------------------------------------------------------------

  async createServiceAccount(
    actor: Principal,
    input: { name: string; environment: Environment; description?: string | undefined },
  ): Promise<ServiceAccount> {
    if (!ENVIRONMENTS.includes(input.environment))
      throw new StrongroomError('invalid_request', `environment must be one of ${ENVIRONMENTS.join(', ')}`);
    const account: ServiceAccount = {
      id: newId('serviceAccount'),
      name: parsePrincipalName('service account', input.name),
      description: input.description ?? '',
      environment: input.environment,
      disabled: false,
      createdAt: this.at(),
      createdBy: actor.id,
    };
    await this.store.transaction((tx) => tx.insertServiceAccount(account));
    return account;
  }

  async setServiceAccountDisabled(name: string, disabled: boolean): Promise<ServiceAccount> {
    const account = await this.serviceAccountByName(name);
    describeCurrent({ details: { serviceAccount: account.name, disabled } });
    await this.store.transaction(async (tx) => {
      await tx.setServiceAccountDisabled(account.id, disabled);
      await this.bumpEpoch(tx);
    });
    return { ...account, disabled };
  }

  listServiceAccounts(page: PageRequest): Promise<Page<ServiceAccount>> {
    return this.store.listServiceAccounts(page);
  }

  async serviceAccountByName(name: string): Promise<ServiceAccount> {
    const account = await this.store.getServiceAccountByName(parsePrincipalName('service account', name));
    if (!account)
      throw new StrongroomError('service_account_not_found', `service account ${quote(name)} does not exist`);
    return account;
  }

  /** A scoped, expiring API token for a service account, bound to its environment; shown once. */
  async createApiToken(
    actor: Principal,
    accountName: string,
    input: { scope: TokenScope; ttlSeconds: number; description?: string | undefined },
  ): Promise<IssuedToken> {
    const account = await this.serviceAccountByName(accountName);
    if (account.disabled)
      throw new StrongroomError('invalid_request', `service account ${quote(accountName)} is disabled`);
    const scope = checkScope(input.scope);
    if (
      !Number.isSafeInteger(input.ttlSeconds) ||
      input.ttlSeconds < 60 ||
      input.ttlSeconds > this.options.apiTokenMaxTtlSeconds
    )
      throw new StrongroomError(
        'invalid_request',
        `a token lives between 60 and ${this.options.apiTokenMaxTtlSeconds} seconds`,
      );
    const issued = await this.store.transaction((tx) =>
      this.issue(tx, 'api', { principalId: account.id, principalKind: 'service' }, actor.id, {
        ttlSeconds: input.ttlSeconds,
        scope,
        environment: account.environment,
        description: input.description ?? '',
      }),
    );
    describeCurrent({ details: { serviceAccount: account.name, token: issued.record.id } });
    return issued;
  }

  /**
   * A short-lived token derived from the calling token, never wider: its scope is intersected with the
   * parent's, and revoking the parent (or its principal) revokes it on the next request (A7).
   */
  async deriveToken(
    principal: Principal,
    input: { scope: TokenScope; ttlSeconds: number; description?: string | undefined },
  ): Promise<IssuedToken> {
    const parentId = principal.tokenId ? parseId('token', principal.tokenId) : undefined;
    const parent = parentId ? await this.store.getTokenById(parentId) : undefined;
    if (!parent || (parent.kind !== 'api' && parent.kind !== 'federated' && parent.kind !== 'access'))
      throw new StrongroomError('invalid_request', 'only a token can derive a token');
    const ttl = Math.min(
      input.ttlSeconds,
      Math.floor((Date.parse(parent.expiresAt) - this.now().getTime()) / 1000),
    );
    if (ttl < 1) throw new StrongroomError('invalid_request', 'the token expires too soon to derive from');
    const scope = intersectScopes(parent.scope, checkScope(input.scope));
    const issued = await this.store.transaction((tx) =>
      this.issue(
        tx,
        parent.kind === 'access' ? 'access' : parent.kind,
        {
          principalId: parent.principalId,
          principalKind: parent.principalKind,
          sessionId: parent.sessionId,
          parentId: parent.id,
        },
        principal.id,
        { ttlSeconds: ttl, scope, environment: parent.environment, description: input.description ?? '' },
      ),
    );
    describeCurrent({ details: { token: issued.record.id, parent: parent.id } });
    return issued;
  }

  async listTokens(principalRef: string, includeRevoked: boolean): Promise<readonly TokenRecord[]> {
    const principal = await this.resolvePrincipal(principalRef);
    return this.store.listTokens(principal.id, includeRevoked);
  }

  async revokeToken(id: string): Promise<TokenRecord> {
    const token = await this.tokenById(id);
    describeCurrent({ details: { token: token.id } });
    await this.store.transaction(async (tx) => {
      await tx.revokeTokens({ tokenId: token.id }, this.at());
      await this.bumpEpoch(tx);
    });
    return (await this.store.getTokenById(token.id)) as TokenRecord;
  }

  /** A new token with the same scope and lifetime; the old one is revoked in the same transaction. */
  async rotateToken(actor: Principal, id: string): Promise<IssuedToken> {
    const old = await this.tokenById(id);
    if (old.kind !== 'api' || old.revokedAt !== null)
      throw new StrongroomError('invalid_request', 'only an active service-account token can be rotated');
    const ttl = Math.round((Date.parse(old.expiresAt) - Date.parse(old.createdAt)) / 1000);
    describeCurrent({ details: { token: old.id } });
    return this.store.transaction(async (tx) => {
      await tx.revokeTokens({ tokenId: old.id }, this.at());
      await this.bumpEpoch(tx);
      return this.issue(tx, 'api', { principalId: old.principalId, principalKind: 'service' }, actor.id, {
        ttlSeconds: Math.min(ttl, this.options.apiTokenMaxTtlSeconds),
        scope: old.scope,
        environment: old.environment,
        description: old.description,
      });
    });
  }

  private async tokenById(id: string): Promise<TokenRecord> {
    const tokenId = parseId('token', id);
    const token = tokenId ? await this.store.getTokenById(tokenId) : undefined;
    if (!token || token.kind === 'invite')
      throw new StrongroomError('token_not_found', `token ${quote(id)} does not exist`);
    return token;
  }

  /** Mints a token in `tx`: only its SHA-256 is stored. */
  async issue(
    tx: MetadataWriter,
    kind: TokenKind,
    owner: {
      principalId: string;
      principalKind: 'user' | 'service';
      sessionId?: TokenRecord['sessionId'];
      parentId?: TokenId | null;
    },
    createdBy: string,
    options: {
      ttlSeconds: number;
      scope?: TokenScope | null;
      environment?: Environment | null;
      description?: string;
    },
  ): Promise<IssuedToken> {
    const token = newToken(kind);
    const record: TokenRecord = {
      id: newId('token'),
      kind,
      hash: tokenHash(token),
      principalId: owner.principalId,
      principalKind: owner.principalKind,
      sessionId: owner.sessionId ?? null,
      parentId: owner.parentId ?? null,
      scope: options.scope ?? null,
      environment: options.environment ?? null,
      description: options.description ?? '',
      createdAt: this.at(),
      createdBy,
      expiresAt: this.at(options.ttlSeconds),
      revokedAt: null,
    };
    await tx.insertToken(record);
    return { token, record };
  }

  async bumpEpoch(tx: MetadataWriter): Promise<void> {
    const current = Number((await tx.getSetting(IDENTITY_EPOCH_SETTING)) ?? '0');
    await tx.setSetting(IDENTITY_EPOCH_SETTING, String(current + 1));
  }
}

/** A scope names real actions and well-formed project names; nothing else is accepted (B4). */
export function checkScope(scope: TokenScope): TokenScope {
  const known = new Set<string>(ACTIONS);
  for (const action of scope.actions ?? [])
    if (!known.has(action))
      throw new StrongroomError('invalid_request', `unknown action ${quote(action)} in scope`);
  return {
    readOnly: scope.readOnly,
    ...(scope.projects !== undefined ? { projects: [...new Set(scope.projects)].sort() } : {}),
    ...(scope.actions !== undefined ? { actions: [...new Set(scope.actions as Action[])].sort() } : {}),
  };
}

/** The scope allowing only what both allow (a derived token never widens its parent). */
export function intersectScopes(parent: TokenScope | null, child: TokenScope): TokenScope {
  if (parent === null) return child;
  const both = (a?: readonly string[], b?: readonly string[]) =>
    a === undefined ? b : b === undefined ? a : a.filter((x) => b.includes(x));
  const projects = both(parent.projects, child.projects);
  const actions = both(parent.actions, child.actions);
  return {
    readOnly: parent.readOnly || child.readOnly,
    ...(projects !== undefined ? { projects } : {}),
    ...(actions !== undefined ? { actions } : {}),
  };
}
