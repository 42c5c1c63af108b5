import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { as, bind, json, person, serviceAccount, type Person } from '../support/principals.js';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

/** A clock the tests move forward (binding and elevation expiry, step-up age). */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };

let server: TestServer;
let viewer: ReturnType<typeof as>;
let contributor: ReturnType<typeof as>;

const file = (text: string) => ({ path: 'model.bin', data: Buffer.from(text) });

beforeAll(async () => {
  server = await startTestServer({
    clock,
    config: {
      identity: { stepUpMaxAgeSeconds: 86_400, accessTokenTtlSeconds: 3600 },
      authorization: { elevation: { maxDurationSeconds: 8 * 3600, requestTtlSeconds: 120 } },
    },
  });
  for (const name of ['vision', 'speech']) {
    await json(await server.api('/api/v1/projects', { method: 'POST', json: { name } }), 201);
    for (const [artifact, sensitivity] of [
      ['resnet', 'internal'],
      ['secret', 'restricted'],
    ] as const) {
      await json(
        await server.api(`/api/v1/projects/${name}/artifacts`, {
          method: 'POST',
          json: { name: artifact, kind: 'model', sensitivity },
        }),
        201,
      );
      expect(
        (await pushFiles(server, { project: name, artifact, version: '1.0.0' }, [file(name)])).status,
      ).toBe(201);
    }
  }
  viewer = as(server, await serviceAccount(server, 'viewer-sa'));
  contributor = as(server, await serviceAccount(server, 'contributor-sa'));
  await bind(server, 'viewer', 'sa:viewer-sa', 'project:vision', { id: 'viewer-vision' });
  await bind(server, 'contributor', 'sa:contributor-sa', 'project:vision', { id: 'contributor-vision' });
});

afterAll(async () => {
  await server.close();
});

async function code(res: Response): Promise<string> {
  return ((await res.json()) as { code: string }).code;
}

describe('least privilege and no existence leak (B1)', () => {
  it('a new principal can do nothing beyond its own session', async () => {
    const nobody = as(server, await serviceAccount(server, 'nobody'));
    expect((await nobody('/api/v1/whoami')).status).toBe(200);
    expect((await json<{ items: unknown[] }>(await nobody('/api/v1/projects'), 200)).items).toEqual([]);
    expect(await code(await nobody('/api/v1/projects/vision'))).toBe('project_not_found');
    expect((await nobody('/api/v1/projects', { method: 'POST', json: { name: 'mine' } })).status).toBe(403);
  });

  it("another project's artifact answers 404 for get and list, exactly like one that does not exist", async () => {
    for (const path of [
      '/api/v1/projects/speech',
      '/api/v1/projects/speech/artifacts',
      '/api/v1/projects/speech/artifacts/resnet',
      '/api/v1/projects/speech/artifacts/resnet/versions',
      '/api/v1/projects/speech/artifacts/resnet/versions/1.0.0',
      '/api/v1/projects/speech/artifacts/resnet/versions/1.0.0/file?path=model.bin',
    ]) {
      const other = await viewer(path);
      const missing = await viewer(path.replace('speech', 'no-such-project'));
      expect(other.status, path).toBe(404);
      expect(missing.status, path).toBe(404);
      const [a, b] = [(await other.json()) as { code: string }, (await missing.json()) as { code: string }];
      expect(a.code).toBe(b.code);
    }
    // Inside its own project it reads everything.
    expect((await viewer('/api/v1/projects/vision/artifacts/resnet/versions/1.0.0')).status).toBe(200);
  });

  it('lists show only what the caller may read', async () => {
    const projects = await json<{ items: { name: string }[] }>(await viewer('/api/v1/projects'), 200);
    expect(projects.items.map((p) => p.name)).toEqual(['vision']);
    const all = await json<{ items: { name: string }[] }>(await server.api('/api/v1/projects'), 200);
    expect(all.items.map((p) => p.name).sort()).toEqual(['speech', 'vision']);
  });
});

describe('roles stop at their actions (B2)', () => {
  it('a contributor creates versions but cannot rotate keys, manage access or prune the audit log', async () => {
    expect(
      (await pushFiles(server, { project: 'vision', artifact: 'resnet', version: '1.1.0' }, [file('v2')]))
        .status,
    ).toBe(201);
    expect((await contributor('/api/v1/keys/rotate', { method: 'POST' })).status).toBe(403);
    expect(
      (await contributor('/api/v1/audit/prune', { method: 'POST', json: { olderThanDays: 1 } })).status,
    ).toBe(403);
    const grant = await contributor('/api/v1/policy/bindings', {
      method: 'POST',
      json: { role: 'admin', principal: 'sa:contributor-sa', scope: 'project:vision' },
    });
    expect(grant.status).toBe(403);
    expect((await contributor('/api/v1/policy/bindings/viewer-vision', { method: 'DELETE' })).status).toBe(
      404,
    );
  });

  it('a viewer cannot write; a contributor cannot write into another project', async () => {
    const upload = await viewer('/api/v1/projects/vision/artifacts/resnet/versions/9.0.0/uploads', {
      method: 'POST',
      json: { files: [{ path: 'a', size: 1, sha256: 'a'.repeat(64) }] },
    });
    expect(upload.status).toBe(403);
    const elsewhere = await contributor('/api/v1/projects/speech/artifacts/resnet/versions/9.0.0/uploads', {
      method: 'POST',
      json: { files: [{ path: 'a', size: 1, sha256: 'a'.repeat(64) }] },
    });
    expect(elsewhere.status).toBe(404);
  });
});

describe('a removed or expired grant is denied on the next request (B6)', () => {
  it('unbinding takes effect at once, even with the decision cached', async () => {
    const sa = as(server, await serviceAccount(server, 'short-lived'));
    const id = await bind(server, 'viewer', 'sa:short-lived', 'project:vision');
    for (let i = 0; i < 3; i++) expect((await sa('/api/v1/projects/vision')).status).toBe(200);
    await json(await server.api(`/api/v1/policy/bindings/${id}`, { method: 'DELETE' }), 204);
    expect((await sa('/api/v1/projects/vision')).status).toBe(404);
  });

  it('an expiring binding grants nothing once its time has passed, cached or not', async () => {
    const sa = as(server, await serviceAccount(server, 'expiring'));
    const expiresAt = new Date(clock.now().getTime() + 60_000).toISOString();
    await bind(server, 'viewer', 'sa:expiring', 'project:vision', { expiresAt });
    expect((await sa('/api/v1/projects/vision')).status).toBe(200);
    offsetMs += 61_000;
    expect((await sa('/api/v1/projects/vision')).status).toBe(404);
    const listed = await json<{ items: { principal: string; active: boolean }[] }>(
      await server.api('/api/v1/policy/bindings?scope=project:vision'),
      200,
    );
    expect(listed.items.find((b) => b.principal === 'sa:expiring')?.active).toBe(false);
  });

  it('refuses a binding for a principal, role or scope that does not exist', async () => {
    const post = (body: object) =>
      server.api('/api/v1/policy/bindings', {
        method: 'POST',
        json: { role: 'viewer', principal: 'sa:viewer-sa', scope: 'project:vision', ...body },
      });
    expect(await code(await post({ principal: 'user:ghost' }))).toBe('user_not_found');
    expect(await code(await post({ role: 'superuser' }))).toBe('invalid_request');
    expect(await code(await post({ scope: 'project:ghost' }))).toBe('project_not_found');
    expect(await code(await post({ scope: 'artifact:vision/ghost' }))).toBe('artifact_not_found');
    expect(await code(await post({ expiresAt: '2001-01-01T00:00:00Z' }))).toBe('invalid_request');
    expect(await code(await post({ id: 'viewer-vision' }))).toBe('binding_exists');
  });
});

describe('custom policies', () => {
  const restricted = `forbid (principal, action, resource)
when {
  (resource is Strongroom::Artifact && resource.sensitivity == "restricted") ||
  (resource is Strongroom::Version && resource.artifact.sensitivity == "restricted")
}
unless { context.ip.isInRange(ip("10.0.0.0/8")) };`;

  it('a bad policy is refused with the Cedar error and changes nothing', async () => {
    const res = await server.api('/api/v1/policy/policies/typo', {
      method: 'PUT',
      json: {
        text: 'forbid (principal, action, resource) when { resource.stag == "x" };',
        scope: 'organization',
      },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('policy_invalid');
    expect(body.detail).toMatch(/stag/);
    expect((await server.api('/api/v1/policy/policies/typo')).status).toBe(404);
    const unparsable = await server.api('/api/v1/policy/validate', {
      method: 'POST',
      json: { text: 'permit (principal action, resource);', scope: 'organization' },
    });
    expect(await code(unparsable)).toBe('policy_invalid');
  });

  it('a project policy applies on the next request, only inside its project, and is removed as fast', async () => {
    const path = '/api/v1/projects/vision/artifacts/secret/versions/1.0.0';
    expect((await viewer(path)).status).toBe(200);
    await json(
      await server.api('/api/v1/policy/policies/restricted-from-corp', {
        method: 'PUT',
        json: { text: restricted, scope: 'project:vision', description: 'restricted from 10/8 only' },
      }),
      201,
    );
    // Loopback is not 10/8: hidden, like anything the caller may not read.
    expect((await viewer(path)).status).toBe(404);
    expect((await viewer('/api/v1/projects/vision/artifacts/resnet/versions/1.0.0')).status).toBe(200);
    const artifacts = await json<{ items: { name: string }[] }>(
      await viewer('/api/v1/projects/vision/artifacts'),
      200,
    );
    expect(artifacts.items.map((a) => a.name)).toEqual(['resnet']);
    // The admin is denied too (forbid wins), and the explanation names the policy.
    const explained = await json<{ decision: string; reasons: string[]; slice: string }>(
      await server.api('/api/v1/policy/explain', {
        method: 'POST',
        json: { principal: 'sa:viewer-sa', action: 'version:download', resource: 'vision/secret:1.0.0' },
      }),
      200,
    );
    expect(explained).toMatchObject({
      decision: 'deny',
      reasons: ['policy:restricted-from-corp'],
      slice: 'project:vision',
    });
    const fromCorp = await json<{ decision: string; reasons: string[] }>(
      await server.api('/api/v1/policy/explain', {
        method: 'POST',
        json: {
          principal: 'sa:viewer-sa',
          action: 'version:download',
          resource: 'vision/secret:1.0.0',
          context: { ip: '10.1.2.3' },
        },
      }),
      200,
    );
    expect(fromCorp).toMatchObject({ decision: 'allow', reasons: ['binding:viewer-vision'] });
    await json(await server.api('/api/v1/policy/policies/restricted-from-corp', { method: 'DELETE' }), 204);
    expect((await viewer(path)).status).toBe(200);
  });

  it('no custom policy can lock administrators out of managing access', async () => {
    await json(
      await server.api('/api/v1/policy/policies/lock-everything', {
        method: 'PUT',
        json: { text: 'forbid (principal, action, resource);', scope: 'project:speech' },
      }),
      201,
    );
    expect((await server.api('/api/v1/projects/speech')).status).toBe(404);
    expect((await server.api('/api/v1/policy/policies?scope=project:speech')).status).toBe(200);
    await json(await server.api('/api/v1/policy/policies/lock-everything', { method: 'DELETE' }), 204);
    expect((await server.api('/api/v1/projects/speech')).status).toBe(200);
  });

  it('policy tests run against the policies in force, naming principals by name', async () => {
    const report = await json<{
      passed: number;
      failed: number;
      results: { name: string; failure?: string }[];
    }>(
      await server.api('/api/v1/policy/test', {
        method: 'POST',
        json: {
          cases: [
            {
              name: 'viewer reads its project',
              principal: { kind: 'service', id: 'viewer-sa' },
              action: 'version:download',
              resource: { kind: 'version', project: 'vision', artifact: 'resnet', version: '1.0.0' },
              expect: 'allow',
              reasons: ['binding:viewer-vision'],
            },
            {
              name: 'viewer does not write',
              principal: { kind: 'service', id: 'viewer-sa' },
              action: 'version:create',
              resource: { kind: 'version', project: 'vision', artifact: 'resnet', version: '2.0.0' },
              expect: 'allow',
            },
          ],
        },
      }),
      200,
    );
    expect(report.passed).toBe(1);
    expect(report.failed).toBe(1);
    expect(report.results[1]?.failure).toMatch(/expected allow, got deny/);
  });
});

describe('access review', () => {
  it('who-can lists bindings, group members and the built-ins; access of lists grants with their source', async () => {
    await json(await server.api('/api/v1/groups', { method: 'POST', json: { name: 'ml' } }), 201);
    await json(
      await server.api('/api/v1/groups/ml/members', { method: 'POST', json: { principal: 'sa:nobody' } }),
      204,
    );
    await bind(server, 'viewer', 'group:ml', 'artifact:vision/resnet', { id: 'ml-resnet' });
    const who = await json<{ grants: { principal: string; source: string; via: string | null }[] }>(
      await server.api('/api/v1/access/who-can?action=version:download&resource=vision/resnet:1.0.0'),
      200,
    );
    const rows = who.grants.map((g) => `${g.principal} ${g.source} ${g.via ?? '-'}`);
    expect(rows).toContain('sa:viewer-sa binding:viewer-vision -');
    expect(rows).toContain('sa:contributor-sa binding:contributor-vision -');
    expect(rows).toContain('group:ml binding:ml-resnet -');
    expect(rows).toContain('sa:nobody binding:ml-resnet ml');
    expect(rows).toContain('bootstrap-token builtin:bootstrap-admin -');
    const elsewhere = await json<{ grants: { principal: string }[] }>(
      await server.api('/api/v1/access/who-can?action=version:download&resource=speech/resnet:1.0.0'),
      200,
    );
    expect(elsewhere.grants.map((g) => g.principal)).not.toContain('sa:viewer-sa');

    const of = await json<{
      groups: string[];
      grants: { source: string; via: string | null; active: boolean }[];
    }>(await server.api('/api/v1/access/of?principal=sa:nobody'), 200);
    expect(of.groups).toEqual(['ml']);
    expect(of.grants.map((g) => `${g.source} ${g.via ?? '-'}`)).toEqual([
      'binding:ml-resnet ml',
      'builtin:self-service -',
    ]);
  });

  it('reviewing access needs the auditor or admin role', async () => {
    expect((await viewer('/api/v1/access/of?principal=sa:viewer-sa')).status).toBe(403);
    const auditor = as(server, await serviceAccount(server, 'reviewer'));
    await bind(server, 'auditor', 'sa:reviewer', 'organization');
    expect((await auditor('/api/v1/access/of?principal=sa:viewer-sa')).status).toBe(200);
    expect((await auditor('/api/v1/policy/bindings')).status).toBe(200);
    // An auditor reads; it never changes access.
    expect((await auditor('/api/v1/policy/bindings/viewer-vision', { method: 'DELETE' })).status).toBe(403);
  });
});

describe('just-in-time elevation', () => {
  let asker: Person;
  let approver: Person;

  beforeAll(async () => {
    asker = await person(server, clock, 'asker');
    approver = await person(server, clock, 'approver');
    await bind(server, 'approver', `user:approver`, 'project:vision');
  });

  const request = (who: Person, body: object) =>
    as(server, who.accessToken)('/api/v1/elevations', {
      method: 'POST',
      json: {
        role: 'contributor',
        scope: 'project:vision',
        durationSeconds: 600,
        reason: 'hotfix 42',
        ...body,
      },
    });

  it('another person approves; the role holds for the duration and ends by itself; all of it audited', async () => {
    const me = as(server, asker.accessToken);
    expect((await me('/api/v1/projects/vision')).status).toBe(404);
    const asked = await json<{ id: string; status: string }>(await request(asker, {}), 201);
    expect(asked.status).toBe('pending');
    // Nobody approves their own request.
    const self = await me(`/api/v1/elevations/${asked.id}/approve`, { method: 'POST', json: {} });
    expect(self.status).toBe(403);
    // The approver sees it among the requests it may decide, and approves.
    const pending = await json<{ items: { id: string }[] }>(
      await as(server, approver.accessToken)('/api/v1/elevations?status=pending'),
      200,
    );
    expect(pending.items.map((e) => e.id)).toContain(asked.id);
    const approved = await json<{ status: string; bindingId: string; grantExpiresAt: string }>(
      await as(server, approver.accessToken)(`/api/v1/elevations/${asked.id}/approve`, {
        method: 'POST',
        json: { reason: 'on call' },
      }),
      200,
    );
    expect(approved.status).toBe('active');
    expect((await me('/api/v1/projects/vision')).status).toBe(200);
    expect(
      (
        await pushFiles(
          { ...server, api: me } as TestServer,
          { project: 'vision', artifact: 'resnet', version: '5.0.0' },
          [file('jit')],
        )
      ).status,
    ).toBe(201);
    // A second decision is refused.
    const again = await as(server, approver.accessToken)(`/api/v1/elevations/${asked.id}/deny`, {
      method: 'POST',
      json: {},
    });
    expect(await code(again)).toBe('elevation_closed');
    offsetMs += 601_000;
    expect((await me('/api/v1/projects/vision')).status).toBe(404);
    const mine = await json<{ items: { id: string; status: string }[] }>(await me('/api/v1/elevations'), 200);
    expect(mine.items.find((e) => e.id === asked.id)?.status).toBe('ended');
    const audited = await json<{ items: AuditEvent[] }>(
      await server.api('/api/v1/audit/events?action=elevation:approve&limit=50'),
      200,
    );
    expect(
      audited.items.some((e) => e.outcome === 'succeeded' && e.details?.['elevation'] === asked.id),
    ).toBe(true);
  });

  it('denial, cancellation and expiry of requests; only an admin approves an elevation to admin', async () => {
    const denied = await json<{ id: string }>(await request(asker, {}), 201);
    await json(
      await as(server, approver.accessToken)(`/api/v1/elevations/${denied.id}/deny`, {
        method: 'POST',
        json: { reason: 'not now' },
      }),
      200,
    );
    const cancelled = await json<{ id: string }>(await request(asker, {}), 201);
    expect(
      (
        await json<{ status: string }>(
          await as(server, asker.accessToken)(`/api/v1/elevations/${cancelled.id}/cancel`, {
            method: 'POST',
          }),
          200,
        )
      ).status,
    ).toBe('cancelled');
    const toAdmin = await json<{ id: string }>(await request(asker, { role: 'admin' }), 201);
    const refused = await as(server, approver.accessToken)(`/api/v1/elevations/${toAdmin.id}/approve`, {
      method: 'POST',
      json: {},
    });
    expect(refused.status).toBe(403);
    const stale = await json<{ id: string }>(await request(asker, {}), 201);
    offsetMs += 121_000;
    const late = await as(server, approver.accessToken)(`/api/v1/elevations/${stale.id}/approve`, {
      method: 'POST',
      json: {},
    });
    expect(await code(late)).toBe('elevation_closed');
    const states = await json<{ items: { id: string; status: string }[] }>(
      await as(server, asker.accessToken)('/api/v1/elevations'),
      200,
    );
    const status = (id: string) => states.items.find((e) => e.id === id)?.status;
    expect([status(denied.id), status(cancelled.id), status(stale.id)]).toEqual([
      'denied',
      'cancelled',
      'expired',
    ]);
  });

  it('a request is refused without a reason, beyond the longest duration, or from a service account', async () => {
    expect(await code(await request(asker, { reason: '  ' }))).toBe('invalid_request');
    expect(await code(await request(asker, { durationSeconds: 9 * 3600 }))).toBe('invalid_request');
    const sa = await viewer('/api/v1/elevations', {
      method: 'POST',
      json: { role: 'admin', scope: 'organization', durationSeconds: 600, reason: 'please' },
    });
    expect(sa.status).toBe(403);
  });
});

describe('policy changes reach every instance on its next request', () => {
  it('a binding removed through one server is denied by another sharing the store', async () => {
    const second = await startTestServer({ dataDir: server.dataDir, masterKey: server.masterKey, clock });
    try {
      const token = await serviceAccount(server, 'roaming');
      const id = await bind(server, 'viewer', 'sa:roaming', 'project:vision');
      const there = as(second, token);
      expect((await there('/api/v1/projects/vision')).status).toBe(200);
      expect((await there('/api/v1/projects/vision')).status).toBe(200);
      await json(await server.api(`/api/v1/policy/bindings/${id}`, { method: 'DELETE' }), 204);
      expect((await there('/api/v1/projects/vision')).status).toBe(404);
      await bind(second, 'viewer', 'sa:roaming', 'project:speech');
      expect((await as(server, token)('/api/v1/projects/speech')).status).toBe(200);
    } finally {
      await second.close();
    }
  });
});

describe('request facts: client address and device posture', () => {
  it('X-Forwarded-For and the device posture header count only from a trusted proxy', async () => {
    const proxied = await startTestServer({
      config: {
        trustedProxies: ['127.0.0.1/32'],
        authorization: { devicePostureHeader: 'x-device-posture' },
      },
    });
    const direct = await startTestServer({
      dataDir: proxied.dataDir,
      masterKey: proxied.masterKey,
      config: { authorization: { devicePostureHeader: 'x-device-posture' } },
    });
    try {
      await json(await proxied.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } }), 201);
      const token = await serviceAccount(proxied, 'device-sa');
      await bind(proxied, 'viewer', 'sa:device-sa', 'project:p');
      await json(
        await proxied.api('/api/v1/policy/policies/managed-devices', {
          method: 'PUT',
          json: {
            scope: 'project:p',
            text: `forbid (principal, action, resource)
unless { context has devicePosture && context.devicePosture == "managed" && context.ip.isInRange(ip("10.0.0.0/8")) };`,
          },
        }),
        201,
      );
      const headers = { 'x-device-posture': 'managed', 'x-forwarded-for': '10.9.8.7' };
      expect((await as(proxied, token)('/api/v1/projects/p', { headers })).status).toBe(200);
      expect(
        (
          await as(proxied, token)('/api/v1/projects/p', {
            headers: { ...headers, 'x-device-posture': 'byod' },
          })
        ).status,
      ).toBe(404);
      // The same headers sent straight to a server that trusts no proxy are ignored.
      expect((await as(direct, token)('/api/v1/projects/p', { headers })).status).toBe(404);
      const events = await json<{ items: AuditEvent[] }>(
        await proxied.api('/api/v1/audit/events?action=project:read&limit=5'),
        200,
      );
      expect(events.items.map((e) => e.request?.clientAddress)).toContain('10.9.8.7');
    } finally {
      await direct.close();
      await proxied.close();
    }
  });
});

describe('the seeded group bindings of an upgraded data directory', () => {
  it('members of admins and auditors keep their roles as ordinary, removable bindings', async () => {
    const listed = await json<{ items: { id: string; role: string; principal: string; scope: string }[] }>(
      await server.api('/api/v1/policy/bindings'),
      200,
    );
    expect(listed.items.filter((b) => ['admins', 'auditors'].includes(b.id))).toEqual([
      expect.objectContaining({
        id: 'admins',
        role: 'admin',
        principal: 'group:admins',
        scope: 'organization',
      }),
      expect.objectContaining({
        id: 'auditors',
        role: 'auditor',
        principal: 'group:auditors',
        scope: 'organization',
      }),
    ]);
    const doc = await readFile(new URL('../../docs/authorization.md', import.meta.url), 'utf8');
    expect(doc).toContain('`admins`');
  });
});
