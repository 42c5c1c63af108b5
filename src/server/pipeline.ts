import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { AuditActor, AuditCategory, AuditEventBody, AuditSeverity } from '../audit/audit-event.js';
import { unavailable, type AuditLog } from '../audit/audit-log.js';
import { runInScope, type AuditScope } from '../audit/audit-scope.js';
import { StrongroomError, type ErrorCode } from '../core/errors.js';
import type {
  Action,
  AuthorizationRecordKind,
  Authorizer,
  ClientFacts,
  Decision,
  Principal,
  ResourceRef,
} from '../policy/authorizer.js';
import type { Authenticator } from './authenticator.js';
import { mapError, problemBody } from './error-mapper.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The action this route performs; every non-public route declares one (B5). */
    action?: Action;
    /** How to find the resource the action applies to. */
    resource?: (request: FastifyRequest) => ResourceRef;
    /** On the short allow-list of unauthenticated routes (DESIGN.md section 2). */
    public?: boolean;
    /** A health, readiness, metrics or documentation probe: not audited unless configured (docs/audit.md). */
    probe?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    /** The request's audit record; undefined for public routes when those are not recorded. */
    audit: RequestAudit | undefined;
    /** The stable code of the error answered, set by the error and not-found handlers. */
    errorCode: ErrorCode | undefined;
    /**
     * Whether the caller may perform `action` on `resource` (the same authorizer and request facts as the
     * route's own check): lists use it to show only what the caller may read. Set once authenticated.
     */
    can: (action: Action, resource: ResourceRef) => Promise<boolean>;
    /** The client address and device posture the authorizer sees. */
    client: ClientFacts;
  }
}

/** What the pipeline learns about a request as it goes, and the scope its transactions record it in. */
export interface RequestAudit extends AuditScope {
  principal: Principal | undefined;
  /** Who acted, when the handler learned it (a login names its user); else the authenticated principal. */
  actor: AuditActor | undefined;
  details: AuditEventBody['details'] | undefined;
  resource: ResourceRef | undefined;
  decision: Decision | undefined;
  /** The request's final event has been handled (recorded, or found already committed with the change). */
  settled: boolean;
}

export interface RouteDeclaration {
  readonly method: string;
  readonly url: string;
  readonly public: boolean;
  readonly action: Action | undefined;
}

/**
 * The request pipeline of DESIGN.md section 2: authenticate in `onRequest` (before any body is read),
 * authorize in `preHandler`. A route without an authorization declaration cannot even be registered.
 */
export function installPipeline(
  app: FastifyInstance,
  deps: {
    authenticator: Authenticator;
    authorizer: Authorizer;
    audit: AuditLog;
    /** Record the unauthenticated probes (health, readiness, metrics, OpenAPI) too. */
    recordProbes: boolean;
    /** Step-up: throws `mfa_required` when an allowed action needs a fresher second factor. */
    stepUp?: (principal: Principal, action: Action) => void;
    /** The client address and device posture of a request (trusted-proxy configuration applied). */
    clientFacts?: (request: FastifyRequest) => ClientFacts;
  },
): RouteDeclaration[] {
  const declarations: RouteDeclaration[] = [];
  app.decorateRequest('principal', undefined);
  app.decorateRequest('audit', undefined);
  app.decorateRequest('errorCode', undefined);
  app.decorateRequest('client', undefined as unknown as ClientFacts);
  app.decorateRequest('can', undefined as unknown as FastifyRequest['can']);
  const clientFacts = deps.clientFacts ?? ((request: FastifyRequest) => ({ ip: request.ip }));

  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config ?? {};
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!config.public && (!config.action || !config.resource)) {
      throw new Error(
        `route ${methods.join(',')} ${route.url} declares neither an action and resource nor public access`,
      );
    }
    for (const method of methods) {
      declarations.push({ method, url: route.url, public: config.public === true, action: config.action });
    }
    // The handler and everything it awaits run in the request's audit scope: each metadata transaction it
    // makes commits the request's event with the change (H3).
    const handler = route.handler;
    route.handler = function auditedHandler(this: FastifyInstance, request, reply) {
      const scope = request.audit;
      return scope
        ? runInScope(scope, () => handler.call(this, request, reply))
        : handler.call(this, request, reply);
    };
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const isPublic = request.routeOptions.config.public === true;
    if (request.routeOptions.config.probe !== true || deps.recordProbes)
      request.audit = newRequestAudit(request);
    if (isPublic) return;
    request.principal = await deps.authenticator.authenticate({
      headers: request.headers,
      url: request.url,
      clientCertificate: verifiedClientCertificate(request),
    });
    if (request.audit) request.audit.principal = request.principal;
  });

  // Every request's event is durable before the first byte of its answer (a download's included); if it
  // cannot be written, the answer becomes `audit_unavailable` instead.
  app.addHook('onSend', async (request, reply, payload) => {
    const scope = request.audit;
    if (!scope || scope.settled) return payload;
    scope.settled = true;
    const failed = reply.statusCode >= 400;
    if (scope.committed && !failed) return payload;
    try {
      await deps.audit.append(requestEvent(request, reply, scope));
      return payload;
    } catch (err) {
      // Not thrown: this may already be an error answer. The answer is replaced, before any byte left.
      if (payload instanceof Readable) payload.destroy();
      request.log.error({ err }, 'audit event not written; request refused');
      return auditUnavailable(request, reply, err);
    }
  });

  app.addHook('preHandler', async (request) => {
    const { action, resource, public: isPublic } = request.routeOptions.config;
    // Unmatched URLs reach the not-found handler only after authentication; there is nothing to authorize.
    if (isPublic === true || request.is404) return;
    const principal = request.principal;
    if (!principal || !action || !resource)
      throw new StrongroomError('unauthenticated', 'the request has no credentials');
    const client = clientFacts(request);
    request.client = client;
    request.can = async (otherAction, otherResource) =>
      (await deps.authorizer.authorize({ principal, action: otherAction, resource: otherResource, client }))
        .decision === 'allow';
    const target = resource(request);
    const decision = await deps.authorizer.authorize({ principal, action, resource: target, client });
    if (request.audit) {
      request.audit.resource = target;
      request.audit.decision = decision;
    }
    if (decision.decision === 'allow') {
      deps.stepUp?.(principal, action);
      return;
    }
    // A resource the caller may not even see answers 404, so denials do not reveal what exists (B1).
    const visible = await deps.authorizer.authorize({
      principal,
      action: readActionFor(target),
      resource: target,
      client,
    });
    if (visible.decision === 'deny' && target.kind !== 'organization') throw hidden(target);
    throw new StrongroomError('forbidden', `the policy does not allow \`${action}\` here`);
  });

  return declarations;
}

const REPRESENTATION_HEADERS = [
  'content-length',
  'content-range',
  'content-disposition',
  'etag',
  'repr-digest',
  'accept-ranges',
];

function auditUnavailable(request: FastifyRequest, reply: FastifyReply, err: unknown): string {
  const mapped = mapError(unavailable(err));
  request.errorCode = mapped.code;
  for (const header of REPRESENTATION_HEADERS) reply.removeHeader(header);
  reply
    .code(mapped.status)
    .header('content-type', 'application/problem+json')
    .header('cache-control', 'no-store')
    .header('connection', 'close');
  return JSON.stringify(problemBody(mapped, request));
}

/** The peer certificate of a TLS connection, only when the TLS layer verified it against the client CA. */
function verifiedClientCertificate(request: FastifyRequest) {
  const socket = request.raw.socket as Partial<TLSSocket>;
  if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  const cn = cert.subject?.CN;
  if (typeof cn !== 'string') return undefined;
  return { commonName: cn, fingerprint256: cert.fingerprint256 };
}

function newRequestAudit(request: FastifyRequest): RequestAudit {
  const scope: RequestAudit = {
    principal: undefined,
    actor: undefined,
    details: undefined,
    describe: (facts) => {
      if (facts.actor) scope.actor = facts.actor;
      if (facts.details) scope.details = { ...scope.details, ...facts.details };
    },
    resource: undefined,
    decision: undefined,
    settled: false,
    committed: false,
    record: 'once',
    event: () => requestEvent(request, undefined, scope),
  };
  return scope;
}

const MAX_USER_AGENT = 256;
const MAX_PATH = 1024;

/** The event of a request: in a transaction (no status yet, succeeded) or when its answer is sent. */
function requestEvent(
  request: FastifyRequest,
  reply: FastifyReply | undefined,
  scope: RequestAudit,
): AuditEventBody {
  const status = reply ? reply.statusCode : null;
  const failed = status !== null && status >= 400;
  const code: ErrorCode | null = failed ? (request.errorCode ?? 'internal_error') : null;
  const principal = scope.principal;
  const userAgent = request.headers['user-agent'];
  const action = request.routeOptions.config.action ?? (request.is404 ? 'route:unmatched' : 'system:read');
  return {
    category: categoryOf(action, code),
    actor:
      scope.actor ??
      (principal
        ? { id: principal.id, type: principal.kind, authMethod: principal.authMethod }
        : { id: null, type: 'anonymous', authMethod: null }),
    action,
    resource: scope.resource ? resourceName(scope.resource) : null,
    decision: scope.decision
      ? { effect: scope.decision.decision, policies: [...scope.decision.reasons] }
      : { effect: 'none', policies: [] },
    outcome: failed ? 'failed' : 'succeeded',
    errorCode: code,
    severity: severityOf(status, code),
    request: {
      id: request.id,
      method: request.method,
      path: request.url.split('?')[0]?.slice(0, MAX_PATH) ?? '',
      status,
      clientAddress: request.ip,
      userAgent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT) : null,
    },
    ...(scope.details ? { details: scope.details } : {}),
  };
}

/** The OCSF class an event belongs to: sign-ins, changes to accounts and credentials, or API activity. */
function categoryOf(action: string, code: ErrorCode | null): AuditCategory {
  if (code === 'unauthenticated' || action.startsWith('auth:')) return 'authentication';
  if (/^(user|group|sa|token|bootstrap):/.test(action)) return 'account';
  return 'api';
}

function severityOf(status: number | null, code: ErrorCode | null): AuditSeverity {
  if (status === null || status < 400) return 'info';
  if (status >= 500) return 'error';
  if (code === 'unauthenticated' || code === 'forbidden' || status === 404) return 'warning';
  return 'notice';
}

/** A resource in the reference form people type: `vision`, `vision/resnet`, `vision/resnet:1.0.0`. */
export function resourceName(resource: ResourceRef): string | null {
  switch (resource.kind) {
    case 'organization':
      return null;
    case 'project':
      return resource.project;
    case 'artifact':
      return `${resource.project}/${resource.artifact}`;
    case 'version':
      return `${resource.project}/${resource.artifact}:${resource.version}`;
    case 'upload':
      return `upload/${resource.upload}`;
    case 'record':
      return `${resource.record}/${resource.id}`;
  }
}

function readActionFor(resource: ResourceRef): Action {
  switch (resource.kind) {
    case 'organization':
      return 'project:list';
    case 'project':
      return 'project:read';
    case 'artifact':
      return 'artifact:read';
    case 'version':
      return 'version:read';
    case 'upload':
      return 'version:create';
    case 'record':
      return resource.record === 'elevation' ? 'elevation:read' : 'policy:read';
  }
}

function hidden(resource: ResourceRef): StrongroomError {
  const codes: Record<Exclude<ResourceRef['kind'], 'record'>, ErrorCode> = {
    organization: 'forbidden',
    project: 'project_not_found',
    artifact: 'artifact_not_found',
    version: 'version_not_found',
    upload: 'upload_not_found',
  };
  const records: Record<AuthorizationRecordKind, ErrorCode> = {
    binding: 'binding_not_found',
    policy: 'policy_not_found',
    elevation: 'elevation_not_found',
  };
  const code = resource.kind === 'record' ? records[resource.record] : codes[resource.kind];
  return new StrongroomError(code, 'not found');
}

/** Resource finders shared by the route files. */
export const resourceOf = {
  organization: (): ResourceRef => ({ kind: 'organization' }),
  project: (r: FastifyRequest): ResourceRef => ({ kind: 'project', project: param(r, 'project') }),
  artifact: (r: FastifyRequest): ResourceRef => ({
    kind: 'artifact',
    project: param(r, 'project'),
    artifact: param(r, 'artifact'),
  }),
  version: (r: FastifyRequest): ResourceRef => ({
    kind: 'version',
    project: param(r, 'project'),
    artifact: param(r, 'artifact'),
    version: param(r, 'version'),
  }),
  upload: (r: FastifyRequest): ResourceRef => ({ kind: 'upload', upload: param(r, 'upload') }),
};

function param(request: FastifyRequest, name: string): string {
  const value = (request.params as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : String(value ?? '');
}
