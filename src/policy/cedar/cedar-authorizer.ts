import './v8-workaround.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { systemClock, type Clock } from '../../core/clock.js';
import { StrongroomError, quote } from '../../core/errors.js';
import {
  scopeDenies,
  type Action,
  type AuthorizationRequest,
  type Authorizer,
  type Decision,
  type Principal,
  type ResourceRef,
} from '../authorizer.js';
import { contextKey, contextReads, type ContextReads } from './context-reads.js';
import {
  entityUid,
  requestEntities,
  resourceChain,
  type EntityUid,
  type ResourceAttributes,
  type ResourceChain,
} from './entities.js';
import { cedarContextJson, requestContext, type CedarContext, type RequestFacts } from './request-context.js';
import {
  BUILTIN_POLICIES,
  bindingExpirySeconds,
  bindingPolicy,
  bindingPolicyId,
  checkScope,
  scopeContains,
  type BindingScopeType,
  type RoleBinding,
} from './roles.js';
import { cedarType, formatCedarError, validatePolicies } from './schema.js';

/** An administrator's Cedar policy, confined to its scope: it can never affect resources outside it. */
export interface CustomPolicy {
  /** Unique id; the policy appears in decision reasons as `policy:<id>`. */
  readonly id: string;
  /** Exactly one Cedar policy (annotations allowed, no templates). */
  readonly text: string;
  readonly scope: { readonly type: BindingScopeType; readonly id: string };
}

/** Everything that makes up one policy version. */
export interface PolicyInput {
  readonly bindings: readonly RoleBinding[];
  readonly customPolicies: readonly CustomPolicy[];
}

export interface CedarAuthorizerOptions extends PolicyInput {
  /** Entity id of the one organization (`Strongroom::Organization::"<id>"`); default `default`. */
  readonly organization?: string;
  /** Sensitivity, stage and (for an upload session) location of a resource; never called for the organization. */
  readonly loadAttributes: (resource: ResourceRef) => Promise<ResourceAttributes>;
  /** What only the transport knows about the request: the client address and a device posture claim. */
  readonly requestFacts: (request: AuthorizationRequest) => RequestFacts;
  readonly clock?: Clock;
  /** Decisions kept in the cache (least recently used evicted first); 0 turns the cache off. */
  readonly cacheSize?: number;
}

/** A request with everything already loaded: evaluated with no I/O (policy tests, explain). */
export interface EvaluationInput {
  readonly principal: Principal;
  readonly action: Action;
  readonly resource: ResourceRef;
  readonly attributes: ResourceAttributes;
  readonly context: CedarContext;
}

/** A decision with everything Cedar saw, for `strongroom policy explain`. */
export interface Explanation extends Decision {
  readonly policyVersion: number;
  /** The policy set evaluated: `organization` or `project:<name>` (organization-wide plus that project's). */
  readonly slice: string;
  readonly principal: EntityUid;
  readonly action: EntityUid;
  readonly resource: EntityUid;
  readonly context: cedar.Context;
  readonly entities: readonly cedar.EntityJson[];
}

/** A policy set pre-parsed inside Cedar, with what its policies read from the context. */
interface Slice {
  readonly name: string;
  readonly preparsedId: string;
  readonly reads: ContextReads;
}

/**
 * A policy as Cedar parses it (custom policies stay text: a JavaScript number cannot carry every Cedar Long
 * through the JSON form) and its JSON form, read only to find the context fields it uses.
 */
interface CompiledPolicy {
  readonly policy: cedar.Policy;
  readonly json: cedar.PolicyJson;
}

interface Compiled {
  readonly version: number;
  readonly organizationWide: Readonly<Record<string, CompiledPolicy>>;
  readonly byProject: ReadonlyMap<string, Readonly<Record<string, CompiledPolicy>>>;
  /** Bindings by `Type:id` of their principal, to compute `context.roles`. */
  readonly bindingsOf: ReadonlyMap<string, readonly { binding: RoleBinding; expiry: number | undefined }[]>;
  readonly slices: Map<string, Slice>;
}

interface CachedDecision {
  readonly decision: Decision;
  readonly insertedAt: number;
}

interface Prepared {
  readonly compiled: Compiled;
  readonly slice: Slice;
  readonly chain: ResourceChain;
  readonly roles: readonly string[];
}

const DEFAULT_CACHE_SIZE = 10_000;
/** Actions only roles decide: custom policies are confined away from them (see `compileCustom`). */
export const MANAGEMENT_ACTIONS: readonly Action[] = ['policy:read', 'policy:manage', 'access:review'];
let instances = 0;

/** The policy id of a custom policy, as it appears in decision reasons. */
export function customPolicyId(policy: Pick<CustomPolicy, 'id'>): string {
  return `policy:${policy.id}`;
}

/**
 * The Cedar authorizer (DESIGN.md section 7, issue 5): default deny, forbid wins, an erroring policy is
 * skipped and reported, reasons are the ids of the policies that decided. Policy text is parsed once per
 * policy version, into one pre-parsed set per project (organization-wide policies plus that project's), so a
 * request is evaluated against its slice only and a project's policy can never decide another project's
 * request. Decisions are cached per policy version; the key holds exactly the inputs the slice can read.
 * A token's scope then narrows an allow (`scopeDenies`): a token never does more than its principal.
 */
export class CedarAuthorizer implements Authorizer {
  readonly #options: CedarAuthorizerOptions;
  readonly #organization: string;
  readonly #clock: Clock;
  readonly #cacheSize: number;
  readonly #instance = ++instances;
  readonly #cache = new Map<string, CachedDecision>();
  /** Insertions so far: an entry's age, to refresh its place only once it drifts toward eviction. */
  #insertions = 0;
  #compiled: Compiled;

  constructor(options: CedarAuthorizerOptions) {
    this.#options = options;
    this.#organization = options.organization ?? 'default';
    this.#clock = options.clock ?? systemClock;
    this.#cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.#compiled = this.#compile(options, 1);
  }

  /** The current policy version; every `update` increments it. */
  get version(): number {
    return this.#compiled.version;
  }

  /**
   * Replace the bindings and custom policies. Everything is checked first (strict schema validation), so
   * a bad policy leaves the previous version in force; the very next decision uses the new version.
   */
  update(input: PolicyInput): number {
    this.#compiled = this.#compile(input, this.#compiled.version + 1);
    this.#cache.clear();
    return this.#compiled.version;
  }

  /** Check a candidate policy input exactly as `update` would, without installing it. */
  check(input: PolicyInput): void {
    this.#compile(input, this.#compiled.version);
  }

  /** The built-in roles a principal holds at a resource through unexpired bindings, at `now`. */
  async rolesAt(principal: Principal, resource: ResourceRef): Promise<readonly string[]> {
    const attributes = resource.kind === 'organization' ? {} : await this.#options.loadAttributes(resource);
    const now = this.#clock.now();
    const chain = resourceChain(this.#organization, resource, attributes);
    const context = requestContext(principal, { ip: '127.0.0.1' }, now);
    return this.#roles(
      this.#compiled,
      { principal, action: 'project:read', resource, attributes, context },
      chain,
    );
  }

  /** Decide a request (the `Authorizer` seam), from the cache when the same inputs were decided before. */
  async authorize(request: AuthorizationRequest): Promise<Decision> {
    const input = await this.#load(request);
    const prepared = this.#prepare(input);
    const key = this.#cacheSize > 0 ? this.#cacheKey(input, prepared) : undefined;
    const cached = key === undefined ? undefined : this.#cache.get(key);
    let decision = cached?.decision;
    if (cached !== undefined && key !== undefined) {
      // Approximate LRU: a hit moves its entry to the young end only once it is in the older half. Moving it
      // on every hit (delete + set) is slow in a large Map when one key is hit again and again.
      if (this.#insertions - cached.insertedAt > this.#cacheSize / 2) {
        this.#cache.delete(key);
        this.#cache.set(key, { decision: cached.decision, insertedAt: ++this.#insertions });
      }
    } else {
      decision = this.#evaluate(input, prepared);
      if (key !== undefined) this.#remember(key, decision);
    }
    return narrow(decision as Decision, input);
  }

  /** Decide a request without the cache, returning what Cedar evaluated (`strongroom policy explain`). */
  async explain(request: AuthorizationRequest): Promise<Explanation> {
    return this.evaluate(await this.#load(request));
  }

  /** Decide already-loaded inputs, without I/O or the cache (policy tests and explain). */
  evaluate(input: EvaluationInput): Explanation {
    const prepared = this.#prepare(input);
    const { decision, call } = this.#run(input, prepared);
    return {
      ...narrow(decision, input),
      policyVersion: prepared.compiled.version,
      slice: prepared.slice.name,
      principal: call.principal as EntityUid,
      action: call.action as EntityUid,
      resource: call.resource as EntityUid,
      context: call.context,
      entities: call.entities,
    };
  }

  async #load(request: AuthorizationRequest): Promise<EvaluationInput> {
    const attributes =
      request.resource.kind === 'organization' ? {} : await this.#options.loadAttributes(request.resource);
    const facts = this.#options.requestFacts(request);
    return { ...request, attributes, context: requestContext(request.principal, facts, this.#clock.now()) };
  }

  #prepare(input: EvaluationInput): Prepared {
    const compiled = this.#compiled;
    const chain = resourceChain(this.#organization, input.resource, input.attributes);
    const slice = this.#slice(compiled, chain.project);
    return { compiled, slice, chain, roles: this.#roles(compiled, input, chain) };
  }

  /** Built-in roles the principal holds at the resource through unexpired bindings (`context.roles`). */
  #roles(compiled: Compiled, input: EvaluationInput, chain: ResourceChain): string[] {
    const { principal } = input;
    const keys = [
      `${principal.kind === 'service' ? 'ServiceAccount' : 'User'}:${principal.id}`,
      ...(principal.groups ?? []).map((g) => `Group:${g}`),
    ];
    const roles = new Set<string>();
    for (const key of keys) {
      for (const { binding, expiry } of compiled.bindingsOf.get(key) ?? []) {
        if (expiry !== undefined && input.context.time >= expiry) continue;
        if (scopeContains(binding, this.#organization, chain)) roles.add(binding.role);
      }
    }
    return [...roles].sort();
  }

  #evaluate(input: EvaluationInput, prepared: Prepared): Decision {
    return this.#run(input, prepared).decision;
  }

  #run(
    input: EvaluationInput,
    prepared: Prepared,
  ): { decision: Decision; call: cedar.StatefulAuthorizationCall } {
    const entities = requestEntities(this.#organization, input.principal, prepared.chain);
    const call: cedar.StatefulAuthorizationCall = {
      principal: entities.principal,
      action: { type: cedarType('Action'), id: input.action },
      resource: entities.resource,
      context: cedarContextJson(input.context, prepared.roles),
      entities: entities.entities,
      preparsedPolicySetId: prepared.slice.preparsedId,
    };
    const answer = cedar.statefulIsAuthorized(call);
    if (answer.type === 'failure') {
      // The request itself could not be evaluated (for example a malformed client address): fail closed.
      return {
        decision: { decision: 'deny', reasons: [], errors: answer.errors.map(formatCedarError) },
        call,
      };
    }
    const { decision, diagnostics } = answer.response;
    const decided: Decision = {
      decision,
      reasons: [...diagnostics.reason].sort(),
      errors: diagnostics.errors.map((e) => `${e.policyId}: ${formatCedarError(e.error)}`),
    };
    return { decision: decided, call };
  }

  #cacheKey(input: EvaluationInput, prepared: Prepared): string {
    const { principal, action, context } = input;
    const { chain, slice, compiled, roles } = prepared;
    return JSON.stringify([
      compiled.version,
      principal.kind,
      principal.id,
      [...(principal.groups ?? [])].sort(),
      action,
      chain.uid.type,
      chain.uid.id,
      chain.project ?? null,
      chain.sensitivity ?? null,
      chain.stage ?? null,
      contextKey(slice.reads, { ...context, roles }),
    ]);
  }

  #remember(key: string, decision: Decision): void {
    this.#cache.set(key, { decision, insertedAt: ++this.#insertions });
    if (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next();
      if (oldest.done !== true) this.#cache.delete(oldest.value);
    }
  }

  /** The pre-parsed set for a project (or the organization), parsed at most once per policy version. */
  #slice(compiled: Compiled, project: string | undefined): Slice {
    const name =
      project !== undefined && compiled.byProject.has(project) ? `project:${project}` : 'organization';
    const existing = compiled.slices.get(name);
    if (existing !== undefined) return existing;
    const policies = {
      ...compiled.organizationWide,
      ...(project === undefined ? {} : compiled.byProject.get(project)),
    };
    // Same id for the same slice in every version: the new parse replaces the old one inside Cedar.
    const preparsedId = `strongroom-${this.#instance}-${name}`;
    const staticPolicies = Object.fromEntries(Object.entries(policies).map(([id, p]) => [id, p.policy]));
    const answer = cedar.preparsePolicySet(preparsedId, { staticPolicies });
    if (answer.type === 'failure')
      throw new StrongroomError('internal_error', `policy set ${quote(name)} failed to parse`, {
        cause: answer.errors.map(formatCedarError).join('; '),
      });
    const slice: Slice = {
      name,
      preparsedId,
      reads: contextReads(Object.values(policies).map((p) => p.json)),
    };
    compiled.slices.set(name, slice);
    return slice;
  }

  #compile(input: PolicyInput, version: number): Compiled {
    const organizationWide: Record<string, CompiledPolicy> = Object.fromEntries(
      Object.entries(BUILTIN_POLICIES).map(([id, json]) => [id, { policy: json, json }]),
    );
    const byProject = new Map<string, Record<string, CompiledPolicy>>();
    const bindingsOf = new Map<string, { binding: RoleBinding; expiry: number | undefined }[]>();
    const place = (id: string, scope: CustomPolicy['scope'], policy: CompiledPolicy) => {
      if (id in organizationWide || [...byProject.values()].some((p) => id in p))
        throw new StrongroomError('invalid_request', `policy id ${quote(id)} is used twice`);
      const project = scope.type === 'Organization' ? undefined : scope.id.split('/')[0];
      if (project === undefined) organizationWide[id] = policy;
      else {
        let policies = byProject.get(project);
        if (policies === undefined) byProject.set(project, (policies = {}));
        policies[id] = policy;
      }
    };
    for (const binding of input.bindings) {
      const json = bindingPolicy(binding);
      place(bindingPolicyId(binding), binding.scope, { policy: json, json });
      const key = `${binding.principal.type}:${binding.principal.id}`;
      const list = bindingsOf.get(key) ?? [];
      list.push({ binding, expiry: bindingExpirySeconds(binding) });
      bindingsOf.set(key, list);
    }
    for (const custom of input.customPolicies)
      place(customPolicyId(custom), custom.scope, compileCustom(custom));
    checkCustomPolicies(input.customPolicies);
    return { version, organizationWide, byProject, bindingsOf, slices: new Map() };
  }
}

function narrow(
  decision: Decision,
  input: Pick<EvaluationInput, 'principal' | 'action' | 'resource'>,
): Decision {
  if (decision.decision !== 'allow') return decision;
  const narrowed = scopeDenies(input.principal.scope ?? null, input.action, input.resource);
  return narrowed === undefined
    ? decision
    : { decision: 'deny', reasons: [narrowed], errors: decision.errors };
}

/** Strict validation of every custom policy against the schema, in one call. */
function checkCustomPolicies(policies: readonly CustomPolicy[]): void {
  if (policies.length === 0) return;
  const byId = Object.fromEntries(policies.map((p) => [customPolicyId(p), p.text]));
  const result = validatePolicies(byId);
  if (!result.ok) throw new StrongroomError('policy_invalid', `invalid policy: ${result.errors.join('; ')}`);
}

/**
 * One custom policy, confined to its scope by an added `when { resource in <scope> }`: a project's or an
 * artifact's policy can only ever decide inside it, even when its own constraints are broader. It is also kept
 * away from `policy:read`, `policy:manage` and `access:review`, which only roles decide.
 */
function compileCustom(custom: CustomPolicy): CompiledPolicy {
  checkScope(`policy ${quote(custom.id)}`, custom.scope);
  const fail = (errors: readonly cedar.DetailedError[]) =>
    new StrongroomError(
      'policy_invalid',
      `policy ${quote(custom.id)}: ${errors.map(formatCedarError).join('; ')}`,
    );
  const parts = cedar.policySetTextToParts(custom.text);
  if (parts.type === 'failure') throw fail(parts.errors);
  const [text] = parts.policies;
  if (text === undefined || parts.policies.length !== 1 || parts.policy_templates.length !== 0)
    throw new StrongroomError('policy_invalid', `policy ${quote(custom.id)} must hold exactly one policy`);
  const scope = entityUid(custom.scope.type, custom.scope.id);
  // Guardrail: no custom policy decides who reads or manages access itself (roles do), so a careless forbid
  // can never lock the administrators out of the policy that needs fixing.
  const managed = MANAGEMENT_ACTIONS.map((x) => `${cedarType('Action')}::"${x}"`).join(', ');
  const confined = `${text.replace(/;\s*$/, '')}\nwhen { resource in ${scope.type}::${JSON.stringify(scope.id)} }\nunless { action in [${managed}] };`;
  const json = cedar.policyToJson(confined);
  if (json.type === 'failure') throw fail(json.errors);
  return { policy: confined, json: json.json };
}
