import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;
const lines: string[] = [];

beforeAll(async () => {
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
  server = await startTestServer({ logStream: stream });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'logs' } });
});
afterAll(() => server.close());

describe('request logging (G5)', () => {
  it('logs every request with its id, and never a token, the master key or file contents', async () => {
    const secretContent = 'SECRET-FILE-CONTENT-93b1';
    expect(
      (
        await pushFiles(server, { project: 'logs', artifact: 'a', version: '1' }, [
          { path: 'f.txt', data: Buffer.from(secretContent) },
        ])
      ).status,
    ).toBe(201);
    await fetch(`${server.url}/api/v1/projects?access_token=${server.token}`);
    await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: `Bearer ${server.token}x` } });
    await server.api('/api/v1/projects/logs/artifacts/a/versions/1/file?path=f.txt');
    await new Promise((r) => setTimeout(r, 50));

    const log = lines.join('\n');
    expect(log).not.toContain(server.token);
    expect(log).not.toContain(server.masterKey);
    expect(log).not.toContain(secretContent);
    const completed = lines
      .map((l) => JSON.parse(l) as { msg?: string; requestId?: string; reqId?: string })
      .filter((l) => l.msg === 'request completed');
    expect(completed.length).toBeGreaterThanOrEqual(6);
    expect(log).toContain('access_token=[redacted]');
  });
});
