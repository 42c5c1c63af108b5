import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/** Mutual TLS: a client certificate from the configured CA identifies a service account by its common name. */
let dir: string;
let server: TestServer;
const pem: Record<string, Buffer> = {};

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function certificate(name: string, cn: string, ca: string, extra: string[] = []): void {
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
  );
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.crt`,
    ...extra,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-mtls-'));
  for (const ca of ['ca', 'rogue']) {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      `${ca}.key`,
      '-out',
      `${ca}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=${ca} test CA`,
    );
  }
  await import('node:fs/promises').then((fs) =>
    fs.writeFile(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'),
  );
  certificate('server', 'localhost', 'ca', ['-extfile', 'san.ext']);
  certificate('client', 'ci-mtls', 'ca');
  certificate('stranger', 'no-such-account', 'ca');
  certificate('forged', 'ci-mtls', 'rogue');
  for (const name of ['ca', 'server', 'client', 'stranger', 'forged'])
    for (const ext of ['crt', 'key']) pem[`${name}.${ext}`] = await readFile(join(dir, `${name}.${ext}`));
  server = await startTestServer({
    config: {
      tls: {
        certFile: join(dir, 'server.crt'),
        keyFile: join(dir, 'server.key'),
        clientCaFile: join(dir, 'ca.crt'),
      },
    },
  });
  const admin = { authorization: `Bearer ${server.token}` };
  await call(undefined, '/api/v1/service-accounts', 'POST', admin, {
    name: 'ci-mtls',
    environment: 'production',
  });
});

afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

function call(
  client: string | undefined,
  path: string,
  method = 'GET',
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${path}`,
      {
        method,
        ca: pem['ca.crt'],
        ...(client ? { cert: pem[`${client}.crt`], key: pem[`${client}.key`] } : {}),
        headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

describe('mutual TLS', () => {
  it('a certificate from the client CA naming a service account authenticates as it', async () => {
    const res = await call('client', '/api/v1/whoami');
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      name: 'ci-mtls',
      kind: 'service',
      authMethod: 'mtls',
      environment: 'production',
    });
  });

  it('a certificate naming no account, one from another CA, or none at all is refused', async () => {
    expect((await call('stranger', '/api/v1/whoami')).status).toBe(401);
    expect((await call('forged', '/api/v1/whoami')).status).toBe(401);
    expect((await call(undefined, '/api/v1/whoami')).status).toBe(401);
  });

  it('a bearer token still wins over the certificate, and a disabled account stops at once', async () => {
    const admin = { authorization: `Bearer ${server.token}` };
    const asAdmin = await call('client', '/api/v1/whoami', 'GET', admin);
    expect(JSON.parse(asAdmin.body)).toMatchObject({ principal: 'bootstrap-admin' });
    await call(undefined, '/api/v1/service-accounts/ci-mtls/disable', 'POST', admin);
    expect((await call('client', '/api/v1/whoami')).status).toBe(401);
  });
});
