import type { Environment, TokenScope } from '../core/domain.js';

/**
 * The authorization seam of the request pipeline (DESIGN.md sections 2 and 7): request -> decision + reasons +
 * errors, default deny. The HTTP layer only asks; it never decides. The Cedar authorizer replaces the
 * bootstrap one behind this interface.
 */
export const ACTIONS = [
  'session:read',
  'project:create',
  'project:list',
  'project:read',
  'artifact:create',
  'artifact:list',
  'artifact:read',
  'artifact:update',
  'version:list',
  'version:read',
  'version:download',
  'version:create',
  'key:read',
  'key:rotate',
  'audit:read',
  'audit:prune',
  'auth:login',
  'auth:refresh',
  'auth:enroll',
  'auth:sso',
  'auth:federate',
  'auth:step-up',
  'auth:password',
  'auth:recovery-codes',
  'session:list',
  'session:revoke',
  'user:create',
  'user:list',
  'user:read',
  'user:update',
  'group:create',
  'group:list',
  'group:update',
  'sa:create',
  'sa:list',
  'sa:update',
  'token:create',
  'token:list',
  'token:revoke',
  'bootstrap:manage',
] as const;
export type Action = (typeof ACTIONS)[number];

export type ResourceRef =
  | { readonly kind: 'organization' }
  | { readonly kind: 'project'; readonly project: string }
  | { readonly kind: 'artifact'; readonly project: string; readonly artifact: string }
  | {
      readonly kind: 'version';
      readonly project: string;
      readonly artifact: string;
      readonly version: string;
    }
  | { readonly kind: 'upload'; readonly upload: string };

export interface Principal {
  /** Stable principal id, recorded as owner, creator and audit actor. */
  readonly id: string;
  readonly kind: 'user' | 'service';
  /** How this request proved who it is (for policy conditions and audit). */
  readonly authMethod: string;
  /** A readable name (username, service account name). */
  readonly name?: string;
  readonly groups?: readonly string[];
  /** The login session behind a user's token. */
  readonly sessionId?: string;
  /** The token this request presented. */
  readonly tokenId?: string;
  /** When the user last proved a second factor (login or step-up); null when never in this session. */
  readonly mfaAt?: string | null;
  /** What the token may do at most; absent or null for an unrestricted token. */
  readonly scope?: TokenScope | null;
  /** The environment a service account (and its tokens) is bound to. */
  readonly environment?: Environment | null;
}

export interface AuthorizationRequest {
  readonly principal: Principal;
  readonly action: Action;
  readonly resource: ResourceRef;
}

export interface Decision {
  readonly decision: 'allow' | 'deny';
  /** Ids of the policies that produced the decision; empty for a default deny. */
  readonly reasons: readonly string[];
  /** Policies that failed to evaluate; they were skipped (Cedar semantics). */
  readonly errors: readonly string[];
}

export interface Authorizer {
  authorize(request: AuthorizationRequest): Promise<Decision>;
}

export const BOOTSTRAP_ADMIN = 'bootstrap-admin';

/** Members of this group may do everything (until Cedar role bindings arrive with the authorization issue). */
export const ADMINS_GROUP = 'admins';
/** Members of this group hold the auditor role: they may read the audit log, and nothing else. */
export const AUDITORS_GROUP = 'auditors';

/** What every authenticated principal may do for itself (also the Cedar built-in self-service policy). */
export const SELF_SERVICE_ACTIONS: readonly Action[] = [
  'session:read',
  'auth:step-up',
  'auth:password',
  'auth:recovery-codes',
  'session:list',
  'session:revoke',
];
const SELF_SERVICE: ReadonlySet<Action> = new Set(SELF_SERVICE_ACTIONS);

/** Actions that change nothing: what a read-only token is limited to. */
export const READ_ACTIONS: ReadonlySet<Action> = new Set([
  'session:read',
  'session:list',
  'project:list',
  'project:read',
  'artifact:list',
  'artifact:read',
  'version:list',
  'version:read',
  'version:download',
  'key:read',
  'audit:read',
  'user:list',
  'user:read',
  'group:list',
  'sa:list',
  'token:list',
]);

/**
 * Until Cedar policies exist (the authorization issue): the bootstrap administrator and members of `admins`
 * may do everything, members of `auditors` may read the audit log, every principal may manage its own
 * session, anyone else nothing (default deny). A
 * token's scope then narrows whatever was allowed: a token can never do more than its principal.
 */
export const interimAuthorizer: Authorizer = {
  authorize: async ({ principal, action, resource }) => {
    const deny: Decision = { decision: 'deny', reasons: [], errors: [] };
    let reason: string;
    if (principal.id === BOOTSTRAP_ADMIN && principal.authMethod === 'bootstrap-token')
      reason = 'bootstrap-admin';
    else if (principal.groups?.includes(ADMINS_GROUP) === true) reason = 'group:admins';
    else if (action === 'audit:read' && principal.groups?.includes(AUDITORS_GROUP) === true)
      reason = 'group:auditors';
    else if (SELF_SERVICE.has(action)) reason = 'self-service';
    else return deny;
    const narrowed = scopeDenies(principal.scope ?? null, action, resource);
    if (narrowed !== undefined) return { decision: 'deny', reasons: [narrowed], errors: [] };
    return { decision: 'allow', reasons: [reason], errors: [] };
  },
};

/** The older name: the interim authorizer allows the bootstrap administrator exactly as before. */
export const bootstrapAuthorizer = interimAuthorizer;

/** Why a token's scope forbids this request, or undefined when it does not (least privilege, A7). */
export function scopeDenies(
  scope: TokenScope | null,
  action: Action,
  resource: ResourceRef,
): string | undefined {
  if (scope === null) return undefined;
  if (scope.readOnly && !READ_ACTIONS.has(action)) return 'token-scope:read-only';
  if (scope.actions !== undefined && !scope.actions.includes(action)) return 'token-scope:action';
  if (scope.projects !== undefined) {
    // An upload session belongs to whoever created it, and creating it was checked against the scope.
    if (resource.kind === 'upload') return undefined;
    if (resource.kind === 'organization') return READ_ACTIONS.has(action) ? undefined : 'token-scope:project';
    if (!scope.projects.includes(resource.project)) return 'token-scope:project';
  }
  return undefined;
}
