import './v8-workaround.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { StrongroomError, quote } from '../../core/errors.js';
import { BOOTSTRAP_ADMIN, SELF_SERVICE_ACTIONS, type Action } from '../authorizer.js';
import { entityUid, type ResourceChain } from './entities.js';
import { cedarType, formatCedarError } from './schema.js';

/**
 * Built-in roles (DESIGN.md section 7, issue 5): each binding of a role to a principal or group at a scope
 * compiles to one Cedar `permit` policy with id `binding:<id>`, so a grant is explained by the binding that
 * made it. Least privilege: a principal without a binding can do nothing beyond its own session.
 */
export const ROLES = ['viewer', 'contributor', 'approver', 'incident-responder', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

const VIEW: readonly Action[] = [
  'project:list',
  'project:read',
  'artifact:list',
  'artifact:read',
  'version:list',
  'version:read',
  'version:download',
];

/**
 * The actions of each role; `all` is every action at the scope. The approver and incident-responder roles
 * hold only viewing actions until governance adds the approve, promote and quarantine actions; the
 * incident-responder is the one role besides admin that may also download a quarantined version.
 */
export const ROLE_ACTIONS: Readonly<Record<Role, readonly Action[] | 'all'>> = {
  viewer: VIEW,
  contributor: [...VIEW, 'artifact:create', 'artifact:update', 'version:create'],
  approver: [...VIEW, 'elevation:approve'],
  'incident-responder': VIEW,
  auditor: ['audit:read', 'policy:read', 'access:review'],
  admin: 'all',
};

/** Roles whose `version:download` stops at a quarantined version. */
const QUARANTINE_EXCLUDED: ReadonlySet<Role> = new Set(['viewer', 'contributor', 'approver']);

/** The stage a version is in when an incident responder has pulled it from circulation. */
export const QUARANTINED_STAGE = 'quarantined';

export type BindingPrincipalType = 'User' | 'ServiceAccount' | 'Group';
export type BindingScopeType = 'Organization' | 'Project' | 'Artifact';

/** A role granted to a principal or group at a scope; an Artifact scope id is `project/artifact`. */
export interface RoleBinding {
  readonly id: string;
  readonly role: Role;
  readonly principal: { readonly type: BindingPrincipalType; readonly id: string };
  readonly scope: { readonly type: BindingScopeType; readonly id: string };
  /** RFC 3339 time after which the binding grants nothing, even while it is still stored. */
  readonly expiresAt?: string;
}

const BINDING_PRINCIPAL_TYPES: ReadonlySet<string> = new Set(['User', 'ServiceAccount', 'Group']);
const BINDING_SCOPE_TYPES: ReadonlySet<string> = new Set(['Organization', 'Project', 'Artifact']);

/** The policy id of a binding, as it appears in decision reasons. */
export function bindingPolicyId(binding: Pick<RoleBinding, 'id'>): string {
  return `binding:${binding.id}`;
}

/**
 * Epoch second from which an expiring binding no longer applies. Rounded down, so a binding never outlives
 * its `expiresAt` (it may end up to a second early).
 */
export function bindingExpirySeconds(binding: RoleBinding): number | undefined {
  if (binding.expiresAt === undefined) return undefined;
  const ms = Date.parse(binding.expiresAt);
  if (Number.isNaN(ms))
    throw new StrongroomError('invalid_request', `binding ${quote(binding.id)} has an invalid expiry`);
  return Math.floor(ms / 1000);
}

/** Reject a malformed binding before it becomes a policy (fail closed: nothing is half-compiled). */
export function checkBinding(binding: RoleBinding): void {
  const fail = (what: string) =>
    new StrongroomError('invalid_request', `binding ${quote(binding.id)} ${what}`);
  if (binding.id === '') throw fail('has an empty id');
  if (!(ROLES as readonly string[]).includes(binding.role))
    throw fail(`has unknown role ${quote(binding.role)}`);
  if (!BINDING_PRINCIPAL_TYPES.has(binding.principal.type) || binding.principal.id === '')
    throw fail('has an invalid principal');
  checkScope(`binding ${quote(binding.id)}`, binding.scope);
  bindingExpirySeconds(binding);
}

/** A scope names an organization, a project, or an artifact as `project/artifact`. */
export function checkScope(owner: string, scope: RoleBinding['scope']): void {
  const valid =
    BINDING_SCOPE_TYPES.has(scope.type) &&
    (scope.type === 'Artifact' ? /^[^/]+\/[^/]+$/ : /^[^/]+$/).test(scope.id) &&
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u001f\u007f]/.test(scope.id);
  if (!valid) throw new StrongroomError('invalid_request', `${owner} has an invalid scope`);
}

const contextAttr = (attr: string): cedar.Expr => ({ '.': { left: { Var: 'context' }, attr } });

/** The Cedar policy (JSON form) a binding compiles to. */
export function bindingPolicy(binding: RoleBinding): cedar.PolicyJson {
  checkBinding(binding);
  const actions = ROLE_ACTIONS[binding.role];
  const conditions: cedar.Clause[] = [];
  const expiry = bindingExpirySeconds(binding);
  if (expiry !== undefined)
    conditions.push({ kind: 'when', body: { '<': { left: contextAttr('time'), right: { Value: expiry } } } });
  if (QUARANTINE_EXCLUDED.has(binding.role)) conditions.push(QUARANTINED_DOWNLOAD);
  const principal = entityUid(binding.principal.type, binding.principal.id);
  return {
    effect: 'permit',
    principal:
      binding.principal.type === 'Group' ? { op: 'in', entity: principal } : { op: '==', entity: principal },
    action:
      actions === 'all'
        ? { op: 'All' }
        : { op: 'in', entities: actions.map((a) => ({ type: cedarType('Action'), id: a })) },
    resource: { op: 'in', entity: entityUid(binding.scope.type, binding.scope.id) },
    conditions,
    annotations: { role: binding.role, binding: binding.id },
  };
}

const QUARANTINED_DOWNLOAD: cedar.Clause = {
  kind: 'unless',
  body: {
    '&&': {
      left: {
        '==': {
          left: { Var: 'action' },
          right: { Value: { __entity: { type: cedarType('Action'), id: 'version:download' } } },
        },
      },
      right: {
        '&&': {
          left: { is: { left: { Var: 'resource' }, entity_type: cedarType('Version') } },
          right: {
            '==': {
              left: { '.': { left: { Var: 'resource' }, attr: 'stage' } },
              right: { Value: QUARANTINED_STAGE },
            },
          },
        },
      },
    },
  },
};

/** What every authenticated principal may do for itself, whatever its bindings (one list, in authorizer.ts). */
export { SELF_SERVICE_ACTIONS };

const BUILTIN_TEXT: Readonly<Record<string, string>> = {
  'builtin:self-service': `permit (principal, action in [${SELF_SERVICE_ACTIONS.map((a) => `${cedarType('Action')}::"${a}"`).join(', ')}], resource);`,
  // The bootstrap administrator exists to create the first bindings; it holds no power once its token is off.
  'builtin:bootstrap-admin': `permit (principal == ${cedarType('User')}::"${BOOTSTRAP_ADMIN}", action, resource) when { context.authMethod == "bootstrap-token" };`,
};

/** The policies that hold whatever the bindings say, by id. */
export const BUILTIN_POLICIES: Readonly<Record<string, cedar.PolicyJson>> = Object.fromEntries(
  Object.entries(BUILTIN_TEXT).map(([id, text]) => {
    const answer = cedar.policyToJson(text);
    if (answer.type === 'failure') throw new Error(answer.errors.map(formatCedarError).join('; '));
    return [id, answer.json];
  }),
);

/** Whether a binding's scope contains the resource (the same containment as Cedar's `in`). */
export function scopeContains(binding: RoleBinding, organization: string, chain: ResourceChain): boolean {
  switch (binding.scope.type) {
    case 'Organization':
      return binding.scope.id === organization;
    case 'Project':
      return chain.project === binding.scope.id;
    case 'Artifact':
      return chain.artifact !== undefined && `${chain.project}/${chain.artifact}` === binding.scope.id;
  }
}
