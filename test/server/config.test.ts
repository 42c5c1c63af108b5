import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrongroomError } from '../../src/core/errors.js';
import { loadConfig } from '../../src/server/config.js';
import { sha256, startTestServer } from '../support/server-harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const invalid = (fn: () => unknown) =>
  expect(fn).toThrow(expect.objectContaining({ code: 'config_invalid' }));

describe('configuration (DESIGN.md section 9)', () => {
  it('has a default for everything and freezes the result', () => {
    const config = loadConfig({ env: {} });
    expect(config.port).toBe(7700);
    expect(config.host).toBe('127.0.0.1');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
  });

  it('rejects unknown keys, wrong types and out-of-range values', async () => {
    invalid(() => loadConfig({ env: {}, overrides: { prot: 1 } }));
    invalid(() => loadConfig({ env: { STRONGROOM_PORT: 'eighty' } }));
    invalid(() => loadConfig({ env: {}, overrides: { port: 70000 } }));
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ limits: { maxFiles: 10, extra: true } }));
    invalid(() => loadConfig({ env: {}, file }));
    await writeFile(file, '{ not json');
    invalid(() => loadConfig({ env: {}, file }));
  });

  it('takes a file, then STRONGROOM_* variables, then flags', async () => {
    const file = join(dir, 'good.json');
    await writeFile(file, JSON.stringify({ port: 8000, logLevel: 'warn' }));
    const config = loadConfig({ env: { STRONGROOM_PORT: '8100' }, file, overrides: { logLevel: 'debug' } });
    expect(config.port).toBe(8100);
    expect(config.logLevel).toBe('debug');
  });

  it('refuses plain HTTP on anything but loopback', () => {
    invalid(() => loadConfig({ env: {}, overrides: { host: '0.0.0.0' } }));
    invalid(() => loadConfig({ env: {}, overrides: { host: '10.1.2.3' } }));
    expect(loadConfig({ env: {}, overrides: { host: '::1' } }).host).toBe('::1');
    expect(
      loadConfig({ env: {}, overrides: { host: '0.0.0.0', tls: { certFile: 'c.pem', keyFile: 'k.pem' } } })
        .host,
    ).toBe('0.0.0.0');
  });
});

describe('limits (F1, F5)', () => {
  it('refuses files, versions, file counts and metadata over the configured limits', async () => {
    const server = await startTestServer({
      config: {
        limits: {
          maxFileBytes: 1000,
          maxVersionBytes: 1500,
          maxFiles: 3,
          maxMetadataBytes: 64,
          maxJsonBodyBytes: 4096,
          idleTimeoutSeconds: 60,
        },
      },
    });
    try {
      await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
      const create = (body: unknown) =>
        server.api('/api/v1/projects/p/artifacts/m/versions/1/uploads', { method: 'POST', json: body });
      const file = (path: string, size: number) => ({ path, size, sha256: sha256('x') });
      const cases: [unknown, number, string][] = [
        [{ files: [file('a', 1001)] }, 413, 'payload_too_large'],
        [{ files: [file('a', 800), file('b', 800)] }, 413, 'payload_too_large'],
        [{ files: [file('a', 1), file('b', 1), file('c', 1), file('d', 1)] }, 413, 'payload_too_large'],
        [{ files: [file('a', 1)], metadata: { note: 'x'.repeat(100) } }, 400, 'invalid_metadata'],
        [{ files: [file('a', 1)], description: 'y'.repeat(5000) }, 413, 'payload_too_large'],
      ];
      for (const [body, status, code] of cases) {
        const res = await create(body);
        expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(status);
        expect(((await res.json()) as { code: string }).code).toBe(code);
      }
      expect((await server.api('/api/v1/projects/p/artifacts/m')).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});

describe('TLS', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    );
    const server = await startTestServer({
      config: { tls: { certFile: cert, keyFile: key } },
      masterKey: randomBytes(32).toString('hex'),
    });
    try {
      expect(server.url.startsWith('https://')).toBe(true);
      const ca = (await import('node:fs')).readFileSync(cert);
      const status = await new Promise<number>((resolve, reject) => {
        request(`${server.url}/healthz`, { ca }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
      expect(status).toBe(200);
      // Without trusting the certificate, the connection is refused by the client.
      await expect(fetch(`${server.url}/healthz`)).rejects.toBeTruthy();
    } finally {
      await server.close();
    }
  });

  it('a data directory holding data refuses to start without its master key file', async () => {
    const dataDir = join(dir, 'keyless');
    const first = await startTestServer({ dataDir, masterKey: randomBytes(32).toString('hex') });
    await first.close();
    const { createServerContext } = await import('../../src/server/app.js');
    await expect(
      createServerContext(loadConfig({ env: {}, overrides: { dataDir } }), { env: {} }),
    ).rejects.toSatisfy((err: unknown) => isStrongroomError(err, 'master_key_invalid'));
  });

  it('refuses a master key file that others can read', async () => {
    const dataDir = join(dir, 'loose');
    const keyFile = join(dir, 'loose.key');
    await writeFile(keyFile, randomBytes(32).toString('hex'), { mode: 0o644 });
    const { createServerContext } = await import('../../src/server/app.js');
    await expect(
      createServerContext(loadConfig({ env: {}, overrides: { dataDir, masterKeyFile: keyFile } }), {
        env: {},
      }),
    ).rejects.toSatisfy((err: unknown) => isStrongroomError(err, 'master_key_invalid'));
  });
});
