import { generate } from 'otplib';
import { expect } from 'vitest';
import type { TestServer } from './server-harness.js';

/** Parse a response body and check its status, with the body in the failure message. */
export async function json<T>(res: Response, status: number): Promise<T> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

/** A fetch against the server with another bearer token. */
export function as(server: TestServer, token: string) {
  return (path: string, init: RequestInit & { json?: unknown } = {}) =>
    server.api(path, { ...init, headers: { ...(init.headers ?? {}), authorization: `Bearer ${token}` } });
}

/** A service account with an unrestricted API token (no second factor: step-up does not apply). */
export async function serviceAccount(
  server: TestServer,
  name: string,
  environment: 'development' | 'staging' | 'production' = 'development',
): Promise<string> {
  await json(
    await server.api('/api/v1/service-accounts', { method: 'POST', json: { name, environment } }),
    201,
  );
  const issued = await json<{ token: string }>(
    await server.api(`/api/v1/service-accounts/${name}/tokens`, {
      method: 'POST',
      json: { scope: { readOnly: false }, ttlSeconds: 3600 },
    }),
    201,
  );
  return issued.token;
}

export interface Person {
  readonly username: string;
  readonly id: string;
  readonly accessToken: string;
  /** The TOTP secret, for step-up codes. */
  readonly secret: string;
}

/**
 * A user invited, enrolled (password + TOTP) and signed in: its session has a fresh second factor, so
 * step-up actions pass until the configured age. `clock` must be the server's clock.
 */
export async function person(server: TestServer, clock: { now(): Date }, username: string): Promise<Person> {
  const invite = await json<{ inviteToken: string; user: { id: string } }>(
    await server.api('/api/v1/users', { method: 'POST', json: { username } }),
    201,
  );
  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const start = await json<{ secret: string }>(
    await post('/api/v1/auth/enroll/start', {
      inviteToken: invite.inviteToken,
      password: `correct horse battery staple ${username.length}`,
    }),
    200,
  );
  const epoch = Math.floor(clock.now().getTime() / 1000);
  const finish = await json<{ session: { accessToken: string } }>(
    await post('/api/v1/auth/enroll/finish', {
      inviteToken: invite.inviteToken,
      code: await generate({ secret: start.secret, epoch }),
    }),
    200,
  );
  return { username, id: invite.user.id, accessToken: finish.session.accessToken, secret: start.secret };
}

/** Grant a role (as the bootstrap admin); returns the binding id. */
export async function bind(
  server: TestServer,
  role: string,
  principal: string,
  scope: string,
  extra: Record<string, unknown> = {},
): Promise<string> {
  const created = await json<{ id: string }>(
    await server.api('/api/v1/policy/bindings', {
      method: 'POST',
      json: { role, principal, scope, ...extra },
    }),
    201,
  );
  return created.id;
}
