import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  AccessOfQuery,
  AccessOfView,
  BindingList,
  BindingParams,
  BindingView,
  CreateBindingBody,
  DecideElevationBody,
  ElevationList,
  ElevationListQuery,
  ElevationParams,
  ElevationView,
  ExplainBody,
  ExplainView,
  PolicyList,
  PolicyParams,
  PolicySchemaView,
  PolicyTestBody,
  PolicyTestView,
  PolicyView,
  PutPolicyBody,
  RequestElevationBody,
  ScopeQuery,
  ValidatePolicyBody,
  ValidatePolicyView,
  WhoCanQuery,
  WhoCanView,
} from '../../api/schemas.js';
import type { PolicyRecord, PolicyScope } from '../../core/domain.js';
import { StrongroomError, quote } from '../../core/errors.js';
import {
  scopeName,
  type AccessGrant,
  type AccessService,
  type BindingView as BindingRecordView,
  type ElevationView as ElevationRecordView,
  type PrincipalName,
} from '../../governance/access-service.js';
import {
  ACTIONS,
  BOOTSTRAP_ADMIN,
  type Action,
  type Principal,
  type ResourceRef,
} from '../../policy/authorizer.js';
import { policyTestCaseSchema, type PolicyTestCase } from '../../policy/cedar/policy-test.js';

const errors = { '4xx': { $ref: 'Problem#' }, '5xx': { $ref: 'Problem#' } } as const;
const org = (): ResourceRef => ({ kind: 'organization' });

/**
 * Role bindings, custom policies, explain and policy tests, access review, and just-in-time elevation
 * (docs/authorization.md). Managing access is itself authorized at the scope it changes: a project's admin
 * manages that project's bindings and policies, an organization admin everything.
 */
export async function accessRoutes(base: FastifyInstance, opts: { access: AccessService }): Promise<void> {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { access } = opts;

  // ---- schema and custom policies --------------------------------------------------------------------------

  app.get(
    '/api/v1/policy/schema',
    {
      schema: { tags: ['policy'], response: { 200: PolicySchemaView, ...errors } },
      config: { action: 'policy:read', resource: org },
    },
    async () => ({ schema: access.schema() }),
  );

  app.get(
    '/api/v1/policy/policies',
    {
      schema: { tags: ['policy'], querystring: ScopeQuery, response: { 200: PolicyList, ...errors } },
      config: { action: 'policy:read', resource: (r) => scopeResource(queryScope(r)) },
    },
    async (request) => ({
      items: (await access.listPolicies(optionalScope(request.query.scope))).map(policyView),
    }),
  );

  app.get(
    '/api/v1/policy/policies/:policy',
    {
      schema: { tags: ['policy'], params: PolicyParams, response: { 200: PolicyView, ...errors } },
      config: { action: 'policy:read', resource: (r) => record(r, 'policy', 'policy') },
    },
    async (request) => policyView(await access.getPolicy(request.params.policy)),
  );

  app.put(
    '/api/v1/policy/policies/:policy',
    {
      schema: {
        tags: ['policy'],
        summary: 'Add (201) or replace (200) a custom Cedar policy, validated against the schema first',
        params: PolicyParams,
        body: PutPolicyBody,
        response: { 200: PolicyView, 201: PolicyView, ...errors },
      },
      config: { action: 'policy:manage', resource: (r) => scopeResource(bodyScope(r)) },
    },
    async (request, reply) => {
      const { policy, created } = await access.putPolicy(principalOf(request), request.params.policy, {
        text: request.body.text,
        scope: parseScope(request.body.scope),
        ...(request.body.description === undefined ? {} : { description: request.body.description }),
      });
      return reply.code(created ? 201 : 200).send(policyView(policy));
    },
  );

  app.delete(
    '/api/v1/policy/policies/:policy',
    {
      schema: { tags: ['policy'], params: PolicyParams, response: { 204: { type: 'null' }, ...errors } },
      config: { action: 'policy:manage', resource: (r) => record(r, 'policy', 'policy') },
    },
    async (request, reply) => {
      await access.deletePolicy(request.params.policy);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/api/v1/policy/validate',
    {
      schema: {
        tags: ['policy'],
        summary: 'Check a policy against the schema and the stored policies without storing it',
        body: ValidatePolicyBody,
        response: { 200: ValidatePolicyView, ...errors },
      },
      config: { action: 'policy:read', resource: (r) => scopeResource(bodyScope(r)) },
    },
    async (request) => {
      await access.validatePolicy(request.body.id ?? 'candidate', {
        text: request.body.text,
        scope: parseScope(request.body.scope),
      });
      return { valid: true as const };
    },
  );

  // ---- role bindings ---------------------------------------------------------------------------------------

  app.get(
    '/api/v1/policy/bindings',
    {
      schema: { tags: ['policy'], querystring: ScopeQuery, response: { 200: BindingList, ...errors } },
      config: { action: 'policy:read', resource: (r) => scopeResource(queryScope(r)) },
    },
    async (request) => ({
      items: (await access.listBindings(optionalScope(request.query.scope))).map(bindingView),
    }),
  );

  app.get(
    '/api/v1/policy/bindings/:binding',
    {
      schema: { tags: ['policy'], params: BindingParams, response: { 200: BindingView, ...errors } },
      config: { action: 'policy:read', resource: (r) => record(r, 'binding', 'binding') },
    },
    async (request) => {
      return bindingView(await access.getBinding(request.params.binding));
    },
  );

  app.post(
    '/api/v1/policy/bindings',
    {
      schema: {
        tags: ['policy'],
        summary: 'Grant a built-in role to a user, service account or group at a scope',
        body: CreateBindingBody,
        response: { 201: BindingView, ...errors },
      },
      config: { action: 'policy:manage', resource: (r) => scopeResource(bodyScope(r)) },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await access.createBinding(principalOf(request), {
        ...(body.id === undefined ? {} : { id: body.id }),
        role: body.role,
        principal: parsePrincipal(body.principal),
        scope: parseScope(body.scope),
        ...(body.expiresAt === undefined ? {} : { expiresAt: body.expiresAt }),
        ...(body.description === undefined ? {} : { description: body.description }),
      });
      return reply.code(201).send(bindingView(created));
    },
  );

  app.delete(
    '/api/v1/policy/bindings/:binding',
    {
      schema: { tags: ['policy'], params: BindingParams, response: { 204: { type: 'null' }, ...errors } },
      config: { action: 'policy:manage', resource: (r) => record(r, 'binding', 'binding') },
    },
    async (request, reply) => {
      await access.deleteBinding(request.params.binding);
      return reply.code(204).send(null);
    },
  );

  // ---- explain and test ------------------------------------------------------------------------------------

  app.post(
    '/api/v1/policy/explain',
    {
      schema: {
        tags: ['policy'],
        summary: 'The decision a principal would get, and the ids of the policies behind it',
        body: ExplainBody,
        response: { 200: ExplainView, ...errors },
      },
      config: { action: 'policy:read', resource: org },
    },
    async (request) => {
      const body = request.body;
      const principal = parsePrincipal(body.principal);
      if (principal.type === 'group')
        throw new StrongroomError('invalid_request', 'explain names a user (`user:NAME`) or `sa:NAME`');
      const explanation = await access.explain({
        principal,
        action: parseAction(body.action),
        resource: parseResource(body.resource),
        ...(body.context === undefined ? {} : { context: body.context }),
      });
      return {
        ...explanation,
        reasons: [...explanation.reasons],
        errors: [...explanation.errors],
        context: plainContext(explanation.context),
        entities: [...explanation.entities],
      };
    },
  );

  app.post(
    '/api/v1/policy/test',
    {
      schema: {
        tags: ['policy'],
        summary: 'Run policy test cases against the policies in force',
        body: PolicyTestBody,
        response: { 200: PolicyTestView, ...errors },
      },
      config: { action: 'policy:read', resource: org },
    },
    async (request) => {
      const cases = request.body.cases.map((item, i): PolicyTestCase => {
        const parsed = policyTestCaseSchema.safeParse(item);
        if (parsed.success) return parsed.data;
        const issue = parsed.error.issues[0];
        throw new StrongroomError(
          'invalid_request',
          `policy test case ${i + 1}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'is invalid'}`,
          { details: { case: i + 1, path: issue?.path.join('.') ?? '' } },
        );
      });
      const results = await access.test(cases);
      const passed = results.filter((r) => r.passed).length;
      return {
        passed,
        failed: results.length - passed,
        results: results.map((r) => ({
          name: r.name,
          passed: r.passed,
          expected: r.expected,
          decision: r.actual.decision,
          reasons: [...r.actual.reasons],
          errors: [...r.actual.errors],
          ...(r.failure === undefined ? {} : { failure: r.failure }),
        })),
      };
    },
  );

  // ---- access review ---------------------------------------------------------------------------------------

  app.get(
    '/api/v1/access/who-can',
    {
      schema: {
        tags: ['access'],
        summary: 'Everyone who holds an action on a resource, and where it comes from',
        querystring: WhoCanQuery,
        response: { 200: WhoCanView, ...errors },
      },
      config: {
        action: 'access:review',
        resource: (r) => reviewScope(parseResource((r.query as { resource: string }).resource)),
      },
    },
    async (request) => {
      const answer = await access.whoCan(
        parseAction(request.query.action),
        parseResource(request.query.resource),
      );
      return {
        ...answer,
        resource: request.query.resource,
        grants: answer.grants.map(grantView),
        conditions: answer.conditions.map(conditionView),
      };
    },
  );

  app.get(
    '/api/v1/access/of',
    {
      schema: {
        tags: ['access'],
        summary: 'What a user or service account may do, and where each grant comes from',
        querystring: AccessOfQuery,
        response: { 200: AccessOfView, ...errors },
      },
      config: { action: 'access:review', resource: org },
    },
    async (request) => {
      const answer = await access.accessOf(parsePrincipal(request.query.principal));
      return {
        principal: `${answer.principal.type === 'User' ? 'user' : 'sa'}:${answer.principal.name}`,
        principalId: answer.principal.id,
        groups: [...answer.groups],
        grants: answer.grants.map((g) => ({
          ...grantView(g),
          actions: g.actions === 'all' ? ('all' as const) : [...g.actions],
          active: g.active,
        })),
        conditions: answer.conditions.map(conditionView),
      };
    },
  );

  // ---- just-in-time elevation ------------------------------------------------------------------------------

  app.post(
    '/api/v1/elevations',
    {
      schema: {
        tags: ['access'],
        summary: 'Ask for a role at a scope for a while; someone else approves',
        body: RequestElevationBody,
        response: { 201: ElevationView, ...errors },
      },
      config: { action: 'elevation:request', resource: org },
    },
    async (request, reply) => {
      const body = request.body;
      const created = await access.requestElevation(principalOf(request), {
        role: body.role,
        scope: parseScope(body.scope),
        durationSeconds: body.durationSeconds,
        reason: body.reason,
      });
      const requester = principalOf(request).name ?? null;
      return reply.code(201).send(elevationView({ ...created, status: 'pending', requesterName: requester }));
    },
  );

  app.get(
    '/api/v1/elevations',
    {
      schema: {
        tags: ['access'],
        summary: 'Your own elevation requests and those you may decide',
        querystring: ElevationListQuery,
        response: { 200: ElevationList, ...errors },
      },
      config: { action: 'elevation:read', resource: org },
    },
    async (request) => ({
      items: (
        await access.listElevations(
          principalOf(request),
          request.client,
          request.query.status as ElevationRecordView['status'] | undefined,
        )
      ).map(elevationView),
    }),
  );

  app.get(
    '/api/v1/elevations/:elevation',
    {
      schema: { tags: ['access'], params: ElevationParams, response: { 200: ElevationView, ...errors } },
      config: { action: 'elevation:read', resource: org },
    },
    async (request) =>
      elevationView(
        await access.getElevation(principalOf(request), request.client, request.params.elevation),
      ),
  );

  for (const verdict of ['approve', 'deny'] as const) {
    app.post(
      `/api/v1/elevations/:elevation/${verdict}`,
      {
        schema: {
          tags: ['access'],
          summary:
            verdict === 'approve'
              ? 'Approve an elevation: the requester holds the role until the duration ends'
              : 'Deny an elevation request',
          params: ElevationParams,
          body: DecideElevationBody,
          response: { 200: ElevationView, ...errors },
        },
        config: { action: 'elevation:approve', resource: (r) => record(r, 'elevation', 'elevation') },
      },
      async (request) =>
        elevationView(
          await access.decideElevation(
            principalOf(request),
            request.params.elevation,
            verdict,
            request.body?.reason,
          ),
        ),
    );
  }

  app.post(
    '/api/v1/elevations/:elevation/cancel',
    {
      schema: { tags: ['access'], params: ElevationParams, response: { 200: ElevationView, ...errors } },
      config: { action: 'elevation:request', resource: org },
    },
    async (request) =>
      elevationView(await access.cancelElevation(principalOf(request), request.params.elevation)),
  );
}

function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new StrongroomError('unauthenticated', 'the request has no credentials');
  return request.principal;
}

function record(
  request: FastifyRequest,
  kind: 'binding' | 'policy' | 'elevation',
  param: string,
): ResourceRef {
  return { kind: 'record', record: kind, id: (request.params as Record<string, string>)[param] ?? '' };
}

function queryScope(request: FastifyRequest): string {
  return (request.query as { scope?: string }).scope ?? 'organization';
}

function bodyScope(request: FastifyRequest): string {
  return (request.body as { scope: string }).scope;
}

function optionalScope(scope: string | undefined): PolicyScope | undefined {
  return scope === undefined ? undefined : parseScope(scope);
}

/** `organization`, `project:P` or `artifact:P/A` (the schema checked the shape). */
export function parseScope(text: string): PolicyScope {
  if (text === 'organization') return { type: 'Organization', id: 'default' };
  const [kind, id] = [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)];
  if (kind === 'project' && id !== '' && !id.includes('/')) return { type: 'Project', id };
  if (kind === 'artifact' && /^[^/]+\/[^/]+$/.test(id)) return { type: 'Artifact', id };
  throw new StrongroomError(
    'invalid_request',
    `scope ${quote(text)} is not organization, project:P or artifact:P/A`,
  );
}

function scopeResource(text: string): ResourceRef {
  const scope = parseScope(text);
  if (scope.type === 'Organization') return { kind: 'organization' };
  const [project, artifact] = scope.id.split('/') as [string, string | undefined];
  return artifact === undefined ? { kind: 'project', project } : { kind: 'artifact', project, artifact };
}

/** Access to a version or artifact is reviewed by whoever may review its project. */
function reviewScope(resource: ResourceRef): ResourceRef {
  if (resource.kind === 'version' || resource.kind === 'artifact')
    return { kind: 'artifact', project: resource.project, artifact: resource.artifact };
  return resource;
}

/** `organization`, `PROJECT`, `PROJECT/ARTIFACT` or `PROJECT/ARTIFACT:VERSION`, as the CLI writes them. */
export function parseResource(text: string): ResourceRef {
  if (text === 'organization') return { kind: 'organization' };
  const match = /^([^/:\s]+)(?:\/([^/:\s]+)(?::([^/\s]+))?)?$/.exec(text);
  if (!match)
    throw new StrongroomError(
      'invalid_request',
      `resource ${quote(text)} is not organization, PROJECT, PROJECT/ARTIFACT or PROJECT/ARTIFACT:VERSION`,
    );
  const [, project, artifact, version] = match as unknown as [string, string, string?, string?];
  if (artifact === undefined) return { kind: 'project', project };
  if (version === undefined) return { kind: 'artifact', project, artifact };
  return { kind: 'version', project, artifact, version };
}

function parsePrincipal(text: string): PrincipalName {
  const at = text.indexOf(':');
  const type = text.slice(0, at);
  if (type !== 'user' && type !== 'sa' && type !== 'group')
    throw new StrongroomError(
      'invalid_request',
      `principal ${quote(text)} is not user:NAME, sa:NAME or group:NAME`,
    );
  return { type, name: text.slice(at + 1) };
}

function parseAction(text: string): Action {
  if (!(ACTIONS as readonly string[]).includes(text))
    throw new StrongroomError('invalid_request', `unknown action ${quote(text)}`);
  return text as Action;
}

/** Explain's context as plain JSON: Cedar's extension values (`ip(...)`) become their text. */
function plainContext(context: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(context).map(([key, value]) => {
      const extension = (value as { __extn?: { arg?: unknown } } | null)?.__extn;
      return [key, extension === undefined ? value : extension.arg];
    }),
  );
}

/**
 * How a grant's holder is shown: `user:NAME`, `sa:NAME`, `group:NAME`, or for the built-ins `*` (every
 * authenticated principal) and `bootstrap-token` (whoever holds it while it is enabled).
 */
function principalLabel(p: { type: string; id: string }, name: string | null): string {
  if (p.type === 'User' && p.id === BOOTSTRAP_ADMIN) return 'bootstrap-token';
  if (p.type === 'Group') return p.id === '*' ? '*' : `group:${p.id}`;
  return `${p.type === 'User' ? 'user' : 'sa'}:${name ?? p.id}`;
}

function bindingView(b: BindingRecordView): BindingView {
  return {
    id: b.id,
    role: b.role,
    principal: principalLabel(b.principal, b.principalName),
    principalId: b.principal.id,
    scope: scopeName(b.scope),
    expiresAt: b.expiresAt,
    active: b.active,
    description: b.description,
    createdAt: b.createdAt,
    createdBy: b.createdBy,
    elevationId: b.elevationId,
  };
}

function policyView(p: PolicyRecord): PolicyView {
  return { ...p, scope: scopeName(p.scope) };
}

function grantView(g: AccessGrant) {
  return {
    principal: principalLabel(g.principal, g.principalName),
    principalId: g.principal.id,
    source: g.source,
    role: g.role,
    scope: scopeName(g.scope),
    expiresAt: g.expiresAt,
    via: g.via,
  };
}

function conditionView(c: { policy: string; effect: string; scope: PolicyScope }) {
  return { policy: c.policy, effect: c.effect, scope: scopeName(c.scope) };
}

function elevationView(e: ElevationRecordView): ElevationView {
  return {
    id: e.id,
    requester: e.requesterName,
    requesterId: e.requesterId,
    role: e.role,
    scope: scopeName(e.scope),
    durationSeconds: e.durationSeconds,
    reason: e.reason,
    status: e.status,
    requestedAt: e.requestedAt,
    requestExpiresAt: e.requestExpiresAt,
    decidedBy: e.decidedBy,
    decidedAt: e.decidedAt,
    decisionReason: e.decisionReason,
    bindingId: e.bindingId,
    grantExpiresAt: e.grantExpiresAt,
  };
}
