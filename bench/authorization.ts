/**
 * `node --import tsx bench/authorization.ts [--quick]`: the cost of one authorization decision (issue 5),
 * p50 and p99, with the built-in role policies only, with 100 and with 1,000 custom policies spread over 100
 * projects (each request evaluates only its slice: organization-wide policies plus its project's), without
 * and with the decision cache. Target: p99 <= 100 us with the built-ins and 100 custom policies. A report,
 * never a pass/fail test.
 */
import type { Action, AuthorizationRequest, Principal, ResourceRef } from '../src/policy/authorizer.js';
import { CedarAuthorizer, type CustomPolicy } from '../src/policy/cedar/cedar-authorizer.js';
import type { RoleBinding } from '../src/policy/cedar/roles.js';

const quick = process.argv.includes('--quick');
const SAMPLES = quick ? 5_000 : 50_000;
const PROJECTS = 100;
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
      ...(p % 3 === 0 ? { expiresAt: new Date(Date.now() + 86_400_000 * (p + 1)).toISOString() } : {}),
    });
  }
  return list;
}

/** Custom policies in the style of the documented examples, with varying literals, spread over the projects. */
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
  return Array.from({ length: count }, (_, i) => {
    const p = i % PROJECTS;
    const principal: Principal = {
      id: `user-${i % USERS}`,
      kind: 'user',
      authMethod: 'password',
      groups: i % 7 === 0 ? ['ml'] : [`team-${p}`],
      mfaAt: new Date(Date.now() - 120_000).toISOString(),
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

async function measure(label: string, custom: number, cached: boolean): Promise<void> {
  const started = performance.now();
  const a = authorizer(custom, cached ? 10_000 : 0);
  const compileMs = performance.now() - started;
  // Distinct requests: uncached, every one is evaluated by Cedar; cached, a working set of 1,000 repeats.
  const pool = requests(cached ? 1_000 : 5_000);
  for (const r of pool) await a.authorize(r); // warm: every slice pre-parsed, the cache filled
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
  console.log(
    `${label.padEnd(34)} p50 ${percentile(times, 0.5).toFixed(1).padStart(7)} us   p99 ${percentile(
      times,
      0.99,
    )
      .toFixed(1)
      .padStart(
        7,
      )} us   (allowed ${((100 * allowed) / SAMPLES).toFixed(0)}%, construct ${compileMs.toFixed(0)} ms)`,
  );
}

// A throwaway round first: JIT and Cedar warm-up would otherwise land in the first row.
await measure('(warm-up, ignore)', 0, false);
console.log(
  `authorization decision cost, ${SAMPLES} samples each, ${PROJECTS} projects, ${bindings().length} bindings`,
);
for (const [label, custom] of [
  ['built-ins', 0],
  ['built-ins + 100 custom', 100],
  ['built-ins + 1,000 custom', 1_000],
] as const) {
  await measure(`${label}, uncached`, custom, false);
  await measure(`${label}, cached`, custom, true);
}
