import type { Environment, TokenScope } from '../core/domain.js';

/**
 * The authorization seam of the request pipeline (DESIGN.md sections 2 and 7): request -> decision + reasons +
 * errors, default deny. The HTTP layer only asks; it never decides. The Cedar authorizer
 * (`src/governance/access-service.ts` over `src/policy/cedar/`) is the one implementation.
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
  'policy:read',
  'policy:manage',
  'access:review',
  'elevation:request',
  'elevation:read',
  'elevation:approve',
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
  | { readonly kind: 'upload'; readonly upload: string }
  /**
   * A stored authorization record (a role binding, a custom policy, an elevation request): decided at the
   * scope the record applies to, so a project's administrator manages that project's access only.
   */
  | { readonly kind: 'record'; readonly record: AuthorizationRecordKind; readonly id: string };

export type AuthorizationRecordKind = 'binding' | 'policy' | 'elevation';

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
  /** The device posture the identity provider asserted when this session signed in. */
  readonly devicePosture?: string | null;
}

export interface AuthorizationRequest {
  readonly principal: Principal;
  readonly action: Action;
  readonly resource: ResourceRef;
  /** What the transport established about the caller; absent for checks made outside a request. */
  readonly client?: ClientFacts;
}

/** The client address (after the trusted-proxy configuration) and a device posture claim, if any. */
export interface ClientFacts {
  readonly ip: string;
  readonly devicePosture?: string;
}

/**
 * The client of a check made outside any request: an address no network policy trusts, so a condition on the
 * network can only deny (fail closed).
 */
export const UNKNOWN_CLIENT: ClientFacts = { ip: '0.0.0.0' };

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

/**
 * The setting every change to role bindings or custom policies increments in its transaction: each server
 * instance compares it before deciding and reloads when it moved (docs/authorization.md, "Invalidation").
 */
export const POLICY_REVISION_SETTING = 'policy.revision';

/** Increment the policy revision, inside the transaction that changes bindings or policies. */
export async function bumpPolicyRevision(tx: {
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
}): Promise<void> {
  const next = BigInt((await tx.getSetting(POLICY_REVISION_SETTING)) ?? '0') + 1n;
  await tx.setSetting(POLICY_REVISION_SETTING, next.toString());
}

/** What every authenticated principal may do for itself (also the Cedar built-in self-service policy). */
export const SELF_SERVICE_ACTIONS: readonly Action[] = [
  'session:read',
  // Listing is open to everyone and filtered: each project is shown only to those who may read it.
  'project:list',
  // Anyone may ask for a time-boxed role and see their own requests; someone else decides (elevation).
  'elevation:request',
  'elevation:read',
  'auth:step-up',
  'auth:password',
  'auth:recovery-codes',
  'session:list',
  'session:revoke',
];

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
  'policy:read',
  'access:review',
  'elevation:read',
]);

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
    // Where a stored record applies is not known here: a project-bound token may only read records.
    if (resource.kind === 'record') return READ_ACTIONS.has(action) ? undefined : 'token-scope:project';
    if (resource.kind === 'organization') return READ_ACTIONS.has(action) ? undefined : 'token-scope:project';
    if (!scope.projects.includes(resource.project)) return 'token-scope:project';
  }
  return undefined;
}
