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

/** Until identities and policies exist: the bootstrap administrator may do everything, anyone else nothing. */
export const bootstrapAuthorizer: Authorizer = {
  authorize: async ({ principal }) =>
    principal.id === BOOTSTRAP_ADMIN && principal.authMethod === 'bootstrap-token'
      ? { decision: 'allow', reasons: ['bootstrap-admin'], errors: [] }
      : { decision: 'deny', reasons: [], errors: [] },
};
