import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

/** A clock the tests move forward (token expiry, lockout, step-up age); TOTP codes follow it. */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const epoch = () => Math.floor(clock.now().getTime() / 1000);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    clock,
    config: {
      identity: { stepUpMaxAgeSeconds: 300, lockout: { threshold: 3, baseSeconds: 60, maxSeconds: 600 } },
    },
  });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'alpha' } });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'beta' } });
  await server.api('/api/v1/groups', { method: 'POST', json: { name: 'admins' } });
});

afterAll(async () => {
  await server.close();
});

async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

function as(token: string) {
  return (path: string, init: RequestInit & { json?: unknown } = {}) =>
    server.api(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });
}

function post(path: string, body: unknown) {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

interface Tokens {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

interface Person {
  username: string;
  password: string;
  secret: string;
  tokens: Tokens;
  recoveryCodes: string[];
}

/** Each code is good once: the next one must come from a later 30-second step. */
async function nextCode(secret: string): Promise<string> {
  offsetMs += 30_000;
  return generate({ secret, epoch: epoch() });
}

async function enrol(username: string): Promise<Person> {
  const invite = await json<{ inviteToken: string }>(
    await server.api('/api/v1/users', { method: 'POST', json: { username } }),
    201,
  );
  expect(invite.inviteToken).toMatch(/^sri_[A-Za-z0-9_-]{43}$/);
  const password = `correct horse battery staple ${username.length}`;
  const start = await json<{ secret: string; otpauthUri: string }>(
    await post('/api/v1/auth/enroll/start', { inviteToken: invite.inviteToken, password }),
    200,
  );
  expect(start.otpauthUri).toMatch(/^otpauth:\/\/totp\//);
  const finish = await json<{ recoveryCodes: string[]; session: Tokens }>(
    await post('/api/v1/auth/enroll/finish', {
      inviteToken: invite.inviteToken,
      code: await generate({ secret: start.secret, epoch: epoch() }),
    }),
    200,
  );
  return {
    username,
    password,
    secret: start.secret,
    tokens: finish.session,
    recoveryCodes: finish.recoveryCodes,
  };
}

async function login(p: Person, code?: string): Promise<Response> {
  return post('/api/v1/auth/login', {
    username: p.username,
    password: p.password,
    code: code ?? (await nextCode(p.secret)),
  });
}

async function events(action: string): Promise<AuditEvent[]> {
  const page = await json<{ items: AuditEvent[] }>(
    await server.api(`/api/v1/audit/events?action=${encodeURIComponent(action)}&limit=1000`),
    200,
  );
  return page.items;
}

describe('people: invitation, enrolment, login', () => {
  it('an invited user sets a password, enrols TOTP, gets recovery codes and a session', async () => {
    const alice = await enrol('alice');
    expect(alice.recoveryCodes).toHaveLength(10);
    expect(alice.tokens.accessToken).toMatch(/^sra_/);
    expect(alice.tokens.refreshToken).toMatch(/^srr_/);
    const me = await json<{ principal: string; name: string; authMethod: string; mfaAt: string }>(
      await as(alice.tokens.accessToken)('/api/v1/whoami'),
      200,
    );
    expect(me).toMatchObject({ name: 'alice', authMethod: 'password+totp' });
    // The invitation is used up.
    const again = await post('/api/v1/auth/enroll/start', {
      inviteToken: 'sri_x',
      password: 'whatever-long-one',
    });
    expect(again.status).toBe(401);
  });

  it('a weak password is refused with invalid_password and loses nothing', async () => {
    const invite = await json<{ inviteToken: string }>(
      await server.api('/api/v1/users', { method: 'POST', json: { username: 'weak' } }),
      201,
    );
    const short = await post('/api/v1/auth/enroll/start', {
      inviteToken: invite.inviteToken,
      password: 'short',
    });
    expect(((await short.json()) as { code: string }).code).toBe('invalid_password');
    const named = await post('/api/v1/auth/enroll/start', {
      inviteToken: invite.inviteToken,
      password: 'my name is weak, ok',
    });
    expect(named.status).toBe(400);
    const good = await post('/api/v1/auth/enroll/start', {
      inviteToken: invite.inviteToken,
      password: 'a much better passphrase',
    });
    expect(good.status).toBe(200);
  });

  it('login needs password and TOTP; a replayed or two-steps-old code is refused (A5)', async () => {
    const bob = await enrol('bob');
    const code = await nextCode(bob.secret);
    expect((await login(bob, code)).status).toBe(200);
    expect((await login(bob, code)).status).toBe(401); // replay within its step
    offsetMs += 30_000;
    const old = await generate({ secret: bob.secret, epoch: epoch() - 60 });
    expect((await login(bob, old)).status).toBe(401); // two steps old
    const wrongPassword = await post('/api/v1/auth/login', {
      username: 'bob',
      password: 'not the password at all',
      code: await nextCode(bob.secret),
    });
    const unknown = await post('/api/v1/auth/login', { username: 'nobody', password: 'x', code: '123456' });
    const [a, b] = (await Promise.all([wrongPassword.json(), unknown.json()])) as { detail: string }[];
    expect(a?.detail).toBe(b?.detail); // no hint which part was wrong, or whether the user exists
  });

  it('repeated failures lock the account with Retry-After, audited; an admin unlocks it (A5)', async () => {
    const carol = await enrol('carol');
    for (let i = 0; i < 3; i++) {
      const res = await post('/api/v1/auth/login', {
        username: 'carol',
        password: 'wrong wrong wrong',
        code: '000000',
      });
      expect(res.status).toBe(401);
    }
    const locked = await login(carol);
    expect(locked.status).toBe(429);
    expect(((await locked.json()) as { code: string }).code).toBe('account_locked');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    const failures = (await events('auth:login')).filter((e) => e.details?.['username'] === 'carol');
    expect(failures.some((e) => e.details?.['lockedUntil'] !== undefined && e.outcome === 'failed')).toBe(
      true,
    );
    expect(failures.every((e) => e.category === 'authentication')).toBe(true);
    await json(await server.api('/api/v1/users/carol/unlock', { method: 'POST' }), 200);
    expect((await login(carol)).status).toBe(200);
  });

  it('a recovery code signs in once', async () => {
    const dave = await enrol('dave');
    const code = dave.recoveryCodes[0]!;
    const body = { username: 'dave', password: dave.password, recoveryCode: code.toUpperCase() };
    expect((await post('/api/v1/auth/login', body)).status).toBe(200);
    expect((await post('/api/v1/auth/login', body)).status).toBe(401);
  });
});

describe('sessions and revocation (A6, A7, B6)', () => {
  it('refresh rotates the pair; reusing an old refresh token revokes the session at once', async () => {
    const erin = await enrol('erin');
    const refreshed = await json<Tokens>(
      await post('/api/v1/auth/refresh', { refreshToken: erin.tokens.refreshToken }),
      200,
    );
    expect((await as(refreshed.accessToken)('/api/v1/whoami')).status).toBe(200);
    // The old access token is the child of the used refresh token: it is dead too.
    expect((await as(erin.tokens.accessToken)('/api/v1/whoami')).status).toBe(401);
    const reuse = await post('/api/v1/auth/refresh', { refreshToken: erin.tokens.refreshToken });
    expect(reuse.status).toBe(401);
    expect((await as(refreshed.accessToken)('/api/v1/whoami')).status).toBe(401);
  });

  it('logout and disabling a user take effect on the very next request, cached or not', async () => {
    const frank = await enrol('frank');
    const call = as(frank.tokens.accessToken);
    expect((await call('/api/v1/whoami')).status).toBe(200);
    await json(await call('/api/v1/auth/logout', { method: 'POST' }), 204);
    expect((await call('/api/v1/whoami')).status).toBe(401);
    const second = await json<Tokens>(await login(frank), 200);
    expect((await as(second.accessToken)('/api/v1/whoami')).status).toBe(200);
    await json(await server.api('/api/v1/users/frank/disable', { method: 'POST' }), 200);
    expect((await as(second.accessToken)('/api/v1/whoami')).status).toBe(401);
    expect((await login(frank)).status).toBe(401);
  });

  it('a new user can do nothing until made an admin, and loses it on the next request (B6)', async () => {
    const gina = await enrol('gina');
    const call = as(gina.tokens.accessToken);
    expect((await call('/api/v1/users')).status).toBe(403);
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'user:gina' } }),
      204,
    );
    expect((await call('/api/v1/users')).status).toBe(200);
    await json(await server.api('/api/v1/groups/admins/members/user:gina', { method: 'DELETE' }), 204);
    expect((await call('/api/v1/users')).status).toBe(403);
  });
});

describe('service accounts and scoped tokens', () => {
  let token = '';
  let tokenId = '';

  it('a token is scoped, bound to the environment, prefixed, shown once and stored only as a hash', async () => {
    await json(
      await server.api('/api/v1/service-accounts', {
        method: 'POST',
        json: { name: 'ci', environment: 'staging' },
      }),
      201,
    );
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'sa:ci' } }),
      204,
    );
    const issued = await json<{ token: string; record: { id: string; environment: string } }>(
      await server.api('/api/v1/service-accounts/ci/tokens', {
        method: 'POST',
        json: {
          scope: { projects: ['alpha'], readOnly: true },
          ttlSeconds: 3600,
          description: 'pull models',
        },
      }),
      201,
    );
    token = issued.token;
    tokenId = issued.record.id;
    expect(token).toMatch(/^srk_[A-Za-z0-9_-]{43}$/);
    expect(issued.record.environment).toBe('staging');
    const db = await readFile(join(server.dataDir, 'strongroom.db'));
    const wal = await readFile(join(server.dataDir, 'strongroom.db-wal')).catch(() => Buffer.alloc(0));
    expect(db.includes(token) || wal.includes(token)).toBe(false);
    const listed = await json<{ items: { id: string }[] }>(
      await server.api('/api/v1/tokens?principal=sa:ci'),
      200,
    );
    expect(JSON.stringify(listed)).not.toContain(token);
  });

  it('can only do what its scope allows, even though its account may do everything', async () => {
    const call = as(token);
    const me = await json<{ environment: string; authMethod: string }>(await call('/api/v1/whoami'), 200);
    expect(me).toMatchObject({ environment: 'staging', authMethod: 'api-token' });
    expect((await call('/api/v1/projects/alpha')).status).toBe(200);
    expect((await call('/api/v1/projects/beta')).status).toBe(404); // not in scope: not even visible
    const write = await call('/api/v1/projects/alpha/artifacts', {
      method: 'POST',
      json: { name: 'm', kind: 'model', sensitivity: 'internal' },
    });
    expect(write.status).toBe(403);
    expect((await fetch(`${server.url}/api/v1/whoami?access_token=${token}`)).status).toBe(401);
  });

  it('a derived token is narrower and dies with its parent (A7)', async () => {
    const child = await json<{ token: string }>(
      await as(token)('/api/v1/auth/derive', {
        method: 'POST',
        json: { scope: { projects: ['alpha', 'beta'], readOnly: false }, ttlSeconds: 600 },
      }),
      201,
    );
    const me = await json<{ scope: { projects: string[]; readOnly: boolean } }>(
      await as(child.token)('/api/v1/whoami'),
      200,
    );
    expect(me.scope).toEqual({ projects: ['alpha'], readOnly: true });
    await json(await server.api(`/api/v1/tokens/${tokenId}/revoke`, { method: 'POST' }), 200);
    expect((await as(token)('/api/v1/whoami')).status).toBe(401);
    expect((await as(child.token)('/api/v1/whoami')).status).toBe(401);
    const listed = await json<{ items: { parentId: string | null; revokedAt: string | null }[] }>(
      await server.api('/api/v1/tokens?principal=sa:ci&includeRevoked=true'),
      200,
    );
    const derived = listed.items.filter((t) => t.parentId === tokenId);
    expect(derived.length).toBeGreaterThan(0);
    expect(derived.every((t) => t.revokedAt !== null)).toBe(true);
  });

  it('rotation replaces a token; expiry ends it', async () => {
    const issued = await json<{ token: string; record: { id: string } }>(
      await server.api('/api/v1/service-accounts/ci/tokens', {
        method: 'POST',
        json: { scope: { readOnly: true }, ttlSeconds: 120 },
      }),
      201,
    );
    const rotated = await json<{ token: string }>(
      await server.api(`/api/v1/tokens/${issued.record.id}/rotate`, { method: 'POST' }),
      201,
    );
    expect((await as(issued.token)('/api/v1/whoami')).status).toBe(401);
    expect((await as(rotated.token)('/api/v1/whoami')).status).toBe(200);
    offsetMs += 121_000;
    expect((await as(rotated.token)('/api/v1/whoami')).status).toBe(401);
  });

  it('disabling the account stops its tokens on the next request', async () => {
    const issued = await json<{ token: string }>(
      await server.api('/api/v1/service-accounts/ci/tokens', {
        method: 'POST',
        json: { scope: { readOnly: true }, ttlSeconds: 3600 },
      }),
      201,
    );
    expect((await as(issued.token)('/api/v1/whoami')).status).toBe(200);
    await json(await server.api('/api/v1/service-accounts/ci/disable', { method: 'POST' }), 200);
    expect((await as(issued.token)('/api/v1/whoami')).status).toBe(401);
  });
});

describe('step-up', () => {
  it('a sensitive action needs a recent TOTP verification: mfa_required, then step-up, then allowed', async () => {
    const hank = await enrol('hank');
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'user:hank' } }),
      204,
    );
    const call = as(hank.tokens.accessToken);
    offsetMs += 6 * 60_000;
    const refused = await call('/api/v1/keys/rotate', { method: 'POST' });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { code: string }).code).toBe('mfa_required');
    await json(
      await call('/api/v1/auth/step-up', { method: 'POST', json: { code: await nextCode(hank.secret) } }),
      200,
    );
    expect((await call('/api/v1/keys/rotate', { method: 'POST' })).status).toBe(200);
  });

  it('downloading a restricted artifact needs step-up too', async () => {
    const ivy = await enrol('ivy');
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'user:ivy' } }),
      204,
    );
    await pushFiles(
      server,
      { project: 'alpha', artifact: 'secret-model', version: '1' },
      [{ path: 'w.bin', data: Buffer.from('weights') }],
      { kind: 'model', sensitivity: 'restricted' },
    );
    const call = as(ivy.tokens.accessToken);
    const url = '/api/v1/projects/alpha/artifacts/secret-model/versions/1/file?path=w.bin';
    expect((await call(url)).status).toBe(200);
    offsetMs += 6 * 60_000;
    const refused = await call(url);
    expect(((await refused.json()) as { code: string }).code).toBe('mfa_required');
  });
});

describe('the auditor role (the seeded `auditors` group binding)', () => {
  it('reads the audit log and nothing else; without it the audit log is refused', async () => {
    const jill = await enrol('jill');
    const call = as(jill.tokens.accessToken);
    expect((await call('/api/v1/audit/events?limit=1')).status).toBe(403);
    await server.api('/api/v1/groups', { method: 'POST', json: { name: 'auditors' } });
    await json(
      await server.api('/api/v1/groups/auditors/members', {
        method: 'POST',
        json: { principal: 'user:jill' },
      }),
      204,
    );
    expect((await call('/api/v1/audit/events?limit=1')).status).toBe(200);
    expect((await call('/api/v1/audit/checkpoint')).status).toBe(200);
    expect((await call('/api/v1/users')).status).toBe(403);
    expect((await call('/api/v1/audit/prune', { method: 'POST', json: { olderThanDays: 1 } })).status).toBe(
      403,
    );
  });
});

describe('self-service', () => {
  it('changing the password needs the current one and a fresh second factor, and ends other sessions', async () => {
    const kim = await enrol('kim');
    const other = await json<Tokens>(await login(kim), 200);
    const call = as(kim.tokens.accessToken);
    const wrong = await call('/api/v1/auth/password', {
      method: 'POST',
      json: { currentPassword: 'not it at all', newPassword: 'a brand new passphrase' },
    });
    expect(wrong.status).toBe(401);
    await json(
      await call('/api/v1/auth/password', {
        method: 'POST',
        json: { currentPassword: kim.password, newPassword: 'a brand new passphrase' },
      }),
      204,
    );
    expect((await call('/api/v1/whoami')).status).toBe(200);
    expect((await as(other.accessToken)('/api/v1/whoami')).status).toBe(401);
    const old = await post('/api/v1/auth/login', {
      username: 'kim',
      password: kim.password,
      code: await nextCode(kim.secret),
    });
    expect(old.status).toBe(401);
    const fresh = await post('/api/v1/auth/login', {
      username: 'kim',
      password: 'a brand new passphrase',
      code: await nextCode(kim.secret),
    });
    expect(fresh.status).toBe(200);
  });

  it('new recovery codes replace the old ones', async () => {
    const lou = await enrol('lou');
    const codes = await json<{ recoveryCodes: string[] }>(
      await as(lou.tokens.accessToken)('/api/v1/auth/recovery-codes', { method: 'POST' }),
      200,
    );
    expect(codes.recoveryCodes).toHaveLength(10);
    const attempt = (code: string) =>
      post('/api/v1/auth/login', { username: 'lou', password: lou.password, recoveryCode: code });
    expect((await attempt(lou.recoveryCodes[0]!)).status).toBe(401);
    expect((await attempt(codes.recoveryCodes[0]!)).status).toBe(200);
  });

  it('deleting a group removes what it granted on the next request', async () => {
    const max = await enrol('max');
    await json(await server.api('/api/v1/groups', { method: 'POST', json: { name: 'temp-admins' } }), 201);
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'user:max' } }),
      204,
    );
    expect((await as(max.tokens.accessToken)('/api/v1/users')).status).toBe(200);
    await json(await server.api('/api/v1/groups/admins', { method: 'DELETE' }), 204);
    expect((await as(max.tokens.accessToken)('/api/v1/users')).status).toBe(403);
    await json(await server.api('/api/v1/groups', { method: 'POST', json: { name: 'admins' } }), 201);
    // Its role binding went with it: a group created again under the same name grants nothing.
    await json(
      await server.api('/api/v1/groups/admins/members', { method: 'POST', json: { principal: 'user:max' } }),
      204,
    );
    expect((await as(max.tokens.accessToken)('/api/v1/users')).status).toBe(403);
    const bindings = await json<{ items: { id: string }[] }>(
      await server.api('/api/v1/policy/bindings'),
      200,
    );
    expect(bindings.items.map((b) => b.id)).not.toContain('admins');
  });
});

describe('the bootstrap token is break-glass', () => {
  it('can be rotated and disabled; the old one stops working at once', async () => {
    const rotated = await json<{ token: string }>(
      await server.api('/api/v1/bootstrap-token/rotate', { method: 'POST' }),
      200,
    );
    expect(rotated.token).toMatch(/^srt_/);
    expect((await server.api('/api/v1/whoami')).status).toBe(401);
    const next = as(rotated.token);
    expect((await next('/api/v1/whoami')).status).toBe(200);
    const events = await json<{ items: AuditEvent[] }>(
      await next('/api/v1/audit/events?action=bootstrap:manage'),
      200,
    );
    expect(events.items[0]).toMatchObject({ category: 'account', details: { bootstrapToken: 'rotated' } });
    await json(await next('/api/v1/bootstrap-token/disable', { method: 'POST' }), 200);
    expect((await next('/api/v1/whoami')).status).toBe(401);
  });
});
