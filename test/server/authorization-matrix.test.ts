import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SELF_SERVICE_ACTIONS, type Action } from '../../src/policy/authorizer.js';
import { ROLE_ACTIONS, type Role } from '../../src/policy/cedar/roles.js';
import { as, bind, json, person, serviceAccount } from '../support/principals.js';
import { pushFiles, sha256, startTestServer, type TestServer } from '../support/server-harness.js';

/**
 * Every route x every role x (own project, other project): no request succeeds that the role does not grant
 * (issue 5). Each role is held by a service account bound at the project `own` (the auditor role at the
 * organization, where its actions live); `none` holds nothing. The table below says, for each route, how to
 * call it with valid input and whether its resource lies in the target project or at the organization; a
 * route missing from the table fails the test, so a new route cannot skip the matrix.
 */

type Target = 'own' | 'other';
interface Call {
  /** Where the route's resource lies: the organization, or the target project (or something in it). */
  readonly at: 'org' | 'target';
  readonly path: (t: Target, n: number) => string;
  readonly body?: (t: Target, n: number) => unknown;
  readonly raw?: { readonly body: string; readonly headers: Record<string, string> };
}

const P = (t: Target) => (t === 'own' ? 'alpha' : 'beta');
const records: Record<string, Record<Target, string>> = {
  upload: { own: '', other: '' },
  elevation: { own: '', other: '' },
};
let victimToken = '';
const harmless =
  'forbid (principal, action == Strongroom::Action::"version:create", resource) when { context.hourUtc > 99 };';

const ROUTES: Record<string, Call> = {
  'GET /api/v1/whoami': { at: 'org', path: () => '/api/v1/whoami' },
  'GET /api/v1/keys': { at: 'org', path: () => '/api/v1/keys' },
  'POST /api/v1/keys/rotate': { at: 'org', path: () => '/api/v1/keys/rotate' },
  'POST /api/v1/projects': {
    at: 'org',
    path: () => '/api/v1/projects',
    body: (_t, n) => ({ name: `new${n}` }),
  },
  'GET /api/v1/projects': { at: 'org', path: () => '/api/v1/projects' },
  'GET /api/v1/projects/:project': { at: 'target', path: (t) => `/api/v1/projects/${P(t)}` },
  'POST /api/v1/projects/:project/artifacts': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts`,
    body: (_t, n) => ({ name: `a${n}`, kind: 'model', sensitivity: 'internal' }),
  },
  'GET /api/v1/projects/:project/artifacts': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts`,
  },
  'GET /api/v1/projects/:project/artifacts/:artifact': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts/model`,
  },
  'PATCH /api/v1/projects/:project/artifacts/:artifact': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts/model`,
    body: () => ({ description: 'changed' }),
  },
  'GET /api/v1/projects/:project/artifacts/:artifact/versions': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts/model/versions`,
  },
  'GET /api/v1/projects/:project/artifacts/:artifact/versions/:version': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts/model/versions/1.0.0`,
  },
  'GET /api/v1/projects/:project/artifacts/:artifact/versions/:version/file': {
    at: 'target',
    path: (t) => `/api/v1/projects/${P(t)}/artifacts/model/versions/1.0.0/file?path=f`,
  },
  'POST /api/v1/projects/:project/artifacts/:artifact/versions/:version/uploads': {
    at: 'target',
    path: (t, n) => `/api/v1/projects/${P(t)}/artifacts/model/versions/m${n}/uploads`,
    body: () => ({ files: [{ path: 'f', size: 1, sha256: sha256('a') }] }),
  },
  // Upload sessions belong to their creator (the bootstrap admin here): nobody else may touch them (B3).
  'GET /api/v1/uploads/:upload': { at: 'target', path: (t) => `/api/v1/uploads/${records['upload']![t]}` },
  'PUT /api/v1/uploads/:upload/parts/:part': {
    at: 'target',
    path: (t) => `/api/v1/uploads/${records['upload']![t]}/parts/0`,
    raw: { body: 'a', headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' } },
  },
  'POST /api/v1/uploads/:upload/commit': {
    at: 'target',
    path: (t) => `/api/v1/uploads/${records['upload']![t]}/commit`,
  },
  'DELETE /api/v1/uploads/:upload': { at: 'target', path: (t) => `/api/v1/uploads/${records['upload']![t]}` },
  'POST /api/v1/auth/step-up': {
    at: 'org',
    path: () => '/api/v1/auth/step-up',
    body: () => ({ code: '000000' }),
  },
  'POST /api/v1/auth/logout': { at: 'org', path: () => '/api/v1/auth/logout' },
  'POST /api/v1/auth/password': {
    at: 'org',
    path: () => '/api/v1/auth/password',
    body: () => ({ currentPassword: 'x', newPassword: 'a much longer new password' }),
  },
  'POST /api/v1/auth/recovery-codes': { at: 'org', path: () => '/api/v1/auth/recovery-codes' },
  'POST /api/v1/auth/derive': {
    at: 'org',
    path: () => '/api/v1/auth/derive',
    body: () => ({ scope: { readOnly: true }, ttlSeconds: 60 }),
  },
  'POST /api/v1/users': { at: 'org', path: () => '/api/v1/users', body: (_t, n) => ({ username: `u${n}` }) },
  'GET /api/v1/users': { at: 'org', path: () => '/api/v1/users' },
  'GET /api/v1/users/:user': { at: 'org', path: () => '/api/v1/users/victim' },
  'POST /api/v1/users/:user/disable': { at: 'org', path: () => '/api/v1/users/victim/disable' },
  'POST /api/v1/users/:user/enable': { at: 'org', path: () => '/api/v1/users/victim/enable' },
  'POST /api/v1/users/:user/unlock': { at: 'org', path: () => '/api/v1/users/victim/unlock' },
  'POST /api/v1/users/:user/reset': { at: 'org', path: () => '/api/v1/users/victim/reset' },
  'POST /api/v1/groups': { at: 'org', path: () => '/api/v1/groups', body: (_t, n) => ({ name: `g${n}` }) },
  'GET /api/v1/groups': { at: 'org', path: () => '/api/v1/groups' },
  'GET /api/v1/groups/:group': { at: 'org', path: () => '/api/v1/groups/victims' },
  'DELETE /api/v1/groups/:group': { at: 'org', path: () => '/api/v1/groups/victims' },
  'POST /api/v1/groups/:group/members': {
    at: 'org',
    path: () => '/api/v1/groups/victims/members',
    body: () => ({ principal: 'sa:victim-sa' }),
  },
  'DELETE /api/v1/groups/:group/members/:principal': {
    at: 'org',
    path: () => '/api/v1/groups/victims/members/sa:victim-sa',
  },
  'POST /api/v1/service-accounts': {
    at: 'org',
    path: () => '/api/v1/service-accounts',
    body: (_t, n) => ({ name: `s${n}`, environment: 'development' }),
  },
  'GET /api/v1/service-accounts': { at: 'org', path: () => '/api/v1/service-accounts' },
  'POST /api/v1/service-accounts/:account/disable': {
    at: 'org',
    path: () => '/api/v1/service-accounts/victim-sa/disable',
  },
  'POST /api/v1/service-accounts/:account/enable': {
    at: 'org',
    path: () => '/api/v1/service-accounts/victim-sa/enable',
  },
  'POST /api/v1/service-accounts/:account/tokens': {
    at: 'org',
    path: () => '/api/v1/service-accounts/victim-sa/tokens',
    body: () => ({ scope: { readOnly: true }, ttlSeconds: 600 }),
  },
  'GET /api/v1/tokens': { at: 'org', path: () => '/api/v1/tokens?principal=sa:victim-sa' },
  'POST /api/v1/tokens/:token/revoke': { at: 'org', path: () => `/api/v1/tokens/${victimToken}/revoke` },
  'POST /api/v1/tokens/:token/rotate': { at: 'org', path: () => `/api/v1/tokens/${victimToken}/rotate` },
  'POST /api/v1/bootstrap-token/rotate': { at: 'org', path: () => '/api/v1/bootstrap-token/rotate' },
  'POST /api/v1/bootstrap-token/disable': { at: 'org', path: () => '/api/v1/bootstrap-token/disable' },
  'GET /api/v1/policy/schema': { at: 'org', path: () => '/api/v1/policy/schema' },
  'GET /api/v1/policy/policies': {
    at: 'target',
    path: (t) => `/api/v1/policy/policies?scope=project:${P(t)}`,
  },
  'GET /api/v1/policy/policies/:policy': { at: 'target', path: (t) => `/api/v1/policy/policies/pol-${t}` },
  'PUT /api/v1/policy/policies/:policy': {
    at: 'target',
    path: (_t, n) => `/api/v1/policy/policies/new-${n}`,
    body: (t) => ({ text: harmless, scope: `project:${P(t)}` }),
  },
  'DELETE /api/v1/policy/policies/:policy': { at: 'target', path: (t) => `/api/v1/policy/policies/pol-${t}` },
  'POST /api/v1/policy/validate': {
    at: 'target',
    path: () => '/api/v1/policy/validate',
    body: (t) => ({ text: harmless, scope: `project:${P(t)}` }),
  },
  'GET /api/v1/policy/bindings': {
    at: 'target',
    path: (t) => `/api/v1/policy/bindings?scope=project:${P(t)}`,
  },
  'GET /api/v1/policy/bindings/:binding': { at: 'target', path: (t) => `/api/v1/policy/bindings/bind-${t}` },
  'POST /api/v1/policy/bindings': {
    at: 'target',
    path: () => '/api/v1/policy/bindings',
    body: (t, n) => ({ id: `b${n}`, role: 'viewer', principal: 'sa:victim-sa', scope: `project:${P(t)}` }),
  },
  'DELETE /api/v1/policy/bindings/:binding': {
    at: 'target',
    path: (t) => `/api/v1/policy/bindings/bind-${t}`,
  },
  'POST /api/v1/policy/explain': {
    at: 'org',
    path: () => '/api/v1/policy/explain',
    body: (t) => ({ principal: 'sa:victim-sa', action: 'project:read', resource: P(t) }),
  },
  'POST /api/v1/policy/test': {
    at: 'org',
    path: () => '/api/v1/policy/test',
    body: (t) => ({
      cases: [
        {
          name: 'x',
          principal: { kind: 'service', id: 'victim-sa' },
          action: 'project:read',
          resource: { kind: 'project', project: P(t) },
          expect: 'allow',
        },
      ],
    }),
  },
  'GET /api/v1/access/who-can': {
    at: 'target',
    path: (t) => `/api/v1/access/who-can?action=version:read&resource=${P(t)}/model:1.0.0`,
  },
  'GET /api/v1/access/of': { at: 'org', path: () => '/api/v1/access/of?principal=sa:victim-sa' },
  'POST /api/v1/elevations': {
    at: 'org',
    path: () => '/api/v1/elevations',
    body: (t) => ({ role: 'viewer', scope: `project:${P(t)}`, durationSeconds: 600, reason: 'matrix' }),
  },
  'GET /api/v1/elevations': { at: 'org', path: () => '/api/v1/elevations' },
  'GET /api/v1/elevations/:elevation': {
    at: 'org',
    path: (t) => `/api/v1/elevations/${records['elevation']![t]}`,
  },
  'POST /api/v1/elevations/:elevation/approve': {
    at: 'target',
    path: (t) => `/api/v1/elevations/${records['elevation']![t]}/approve`,
    body: () => ({}),
  },
  'POST /api/v1/elevations/:elevation/deny': {
    at: 'target',
    path: (t) => `/api/v1/elevations/${records['elevation']![t]}/deny`,
    body: () => ({}),
  },
  'POST /api/v1/elevations/:elevation/cancel': {
    at: 'org',
    path: (t) => `/api/v1/elevations/${records['elevation']![t]}/cancel`,
  },
  'GET /api/v1/audit/events': { at: 'org', path: () => '/api/v1/audit/events?limit=1' },
  'GET /api/v1/audit/export': { at: 'org', path: () => '/api/v1/audit/export' },
  'GET /api/v1/audit/checkpoint': { at: 'org', path: () => '/api/v1/audit/checkpoint' },
  'GET /api/v1/audit/proof/inclusion': { at: 'org', path: () => '/api/v1/audit/proof/inclusion?seq=1' },
  'GET /api/v1/audit/proof/consistency': {
    at: 'org',
    path: () => '/api/v1/audit/proof/consistency?old=1&new=2',
  },
  'POST /api/v1/audit/prune': {
    at: 'org',
    path: () => '/api/v1/audit/prune',
    body: () => ({ olderThanDays: 3650 }),
  },
};

type Holder = Role | 'none';
const HOLDERS: readonly Holder[] = [
  'none',
  'viewer',
  'contributor',
  'approver',
  'incident-responder',
  'auditor',
  'admin',
];

/** What the role grants: self-service everywhere; the auditor at the organization; others inside `own`. */
function expected(holder: Holder, action: Action, call: Call, target: Target): boolean {
  if (SELF_SERVICE_ACTIONS.includes(action)) return true;
  if (holder === 'none') return false;
  const actions = ROLE_ACTIONS[holder];
  const grants = actions === 'all' || actions.includes(action);
  if (holder === 'auditor') return grants;
  return grants && call.at === 'target' && target === 'own';
}

let server: TestServer;
const clock = { now: () => new Date() };

beforeAll(async () => {
  server = await startTestServer({ clock });
  for (const t of ['own', 'other'] as const) {
    const project = P(t);
    await json(await server.api('/api/v1/projects', { method: 'POST', json: { name: project } }), 201);
    await json(
      await server.api(`/api/v1/projects/${project}/artifacts`, {
        method: 'POST',
        json: { name: 'model', kind: 'model', sensitivity: 'internal' },
      }),
      201,
    );
    const pushed = await pushFiles(server, { project, artifact: 'model', version: '1.0.0' }, [
      { path: 'f', data: Buffer.from('model bytes') },
    ]);
    expect(pushed.status).toBe(201);
    const upload = await json<{ id: string }>(
      await server.api(`/api/v1/projects/${project}/artifacts/model/versions/9.9.9/uploads`, {
        method: 'POST',
        json: { files: [{ path: 'f', size: 1, sha256: sha256('a') }] },
      }),
      201,
    );
    records['upload']![t] = upload.id;
  }
  await json(await server.api('/api/v1/users', { method: 'POST', json: { username: 'victim' } }), 201);
  await json(await server.api('/api/v1/groups', { method: 'POST', json: { name: 'victims' } }), 201);
  await serviceAccount(server, 'victim-sa');
  const tokens = await json<{ items: { id: string }[] }>(
    await server.api('/api/v1/tokens?principal=sa:victim-sa'),
    200,
  );
  victimToken = tokens.items[0]!.id;
  const asker = await person(server, clock, 'asker');
  for (const t of ['own', 'other'] as const) {
    await bind(server, 'viewer', 'sa:victim-sa', `project:${P(t)}`, { id: `bind-${t}` });
    await json(
      await server.api(`/api/v1/policy/policies/pol-${t}`, {
        method: 'PUT',
        json: { text: harmless, scope: `project:${P(t)}` },
      }),
      201,
    );
    const elevation = await json<{ id: string }>(
      await as(server, asker.accessToken)('/api/v1/elevations', {
        method: 'POST',
        json: { role: 'viewer', scope: `project:${P(t)}`, durationSeconds: 600, reason: 'for the matrix' },
      }),
      201,
    );
    records['elevation']![t] = elevation.id;
  }
});

afterAll(async () => {
  await server.close();
});

describe('authorization matrix: every route x every role x (own project, other project)', () => {
  it('every authorized route is in the table, and the table names no route that does not exist', () => {
    const declared = server.routes.filter((r) => !r.public).map((r) => `${r.method} ${r.url}`);
    expect(declared.filter((r) => !(r in ROUTES))).toEqual([]);
    expect(Object.keys(ROUTES).filter((r) => !declared.includes(r))).toEqual([]);
  });

  it('no request succeeds that the role does not grant; another project stays invisible', async () => {
    const unexpected: string[] = [];
    const successes = new Map<Holder, number>();
    let n = 0;
    for (const holder of HOLDERS) {
      const name = `m-${holder}`;
      const token = await serviceAccount(server, name);
      if (holder === 'auditor') await bind(server, holder, `sa:${name}`, 'organization');
      else if (holder !== 'none') await bind(server, holder, `sa:${name}`, `project:${P('own')}`);
      const call = as(server, token);
      for (const route of server.routes) {
        if (route.public || route.action === undefined) continue;
        const key = `${route.method} ${route.url}`;
        const spec = ROUTES[key];
        if (spec === undefined) continue;
        for (const target of ['own', 'other'] as const) {
          n++;
          const body = spec.body?.(target, n);
          const res = await call(spec.path(target, n), {
            method: route.method,
            ...(spec.raw
              ? { body: spec.raw.body, headers: spec.raw.headers }
              : body === undefined
                ? {}
                : { json: body }),
          });
          await res.arrayBuffer();
          const allowed = expected(holder, route.action, spec, target);
          const where = `${holder} ${key} (${target}) -> ${res.status}`;
          if (res.status < 300) successes.set(holder, (successes.get(holder) ?? 0) + 1);
          if (res.status >= 500) unexpected.push(`${where}: server error`);
          else if (!allowed && res.status < 400) unexpected.push(`${where}: succeeded without a grant`);
          else if (!allowed && ![400, 403, 404].includes(res.status))
            unexpected.push(`${where}: odd refusal`);
          else if (
            !allowed &&
            spec.at === 'target' &&
            target === 'other' &&
            holder !== 'auditor' &&
            !key.includes('/elevations/') &&
            res.status !== 404
          )
            unexpected.push(`${where}: another project's resource must answer 404`);
        }
      }
    }
    expect(unexpected).toEqual([]);
    // The matrix is not vacuous: every role succeeds at something, the admin at much.
    for (const holder of HOLDERS) expect(successes.get(holder) ?? 0, holder).toBeGreaterThan(0);
    expect(successes.get('admin') ?? 0).toBeGreaterThan(20);
  });
});
