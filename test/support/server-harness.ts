import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../src/core/clock.js';
import { buildApp, createServerContext, type ServerContext } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import type { RouteDeclaration } from '../../src/server/pipeline.js';
import type { FsOps } from '../../src/storage/fs/fs-ops.js';

export interface TestServer {
  readonly url: string;
  readonly token: string;
  readonly dataDir: string;
  readonly masterKey: string;
  readonly ctx: ServerContext;
  readonly app: FastifyInstance;
  readonly routes: readonly RouteDeclaration[];
  /** fetch against the server with the admin token. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

export interface TestServerOptions {
  readonly dataDir?: string;
  readonly masterKey?: string;
  readonly config?: Record<string, unknown>;
  readonly fsOps?: FsOps;
  /** Capture the server's JSON log lines here instead of discarding them. */
  readonly logStream?: NodeJS.WritableStream;
  /** The server's clock (tests move time forward for expiry and step-up). */
  readonly clock?: Clock;
  /** Extra environment variables the server reads (secrets named by the configuration). */
  readonly env?: Readonly<Record<string, string>>;
}

/** A real server on loopback over a temporary data directory (no mocks: SQLite and files on disk). */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'strongroom-test-')));
  const masterKey = opts.masterKey ?? randomBytes(32).toString('hex');
  const config = loadConfig({
    env: {},
    overrides: { dataDir, port: 0, logLevel: opts.logStream ? 'info' : 'silent', ...opts.config },
  });
  const ctx = await createServerContext(config, {
    env: { ...opts.env, STRONGROOM_MASTER_KEY: masterKey },
    ...(opts.fsOps ? { fsOps: opts.fsOps } : {}),
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  const { app, routes } = await buildApp(
    ctx,
    opts.logStream ? { logStream: opts.logStream } : { logger: false },
  );
  const address = await app.listen({ host: '127.0.0.1', port: config.port });
  const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
  return {
    url: address,
    token,
    dataDir,
    masterKey,
    ctx,
    app,
    routes,
    api: (path, init = {}) => {
      const { json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
      if (json !== undefined) headers.set('content-type', 'application/json');
      return fetch(`${address}${path}`, {
        signal: AbortSignal.timeout(20_000),
        ...rest,
        headers,
        ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
      });
    },
    close: async () => {
      await app.close();
      await ctx.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface LocalFile {
  readonly path: string;
  readonly data: Buffer;
}

/** Pushes files through the raw protocol (each part in one PUT) and commits; returns the commit response. */
export async function pushFiles(
  server: TestServer,
  ref: { project: string; artifact: string; version: string },
  files: readonly LocalFile[],
  extra: Record<string, unknown> = {},
): Promise<Response> {
  const created = await server.api(
    `/api/v1/projects/${ref.project}/artifacts/${ref.artifact}/versions/${ref.version}/uploads`,
    {
      method: 'POST',
      json: {
        ...extra,
        files: files.map((f) => ({ path: f.path, size: f.data.length, sha256: sha256(f.data) })),
      },
    },
  );
  if (created.status !== 201) return created;
  const upload = (await created.json()) as { id: string; parts: { index: number; files: number[] }[] };
  const sorted = [...files].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  for (const part of upload.parts) {
    const body = Buffer.concat(part.files.map((i) => sorted[i]!.data));
    const put = await server.api(`/api/v1/uploads/${upload.id}/parts/${part.index}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'upload-offset': '0' },
      body,
    });
    if (put.status !== 200) return put;
  }
  return server.api(`/api/v1/uploads/${upload.id}/commit`, { method: 'POST' });
}
