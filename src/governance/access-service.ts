import { randomBytes } from 'node:crypto';
import { describeCurrent } from '../audit/audit-scope.js';
import type { Clock } from '../core/clock.js';
import {
  POLICY_SCOPE_TYPES,
  type ElevationRecord,
  type ElevationState,
  type PolicyRecord,
  type PolicyScope,
  type RoleBindingRecord,
} from '../core/domain.js';
import { StrongroomError, quote } from '../core/errors.js';
import { newId, parseId, type ServiceAccountId, type UserId } from '../core/ids.js';
import {
  BOOTSTRAP_ADMIN,
  POLICY_REVISION_SETTING,
  SELF_SERVICE_ACTIONS,
  bumpPolicyRevision,
  UNKNOWN_CLIENT,
  type Action,
  type ClientFacts,
  type AuthorizationRequest,
  type Authorizer,
  type Decision,
  type Principal,
  type ResourceRef,
} from '../policy/authorizer.js';
import {
  CedarAuthorizer,
  customPolicyId,
  type CustomPolicy,
  type Explanation,
  type PolicyInput,
} from '../policy/cedar/cedar-authorizer.js';
import { resourceChain, type ResourceAttributes } from '../policy/cedar/entities.js';
import {
  policyTestInput,
  runPolicyTests,
  type PolicyTestCase,
  type PolicyTestResult,
} from '../policy/cedar/policy-test.js';
import {
  ROLES,
  ROLE_ACTIONS,
  bindingPolicyId,
  checkBinding,
  scopeContains,
  type Role,
  type RoleBinding,
} from '../policy/cedar/roles.js';
import { cedarSchemaText } from '../policy/cedar/schema.js';
import type { MetadataReader, MetadataStore, MetadataWriter } from '../storage/metadata-store.js';

/**
 * Who may do what (DESIGN.md section 7, issue 5): role bindings and custom Cedar policies kept in the metadata
 * store, compiled into the Cedar authorizer, and the one `Authorizer` the request pipeline asks. Every change
 * bumps a policy revision in the same transaction; every decision first compares the stored revision with the
 * one compiled (one indexed read), so a change applies on the very next request on every server instance that
 * shares the store. Just-in-time elevation: a user asks for a role at a scope for a while, with a reason;
 * someone else holding `elevation:approve` there approves it, which creates an expiring binding.
 */
/** The organization every binding and policy at the top scope names. */
export const ORGANIZATION = 'default';

export interface AccessServiceOptions {
  readonly cacheSize?: number;
  /** The longest elevation that can be asked for. */
  readonly maxElevationSeconds: number;
  /** A request not decided within this long can no longer be approved. */
  readonly elevationRequestTtlSeconds: number;
}

/** Who a binding is for, as an administrator names it: `user:alice`, `sa:deployer`, `group:ml`. */
export interface PrincipalName {
  readonly type: 'user' | 'sa' | 'group';
  readonly name: string;
}

export interface BindingInput {
  readonly id?: string;
  readonly role: string;
  readonly principal: PrincipalName;
  readonly scope: PolicyScope;
  readonly expiresAt?: string;
  readonly description?: string;
}

export interface PolicyInputRecord {
  readonly text: string;
  readonly scope: PolicyScope;
  readonly description?: string;
}

/** A binding as shown: its record, whom it names, and whether it is in force now. */
export interface BindingView extends RoleBindingRecord {
  /** The user's or service account's name (a group is named by its id). */
  readonly principalName: string | null;
  readonly active: boolean;
}

/** One way a principal gets access: a binding (directly or through a group) or a built-in policy. */
export interface AccessGrant {
  readonly principal: { readonly type: 'User' | 'ServiceAccount' | 'Group'; readonly id: string };
  readonly principalName: string | null;
  /** `binding:<id>` or `builtin:<name>`. */
  readonly source: string;
  readonly role: string | null;
  readonly scope: PolicyScope;
  readonly expiresAt: string | null;
  /** The group the principal holds it through, when it does. */
  readonly via: string | null;
}

export interface WhoCanAnswer {
  readonly action: Action;
  readonly resource: string;
  readonly grants: readonly AccessGrant[];
  /**
   * Custom policies that apply in this resource's scope and may add or take away access under conditions
   * (network, time, MFA age, ...): the grants above hold unless one of these forbids.
   */
  readonly conditions: readonly {
    readonly policy: string;
    readonly effect: string;
    readonly scope: PolicyScope;
  }[];
}

export interface AccessOfAnswer {
  readonly principal: {
    readonly type: 'User' | 'ServiceAccount';
    readonly id: string;
    readonly name: string;
  };
  readonly groups: readonly string[];
  readonly grants: readonly (AccessGrant & {
    readonly actions: readonly string[] | 'all';
    readonly active: boolean;
  })[];
  readonly conditions: WhoCanAnswer['conditions'];
}

export interface ExplainInput {
  readonly principal: PrincipalName;
  readonly action: Action;
  readonly resource: ResourceRef;
  /** Request facts to assume (defaults: now, 127.0.0.1, the principal's usual auth method, no MFA). */
  readonly context?: PolicyTestCase['context'];
}

const BINDING_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const MAX_REASON = 500;
const MAX_POLICY_TEXT = 64 * 1024;

export class AccessService implements Authorizer {
  readonly #cedar: CedarAuthorizer;
  #revision: string;
  #reloading: Promise<void> | undefined;

  private constructor(
    private readonly store: MetadataStore,
    private readonly clock: Clock,
    private readonly options: AccessServiceOptions,
    input: PolicyInput,
    revision: string,
  ) {
    this.#revision = revision;
    this.#cedar = new CedarAuthorizer({
      ...input,
      organization: ORGANIZATION,
      clock,
      ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }),
      loadAttributes: (resource) => this.#attributes(this.store, resource),
      requestFacts: (request) => request.client ?? UNKNOWN_CLIENT,
    });
  }

  /** Compile the stored bindings and policies; a stored policy that no longer validates stops the start. */
  static async open(
    store: MetadataStore,
    clock: Clock,
    options: AccessServiceOptions,
  ): Promise<AccessService> {
    const revision = await readRevision(store);
    const input = await loadInput(store);
    return new AccessService(store, clock, options, input, revision);
  }

  /** The policy version compiled in this instance (increments on every reload). */
  get policyVersion(): number {
    return this.#cedar.version;
  }

  // ---- deciding ---------------------------------------------------------------------------------------------

  async authorize(request: AuthorizationRequest): Promise<Decision> {
    await this.#fresh();
    return this.#cedar.authorize(request);
  }

  /** Re-read bindings and policies when another instance (or this one) changed them. */
  async #fresh(): Promise<void> {
    const stored = await readRevision(this.store);
    if (stored === this.#revision) return;
    this.#reloading ??= (async () => {
      try {
        const input = await loadInput(this.store);
        // Read again after loading: a change committed meanwhile is picked up by the next request.
        this.#cedar.update(input);
        this.#revision = stored;
      } finally {
        this.#reloading = undefined;
      }
    })();
    await this.#reloading;
  }

  // ---- role bindings ----------------------------------------------------------------------------------------

  async listBindings(within?: PolicyScope): Promise<BindingView[]> {
    const now = this.clock.now().getTime();
    const views: BindingView[] = [];
    for (const b of await this.store.listRoleBindings()) {
      if (within !== undefined && !scopeWithin(b.scope, within)) continue;
      views.push(await this.#bindingView(b, now));
    }
    return views;
  }

  async getBinding(id: string): Promise<BindingView> {
    const binding = await this.store.getRoleBinding(id);
    if (!binding) throw new StrongroomError('binding_not_found', `role binding ${quote(id)} does not exist`);
    return this.#bindingView(binding, this.clock.now().getTime());
  }

  async #bindingView(b: RoleBindingRecord, now: number): Promise<BindingView> {
    return {
      ...b,
      principalName: await this.#principalName(b.principal),
      active: b.expiresAt === null || Date.parse(b.expiresAt) > now,
    };
  }

  async createBinding(actor: Principal, input: BindingInput): Promise<BindingView> {
    const id = input.id ?? `b-${randomBytes(6).toString('hex')}`;
    if (!BINDING_ID.test(id))
      throw new StrongroomError(
        'invalid_request',
        'a binding id is 1-64 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or digit',
      );
    if (!(ROLES as readonly string[]).includes(input.role))
      throw new StrongroomError(
        'invalid_request',
        `unknown role ${quote(input.role)}; roles are ${ROLES.join(', ')}`,
      );
    const principal = await this.#resolvePrincipal(input.principal);
    const scope = await this.#checkScope(input.scope);
    let expiresAt: string | null = null;
    if (input.expiresAt !== undefined) {
      const ms = Date.parse(input.expiresAt);
      if (Number.isNaN(ms)) throw new StrongroomError('invalid_request', 'expiresAt is not an RFC 3339 time');
      if (ms <= this.clock.now().getTime())
        throw new StrongroomError('invalid_request', 'expiresAt is in the past');
      expiresAt = new Date(ms).toISOString();
    }
    const record: RoleBindingRecord = {
      id,
      role: input.role,
      principal: { type: principal.type, id: principal.id },
      scope,
      expiresAt,
      description: (input.description ?? '').slice(0, MAX_REASON),
      createdAt: this.clock.now().toISOString(),
      createdBy: actor.id,
      elevationId: null,
    };
    checkBinding(toRoleBinding(record));
    describeCurrent({
      details: {
        binding: id,
        role: record.role,
        principal: `${principal.type}:${principal.id}`,
        scope: scopeName(scope),
      },
    });
    await this.#change((tx) => tx.insertRoleBinding(record));
    return { ...record, principalName: principal.name, active: true };
  }

  async deleteBinding(id: string): Promise<void> {
    describeCurrent({ details: { binding: id } });
    await this.#change(async (tx) => {
      if (!(await tx.deleteRoleBinding(id)))
        throw new StrongroomError('binding_not_found', `role binding ${quote(id)} does not exist`);
    });
  }

  // ---- custom policies --------------------------------------------------------------------------------------

  listPolicies(within?: PolicyScope): Promise<PolicyRecord[]> {
    return this.store
      .listPolicies()
      .then((all) => all.filter((p) => within === undefined || scopeWithin(p.scope, within)));
  }

  async getPolicy(id: string): Promise<PolicyRecord> {
    const policy = await this.store.getPolicy(id);
    if (!policy) throw new StrongroomError('policy_not_found', `policy ${quote(id)} does not exist`);
    return policy;
  }

  /**
   * Add or replace a custom policy. It is parsed and validated against the schema, together with every other
   * stored policy, before anything is written: a bad policy is refused with Cedar's error and changes nothing.
   */
  async putPolicy(
    actor: Principal,
    id: string,
    input: PolicyInputRecord,
  ): Promise<{ policy: PolicyRecord; created: boolean }> {
    if (!BINDING_ID.test(id))
      throw new StrongroomError(
        'invalid_request',
        'a policy id is 1-64 lowercase letters, digits, `.`, `_` or `-`, starting with a letter or digit',
      );
    if (input.text.length > MAX_POLICY_TEXT)
      throw new StrongroomError('payload_too_large', `a policy is at most ${MAX_POLICY_TEXT} characters`);
    const scope = await this.#checkScope(input.scope);
    describeCurrent({ details: { policy: id, scope: scopeName(scope) } });
    const at = this.clock.now().toISOString();
    return this.#change(async (tx) => {
      const existing = await tx.getPolicy(id);
      if (existing && scopeName(existing.scope) !== scopeName(scope))
        throw new StrongroomError(
          'invalid_request',
          `policy ${quote(id)} applies to ${scopeName(existing.scope)}; delete it to add it elsewhere`,
        );
      const record: PolicyRecord = {
        id,
        text: input.text,
        scope,
        description: (input.description ?? existing?.description ?? '').slice(0, MAX_REASON),
        createdAt: existing?.createdAt ?? at,
        createdBy: existing?.createdBy ?? actor.id,
        updatedAt: at,
        updatedBy: actor.id,
      };
      const current = await loadInput(tx);
      this.#cedar.check({
        bindings: current.bindings,
        customPolicies: [...current.customPolicies.filter((p) => p.id !== id), toCustomPolicy(record)],
      });
      await tx.upsertPolicy(record);
      return { policy: record, created: existing === undefined };
    });
  }

  async deletePolicy(id: string): Promise<void> {
    describeCurrent({ details: { policy: id } });
    await this.#change(async (tx) => {
      if (!(await tx.deletePolicy(id)))
        throw new StrongroomError('policy_not_found', `policy ${quote(id)} does not exist`);
    });
  }

  /** The Cedar schema every custom policy is validated against, in Cedar's human-readable format. */
  schema(): string {
    return cedarSchemaText();
  }

  /**
   * Check policy text against the schema without storing it (`strongroom policy validate`): the same checks
   * `putPolicy` makes, with every stored policy beside it.
   */
  async validatePolicy(id: string, input: PolicyInputRecord): Promise<void> {
    const scope = await this.#checkScope(input.scope);
    const current = await loadInput(this.store);
    this.#cedar.check({
      bindings: current.bindings,
      customPolicies: [
        ...current.customPolicies.filter((p) => p.id !== id),
        toCustomPolicy({ id, text: input.text, scope }),
      ],
    });
  }

  // ---- explain and test -------------------------------------------------------------------------------------

  /** The decision a principal would get, with the policies behind it (uncached, nothing recorded). */
  async explain(input: ExplainInput): Promise<Explanation> {
    await this.#fresh();
    const principal = await this.#principalFor(input.principal);
    const testCase = await this.#caseFor(principal, input.action, input.resource, input.context);
    return this.#cedar.evaluate(policyTestInput(testCase, this.clock.now()));
  }

  /**
   * Run policy test cases against the policies in force. A case may name its principal by user or service
   * account name; it is then decided with that principal's id and (unless the case lists them) groups.
   */
  async test(cases: readonly PolicyTestCase[]): Promise<PolicyTestResult[]> {
    await this.#fresh();
    const resolved: PolicyTestCase[] = [];
    for (const c of cases) {
      const found =
        c.principal.kind === 'user'
          ? await this.#userByIdOrName(c.principal.id)
          : await this.#serviceByIdOrName(c.principal.id);
      if (found === undefined) {
        resolved.push(c);
        continue;
      }
      resolved.push({
        ...c,
        principal: {
          ...c.principal,
          id: found.id,
          groups: c.principal.groups ?? [...(await this.store.groupsOf(found.id))],
        },
      });
    }
    return runPolicyTests(resolved, this.#cedar, this.clock.now());
  }

  // ---- access review ----------------------------------------------------------------------------------------

  /** Everyone who holds `action` on `resource` through a binding or a built-in policy, and the conditions. */
  async whoCan(action: Action, resource: ResourceRef): Promise<WhoCanAnswer> {
    await this.#mustExist(resource);
    const attributes = await this.#attributes(this.store, resource);
    const chain = resourceChain(ORGANIZATION, resource, attributes);
    const now = this.clock.now().getTime();
    const grants: AccessGrant[] = [];
    for (const b of await this.store.listRoleBindings()) {
      if (b.expiresAt !== null && Date.parse(b.expiresAt) <= now) continue;
      if (!roleGrants(b.role, action) || !scopeContains(toRoleBinding(b), ORGANIZATION, chain)) continue;
      if (
        action === 'version:download' &&
        chain.stage === 'quarantined' &&
        !['admin', 'incident-responder'].includes(b.role)
      )
        continue;
      const base = {
        source: bindingPolicyId(b),
        role: b.role,
        scope: b.scope,
        expiresAt: b.expiresAt,
      };
      grants.push({
        ...base,
        principal: b.principal,
        principalName: await this.#principalName(b.principal),
        via: null,
      });
      if (b.principal.type === 'Group') {
        const group = await this.store.getGroupByName(b.principal.id);
        for (const m of group ? await this.store.listGroupMembers(group.id) : []) {
          const member = await this.#memberRef(m.principalId);
          if (member) grants.push({ ...base, ...member, via: b.principal.id });
        }
      }
    }
    if (SELF_SERVICE_ACTIONS.includes(action))
      grants.push({
        principal: { type: 'Group', id: '*' },
        principalName: 'every authenticated principal',
        source: 'builtin:self-service',
        role: null,
        scope: { type: 'Organization', id: ORGANIZATION },
        expiresAt: null,
        via: null,
      });
    grants.push({
      principal: { type: 'User', id: BOOTSTRAP_ADMIN },
      principalName: BOOTSTRAP_ADMIN,
      source: 'builtin:bootstrap-admin',
      role: null,
      scope: { type: 'Organization', id: ORGANIZATION },
      expiresAt: null,
      via: null,
    });
    return {
      action,
      resource: chain.uid.id,
      grants,
      conditions: await this.#conditions(chain.project),
    };
  }

  /** What a user or service account may do and where each grant comes from (its bindings and groups'). */
  async accessOf(name: PrincipalName): Promise<AccessOfAnswer> {
    if (name.type === 'group')
      throw new StrongroomError(
        'invalid_request',
        'access of names a user (`user:NAME`) or service account (`sa:NAME`)',
      );
    const principal = await this.#principalFor(name);
    const groups = principal.groups ?? [];
    const now = this.clock.now().getTime();
    const type = principal.kind === 'service' ? 'ServiceAccount' : 'User';
    const grants: AccessOfAnswer['grants'][number][] = [];
    for (const b of await this.store.listRoleBindings()) {
      const direct = b.principal.type === type && b.principal.id === principal.id;
      const viaGroup = b.principal.type === 'Group' && groups.includes(b.principal.id);
      if (!direct && !viaGroup) continue;
      grants.push({
        principal: { type, id: principal.id },
        principalName: principal.name ?? null,
        source: bindingPolicyId(b),
        role: b.role,
        scope: b.scope,
        expiresAt: b.expiresAt,
        via: direct ? null : b.principal.id,
        actions: ROLE_ACTIONS[b.role as Role] ?? [],
        active: b.expiresAt === null || Date.parse(b.expiresAt) > now,
      });
    }
    grants.push({
      principal: { type, id: principal.id },
      principalName: principal.name ?? null,
      source: 'builtin:self-service',
      role: null,
      scope: { type: 'Organization', id: ORGANIZATION },
      expiresAt: null,
      via: null,
      actions: [...SELF_SERVICE_ACTIONS],
      active: true,
    });
    return {
      principal: { type, id: principal.id, name: principal.name ?? principal.id },
      groups,
      grants,
      conditions: await this.#conditions(undefined, true),
    };
  }

  async #conditions(project: string | undefined, all = false): Promise<WhoCanAnswer['conditions']> {
    const policies = await this.store.listPolicies();
    return policies
      .filter((p) => all || p.scope.type === 'Organization' || p.scope.id.split('/')[0] === project)
      .map((p) => ({
        policy: customPolicyId(p),
        effect: /^\s*(?:@[^\n]*\n\s*)*(permit|forbid)/.exec(stripComments(p.text))?.[1] ?? 'unknown',
        scope: p.scope,
      }));
  }

  // ---- just-in-time elevation -------------------------------------------------------------------------------

  async requestElevation(
    requester: Principal,
    input: { role: string; scope: PolicyScope; durationSeconds: number; reason: string },
  ): Promise<ElevationRecord> {
    if (requester.kind !== 'user' || requester.id === BOOTSTRAP_ADMIN)
      throw new StrongroomError(
        'forbidden',
        'only users ask for elevation; service accounts hold standing bindings',
      );
    if (!(ROLES as readonly string[]).includes(input.role))
      throw new StrongroomError(
        'invalid_request',
        `unknown role ${quote(input.role)}; roles are ${ROLES.join(', ')}`,
      );
    const max = this.options.maxElevationSeconds;
    if (!Number.isInteger(input.durationSeconds) || input.durationSeconds < 60 || input.durationSeconds > max)
      throw new StrongroomError('invalid_request', `an elevation lasts from 60 seconds to ${max} seconds`);
    const reason = input.reason.trim();
    if (reason.length < 3 || reason.length > MAX_REASON)
      throw new StrongroomError('invalid_request', `a reason of 3 to ${MAX_REASON} characters is required`);
    const scope = await this.#checkScope(input.scope);
    const now = this.clock.now();
    const record: ElevationRecord = {
      id: newId('elevation'),
      requesterId: requester.id as UserId,
      role: input.role,
      scope,
      durationSeconds: input.durationSeconds,
      reason,
      state: 'pending',
      requestedAt: now.toISOString(),
      requestExpiresAt: new Date(
        now.getTime() + this.options.elevationRequestTtlSeconds * 1000,
      ).toISOString(),
      decidedBy: null,
      decidedAt: null,
      decisionReason: null,
      bindingId: null,
      grantExpiresAt: null,
    };
    describeCurrent({ details: { elevation: record.id, role: record.role, scope: scopeName(scope) } });
    await this.store.transaction((tx) => tx.insertElevation(record));
    return record;
  }

  /** The caller's own requests, and those it may decide (it holds `elevation:approve` at their scope). */
  async listElevations(
    caller: Principal,
    client: ClientFacts,
    status?: ElevationView['status'],
  ): Promise<ElevationView[]> {
    const state: ElevationState | undefined =
      status === undefined
        ? undefined
        : status === 'pending' || status === 'expired'
          ? 'pending'
          : status === 'active' || status === 'ended'
            ? 'approved'
            : status;
    const stored = await this.store.listElevations({
      ...(state === undefined ? {} : { state }),
      limit: 500,
    });
    const views: ElevationView[] = [];
    for (const e of stored) {
      const view = await this.#view(e);
      if (status !== undefined && view.status !== status) continue;
      if (e.requesterId === caller.id) {
        views.push(view);
        continue;
      }
      const decision = await this.authorize({
        principal: caller,
        action: 'elevation:approve',
        resource: { kind: 'record', record: 'elevation', id: e.id },
        client,
      });
      if (decision.decision === 'allow') views.push(view);
    }
    return views;
  }

  async getElevation(caller: Principal, client: ClientFacts, id: string): Promise<ElevationView> {
    const elevation = await this.#elevation(this.store, id);
    const visible =
      elevation !== undefined &&
      (elevation.requesterId === caller.id ||
        (
          await this.authorize({
            principal: caller,
            action: 'elevation:approve',
            resource: { kind: 'record', record: 'elevation', id: elevation.id },
            client,
          })
        ).decision === 'allow');
    if (!elevation || !visible)
      throw new StrongroomError('elevation_not_found', `elevation request ${quote(id)} does not exist`);
    return this.#view(elevation);
  }

  /**
   * Approve or deny a pending request. The caller was authorized for `elevation:approve` at the request's
   * scope; it must also be someone other than the requester, and only an admin at that scope approves an
   * elevation to admin. An approval creates the expiring binding in the same transaction.
   */
  async decideElevation(
    approver: Principal,
    id: string,
    verdict: 'approve' | 'deny',
    reason: string | undefined,
  ): Promise<ElevationView> {
    const elevation = await this.#elevation(this.store, id);
    if (!elevation)
      throw new StrongroomError('elevation_not_found', `elevation request ${quote(id)} does not exist`);
    if (elevation.requesterId === approver.id)
      throw new StrongroomError(
        'self_approval',
        'an elevation is decided by someone other than the person who asked',
      );
    if (verdict === 'approve' && elevation.role === 'admin') {
      const roles = await this.#cedar.rolesAt(approver, {
        kind: 'record',
        record: 'elevation',
        id: elevation.id,
      });
      const bootstrap = approver.id === BOOTSTRAP_ADMIN && approver.authMethod === 'bootstrap-token';
      if (!roles.includes('admin') && !bootstrap)
        throw new StrongroomError('forbidden', 'only an admin at that scope approves an elevation to admin');
    }
    const now = this.clock.now();
    if (elevation.state !== 'pending' || Date.parse(elevation.requestExpiresAt) <= now.getTime())
      throw new StrongroomError('elevation_closed', `elevation request ${quote(id)} is no longer pending`);
    const requester = await this.store.getUserById(elevation.requesterId);
    if (verdict === 'approve' && requester?.state !== 'active')
      throw new StrongroomError('elevation_closed', 'the requester is no longer an active user');
    const grantExpiresAt =
      verdict === 'approve' ? new Date(now.getTime() + elevation.durationSeconds * 1000).toISOString() : null;
    const bindingId = verdict === 'approve' ? `elevation-${elevation.id.slice(4, 20)}` : null;
    describeCurrent({
      details: {
        elevation: elevation.id,
        verdict,
        role: elevation.role,
        scope: scopeName(elevation.scope),
        requester: elevation.requesterId,
        ...(grantExpiresAt === null ? {} : { binding: bindingId, until: grantExpiresAt }),
      },
    });
    const decision = {
      state: verdict === 'approve' ? ('approved' as const) : ('denied' as const),
      decidedBy: approver.id,
      decidedAt: now.toISOString(),
      decisionReason: reason?.trim().slice(0, MAX_REASON) || null,
      bindingId,
      grantExpiresAt,
    };
    const write = async (tx: MetadataWriter) => {
      if (!(await tx.decideElevation(elevation.id, decision)))
        throw new StrongroomError('elevation_closed', `elevation request ${quote(id)} is no longer pending`);
      if (bindingId !== null && grantExpiresAt !== null)
        await tx.insertRoleBinding({
          id: bindingId,
          role: elevation.role,
          principal: { type: 'User', id: elevation.requesterId },
          scope: elevation.scope,
          expiresAt: grantExpiresAt,
          description: `just-in-time elevation: ${elevation.reason}`.slice(0, MAX_REASON),
          createdAt: now.toISOString(),
          createdBy: approver.id,
          elevationId: elevation.id,
        });
    };
    if (verdict === 'approve') await this.#change(write);
    else await this.store.transaction(write);
    return this.#view({ ...elevation, ...decision });
  }

  /** The requester withdraws a pending request. */
  async cancelElevation(caller: Principal, id: string): Promise<ElevationView> {
    const elevation = await this.#elevation(this.store, id);
    if (!elevation || elevation.requesterId !== caller.id)
      throw new StrongroomError('elevation_not_found', `elevation request ${quote(id)} does not exist`);
    describeCurrent({ details: { elevation: elevation.id, verdict: 'cancel' } });
    const now = this.clock.now().toISOString();
    const decision = {
      state: 'cancelled' as const,
      decidedBy: caller.id,
      decidedAt: now,
      decisionReason: null,
      bindingId: null,
      grantExpiresAt: null,
    };
    await this.store.transaction(async (tx) => {
      if (!(await tx.decideElevation(elevation.id, decision)))
        throw new StrongroomError('elevation_closed', `elevation request ${quote(id)} is no longer pending`);
    });
    return this.#view({ ...elevation, ...decision });
  }

  async #elevation(reader: MetadataReader, id: string): Promise<ElevationRecord | undefined> {
    const elevationId = parseId('elevation', id);
    return elevationId && (await reader.getElevation(elevationId));
  }

  async #view(e: ElevationRecord): Promise<ElevationView> {
    const now = this.clock.now().getTime();
    const status: ElevationView['status'] =
      e.state === 'pending'
        ? Date.parse(e.requestExpiresAt) <= now
          ? 'expired'
          : 'pending'
        : e.state === 'approved' && e.grantExpiresAt !== null && Date.parse(e.grantExpiresAt) <= now
          ? 'ended'
          : e.state === 'approved'
            ? 'active'
            : e.state;
    const requester = await this.store.getUserById(e.requesterId);
    return { ...e, status, requesterName: requester?.username ?? null };
  }

  // ---- helpers ----------------------------------------------------------------------------------------------

  /** Run a change and bump the policy revision in the same transaction; this instance reloads at once. */
  async #change<T>(fn: (tx: MetadataWriter) => Promise<T>): Promise<T> {
    const result = await this.store.transaction(async (tx) => {
      const value = await fn(tx);
      await bumpPolicyRevision(tx);
      return value;
    });
    await this.#fresh();
    return result;
  }

  /** Sensitivity, stage and placement of a resource, from the store (fail closed when it is missing). */
  async #attributes(reader: MetadataReader, resource: ResourceRef): Promise<ResourceAttributes> {
    switch (resource.kind) {
      case 'organization':
      case 'project':
        return {};
      case 'artifact':
      case 'version': {
        const tag = resource.kind === 'version' ? resource.version : null;
        const facts = await reader.getResourceFacts(resource.project, resource.artifact, tag);
        if (!facts) return {};
        const base = { artifact: { name: resource.artifact, sensitivity: facts.sensitivity } };
        if (tag === null || facts.versionState === null) return base;
        return { ...base, version: { tag, stage: stageOf(facts.versionState) } };
      }
      case 'upload': {
        const id = parseId('upload', resource.upload);
        const session = id && (await reader.getUpload(id));
        const version = session && (await reader.getVersionById(session.versionId));
        const artifact = version && (await reader.getArtifactById(version.artifactId));
        const project = artifact && (await reader.getProjectById(artifact.projectId));
        if (!version || !artifact || !project) return {};
        return {
          project: project.name,
          artifact: { name: artifact.name, sensitivity: artifact.sensitivity },
          version: { tag: version.tag, stage: stageOf(version.state) },
        };
      }
      case 'record': {
        const scope = await this.#recordScope(reader, resource.record, resource.id);
        return scope === undefined ? {} : this.#scopeAttributes(reader, scope);
      }
    }
  }

  async #recordScope(
    reader: MetadataReader,
    record: 'binding' | 'policy' | 'elevation',
    id: string,
  ): Promise<PolicyScope | undefined> {
    if (record === 'binding') return (await reader.getRoleBinding(id))?.scope;
    if (record === 'policy') return (await reader.getPolicy(id))?.scope;
    return (await this.#elevation(reader, id))?.scope;
  }

  async #scopeAttributes(reader: MetadataReader, scope: PolicyScope): Promise<ResourceAttributes> {
    if (scope.type === 'Organization') return {};
    const [projectName, artifactName] = scope.id.split('/') as [string, string | undefined];
    if (artifactName === undefined) return { project: projectName };
    const project = await reader.getProjectByName(projectName);
    const artifact = project && (await reader.getArtifact(project.id, artifactName));
    return {
      project: projectName,
      artifact: { name: artifactName, sensitivity: artifact?.sensitivity ?? 'restricted' },
    };
  }

  /** Review questions about a resource that does not exist are typos: answer them as not found. */
  async #mustExist(resource: ResourceRef): Promise<void> {
    if (resource.kind === 'organization' || resource.kind === 'upload' || resource.kind === 'record') return;
    const project = await this.store.getProjectByName(resource.project);
    if (!project)
      throw new StrongroomError('project_not_found', `project ${quote(resource.project)} does not exist`);
    if (resource.kind === 'project') return;
    const artifact = await this.store.getArtifact(project.id, resource.artifact);
    if (!artifact)
      throw new StrongroomError(
        'artifact_not_found',
        `artifact ${quote(`${resource.project}/${resource.artifact}`)} does not exist`,
      );
    if (resource.kind === 'version' && !(await this.store.getVersion(artifact.id, resource.version)))
      throw new StrongroomError('version_not_found', `version ${quote(resource.version)} does not exist`);
  }

  /** A scope names the organization, an existing project, or an existing artifact (`project/artifact`). */
  async #checkScope(scope: PolicyScope): Promise<PolicyScope> {
    if (!(POLICY_SCOPE_TYPES as readonly string[]).includes(scope.type))
      throw new StrongroomError('invalid_request', `scope type is one of ${POLICY_SCOPE_TYPES.join(', ')}`);
    if (scope.type === 'Organization') {
      if (scope.id !== ORGANIZATION)
        throw new StrongroomError('invalid_request', `the organization is ${quote(ORGANIZATION)}`);
      return scope;
    }
    const [projectName = '', artifactName = '', ...rest] = scope.id.split('/');
    const shapeOk =
      projectName !== '' &&
      rest.length === 0 &&
      (scope.type === 'Project' ? !scope.id.includes('/') : artifactName !== '');
    if (!shapeOk)
      throw new StrongroomError(
        'invalid_request',
        `scope ${quote(scope.id)} is not a ${scope.type.toLowerCase()}`,
      );
    const project = await this.store.getProjectByName(projectName);
    if (!project)
      throw new StrongroomError('project_not_found', `project ${quote(projectName)} does not exist`);
    if (scope.type === 'Artifact' && !(await this.store.getArtifact(project.id, artifactName)))
      throw new StrongroomError('artifact_not_found', `artifact ${quote(scope.id)} does not exist`);
    return { type: scope.type, id: scope.id };
  }

  async #resolvePrincipal(
    name: PrincipalName,
  ): Promise<{ type: 'User' | 'ServiceAccount' | 'Group'; id: string; name: string | null }> {
    switch (name.type) {
      case 'user': {
        const user = await this.#userByIdOrName(name.name);
        if (!user) throw new StrongroomError('user_not_found', `user ${quote(name.name)} does not exist`);
        return { type: 'User', id: user.id, name: user.username };
      }
      case 'sa': {
        const account = await this.#serviceByIdOrName(name.name);
        if (!account)
          throw new StrongroomError(
            'service_account_not_found',
            `service account ${quote(name.name)} does not exist`,
          );
        return { type: 'ServiceAccount', id: account.id, name: account.name };
      }
      case 'group': {
        const group = await this.store.getGroupByName(name.name);
        if (!group) throw new StrongroomError('group_not_found', `group ${quote(name.name)} does not exist`);
        return { type: 'Group', id: group.name, name: group.name };
      }
    }
  }

  /** A principal as the authenticator would build it (groups, environment), for explain and access of. */
  async #principalFor(name: PrincipalName): Promise<Principal> {
    const resolved = await this.#resolvePrincipal(name);
    if (resolved.type === 'Group')
      throw new StrongroomError(
        'invalid_request',
        'name a user (`user:NAME`) or a service account (`sa:NAME`)',
      );
    const groups = [...(await this.store.groupsOf(resolved.id))];
    if (resolved.type === 'User')
      return {
        id: resolved.id,
        kind: 'user',
        authMethod: 'password',
        name: resolved.name ?? resolved.id,
        groups,
      };
    const account = await this.store.getServiceAccountById(resolved.id as ServiceAccountId);
    return {
      id: resolved.id,
      kind: 'service',
      authMethod: 'api-token',
      name: resolved.name ?? resolved.id,
      groups,
      environment: account?.environment ?? null,
    };
  }

  async #caseFor(
    principal: Principal,
    action: Action,
    resource: ResourceRef,
    context: PolicyTestCase['context'],
  ): Promise<PolicyTestCase> {
    const attributes = await this.#attributes(this.store, resource);
    const chain = resourceChain(ORGANIZATION, resource, attributes);
    const testResource: PolicyTestCase['resource'] =
      chain.project === undefined
        ? { kind: 'organization' }
        : chain.artifact === undefined
          ? { kind: 'project', project: chain.project }
          : chain.tag === undefined
            ? {
                kind: 'artifact',
                project: chain.project,
                artifact: chain.artifact,
                sensitivity: chain.sensitivity ?? 'restricted',
              }
            : {
                kind: 'version',
                project: chain.project,
                artifact: chain.artifact,
                version: chain.tag,
                sensitivity: chain.sensitivity ?? 'restricted',
                stage: chain.stage ?? 'none',
              };
    return {
      name: 'explain',
      principal: {
        kind: principal.kind,
        id: principal.id,
        groups: [...(principal.groups ?? [])],
        authMethod: principal.authMethod,
        ...(principal.environment ? { environment: principal.environment } : {}),
      },
      action,
      resource: testResource,
      ...(context === undefined ? {} : { context }),
      expect: 'allow',
    };
  }

  async #userByIdOrName(idOrName: string) {
    const id = parseId('user', idOrName);
    return id ? this.store.getUserById(id) : this.store.getUserByName(idOrName);
  }

  async #serviceByIdOrName(idOrName: string) {
    const id = parseId('serviceAccount', idOrName);
    return id ? this.store.getServiceAccountById(id) : this.store.getServiceAccountByName(idOrName);
  }

  async #principalName(p: RoleBindingRecord['principal']): Promise<string | null> {
    if (p.type === 'Group') return p.id;
    if (p.type === 'User') {
      const id = parseId('user', p.id);
      return (id && (await this.store.getUserById(id))?.username) ?? null;
    }
    const id = parseId('serviceAccount', p.id);
    return (id && (await this.store.getServiceAccountById(id))?.name) ?? null;
  }

  async #memberRef(
    principalId: string,
  ): Promise<Pick<AccessGrant, 'principal' | 'principalName'> | undefined> {
    const userId = parseId('user', principalId);
    if (userId) {
      const user = await this.store.getUserById(userId);
      return user && { principal: { type: 'User', id: user.id }, principalName: user.username };
    }
    const saId = parseId('serviceAccount', principalId);
    const account = saId && (await this.store.getServiceAccountById(saId));
    return account
      ? { principal: { type: 'ServiceAccount', id: account.id }, principalName: account.name }
      : undefined;
  }
}

/** An elevation request as shown: with its status now (a pending request can expire, a grant can end). */
export interface ElevationView extends ElevationRecord {
  readonly status: 'pending' | 'expired' | 'active' | 'ended' | 'denied' | 'cancelled';
  readonly requesterName: string | null;
}

async function readRevision(reader: MetadataReader): Promise<string> {
  return (await reader.getSetting(POLICY_REVISION_SETTING)) ?? '0';
}

async function loadInput(
  reader: MetadataReader,
): Promise<{ bindings: RoleBinding[]; customPolicies: CustomPolicy[] }> {
  const [bindings, policies] = await Promise.all([reader.listRoleBindings(), reader.listPolicies()]);
  return { bindings: bindings.map(toRoleBinding), customPolicies: policies.map(toCustomPolicy) };
}

function toRoleBinding(b: RoleBindingRecord): RoleBinding {
  return {
    id: b.id,
    role: b.role as Role,
    principal: b.principal,
    scope: b.scope,
    ...(b.expiresAt === null ? {} : { expiresAt: b.expiresAt }),
  };
}

function toCustomPolicy(p: Pick<PolicyRecord, 'id' | 'text' | 'scope'>): CustomPolicy {
  return { id: p.id, text: p.text, scope: p.scope };
}

function roleGrants(role: string, action: Action): boolean {
  const actions = ROLE_ACTIONS[role as Role] as readonly Action[] | 'all' | undefined;
  return actions === 'all' || (actions?.includes(action) ?? false);
}

/** Whether `inner` lies inside `outer` (the organization contains everything). */
function scopeWithin(inner: PolicyScope, outer: PolicyScope): boolean {
  if (outer.type === 'Organization') return true;
  if (inner.type === 'Organization') return false;
  return inner.id === outer.id || inner.id.startsWith(`${outer.id}/`);
}

/** How a scope is written on the command line and in audit details: `organization`, `project:p`, `artifact:p/a`. */
export function scopeName(scope: PolicyScope): string {
  return scope.type === 'Organization' ? 'organization' : `${scope.type.toLowerCase()}:${scope.id}`;
}

/** The stage of a version for policies, until promotion stages exist: `none` (quarantine comes with scanning). */
function stageOf(state: string): string {
  return state === 'quarantined' ? 'quarantined' : 'none';
}

function stripComments(text: string): string {
  return text.replace(/\/\/[^\n]*/g, '');
}
