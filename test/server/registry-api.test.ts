import { randomBytes } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushFiles, sha256, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
  expect((await server.api('/api/v1/projects', { method: 'POST', json: { name: 'vision' } })).status).toBe(
    201,
  );
});
afterAll(() => server.close());

const MARKER = 'STRONGROOM-PLAINTEXT-MARKER-7f3a9c';

async function* walk(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else yield path;
  }
}

async function listStaging(): Promise<string[]> {
  const dir = join(server.dataDir, 'blobs', 'staging');
  return (await readdir(dir).catch(() => [])).filter((n) => n.startsWith('blb_'));
}

describe('push, list, show, pull', () => {
  const files = [
    { path: 'config.json', data: Buffer.from(JSON.stringify({ layers: 50, note: MARKER })) },
    {
      path: 'weights/model.bin',
      data: Buffer.concat([randomBytes(9 * 1024 * 1024 + 77), Buffer.from(MARKER)]),
    },
    { path: 'weights/empty.bin', data: Buffer.alloc(0) },
    { path: 'tokenizer/vocab.txt', data: Buffer.from(`${MARKER}\nhello\nworld\n`.repeat(5000)) },
  ];

  it('a pushed directory comes back bit for bit, with its manifest and metadata', async () => {
    const res = await pushFiles(server, { project: 'vision', artifact: 'resnet', version: '1.0.0' }, files, {
      kind: 'model',
      sensitivity: 'confidential',
      metadata: { dataset: 'imagenet', secret: MARKER, lr: 0.01 },
    });
    expect(res.status).toBe(201);
    const detail = (await res.json()) as {
      version: { state: string; fileCount: number; manifestDigest: string };
      files: { path: string; sha256: string; size: number }[];
      metadata: unknown;
    };
    expect(detail.version.state).toBe('available');
    expect(detail.version.fileCount).toBe(4);
    expect(detail.version.manifestDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(detail.files.map((f) => f.path)).toEqual([
      'config.json',
      'tokenizer/vocab.txt',
      'weights/empty.bin',
      'weights/model.bin',
    ]);
    expect(detail.metadata).toEqual({ dataset: 'imagenet', secret: MARKER, lr: 0.01 });

    for (const f of files) {
      const got = await server.api(
        `/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=${encodeURIComponent(f.path)}`,
      );
      expect(got.status).toBe(200);
      expect(got.headers.get('etag')).toBe(`"sha256:${sha256(f.data)}"`);
      const body = Buffer.from(await got.arrayBuffer());
      expect(sha256(body)).toBe(sha256(f.data));
    }
    const shown = await server.api('/api/v1/projects/vision/artifacts/resnet/versions/1.0.0');
    expect(((await shown.json()) as { files: unknown[] }).files).toEqual(detail.files);
  });

  it('lists the artifact and its versions', async () => {
    const artifacts = (await (await server.api('/api/v1/projects/vision/artifacts')).json()) as {
      items: { name: string; kind: string; sensitivity: string }[];
    };
    expect(artifacts.items).toContainEqual(
      expect.objectContaining({ name: 'resnet', kind: 'model', sensitivity: 'confidential' }),
    );
    const versions = (await (
      await server.api('/api/v1/projects/vision/artifacts/resnet/versions')
    ).json()) as { items: { version: string }[] };
    expect(versions.items.map((v) => v.version)).toEqual(['1.0.0']);
  });

  it('serves byte ranges that cross segment and file boundaries, decrypting only what is needed', async () => {
    const data = files[1]!.data;
    for (const [start, end] of [
      [0, 0],
      [65535, 65536],
      // Across the end of the first ~1 MiB read of sealed segments, and from inside one read into a later one.
      [1_048_575, 1_048_577],
      [2_000_000, 7_340_031],
      [100_000, 5_000_000],
      [data.length - 10, data.length - 1],
    ] as const) {
      const got = await server.api(
        `/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=weights/model.bin`,
        {
          headers: { range: `bytes=${start}-${end}` },
        },
      );
      expect(got.status).toBe(206);
      expect(got.headers.get('content-range')).toBe(`bytes ${start}-${end}/${data.length}`);
      expect(Buffer.from(await got.arrayBuffer()).equals(data.subarray(start, end + 1))).toBe(true);
    }
    const suffix = await server.api(
      `/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=config.json`,
      {
        headers: { range: 'bytes=-5' },
      },
    );
    expect(Buffer.from(await suffix.arrayBuffer()).equals(files[0]!.data.subarray(-5))).toBe(true);
    const outside = await server.api(
      `/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=config.json`,
      {
        headers: { range: `bytes=${10 ** 9}-` },
      },
    );
    expect(outside.status).toBe(416);
    expect(((await outside.json()) as { code: string }).code).toBe('range_not_satisfiable');
    const malformed = await server.api(
      `/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=config.json`,
      {
        headers: { range: 'bytes=abc' },
      },
    );
    expect(malformed.status).toBe(400);
  });

  it('keeps nothing readable in the data directory: the plaintext marker appears in no file', async () => {
    const marker = Buffer.from(MARKER);
    const inspected: string[] = [];
    for await (const path of walk(server.dataDir)) {
      const content = await readFile(path);
      inspected.push(path);
      expect(content.includes(marker), `${path} contains the plaintext marker`).toBe(false);
    }
    expect(inspected.some((p) => p.includes('blb_'))).toBe(true);
    expect(inspected.some((p) => p.endsWith('strongroom.db'))).toBe(true);
  });

  it('data files are private to the server user', async () => {
    for await (const path of walk(server.dataDir)) {
      if (path.includes('blb_') || path.endsWith('admin.token'))
        expect((await stat(path)).mode & 0o077).toBe(0);
    }
  });

  it('a version is immutable: pushing it again is a conflict', async () => {
    const res = await pushFiles(server, { project: 'vision', artifact: 'resnet', version: '1.0.0' }, [
      { path: 'x', data: Buffer.from('x') },
    ]);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe('version_exists');
  });

  it('a push that names another kind or sensitivity for an existing artifact is refused', async () => {
    const res = await pushFiles(
      server,
      { project: 'vision', artifact: 'resnet', version: '2.0.0' },
      [{ path: 'x', data: Buffer.from('x') }],
      {
        kind: 'dataset',
      },
    );
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe('artifact_conflict');
  });
});

describe('concurrency (I3)', () => {
  it('two concurrent creates of one version: exactly one wins, the other gets 409', async () => {
    const attempt = () =>
      server.api('/api/v1/projects/vision/artifacts/race/versions/1/uploads', {
        method: 'POST',
        json: { files: [{ path: 'a', size: 1, sha256: sha256('a') }] },
      });
    const results = await Promise.all(Array.from({ length: 8 }, attempt));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(7);
    for (const r of results.filter((r) => r.status === 409))
      expect(((await r.json()) as { code: string }).code).toBe('version_exists');
  });
});

describe('uploads that go wrong leave nothing behind', () => {
  async function createUpload(version: string, files: { path: string; data: Buffer }[]) {
    const res = await server.api(`/api/v1/projects/vision/artifacts/bad/versions/${version}/uploads`, {
      method: 'POST',
      json: { files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })) },
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; parts: { index: number; size: number; received: number }[] };
  }

  const put = (
    id: string,
    index: number,
    offset: number,
    body: Buffer,
    headers: Record<string, string> = {},
  ) =>
    server.api(`/api/v1/uploads/${id}/parts/${index}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': String(offset), ...headers },
      body,
    });

  it('a wrong digest (E6) is refused with 422, aborts the session and keeps no bytes', async () => {
    const declared = Buffer.from('the declared content');
    const upload = await createUpload('digest', [{ path: 'f.bin', data: declared }]);
    const res = await put(upload.id, 0, 0, Buffer.from('the actual content!!'));
    expect(res.status).toBe(422);
    expect(((await res.json()) as { code: string }).code).toBe('digest_mismatch');
    expect((await server.api(`/api/v1/uploads/${upload.id}`)).status).toBe(404);
    expect((await server.api('/api/v1/projects/vision/artifacts/bad/versions/digest')).status).toBe(404);
    expect(await listStaging()).toEqual([]);
    // The reservation is gone, so the version can be pushed correctly now.
    expect(
      (
        await pushFiles(server, { project: 'vision', artifact: 'bad', version: 'digest' }, [
          { path: 'f.bin', data: declared },
        ])
      ).status,
    ).toBe(201);
  });

  it('a chunk at the wrong offset gets 409 with the durable offset', async () => {
    const data = randomBytes(200_000);
    const upload = await createUpload('offset', [{ path: 'f.bin', data }]);
    const res = await put(upload.id, 0, 65536, data.subarray(65536));
    expect(res.status).toBe(409);
    const problem = (await res.json()) as { code: string; details: { received: number } };
    expect(problem.code).toBe('upload_offset_mismatch');
    expect(problem.details.received).toBe(0);
  });

  it('a chunk that runs past its part is refused before any byte is read (413)', async () => {
    const data = randomBytes(1000);
    const upload = await createUpload('too-long', [{ path: 'f.bin', data }]);
    const res = await put(upload.id, 0, 0, Buffer.concat([data, Buffer.from('extra')]));
    expect(res.status).toBe(413);
    expect(((await res.json()) as { code: string }).code).toBe('payload_too_large');
  });

  it('a non-final chunk that is not a whole number of segments is refused', async () => {
    const data = randomBytes(200_000);
    const upload = await createUpload('misaligned', [{ path: 'f.bin', data }]);
    const res = await put(upload.id, 0, 0, data.subarray(0, 70_000));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('chunk_misaligned');
  });

  it('resuming in aligned chunks gives the same bytes as one request', async () => {
    const data = randomBytes(300_000);
    const upload = await createUpload('chunked', [{ path: 'f.bin', data }]);
    let offset = 0;
    for (const size of [65536, 131072, 300_000 - 196608]) {
      const res = await put(upload.id, 0, offset, data.subarray(offset, offset + size));
      expect(res.status).toBe(200);
      offset += size;
      expect(((await res.json()) as { received: number }).received).toBe(offset);
    }
    expect((await server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' })).status).toBe(201);
    const got = await server.api('/api/v1/projects/vision/artifacts/bad/versions/chunked/file?path=f.bin');
    expect(Buffer.from(await got.arrayBuffer()).equals(data)).toBe(true);
  });

  it('commit before every byte arrived is refused (409 upload_incomplete) and nothing is visible', async () => {
    const data = randomBytes(200_000);
    const upload = await createUpload('early', [{ path: 'f.bin', data }]);
    expect((await put(upload.id, 0, 0, data.subarray(0, 65536))).status).toBe(200);
    const res = await server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { code: string }).code).toBe('upload_incomplete');
    expect((await server.api('/api/v1/projects/vision/artifacts/bad/versions/early')).status).toBe(404);
    const listed = (await (await server.api('/api/v1/projects/vision/artifacts/bad/versions')).json()) as {
      items: { version: string }[];
    };
    expect(listed.items.map((v) => v.version)).not.toContain('early');
  });

  it('aborting a session removes its reservation and staged bytes', async () => {
    const data = randomBytes(200_000);
    const before = await listStaging();
    const upload = await createUpload('aborted', [{ path: 'f.bin', data }]);
    expect((await put(upload.id, 0, 0, data.subarray(0, 131072))).status).toBe(200);
    expect((await listStaging()).length).toBe(before.length + 1);
    expect((await server.api(`/api/v1/uploads/${upload.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await listStaging()).sort()).toEqual(before.sort());
    expect((await server.api(`/api/v1/uploads/${upload.id}`)).status).toBe(404);
  });

  it('refuses traversal and hostile paths in a manifest (C1) without creating anything', async () => {
    for (const path of ['../../etc/passwd', '/abs', 'a/../b', '%2e%2e%2fx', 'C:\\x', 'a\u0000b', 'CON']) {
      const res = await server.api('/api/v1/projects/vision/artifacts/paths/versions/1/uploads', {
        method: 'POST',
        json: { files: [{ path, size: 1, sha256: sha256('a') }] },
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_path');
    }
    expect((await server.api('/api/v1/projects/vision/artifacts/paths')).status).toBe(404);
  });

  it('refuses hostile names in URLs', async () => {
    for (const path of [
      '/api/v1/projects/..%2f..%2fetc/artifacts',
      '/api/v1/projects/vision/artifacts/..%2fx/versions',
      '/api/v1/projects/vision/artifacts/resnet/versions/..%2f1.0.0',
    ]) {
      // A name with a `/` can name nothing: refused before anything is looked up.
      const res = await server.api(path);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_name');
    }
    const res = await server.api(
      '/api/v1/projects/vision/artifacts/resnet/versions/1.0.0/file?path=..%2F..%2Fstrongroom.db',
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('invalid_path');
  });

  it('refuses server-owned fields set by a client (B4)', async () => {
    for (const extra of [{ state: 'available' }, { owner: 'mallory' }, { manifestDigest: 'x' }]) {
      const res = await server.api('/api/v1/projects/vision/artifacts/owned/versions/1/uploads', {
        method: 'POST',
        json: { files: [{ path: 'a', size: 1, sha256: sha256('a') }], ...extra },
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe('invalid_request');
    }
    const res = await server.api('/api/v1/projects/vision/artifacts/owned/versions/1/uploads', {
      method: 'POST',
      json: { files: [{ path: 'a', size: 1, sha256: sha256('a'), blobId: 'blb_x' }] },
    });
    expect(res.status).toBe(400);
  });

  it('responses never carry storage ids, wrapped keys or token hashes (B4)', async () => {
    const texts = await Promise.all(
      [
        '/api/v1/projects/vision/artifacts/resnet/versions/1.0.0',
        '/api/v1/keys',
        '/api/v1/projects/vision/artifacts',
      ].map(async (p) => (await server.api(p)).text()),
    );
    for (const text of texts) {
      expect(text).not.toMatch(/blb_|dk_|ver_|wrapped|sha256_token|bootstrap_admin_token/);
    }
  });

  it('refuses an empty file with a non-empty digest, and malformed manifests', async () => {
    const bad = [
      { files: [] },
      { files: [{ path: 'a', size: 0, sha256: sha256('x') }] },
      { files: [{ path: 'a', size: -1, sha256: sha256('x') }] },
      { files: [{ path: 'a', size: 1, sha256: 'XYZ' }] },
      {
        files: [
          { path: 'a', size: 1, sha256: sha256('a') },
          { path: 'A', size: 1, sha256: sha256('a') },
        ],
      },
      { files: [{ path: 'a', size: 1, sha256: sha256('a') }], metadata: [1, 2] },
    ];
    for (const body of bad) {
      const res = await server.api('/api/v1/projects/vision/artifacts/manifest/versions/1/uploads', {
        method: 'POST',
        json: body,
      });
      expect([400, 422]).toContain(res.status);
    }
  });

  it('caps page sizes (F5)', async () => {
    expect((await server.api('/api/v1/projects?limit=201')).status).toBe(400);
    expect((await server.api('/api/v1/projects?limit=200')).status).toBe(200);
  });

  it('a file name with quotes, semicolons and non-ASCII is encoded safely in Content-Disposition (C4)', async () => {
    const path = "dir/we'ird;name é.txt";
    expect(
      (
        await pushFiles(server, { project: 'vision', artifact: 'names', version: '1' }, [
          { path, data: Buffer.from('x') },
        ])
      ).status,
    ).toBe(201);
    const got = await server.api(
      `/api/v1/projects/vision/artifacts/names/versions/1/file?path=${encodeURIComponent(path)}`,
    );
    const header = got.headers.get('content-disposition') ?? '';
    expect(header).toBe(
      `attachment; filename="we'ird_name _.txt"; filename*=UTF-8''we%27ird%3Bname%20%C3%A9.txt`,
    );
  });
});

describe('authentication', () => {
  it('refuses requests without, with a wrong, or with a query-string token (A6)', async () => {
    expect((await fetch(`${server.url}/api/v1/projects`)).status).toBe(401);
    expect(
      (await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: 'Bearer srt_wrong' } }))
        .status,
    ).toBe(401);
    expect(
      (await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: `Basic ${server.token}` } }))
        .status,
    ).toBe(401);
    const viaQuery = await fetch(`${server.url}/api/v1/projects?access_token=${server.token}`);
    expect(viaQuery.status).toBe(401);
    const problem = (await viaQuery.json()) as { code: string; requestId: string };
    expect(problem.code).toBe('unauthenticated');
    expect(problem.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('unknown routes do not reveal themselves to anonymous callers', async () => {
    expect((await fetch(`${server.url}/api/v1/nothing-here`)).status).toBe(401);
    const res = await server.api('/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe('route_not_found');
  });

  it('every route declares an action or is on the public allow-list (B5)', () => {
    const publicRoutes = server.routes
      .filter((r) => r.public)
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    expect(publicRoutes).toEqual([
      'GET /api/v1/auth/oidc/callback',
      'GET /api/v1/openapi.json',
      'GET /healthz',
      'GET /metrics',
      'GET /readyz',
      'POST /api/v1/auth/enroll/finish',
      'POST /api/v1/auth/enroll/start',
      'POST /api/v1/auth/federate',
      'POST /api/v1/auth/login',
      'POST /api/v1/auth/oidc/:provider/start',
      'POST /api/v1/auth/oidc/poll',
      'POST /api/v1/auth/refresh',
    ]);
    for (const r of server.routes.filter((r) => !r.public))
      expect(r.action, `${r.method} ${r.url}`).toBeTruthy();
    expect(server.routes.length).toBeGreaterThanOrEqual(20);
  });

  it('a route without an authorization declaration cannot be registered', async () => {
    const { default: Fastify } = await import('fastify');
    const { installPipeline } = await import('../../src/server/pipeline.js');
    const app = Fastify();
    installPipeline(app, {
      authenticator: server.ctx.authenticator,
      authorizer: server.ctx.authorizer,
      audit: server.ctx.audit,
      recordProbes: false,
    });
    expect(() => app.get('/undeclared', async () => 'x')).toThrow(/declares neither/);
    await app.close();
  });
});

describe('operations endpoints', () => {
  it('health, readiness and metrics answer without credentials', async () => {
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('strongroom_http_requests_total');
    expect(metrics).toContain('strongroom_upload_bytes_total');
  });

  it('echoes a request id on every response', async () => {
    const res = await server.api('/api/v1/projects');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
