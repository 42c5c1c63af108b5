import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/cli-io.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { freePort } from '../support/free-port.js';
import { startOidcProvider, type RunningOidcProvider } from '../support/oidc-provider.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { startTokenIssuer, type TokenIssuer } from '../support/token-issuer.js';

/**
 * Single sign-on through the full redirect flow against a real OpenID Provider (oidc-provider) on loopback,
 * and workload identity federation with a trusted issuer's tokens: the server end to end.
 */
let corp: RunningOidcProvider;
let other: RunningOidcProvider;
let devices: RunningOidcProvider;
let ci: TokenIssuer;
let server: TestServer;

beforeAll(async () => {
  const port = await freePort();
  const redirect = `http://127.0.0.1:${port}/api/v1/auth/oidc/callback`;
  const accounts = {
    alice: { sub: 'u-1', email: 'alice@corp.example', name: 'Alice', groups: ['ml-admins', 'staff'] },
    bob: { sub: 'u-2', email: 'bob@corp.example', name: 'Bob', groups: ['staff'] },
  };
  corp = await startOidcProvider({
    clients: [{ client_id: 'strongroom', client_secret: 'corp-secret', redirect_uris: [redirect] }],
    accounts,
  });
  // A second provider issuing the very same `sub` values.
  other = await startOidcProvider({
    clients: [{ client_id: 'strongroom', client_secret: 'other-secret', redirect_uris: [redirect] }],
    accounts,
  });
  // A provider that asserts the device's posture in the signed ID token.
  devices = await startOidcProvider({
    clients: [{ client_id: 'strongroom', client_secret: 'device-secret', redirect_uris: [redirect] }],
    accounts: {
      carol: { sub: 'd-1', email: 'carol@corp.example', devicePosture: 'managed' },
      dave: { sub: 'd-2', email: 'dave@corp.example', devicePosture: 'byod' },
    },
    claimsInIdToken: true,
  });
  ci = await startTokenIssuer(['RS256']);
  server = await startTestServer({
    config: {
      port,
      identity: {
        publicUrl: `http://127.0.0.1:${port}`,
        outbound: { allowHosts: ['127.0.0.1'] },
        oidcProviders: [
          {
            id: 'corp',
            issuer: corp.issuer,
            clientId: 'strongroom',
            clientSecretEnv: 'CORP_SECRET',
            scopes: ['openid', 'profile', 'email', 'groups'],
            groupMapping: { 'ml-admins': 'admins' },
          },
          { id: 'other', issuer: other.issuer, clientId: 'strongroom', clientSecretEnv: 'OTHER_SECRET' },
          {
            id: 'devices',
            issuer: devices.issuer,
            clientId: 'strongroom',
            clientSecretEnv: 'DEVICE_SECRET',
            scopes: ['openid', 'email', 'device'],
            devicePostureClaim: 'device_posture',
          },
        ],
        federation: {
          issuers: [{ issuer: ci.issuer, audiences: ['strongroom'], algorithms: ['RS256'] }],
          rules: [
            {
              issuer: ci.issuer,
              audience: 'strongroom',
              subject: 'repo:acme/models:ref:refs/heads/*',
              claims: { repository: 'acme/models' },
              serviceAccount: 'trainer',
              maxTtlSeconds: 600,
              scope: { projects: ['vision'], readOnly: true },
            },
          ],
        },
      },
    },
    env: { CORP_SECRET: 'corp-secret', OTHER_SECRET: 'other-secret', DEVICE_SECRET: 'device-secret' },
  });
  await server.api('/api/v1/groups', { method: 'POST', json: { name: 'admins' } });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'vision' } });
  await server.api('/api/v1/service-accounts', {
    method: 'POST',
    json: { name: 'trainer', environment: 'staging' },
  });
  await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'sa:trainer' } });
});

afterAll(async () => {
  await server?.close();
  await corp?.close();
  await other?.close();
  await devices?.close();
  await ci?.close();
});

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function ssoLogin(provider: string, idp: RunningOidcProvider, account: string) {
  const start = (await (await post(`/api/v1/auth/oidc/${provider}/start`, {})).json()) as {
    loginId: string;
    pollSecret: string;
    authorizationUrl: string;
  };
  const pollBody = { loginId: start.loginId, pollSecret: start.pollSecret };
  expect((await post('/api/v1/auth/oidc/poll', pollBody)).status).toBe(202);
  const callback = await idp.login(start.authorizationUrl, account);
  expect(callback.startsWith(`${server.url}/api/v1/auth/oidc/callback?`)).toBe(true);
  const landing = await fetch(callback);
  return { start, callback, landing, poll: () => post('/api/v1/auth/oidc/poll', pollBody) };
}

async function whoami(token: string) {
  return (await (
    await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })
  ).json()) as { principal: string; name: string; authMethod: string; groups: string[] };
}

describe('single sign-on (OIDC authorization code + PKCE)', () => {
  it('signs in through the full redirect flow, creates the user and maps provider groups', async () => {
    const flow = await ssoLogin('corp', corp, 'alice');
    expect(flow.landing.status).toBe(200);
    expect(flow.landing.headers.get('content-type')).toMatch(/text\/html/);
    const res = await flow.poll();
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as { accessToken: string };
    const me = await whoami(tokens.accessToken);
    expect(me).toMatchObject({ name: 'alice', authMethod: 'oidc:corp', groups: ['admins'] });
    // The session is handed out once.
    expect((await flow.poll()).status).toBe(401);
  });

  it('a replayed callback, a wrong poll secret and an unknown provider are refused', async () => {
    const flow = await ssoLogin('corp', corp, 'bob');
    expect((await fetch(flow.callback)).status).toBe(401); // the same code and state again
    const wrong = await post('/api/v1/auth/oidc/poll', { loginId: flow.start.loginId, pollSecret: 'guess' });
    expect(wrong.status).toBe(401);
    expect((await flow.poll()).status).toBe(200);
    expect((await post('/api/v1/auth/oidc/nope/start', {})).status).toBe(400);
    expect((await fetch(`${server.url}/api/v1/auth/oidc/callback?code=x&state=forged`)).status).toBe(401);
  });

  it('the same sub from two providers is two people (A4)', async () => {
    const fromCorp = (await (await (await ssoLogin('corp', corp, 'alice')).poll()).json()) as {
      accessToken: string;
    };
    const fromOther = (await (await (await ssoLogin('other', other, 'alice')).poll()).json()) as {
      accessToken: string;
    };
    const a = await whoami(fromCorp.accessToken);
    const b = await whoami(fromOther.accessToken);
    expect(a.principal).not.toBe(b.principal);
    expect(b.groups).toEqual([]); // the other provider maps no groups
  });

  it("the provider's signed device posture claim reaches policies for the whole session", async () => {
    const signIn = async (account: string) => {
      const flow = await ssoLogin('devices', devices, account);
      const tokens = (await (await flow.poll()).json()) as { accessToken: string };
      return { token: tokens.accessToken, me: await whoami(tokens.accessToken) };
    };
    const carol = await signIn('carol');
    const dave = await signIn('dave');
    for (const who of [carol, dave]) {
      const res = await server.api('/api/v1/policy/bindings', {
        method: 'POST',
        json: { role: 'viewer', principal: `user:${who.me.name}`, scope: 'project:vision' },
      });
      expect(res.status).toBe(201);
    }
    const put = await server.api('/api/v1/policy/policies/managed-only', {
      method: 'PUT',
      json: {
        scope: 'project:vision',
        text: 'forbid (principal, action, resource) unless { context has devicePosture && context.devicePosture == "managed" };',
      },
    });
    expect(put.status).toBe(201);
    const read = (token: string) =>
      fetch(`${server.url}/api/v1/projects/vision`, { headers: { authorization: `Bearer ${token}` } });
    expect((await read(carol.token)).status).toBe(200);
    expect((await read(dave.token)).status).toBe(404);
    // A header is no substitute for the claim: no proxy is trusted here.
    const forged = await fetch(`${server.url}/api/v1/projects/vision`, {
      headers: { authorization: `Bearer ${dave.token}`, 'x-device-posture': 'managed' },
    });
    expect(forged.status).toBe(404);
    expect((await server.api('/api/v1/policy/policies/managed-only', { method: 'DELETE' })).status).toBe(204);
  });

  it('sign-ins are audited as authentication events naming the provider', async () => {
    const res = await server.api('/api/v1/audit/events?action=auth:sso&limit=1000');
    const events = ((await res.json()) as { items: AuditEvent[] }).items;
    expect(events.some((e) => e.category === 'authentication' && e.details?.['provider'] === 'corp')).toBe(
      true,
    );
  });
});

describe('workload identity federation', () => {
  const claims = {
    sub: 'repo:acme/models:ref:refs/heads/main',
    aud: 'strongroom',
    repository: 'acme/models',
  };

  it('exchanges a trusted CI token for a short-lived, scoped token of the mapped service account', async () => {
    const jwt = await ci.sign(claims);
    const res = await post('/api/v1/auth/federate', { token: jwt });
    expect(res.status).toBe(201);
    const body = (await res.json()) as {
      token: string;
      serviceAccount: string;
      record: { createdAt: string; expiresAt: string };
    };
    expect(body.token).toMatch(/^srf_/);
    expect(body.serviceAccount).toBe('trainer');
    // The lifetime granted is capped by the rule's maxTtlSeconds.
    expect(Date.parse(body.record.expiresAt) - Date.parse(body.record.createdAt)).toBeLessThanOrEqual(
      600_000,
    );
    const me = (await (
      await fetch(`${server.url}/api/v1/whoami`, { headers: { authorization: `Bearer ${body.token}` } })
    ).json()) as { authMethod: string; scope: unknown; environment: string };
    expect(me).toMatchObject({
      authMethod: 'workload-federation',
      scope: { projects: ['vision'], readOnly: true },
      environment: 'staging',
    });
  });

  it('refuses tokens that match no rule, have the wrong audience or come from an unknown issuer', async () => {
    const otherRepo = await ci.sign({ ...claims, repository: 'mallory/models' });
    const wrongAud = await ci.sign({ ...claims, aud: 'someone-else' });
    for (const token of [otherRepo, wrongAud, 'not-a-jwt']) {
      expect((await post('/api/v1/auth/federate', { token })).status).toBe(401);
    }
  });
});

describe('the CLI', () => {
  async function cli(argv: string[], onStderr: (text: string) => void = () => {}) {
    const dir = await mkdtemp(join(tmpdir(), 'strongroom-sso-cli-'));
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: { write: (c: string) => (stdout += c) },
      stderr: {
        write: (c: string) => {
          stderr += c;
          onStderr(stderr);
          return true;
        },
      },
      stdin: Readable.from([]) as unknown as CliIo['stdin'],
      env: { STRONGROOM_URL: server.url, STRONGROOM_CONFIG: join(dir, 'config.json') },
    };
    try {
      const code = await runCli([...argv.map((a) => a.replace('DIR', dir))], io);
      const whoami =
        code === 0
          ? await runCli(['whoami', '--json'], { ...io, stdout: { write: (c: string) => (stdout += c) } })
          : -1;
      return { code, whoami, stdout, stderr, dir };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('`login --sso` prints the URL, waits for the browser, and saves the session', async () => {
    let started = false;
    const result = await cli(['login', '--sso', 'corp', '--json'], (text) => {
      const url = /(http:\/\/127\.0\.0\.1:\d+\/\S+)/.exec(text)?.[1];
      if (url && !started) {
        started = true;
        void corp.login(url, 'bob').then((callback) => fetch(callback));
      }
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"authMethod": "oidc:corp"');
  });

  it('`login --workload-token-file` exchanges a CI token', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strongroom-wl-'));
    const file = join(dir, 'jwt');
    await writeFile(
      file,
      await ci.sign({
        sub: 'repo:acme/models:ref:refs/heads/main',
        aud: 'strongroom',
        repository: 'acme/models',
      }),
    );
    const result = await cli(['login', '--workload-token-file', file, '--json']);
    await rm(dir, { recursive: true, force: true });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('"serviceAccount": "trainer"');
    expect(result.stdout).toContain('"authMethod": "workload-federation"');
  });
});
