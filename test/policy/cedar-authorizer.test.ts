import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import { ACTIONS, type Action, type Principal, type ResourceRef } from '../../src/policy/authorizer.js';
import { CedarAuthorizer, type CustomPolicy } from '../../src/policy/cedar/cedar-authorizer.js';
import type { ResourceAttributes } from '../../src/policy/cedar/entities.js';
import { runPolicyTests, type PolicyTestCase } from '../../src/policy/cedar/policy-test.js';
import { ROLES, ROLE_ACTIONS, SELF_SERVICE_ACTIONS, type RoleBinding } from '../../src/policy/cedar/roles.js';
import { ACTION_RESOURCE_TYPE } from '../../src/policy/cedar/schema.js';

const ORG = { type: 'Organization', id: 'default' } as const;
const T0 = Date.parse('2030-06-01T12:00:00Z');

class TestClock implements Clock {
  constructor(public ms = T0) {}
  now(): Date {
    return new Date(this.ms);
  }
}

interface Setup {
  bindings?: RoleBinding[];
  customPolicies?: CustomPolicy[];
  attributes?: (resource: ResourceRef) => ResourceAttributes;
  ip?: string;
}

function setup({
  bindings = [],
  customPolicies = [],
  attributes,
  ip = '10.1.2.3',
  cacheSize,
}: Setup & { cacheSize?: number } = {}) {
  const clock = new TestClock();
  let loads = 0;
  const authorizer = new CedarAuthorizer({
    bindings,
    customPolicies,
    clock,
    loadAttributes: (resource) => {
      loads++;
      if (attributes !== undefined) return Promise.resolve(attributes(resource));
      if (resource.kind === 'artifact' || resource.kind === 'version')
        return Promise.resolve({
          artifact: { name: resource.artifact, sensitivity: 'internal' },
          ...(resource.kind === 'version' ? { version: { tag: resource.version, stage: 'production' } } : {}),
        });
      return Promise.resolve({});
    },
    requestFacts: () => ({ ip }),
    ...(cacheSize === undefined ? {} : { cacheSize }),
  });
  return { authorizer, clock, loads: () => loads };
}

const user = (id: string, extra: Partial<Principal> = {}): Principal => ({
  id,
  kind: 'user',
  authMethod: 'password',
  ...extra,
});
const project = (name: string): ResourceRef => ({ kind: 'project', project: name });
const version = (project: string, artifact = 'resnet', tag = '1.0.0'): ResourceRef => ({
  kind: 'version',
  project,
  artifact,
  version: tag,
});
const binding = (
  id: string,
  role: RoleBinding['role'],
  scope: RoleBinding['scope'],
  more: Partial<RoleBinding> = {},
) => ({ id, role, principal: { type: 'User', id: 'u' }, scope, ...more }) as RoleBinding;

/** One resource of each type, inside and outside the scope under test. */
const RESOURCES: Record<string, readonly PolicyTestCase['resource'][]> = {
  Organization: [{ kind: 'organization' }],
  Project: [
    { kind: 'project', project: 'vision' },
    { kind: 'project', project: 'speech' },
  ],
  Artifact: [
    { kind: 'artifact', project: 'vision', artifact: 'resnet' },
    { kind: 'artifact', project: 'vision', artifact: 'other' },
    { kind: 'artifact', project: 'speech', artifact: 'whisper' },
  ],
  Version: [
    { kind: 'version', project: 'vision', artifact: 'resnet', version: '1', stage: 'production' },
    { kind: 'version', project: 'vision', artifact: 'other', version: '1', stage: 'production' },
    { kind: 'version', project: 'speech', artifact: 'whisper', version: '1', stage: 'production' },
  ],
};

const SCOPES = [
  { type: 'Organization', id: 'default' },
  { type: 'Project', id: 'vision' },
  { type: 'Artifact', id: 'vision/resnet' },
] as const;

function inScope(scope: (typeof SCOPES)[number], resource: PolicyTestCase['resource']): boolean {
  if (scope.type === 'Organization') return true;
  if (resource.kind === 'organization') return false;
  if (scope.type === 'Project') return resource.project === scope.id;
  return resource.kind !== 'project' && `${resource.project}/${resource.artifact}` === scope.id;
}

describe('built-in roles', () => {
  for (const role of ROLES) {
    for (const scope of SCOPES) {
      it(`${role} at ${scope.type} scope allows exactly its actions inside the scope`, () => {
        const { authorizer } = setup({ bindings: [binding('b', role, scope)] });
        const granted = ROLE_ACTIONS[role];
        const cases: PolicyTestCase[] = [];
        for (const action of ACTIONS) {
          for (const resource of [ACTION_RESOURCE_TYPE[action]].flat().flatMap((t) => RESOURCES[t] ?? [])) {
            const byRole = (granted === 'all' || granted.includes(action)) && inScope(scope, resource);
            const selfService = SELF_SERVICE_ACTIONS.includes(action);
            cases.push({
              name: `${action} on ${JSON.stringify(resource)}`,
              principal: { kind: 'user', id: 'u' },
              action,
              resource,
              expect: byRole || selfService ? 'allow' : 'deny',
              reasons: [...(byRole ? ['binding:b'] : []), ...(selfService ? ['builtin:self-service'] : [])],
            });
          }
        }
        const failures = runPolicyTests(cases, authorizer, new Date(T0)).filter((r) => !r.passed);
        expect(failures.map((f) => `${f.name}: ${f.failure ?? ''}`)).toEqual([]);
      });
    }
  }

  it('a principal without a binding can do nothing beyond its own session (least privilege)', async () => {
    const { authorizer } = setup();
    for (const action of ACTIONS) {
      const resource: ResourceRef =
        ACTION_RESOURCE_TYPE[action] === 'Organization' ? { kind: 'organization' } : version('vision');
      if (ACTION_RESOURCE_TYPE[action] !== 'Organization' && ACTION_RESOURCE_TYPE[action] !== 'Version')
        continue;
      const decision = await authorizer.authorize({ principal: user('nobody'), action, resource });
      expect(decision.decision, action).toBe(SELF_SERVICE_ACTIONS.includes(action) ? 'allow' : 'deny');
    }
  });

  it('a role bound to a group applies to its members only', async () => {
    const { authorizer } = setup({
      bindings: [
        {
          id: 'g',
          role: 'viewer',
          principal: { type: 'Group', id: 'ml' },
          scope: { type: 'Project', id: 'vision' },
        },
      ],
    });
    const request = { action: 'version:download' as Action, resource: version('vision') };
    expect(
      (await authorizer.authorize({ ...request, principal: user('a', { groups: ['ml'] }) })).reasons,
    ).toEqual(['binding:g']);
    expect(
      (await authorizer.authorize({ ...request, principal: user('b', { groups: ['ops'] }) })).decision,
    ).toBe('deny');
  });

  it('a binding to a user does not apply to a service account with the same id', async () => {
    const { authorizer } = setup({ bindings: [binding('b', 'viewer', ORG)] });
    const sa: Principal = { id: 'u', kind: 'service', authMethod: 'token' };
    expect(
      (
        await authorizer.authorize({
          principal: sa,
          action: 'project:read',
          resource: { kind: 'project', project: 'x' },
        })
      ).decision,
    ).toBe('deny');
  });

  it('only the incident-responder (and admin) roles download a quarantined version by default', async () => {
    const quarantined = () => ({
      artifact: { name: 'resnet', sensitivity: 'internal' },
      version: { tag: '1.0.0', stage: 'quarantined' },
    });
    for (const role of ROLES) {
      const { authorizer } = setup({ bindings: [binding('b', role, ORG)], attributes: quarantined });
      const d = await authorizer.authorize({
        principal: user('u'),
        action: 'version:download',
        resource: version('vision'),
      });
      expect(d.decision, role).toBe(role === 'incident-responder' || role === 'admin' ? 'allow' : 'deny');
    }
  });

  it('the bootstrap administrator may do everything with the bootstrap token only', async () => {
    const { authorizer } = setup();
    const request = { action: 'user:create' as Action, resource: { kind: 'organization' } as ResourceRef };
    const boot = user('bootstrap-admin', { authMethod: 'bootstrap-token' });
    expect(await authorizer.authorize({ ...request, principal: boot })).toEqual({
      decision: 'allow',
      reasons: ['builtin:bootstrap-admin'],
      errors: [],
    });
    expect(
      (await authorizer.authorize({ ...request, principal: { ...boot, authMethod: 'password' } })).decision,
    ).toBe('deny');
  });
});

describe('binding expiry', () => {
  const expiring = binding(
    'jit',
    'contributor',
    { type: 'Project', id: 'vision' },
    { expiresAt: '2030-06-01T13:00:00Z' },
  );

  it('an expired binding denies even while it is still stored, also after a cached allow', async () => {
    const { authorizer, clock } = setup({ bindings: [expiring] });
    const request = { principal: user('u'), action: 'version:create' as Action, resource: version('vision') };
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    clock.ms = Date.parse('2030-06-01T12:59:59.999Z');
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    clock.ms = Date.parse('2030-06-01T13:00:00Z');
    expect(await authorizer.authorize(request)).toEqual({ decision: 'deny', reasons: [], errors: [] });
    clock.ms = Date.parse('2031-01-01T00:00:00Z');
    expect((await authorizer.authorize(request)).decision).toBe('deny');
  });

  it('an expired role no longer counts in context.roles', () => {
    const { authorizer } = setup({ bindings: [expiring] });
    const input = {
      principal: user('u'),
      action: 'version:read' as Action,
      resource: version('vision'),
      attributes: {},
      context: {
        ip: '10.0.0.1',
        time: Date.parse('2030-06-01T13:00:00Z') / 1000,
        hourUtc: 13,
        authMethod: 'password',
      },
    };
    expect(
      authorizer.evaluate({ ...input, context: { ...input.context, time: input.context.time - 1 } }).context[
        'roles'
      ],
    ).toEqual(['contributor']);
    expect(authorizer.evaluate(input).context['roles']).toEqual([]);
  });
});

describe('policy combination', () => {
  const admin = binding('admin', 'admin', ORG);
  const orgPolicy = (id: string, text: string): CustomPolicy => ({ id, text, scope: ORG });

  it('forbid wins over any permit, and the reasons name the forbid', async () => {
    const { authorizer } = setup({
      bindings: [admin],
      customPolicies: [
        orgPolicy('no-keys', 'forbid (principal, action == Strongroom::Action::"key:rotate", resource);'),
      ],
    });
    expect(
      await authorizer.authorize({
        principal: user('u'),
        action: 'key:rotate',
        resource: { kind: 'organization' },
      }),
    ).toEqual({
      decision: 'deny',
      reasons: ['policy:no-keys'],
      errors: [],
    });
  });

  it('a policy that fails to evaluate is skipped and reported', async () => {
    const overflow = 'forbid (principal, action, resource) when { context.time * 9223372036854775807 > 0 };';
    const { authorizer } = setup({ bindings: [admin], customPolicies: [orgPolicy('overflow', overflow)] });
    const d = await authorizer.authorize({
      principal: user('u'),
      action: 'project:create',
      resource: { kind: 'organization' },
    });
    expect(d.decision).toBe('allow');
    expect(d.reasons).toEqual(['binding:admin']);
    expect(d.errors).toHaveLength(1);
    expect(d.errors[0]).toMatch(/^policy:overflow: integer overflow/);
  });

  it('a request Cedar cannot evaluate is denied with the error (fail closed)', async () => {
    const { authorizer } = setup({ bindings: [admin], ip: 'not-an-address' });
    const d = await authorizer.authorize({
      principal: user('u'),
      action: 'project:create',
      resource: { kind: 'organization' },
    });
    expect(d.decision).toBe('deny');
    expect(d.errors.join()).toMatch(/not-an-address/);
  });

  it('a name with the id separator is refused rather than confused with another resource', async () => {
    const { authorizer } = setup({ bindings: [admin] });
    await expect(
      authorizer.authorize({
        principal: user('u'),
        action: 'version:read',
        resource: version('vision', 'a/b'),
      }),
    ).rejects.toMatchObject({ code: 'invalid_name' });
  });
});

describe('token scope narrowing after Cedar', () => {
  it('a read-only token of an admin cannot write, and a project-scoped token stays in its projects', async () => {
    const { authorizer } = setup({ bindings: [binding('admin', 'admin', ORG)] });
    const readOnly = user('u', { scope: { readOnly: true } });
    expect(
      await authorizer.authorize({
        principal: readOnly,
        action: 'artifact:update',
        resource: { kind: 'artifact', project: 'vision', artifact: 'a' },
      }),
    ).toEqual({
      decision: 'deny',
      reasons: ['token-scope:read-only'],
      errors: [],
    });
    expect(
      (
        await authorizer.authorize({
          principal: readOnly,
          action: 'version:download',
          resource: version('vision'),
        })
      ).decision,
    ).toBe('allow');
    const speechOnly = user('u', { scope: { readOnly: false, projects: ['speech'] } });
    expect(
      (
        await authorizer.authorize({
          principal: speechOnly,
          action: 'version:read',
          resource: version('vision'),
        })
      ).reasons,
    ).toEqual(['token-scope:project']);
    expect(
      (
        await authorizer.authorize({
          principal: speechOnly,
          action: 'version:read',
          resource: version('speech'),
        })
      ).decision,
    ).toBe('allow');
  });

  it('a token scope never turns a deny into an allow', async () => {
    const { authorizer } = setup();
    const scoped = user('u', { scope: { readOnly: true, actions: ['version:read'] } });
    expect(
      (await authorizer.authorize({ principal: scoped, action: 'version:read', resource: version('vision') }))
        .decision,
    ).toBe('deny');
  });
});

describe('decision cache', () => {
  it('a small cache under churn, with hot keys refreshed and cold ones evicted, always answers as Cedar does', async () => {
    const { authorizer } = setup({
      bindings: [binding('b', 'viewer', { type: 'Project', id: 'p3' })],
      cacheSize: 4,
    });
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 9; i++) {
        const request = {
          principal: user('u'),
          action: 'project:read' as Action,
          resource: project(`p${i}`),
        };
        for (const hit of [0, 1]) {
          const got = await authorizer.authorize(request);
          expect(got.decision, `round ${round}, p${i}, ${hit ? 'second' : 'first'} call`).toBe(
            i === 3 ? 'allow' : 'deny',
          );
        }
      }
    }
  });

  it('an update applies on the very next call, in both directions', async () => {
    const { authorizer } = setup({ bindings: [binding('b', 'viewer', ORG)] });
    const request = {
      principal: user('u'),
      action: 'version:download' as Action,
      resource: version('vision'),
    };
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    expect(authorizer.update({ bindings: [], customPolicies: [] })).toBe(2);
    expect((await authorizer.authorize(request)).decision).toBe('deny');
    authorizer.update({
      bindings: [binding('c', 'viewer', { type: 'Project', id: 'vision' })],
      customPolicies: [],
    });
    expect((await authorizer.authorize(request)).reasons).toEqual(['binding:c']);
  });

  it('a change of stage or sensitivity is never answered from the cache', async () => {
    let stage = 'staging';
    const policy: CustomPolicy = {
      id: 'prod-only',
      text: 'forbid (principal, action == Strongroom::Action::"version:download", resource is Strongroom::Version) unless { resource.stage == "production" };',
      scope: ORG,
    };
    const { authorizer } = setup({
      bindings: [binding('b', 'viewer', ORG)],
      customPolicies: [policy],
      attributes: () => ({
        artifact: { name: 'resnet', sensitivity: 'internal' },
        version: { tag: '1.0.0', stage },
      }),
    });
    const request = {
      principal: user('u'),
      action: 'version:download' as Action,
      resource: version('vision'),
    };
    expect((await authorizer.authorize(request)).decision).toBe('deny');
    stage = 'production';
    expect((await authorizer.authorize(request)).decision).toBe('allow');
  });

  it('the context fields policies read key the cache: a stale second factor is not answered from a fresh one', async () => {
    const policy: CustomPolicy = {
      id: 'fresh-mfa',
      text: 'forbid (principal, action, resource) unless { context has mfaAgeSeconds && context.mfaAgeSeconds <= 900 };',
      scope: ORG,
    };
    const { authorizer, clock } = setup({
      bindings: [binding('b', 'viewer', ORG)],
      customPolicies: [policy],
    });
    const request = {
      principal: user('u', { mfaAt: new Date(T0 - 60_000).toISOString() }),
      action: 'version:read' as Action,
      resource: version('vision'),
    };
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    clock.ms = T0 + 840_000; // 900 s after the second factor: still fresh
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    clock.ms = T0 + 841_000;
    expect((await authorizer.authorize(request)).reasons).toEqual(['policy:fresh-mfa']);
    expect((await authorizer.authorize({ ...request, principal: user('u') })).decision).toBe('deny');
  });

  it('a different client address is decided again when a policy reads it', async () => {
    let ip = '10.0.0.1';
    const authorizer = new CedarAuthorizer({
      bindings: [binding('b', 'viewer', ORG)],
      customPolicies: [
        {
          id: 'corp',
          text: 'forbid (principal, action, resource) unless { context.ip.isInRange(ip("10.0.0.0/8")) };',
          scope: ORG,
        },
      ],
      loadAttributes: () => Promise.resolve({}),
      requestFacts: () => ({ ip }),
    });
    const request = {
      principal: user('u'),
      action: 'project:list' as Action,
      resource: { kind: 'organization' } as ResourceRef,
    };
    expect((await authorizer.authorize(request)).decision).toBe('allow');
    ip = '192.0.2.1';
    expect((await authorizer.authorize(request)).decision).toBe('deny');
  });
});

describe('policy slicing by scope', () => {
  const overflow = 'forbid (principal, action, resource) when { context.time * 9223372036854775807 > 0 };';

  it('a policy of project A is never evaluated for project B or the organization', async () => {
    const { authorizer } = setup({
      bindings: [binding('admin', 'admin', ORG)],
      customPolicies: [{ id: 'a-only', text: overflow, scope: { type: 'Project', id: 'alpha' } }],
    });
    const principal = user('u');
    const inA = await authorizer.explain({ principal, action: 'version:read', resource: version('alpha') });
    expect(inA.slice).toBe('project:alpha');
    expect(inA.errors.join()).toContain('policy:a-only');
    const inB = await authorizer.explain({ principal, action: 'version:read', resource: version('beta') });
    expect(inB.slice).toBe('organization');
    expect(inB.errors).toEqual([]);
    const org = await authorizer.explain({
      principal,
      action: 'user:list',
      resource: { kind: 'organization' },
    });
    expect(org.errors).toEqual([]);
  });

  it('a scoped policy is confined to its scope even when its own constraints are broader', async () => {
    const { authorizer } = setup({
      customPolicies: [
        {
          id: 'open-alpha',
          text: 'permit (principal, action, resource);',
          scope: { type: 'Project', id: 'alpha' },
        },
        {
          id: 'open-resnet',
          text: 'permit (principal, action, resource);',
          scope: { type: 'Artifact', id: 'beta/resnet' },
        },
      ],
    });
    const principal = user('u');
    const decide = async (action: Action, resource: ResourceRef) =>
      (await authorizer.authorize({ principal, action, resource })).decision;
    expect(await decide('version:download', version('alpha'))).toBe('allow');
    expect(await decide('version:download', version('beta'))).toBe('allow');
    expect(await decide('version:download', version('beta', 'other'))).toBe('deny');
    expect(await decide('project:read', { kind: 'project', project: 'beta' })).toBe('deny');
    expect(await decide('user:create', { kind: 'organization' })).toBe('deny');
  });
});

describe('explain', () => {
  it('returns the decision, its reasons and everything Cedar evaluated', async () => {
    const { authorizer } = setup({ bindings: [binding('b', 'viewer', { type: 'Project', id: 'vision' })] });
    const e = await authorizer.explain({
      principal: user('u', { groups: ['ml'] }),
      action: 'version:download',
      resource: version('vision'),
    });
    expect(e).toMatchObject({
      decision: 'allow',
      reasons: ['binding:b'],
      errors: [],
      policyVersion: 1,
      slice: 'project:vision',
      principal: { type: 'Strongroom::User', id: 'u' },
      action: { type: 'Strongroom::Action', id: 'version:download' },
      resource: { type: 'Strongroom::Version', id: 'vision/resnet/1.0.0' },
      context: { time: T0 / 1000, hourUtc: 12, authMethod: 'password', roles: ['viewer'] },
    });
    expect(e.entities).toContainEqual({
      uid: { type: 'Strongroom::Version', id: 'vision/resnet/1.0.0' },
      attrs: {
        stage: 'production',
        artifact: { __entity: { type: 'Strongroom::Artifact', id: 'vision/resnet' } },
      },
      parents: [
        { type: 'Strongroom::Artifact', id: 'vision/resnet' },
        { type: 'Strongroom::Project', id: 'vision' },
        { type: 'Strongroom::Organization', id: 'default' },
      ],
    });
    expect(e.entities).toContainEqual({
      uid: { type: 'Strongroom::User', id: 'u' },
      attrs: {},
      parents: [{ type: 'Strongroom::Group', id: 'ml' }],
    });
  });

  it('an upload session is placed where its attributes say', async () => {
    const { authorizer } = setup({
      bindings: [binding('b', 'contributor', { type: 'Project', id: 'vision' })],
      attributes: () => ({
        project: 'vision',
        artifact: { name: 'resnet', sensitivity: 'internal' },
        version: { tag: '2', stage: 'none' },
      }),
    });
    const e = await authorizer.explain({
      principal: user('u'),
      action: 'version:create',
      resource: { kind: 'upload', upload: 'up-1' },
    });
    expect(e.resource).toEqual({ type: 'Strongroom::Version', id: 'vision/resnet/2' });
    expect(e.decision).toBe('allow');
  });
});
