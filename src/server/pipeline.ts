import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { StrongroomError, type ErrorCode } from '../core/errors.js';
import type { Action, Authorizer, Principal, ResourceRef } from '../policy/authorizer.js';
import type { Authenticator } from './authenticator.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The action this route performs; every non-public route declares one (B5). */
    action?: Action;
    /** How to find the resource the action applies to. */
    resource?: (request: FastifyRequest) => ResourceRef;
    /** On the short allow-list of unauthenticated routes (DESIGN.md section 2). */
    public?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
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
  deps: { authenticator: Authenticator; authorizer: Authorizer },
): RouteDeclaration[] {
  const declarations: RouteDeclaration[] = [];
  app.decorateRequest('principal', undefined);

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
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    if (request.routeOptions.config.public === true) return;
    request.principal = await deps.authenticator.authenticate({ headers: request.headers, url: request.url });
  });

  app.addHook('preHandler', async (request) => {
    const { action, resource, public: isPublic } = request.routeOptions.config;
    // Unmatched URLs reach the not-found handler only after authentication; there is nothing to authorize.
    if (isPublic === true || request.is404) return;
    const principal = request.principal;
    if (!principal || !action || !resource)
      throw new StrongroomError('unauthenticated', 'the request has no credentials');
    const target = resource(request);
    const decision = await deps.authorizer.authorize({ principal, action, resource: target });
    if (decision.decision === 'allow') return;
    // A resource the caller may not even see answers 404, so denials do not reveal what exists (B1).
    const visible = await deps.authorizer.authorize({
      principal,
      action: readActionFor(target),
      resource: target,
    });
    if (visible.decision === 'deny' && target.kind !== 'organization') throw hidden(target);
    throw new StrongroomError('forbidden', `the policy does not allow \`${action}\` here`);
  });

  return declarations;
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
  }
}

function hidden(resource: ResourceRef): StrongroomError {
  const codes: Record<ResourceRef['kind'], ErrorCode> = {
    organization: 'forbidden',
    project: 'project_not_found',
    artifact: 'artifact_not_found',
    version: 'version_not_found',
    upload: 'upload_not_found',
  };
  return new StrongroomError(codes[resource.kind], 'not found');
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
