/**
 * One configuration of the decision-cost half of `bench/authorization.ts`, in a process of its own:
 * `node --import tsx bench/authorization-decisions.ts POLICIES CACHE SAMPLES`. CACHE is `uncached` (cache
 * off, 5,000 distinct requests), `cached` (hits on a working set of 1,000 requests, the only entries) or
 * `hot` (hits on one request repeated among 10,000 entries: the default size, full as a server's cache is
 * once it has run a while, and one client asking for the same thing again and again, as in the HTTP part).
 * It builds a `CedarAuthorizer` with the built-in role policies, 103 bindings and POLICIES custom policies
 * spread over 100 projects (each request evaluates only its slice: organization-wide policies plus its
 * project's), warms it, times SAMPLES decisions and prints one `RESULT {json}` line.
 *
 * One process per configuration, because with all of them in one process Node 20's V8 (11.3) aborted in
 * most runs: `Fatal error ... unreachable code` in `Deoptimizer::DoComputeBuiltinContinuation`. TurboFan
 * inlined the call into Cedar's WebAssembly (`--turbo-inline-js-wasm-calls`); when the optimized caller was
 * invalidated while that call ran (new object shapes, here from the next configuration), the lazy
 * deoptimization on return aborted the process. A fresh process per configuration made it rarer, not
 * impossible (the `hot` runs still died in about 4 of 9). `src/policy/cedar/v8-workaround.ts` now turns that
 * inlining off before Cedar loads; `bench/authorization.ts` still runs a configuration that dies again with
 * the flag on its command line, and says so (docs/performance.md, "Authorization").
 */
import type { Action, AuthorizationRequest, Principal, ResourceRef } from '../src/policy/authorizer.js';
import { CedarAuthorizer, type CustomPolicy } from '../src/policy/cedar/cedar-authorizer.js';
import type { RoleBinding } from '../src/policy/cedar/roles.js';

const [policiesArg, cacheArg, samplesArg] = process.argv.slice(2);
const CUSTOM = Number(policiesArg);
const MODES = ['uncached', 'cached', 'hot'];
const CACHED = cacheArg !== 'uncached';
const CACHE_SIZE = 10_000;
const SAMPLES = Number(samplesArg);
if (!Number.isInteger(CUSTOM) || !Number.isInteger(SAMPLES) || !MODES.includes(cacheArg ?? ''))
  throw new Error('usage: authorization-decisions.ts POLICIES uncached|cached|hot SAMPLES');
const PROJECTS = 100;
/**
 * The real clock moved to 12:00 UTC today: time still passes, but one template reads the hour, so without
 * this the share of allowed requests (and what Cedar evaluates) would depend on when the bench runs.
 */
const started = new Date();
const shift =
  started.getTime() - Date.UTC(started.getUTCFullYear(), started.getUTCMonth(), started.getUTCDate(), 12);
const clock = { now: () => new Date(Date.now() - shift) };
const USERS = 200;
const ORG = { type: 'Organization', id: 'default' } as const;

/** Org-wide admins and auditors, a viewer group, and one contributor binding per project (some expiring). */
function bindings(): RoleBinding[] {
  const list: RoleBinding[] = [
    { id: 'admins', role: 'admin', principal: { type: 'Group', id: 'admins' }, scope: ORG },
    { id: 'auditors', role: 'auditor', principal: { type: 'Group', id: 'auditors' }, scope: ORG },
    { id: 'ml-viewers', role: 'viewer', principal: { type: 'Group', id: 'ml' }, scope: ORG },
  ];
  for (let p = 0; p < PROJECTS; p++) {
    list.push({
      id: `contrib-${p}`,
      role: 'contributor',
      principal: { type: 'Group', id: `team-${p}` },
      scope: { type: 'Project', id: `project-${p}` },
      ...(p % 3 === 0
        ? { expiresAt: new Date(clock.now().getTime() + 86_400_000 * (p + 1)).toISOString() }
        : {}),
    });
  }
  return list;
}

/** Custom policies in the style of the documented examples, varying literals, spread over the projects. */
function customPolicies(count: number): CustomPolicy[] {
  const templates = [
    (i: number) =>
      `forbid (principal is Strongroom::ServiceAccount, action == Strongroom::Action::"version:download", resource is Strongroom::Version) when { context has environment && context.environment == "production" } unless { resource.stage == "production-${i}" || resource.stage == "production" };`,
    (i: number) =>
      `forbid (principal, action, resource is Strongroom::Version) when { resource.artifact.sensitivity == "restricted" } unless { context.ip.isInRange(ip("10.${i % 256}.0.0/16")) && context has mfaAgeSeconds && context.mfaAgeSeconds <= ${600 + i} };`,
    (i: number) =>
      `forbid (principal, action == Strongroom::Action::"artifact:update", resource) unless { context.hourUtc >= ${i % 8} && context.hourUtc < ${16 + (i % 8)} };`,
    (i: number) =>
      `permit (principal in Strongroom::Group::"guests-${i}", action == Strongroom::Action::"version:read", resource) when { context.time < ${2_000_000_000 + i} };`,
  ];
  return Array.from({ length: count }, (_, i) => ({
    id: `custom-${i}`,
    text: templates[i % templates.length]!(i),
    scope: { type: 'Project', id: `project-${i % PROJECTS}` },
  }));
}

function requests(count: number): AuthorizationRequest[] {
  const actions: Action[] = [
    'version:download',
    'version:read',
    'artifact:read',
    'artifact:update',
    'version:list',
  ];
  const mfaAt = new Date(clock.now().getTime() - 120_000).toISOString();
  return Array.from({ length: count }, (_, i) => {
    const p = i % PROJECTS;
    const principal: Principal = {
      id: `user-${i % USERS}`,
      kind: 'user',
      authMethod: 'password',
      groups: i % 7 === 0 ? ['ml'] : [`team-${p}`],
      mfaAt,
    };
    const action = actions[i % actions.length]!;
    const resource: ResourceRef =
      action === 'artifact:read' || action === 'artifact:update' || action === 'version:list'
        ? { kind: 'artifact', project: `project-${p}`, artifact: `model-${i % 10}` }
        : { kind: 'version', project: `project-${p}`, artifact: `model-${i % 10}`, version: `1.${i % 5}.0` };
    return { principal, action, resource };
  });
}

function authorizer(custom: number, cacheSize: number): CedarAuthorizer {
  return new CedarAuthorizer({
    bindings: bindings(),
    customPolicies: customPolicies(custom),
    cacheSize,
    clock,
    loadAttributes: (resource) =>
      Promise.resolve(
        resource.kind === 'artifact' || resource.kind === 'version'
          ? {
              artifact: {
                name: resource.artifact,
                sensitivity: resource.artifact.endsWith('3') ? 'restricted' : 'internal',
              },
              ...(resource.kind === 'version'
                ? { version: { tag: resource.version, stage: 'production' } }
                : {}),
            }
          : {},
      ),
    requestFacts: () => ({ ip: '10.1.2.3' }),
  });
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

const constructStarted = performance.now();
const a = authorizer(CUSTOM, CACHED ? CACHE_SIZE : 0);
const constructMs = performance.now() - constructStarted;
// Distinct requests: uncached, every one is evaluated by Cedar; cached, a working set of 1,000 repeats.
const pool = requests(cacheArg === 'hot' ? 1 : CACHED ? 1_000 : 5_000);
// Warm: every slice pre-parsed, the cache filled, the hot code optimized with the shapes it will see.
const warmStarted = performance.now();
if (cacheArg === 'hot') {
  // Other principals' decisions fill the rest of the cache; none is evicted: the measured one stays cached.
  const fillers = requests(CACHE_SIZE - pool.length);
  for (let i = 0; i < fillers.length; i++)
    await a.authorize({ ...fillers[i]!, principal: { ...fillers[i]!.principal, id: `filler-${i}` } });
}
for (let i = 0; i < pool.length + 2_000; i++) await a.authorize(pool[i % pool.length]!);
const warmMs = performance.now() - warmStarted;
const times = new Float64Array(SAMPLES);
let allowed = 0;
for (let i = 0; i < SAMPLES; i++) {
  const r = pool[i % pool.length]!;
  const t = process.hrtime.bigint();
  const d = await a.authorize(r);
  times[i] = Number(process.hrtime.bigint() - t) / 1000;
  if (d.decision === 'allow') allowed++;
}
times.sort();
process.stdout.write(
  `RESULT ${JSON.stringify({
    custom: CUSTOM,
    cache: cacheArg,
    samples: SAMPLES,
    p50: percentile(times, 0.5),
    p99: percentile(times, 0.99),
    allowedShare: allowed / SAMPLES,
    constructMs,
    warmMs,
    bindings: bindings().length,
    rssMiB: process.memoryUsage().rss / 2 ** 20,
  })}\n`,
);
