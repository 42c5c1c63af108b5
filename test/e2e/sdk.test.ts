import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrongroomClient } from '../../src/client/index.js';
import { sha256, startTestServer, type TestServer } from '../support/server-harness.js';

/** The SDK against the real server (no fake): push, resume, pull, verify. */
let server: TestServer;
let work: string;
let client: StrongroomClient;

beforeAll(async () => {
  server = await startTestServer();
  work = await mkdtemp(join(tmpdir(), 'strongroom-sdk-'));
  client = new StrongroomClient({ url: server.url, token: server.token });
  await client.createProject({ name: 'sdk' });
});
afterAll(async () => {
  await server.close();
  await rm(work, { recursive: true, force: true });
});

async function tree(name: string, files: Record<string, Buffer>): Promise<string> {
  const root = join(work, name);
  for (const [path, data] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), data);
  }
  return root;
}

describe('the SDK against the real server', () => {
  const files = {
    'config.json': Buffer.from('{"layers": 50}'),
    'empty.txt': Buffer.alloc(0),
    'weights/model.safetensors': randomBytes(9 * 1024 * 1024 + 17),
    ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`shards/s${i}.bin`, randomBytes(1000 + i)])),
  };

  it('pushes a directory in one pass and pulls it back bit for bit', async () => {
    const source = await tree('push', files);
    const detail = await client.pushVersion({
      project: 'sdk',
      artifact: 'm',
      version: '1',
      source,
      kind: 'model',
    });
    expect(detail.version.state).toBe('available');
    expect(detail.files).toHaveLength(Object.keys(files).length);
    for (const f of detail.files) expect(f.sha256).toBe(sha256(files[f.path as keyof typeof files]));

    const out = join(work, 'pulled');
    await client.pullVersion({ project: 'sdk', artifact: 'm', version: '1', outDir: out });
    for (const [path, data] of Object.entries(files))
      expect((await readFile(join(out, path))).equals(data)).toBe(true);
  });

  it('resumes a session whose parts the server partly holds, hashing what it does not send again', async () => {
    const source = await tree('resume', files);
    // An earlier, interrupted push: the session exists (declaring sizes only) and the server holds part 0.
    const sorted = Object.keys(files).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const upload = await client.createUpload(
      { project: 'sdk', artifact: 'm', version: '2' },
      { files: sorted.map((path) => ({ path, size: files[path as keyof typeof files].length })) },
    );
    const first = upload.parts[0]!;
    const body = Buffer.concat(first.files.map((i) => files[sorted[i] as keyof typeof files]));
    await client.uploadPart(upload.id, first.index, { offset: 0, length: body.length, body });
    const uploadId = upload.id;
    const detail = await client.pushVersion({
      project: 'sdk',
      artifact: 'm',
      version: '2',
      source,
      resumeUploadId: uploadId,
    });
    expect(detail.version.state).toBe('available');
    for (const f of detail.files) expect(f.sha256).toBe(sha256(files[f.path as keyof typeof files]));
  });
});
