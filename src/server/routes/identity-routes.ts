import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  BootstrapTokenView,
  ChangePasswordBody,
  RecoveryCodesView,
  CreateGroupBody,
  FederateBody,
  FederatedTokenView,
  SsoCallbackQuery,
  SsoPendingView,
  SsoPollBody,
  SsoProviderParams,
  SsoStartView,
  CreateServiceAccountBody,
  CreateTokenBody,
  EnrollFinishBody,
  EnrollFinishView,
  EnrollStartBody,
  EnrollStartView,
  GroupMemberBody,
  GroupMemberParams,
  GroupMembersView,
  GroupPage,
  GroupParams,
  GroupView,
  InviteUserBody,
  InviteView,
  IssuedTokenView,
  LoginBody,
  PageQuery,
  RefreshBody,
  ServiceAccountPage,
  ServiceAccountParams,
  ServiceAccountView,
  SessionTokensView,
  StepUpBody,
  StepUpView,
  TokenList,
  TokenListQuery,
  TokenParams,
  TokenView as TokenViewSchema,
  UserPage,
  UserParams,
  UserView as UserViewSchema,
} from '../../api/schemas.js';
import { describeCurrent } from '../../audit/audit-scope.js';
import {
  DEFAULT_PAGE_SIZE,
  type Group,
  type ServiceAccount,
  type TokenRecord,
  type TokenScope,
  type User,
} from '../../core/domain.js';
import { StrongroomError } from '../../core/errors.js';
import { randomToken, sha256Hex } from '../../crypto/digest.js';
import { BOOTSTRAP_DISABLED, BOOTSTRAP_TOKEN_SETTING } from '../../identity/identity-authenticator.js';
import type { IdentityService, IssuedToken } from '../../identity/identity-service.js';
import type { SsoService } from '../../identity/sso-service.js';
import type { Principal } from '../../policy/authorizer.js';
import type { MetadataStore } from '../../storage/metadata-store.js';
import { resourceOf } from '../pipeline.js';

const errors = { '4xx': { $ref: 'Problem#' }, '5xx': { $ref: 'Problem#' } } as const;
const org = resourceOf.organization;

export interface IdentityRouteDeps {
  readonly identity: IdentityService;
  readonly sso: SsoService;
  /** The audited store (bootstrap-token changes are recorded with their request). */
  readonly store: MetadataStore;
}

function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new StrongroomError('unauthenticated', 'the request has no credentials');
  return request.principal;
}

function pageOf(query: { limit?: number | undefined; cursor?: string | undefined }) {
  return { limit: query.limit ?? DEFAULT_PAGE_SIZE, after: query.cursor };
}

export function userView(u: User) {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    email: u.email,
    state: u.state,
    lockedUntil: u.lockedUntil,
    failedLogins: u.failedLogins,
    createdAt: u.createdAt,
  };
}

function groupView(g: Group) {
  return { name: g.name, description: g.description, createdAt: g.createdAt };
}

function accountView(a: ServiceAccount) {
  return {
    id: a.id,
    name: a.name,
    description: a.description,
    environment: a.environment,
    disabled: a.disabled,
    createdAt: a.createdAt,
  };
}

function scopeView(scope: TokenScope | null) {
  if (scope === null) return null;
  return {
    readOnly: scope.readOnly,
    ...(scope.projects ? { projects: [...scope.projects] } : {}),
    ...(scope.actions ? { actions: [...scope.actions] } : {}),
  };
}

function tokenView(t: TokenRecord) {
  return {
    id: t.id,
    kind: t.kind,
    principal: t.principalId,
    scope: scopeView(t.scope),
    environment: t.environment,
    description: t.description,
    parentId: t.parentId,
    createdAt: t.createdAt,
    expiresAt: t.expiresAt,
    revokedAt: t.revokedAt,
  };
}

function issuedView(issued: IssuedToken) {
  return { token: issued.token, record: tokenView(issued.record) };
}

/** Sign-in, enrolment, step-up, and the admin routes for users, groups, service accounts and tokens. */
export async function identityRoutes(base: FastifyInstance, deps: IdentityRouteDeps): Promise<void> {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { identity } = deps;

  // ---- sign-in (public: these routes are how credentials are obtained) -----------------------------------

  app.post(
    '/api/v1/auth/login',
    {
      schema: { tags: ['auth'], body: LoginBody, response: { 200: SessionTokensView, ...errors } },
      config: { public: true, action: 'auth:login' },
    },
    async (request, reply) => {
      const tokens = await identity.login(request.body).catch((err: unknown) => {
        if (err instanceof StrongroomError && err.code === 'account_locked') {
          const retry = Number(err.details?.['retryAfterSeconds'] ?? 60);
          reply.header('retry-after', String(retry));
        }
        throw err;
      });
      return tokens;
    },
  );

  app.post(
    '/api/v1/auth/refresh',
    {
      schema: { tags: ['auth'], body: RefreshBody, response: { 200: SessionTokensView, ...errors } },
      config: { public: true, action: 'auth:refresh' },
    },
    async (request) => identity.refresh(request.body.refreshToken),
  );

  app.post(
    '/api/v1/auth/enroll/start',
    {
      schema: {
        tags: ['auth'],
        summary: 'Accept an invitation: set a password, receive the TOTP secret to enrol',
        body: EnrollStartBody,
        response: { 200: EnrollStartView, ...errors },
      },
      config: { public: true, action: 'auth:enroll' },
    },
    async (request) => identity.startEnrolment(request.body.inviteToken, request.body.password),
  );

  app.post(
    '/api/v1/auth/enroll/finish',
    {
      schema: {
        tags: ['auth'],
        summary: 'Prove the authenticator with a code; returns recovery codes and a session',
        body: EnrollFinishBody,
        response: { 200: EnrollFinishView, ...errors },
      },
      config: { public: true, action: 'auth:enroll' },
    },
    async (request) => identity.finishEnrolment(request.body.inviteToken, request.body.code),
  );

  // ---- single sign-on and workload federation (public: they obtain credentials) --------------------------

  app.post(
    '/api/v1/auth/oidc/:provider/start',
    {
      schema: {
        tags: ['auth'],
        summary: 'Start a single sign-on: open `authorizationUrl` in a browser, then poll with the secret',
        params: SsoProviderParams,
        response: { 200: SsoStartView, ...errors },
      },
      config: { public: true, action: 'auth:sso' },
    },
    async (request) => deps.sso.start(request.params.provider),
  );

  app.get(
    '/api/v1/auth/oidc/callback',
    {
      schema: { tags: ['auth'], hide: true, querystring: SsoCallbackQuery },
      config: { public: true, action: 'auth:sso' },
    },
    async (request, reply) => {
      const page = (title: string, text: string) =>
        `<!doctype html><meta charset="utf-8"><title>${title}</title><p>${text}</p>`;
      reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-security-policy', "default-src 'none'");
      try {
        await deps.sso.callback(request.query);
      } catch (err) {
        request.errorCode = err instanceof StrongroomError ? err.code : 'internal_error';
        return reply
          .code(401)
          .send(page('Sign-in failed', 'The sign-in failed. Start again from your terminal.'));
      }
      return reply.send(
        page(
          'Signed in',
          'You are signed in to Strongroom. You can close this page and return to your terminal.',
        ),
      );
    },
  );

  app.post(
    '/api/v1/auth/oidc/poll',
    {
      schema: {
        tags: ['auth'],
        summary: 'Collect the session of a single sign-on (202 while the browser side is pending)',
        body: SsoPollBody,
        response: { 200: SessionTokensView, 202: SsoPendingView, ...errors },
      },
      config: { public: true, action: 'auth:sso' },
    },
    async (request, reply) => {
      const result = deps.sso.poll(request.body.loginId, request.body.pollSecret);
      if (result.status === 'pending') return reply.code(202).send({ status: 'pending' });
      return result.tokens;
    },
  );

  app.post(
    '/api/v1/auth/federate',
    {
      schema: {
        tags: ['auth'],
        summary: 'Exchange a trusted workload identity token (CI, Kubernetes) for a short-lived token',
        body: FederateBody,
        response: { 201: FederatedTokenView, ...errors },
      },
      config: { public: true, action: 'auth:federate' },
    },
    async (request, reply) => {
      const { issued, serviceAccount } = await deps.sso.federate(request.body.token);
      return reply.code(201).send({ ...issuedView(issued), serviceAccount });
    },
  );

  // ---- the caller's own session --------------------------------------------------------------------------

  app.post(
    '/api/v1/auth/step-up',
    {
      schema: { tags: ['auth'], body: StepUpBody, response: { 200: StepUpView, ...errors } },
      config: { action: 'auth:step-up', resource: org },
    },
    async (request) => identity.stepUp(principalOf(request), request.body.code),
  );

  app.post(
    '/api/v1/auth/logout',
    {
      schema: { tags: ['auth'], response: { 204: { type: 'null' }, ...errors } },
      config: { action: 'session:revoke', resource: org },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      if (!principal.sessionId) throw new StrongroomError('invalid_request', 'this token has no session');
      await identity.revokeSession(principal, principal.sessionId);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/password',
    {
      schema: {
        tags: ['auth'],
        summary: 'Change your password (needs step-up); your other sessions are revoked',
        body: ChangePasswordBody,
        response: { 204: { type: 'null' }, ...errors },
      },
      config: { action: 'auth:password', resource: org },
    },
    async (request, reply) => {
      await identity.changePassword(
        principalOf(request),
        request.body.currentPassword,
        request.body.newPassword,
      );
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/auth/recovery-codes',
    {
      schema: {
        tags: ['auth'],
        summary: 'Replace your recovery codes (needs step-up); shown once',
        response: { 200: RecoveryCodesView, ...errors },
      },
      config: { action: 'auth:recovery-codes', resource: org },
    },
    async (request) => ({ recoveryCodes: await identity.regenerateRecoveryCodes(principalOf(request)) }),
  );

  app.post(
    '/api/v1/auth/derive',
    {
      schema: {
        tags: ['auth'],
        summary: 'Mint a shorter-lived, narrower token from the calling token (its child: revoked with it)',
        body: CreateTokenBody,
        response: { 201: IssuedTokenView, ...errors },
      },
      config: { action: 'session:read', resource: org },
    },
    async (request, reply) =>
      reply.code(201).send(issuedView(await identity.deriveToken(principalOf(request), request.body))),
  );

  // ---- users ---------------------------------------------------------------------------------------------

  app.post(
    '/api/v1/users',
    {
      schema: { tags: ['users'], body: InviteUserBody, response: { 201: InviteView, ...errors } },
      config: { action: 'user:create', resource: org },
    },
    async (request, reply) => {
      const { user, invite } = await identity.inviteUser(principalOf(request), request.body);
      return reply
        .code(201)
        .send({ user: userView(user), inviteToken: invite.token, expiresAt: invite.record.expiresAt });
    },
  );

  app.get(
    '/api/v1/users',
    {
      schema: { tags: ['users'], querystring: PageQuery, response: { 200: UserPage, ...errors } },
      config: { action: 'user:list', resource: org },
    },
    async (request) => {
      const page = await identity.listUsers(pageOf(request.query));
      return { items: page.items.map(userView), nextCursor: page.next };
    },
  );

  app.get(
    '/api/v1/users/:user',
    {
      schema: { tags: ['users'], params: UserParams, response: { 200: UserViewSchema, ...errors } },
      config: { action: 'user:read', resource: org },
    },
    async (request) => userView(await identity.userByName(request.params.user)),
  );

  for (const [verb, summary] of [
    ['disable', 'Disable a user: every session and token is revoked at once'],
    ['enable', 'Enable a disabled user'],
    ['unlock', 'Clear failed sign-ins and any lock'],
  ] as const) {
    app.post(
      `/api/v1/users/:user/${verb}`,
      {
        schema: {
          tags: ['users'],
          summary,
          params: UserParams,
          response: { 200: UserViewSchema, ...errors },
        },
        config: { action: 'user:update', resource: org },
      },
      async (request) => {
        const name = request.params.user;
        const user =
          verb === 'unlock'
            ? await identity.unlockUser(name)
            : await identity.setUserDisabled(name, verb === 'disable');
        return userView(user);
      },
    );
  }

  app.post(
    '/api/v1/users/:user/reset',
    {
      schema: {
        tags: ['users'],
        summary: 'Start enrolment over (lost authenticator): revokes everything, returns a new invitation',
        params: UserParams,
        response: { 200: InviteView, ...errors },
      },
      config: { action: 'user:update', resource: org },
    },
    async (request) => {
      const { user, invite } = await identity.resetUser(principalOf(request), request.params.user);
      return { user: userView(user), inviteToken: invite.token, expiresAt: invite.record.expiresAt };
    },
  );

  // ---- groups --------------------------------------------------------------------------------------------

  app.post(
    '/api/v1/groups',
    {
      schema: { tags: ['groups'], body: CreateGroupBody, response: { 201: GroupView, ...errors } },
      config: { action: 'group:create', resource: org },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(groupView(await identity.createGroup(request.body.name, request.body.description))),
  );

  app.get(
    '/api/v1/groups',
    {
      schema: { tags: ['groups'], querystring: PageQuery, response: { 200: GroupPage, ...errors } },
      config: { action: 'group:list', resource: org },
    },
    async (request) => {
      const page = await identity.listGroups(pageOf(request.query));
      return { items: page.items.map(groupView), nextCursor: page.next };
    },
  );

  app.get(
    '/api/v1/groups/:group',
    {
      schema: { tags: ['groups'], params: GroupParams, response: { 200: GroupMembersView, ...errors } },
      config: { action: 'group:list', resource: org },
    },
    async (request) => {
      const { group, members } = await identity.groupMembers(request.params.group);
      return { group: groupView(group), members };
    },
  );

  app.delete(
    '/api/v1/groups/:group',
    {
      schema: { tags: ['groups'], params: GroupParams, response: { 204: { type: 'null' }, ...errors } },
      config: { action: 'group:update', resource: org },
    },
    async (request, reply) => {
      await identity.deleteGroup(request.params.group);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/groups/:group/members',
    {
      schema: {
        tags: ['groups'],
        params: GroupParams,
        body: GroupMemberBody,
        response: { 204: { type: 'null' }, ...errors },
      },
      config: { action: 'group:update', resource: org },
    },
    async (request, reply) => {
      await identity.setGroupMember(request.params.group, request.body.principal, true);
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/api/v1/groups/:group/members/:principal',
    {
      schema: { tags: ['groups'], params: GroupMemberParams, response: { 204: { type: 'null' }, ...errors } },
      config: { action: 'group:update', resource: org },
    },
    async (request, reply) => {
      await identity.setGroupMember(request.params.group, request.params.principal, false);
      return reply.code(204).send(null);
    },
  );

  // ---- service accounts and tokens -----------------------------------------------------------------------

  app.post(
    '/api/v1/service-accounts',
    {
      schema: {
        tags: ['service accounts'],
        body: CreateServiceAccountBody,
        response: { 201: ServiceAccountView, ...errors },
      },
      config: { action: 'sa:create', resource: org },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(accountView(await identity.createServiceAccount(principalOf(request), request.body))),
  );

  app.get(
    '/api/v1/service-accounts',
    {
      schema: {
        tags: ['service accounts'],
        querystring: PageQuery,
        response: { 200: ServiceAccountPage, ...errors },
      },
      config: { action: 'sa:list', resource: org },
    },
    async (request) => {
      const page = await identity.listServiceAccounts(pageOf(request.query));
      return { items: page.items.map(accountView), nextCursor: page.next };
    },
  );

  for (const verb of ['disable', 'enable'] as const) {
    app.post(
      `/api/v1/service-accounts/:account/${verb}`,
      {
        schema: {
          tags: ['service accounts'],
          params: ServiceAccountParams,
          response: { 200: ServiceAccountView, ...errors },
        },
        config: { action: 'sa:update', resource: org },
      },
      async (request) =>
        accountView(await identity.setServiceAccountDisabled(request.params.account, verb === 'disable')),
    );
  }

  app.post(
    '/api/v1/service-accounts/:account/tokens',
    {
      schema: {
        tags: ['service accounts'],
        summary: 'Issue a scoped, expiring token (shown once) bound to the account environment',
        params: ServiceAccountParams,
        body: CreateTokenBody,
        response: { 201: IssuedTokenView, ...errors },
      },
      config: { action: 'token:create', resource: org },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(
          issuedView(
            await identity.createApiToken(principalOf(request), request.params.account, request.body),
          ),
        ),
  );

  app.get(
    '/api/v1/tokens',
    {
      schema: { tags: ['tokens'], querystring: TokenListQuery, response: { 200: TokenList, ...errors } },
      config: { action: 'token:list', resource: org },
    },
    async (request) => ({
      items: (await identity.listTokens(request.query.principal, request.query.includeRevoked === true)).map(
        tokenView,
      ),
    }),
  );

  app.post(
    '/api/v1/tokens/:token/revoke',
    {
      schema: { tags: ['tokens'], params: TokenParams, response: { 200: TokenViewSchema, ...errors } },
      config: { action: 'token:revoke', resource: org },
    },
    async (request) => tokenView(await identity.revokeToken(request.params.token)),
  );

  app.post(
    '/api/v1/tokens/:token/rotate',
    {
      schema: { tags: ['tokens'], params: TokenParams, response: { 201: IssuedTokenView, ...errors } },
      config: { action: 'token:create', resource: org },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(issuedView(await identity.rotateToken(principalOf(request), request.params.token))),
  );

  // ---- the bootstrap (break-glass) token -----------------------------------------------------------------

  for (const verb of ['rotate', 'disable'] as const) {
    app.post(
      `/api/v1/bootstrap-token/${verb}`,
      {
        schema: {
          tags: ['tokens'],
          summary:
            verb === 'rotate'
              ? 'Replace the break-glass bootstrap token (the new one is shown once)'
              : 'Turn the break-glass bootstrap token off (rotate turns it on again)',
          response: { 200: BootstrapTokenView, ...errors },
        },
        config: { action: 'bootstrap:manage', resource: org },
      },
      async () => {
        const token = verb === 'rotate' ? randomToken('srt_') : null;
        describeCurrent({ details: { bootstrapToken: verb === 'rotate' ? 'rotated' : 'disabled' } });
        await deps.store.transaction(async (tx) => {
          await tx.setSetting(
            BOOTSTRAP_TOKEN_SETTING,
            token === null ? BOOTSTRAP_DISABLED : sha256Hex(token),
          );
          await identity.bumpEpoch(tx);
        });
        return { token, enabled: token !== null };
      },
    );
  }
}
