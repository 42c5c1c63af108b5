import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readdirSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestEntryBody, UploadView, VersionDetail } from '../../src/api/schemas.js';
import { ApiError } from '../../src/client/api-error.js';
import { ConnectionError } from '../../src/client/connection-error.js';
import { FileExistsError } from '../../src/client/file-exists-error.js';
import { TEMP_PREFIX } from '../../src/client/pull-version.js';
import { StrongroomClient } from '../../src/client/strongroom-client.js';
import { StrongroomError } from '../../src/core/errors.js';

// ---------------------------------------------------------------------------------------------------------
// A small registry that speaks the upload protocol of docs/api.md: planned parts, Upload-Offset checked
// against the durable `received`, only whole segments kept from an interrupted chunk, server-side SHA-256.
// Knobs make it drop connections, corrupt bytes and lie, so the client's defences can be observed.
// ---------------------------------------------------------------------------------------------------------

const TOKEN = 'sr_test_0123456789abcdef';
const SEGMENT = 64 * 1024;
const LARGE_FILE = 256 * 1024;
const PACK = 256 * 1024;
const REF = { project: 'vision', artifact: 'resnet', version: '1.0.0' } as const;
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface FakePart {
  index: number;
  size: number;
  received: number;
  files: number[];
  data: Buffer;
}

interface FakeSession {
  id: string;
  files: { path: string; size: number; sha256?: string }[];
  parts: FakePart[];
}

interface Knobs {
  /** Destroy the socket once this many body bytes of a PUT to this part have arrived (`times` times). */
  drop?: { part: number; afterBytes: number; times: number };
  /** Answer the first PUT with 503 before reading it. */
  unavailableOnce?: boolean;
  /** The next session view reports nothing received, as a server still finishing an aborted write may. */
  staleViewOnce?: boolean;
  /** Flip one stored byte of the first file, so the server's digest differs from the declared one. */
  corruptUpload?: boolean;
  /** Commit answers with a manifest whose first digest is wrong. */
  tamperCommit?: boolean;
  /** Commit succeeds, then the connection is cut before the answer is sent. */
  loseCommitAnswer?: boolean;
  /** The version detail answers this manifest instead of the real one. */
  manifest?: ManifestEntryBody[];
  /** Downloads of this path get one byte flipped / extra bytes appended. */
  corruptDownload?: string;
  extraBytes?: string;
}

interface LoggedRequest {
  method: string;
  path: string;
  search: string;
  authorization: string | undefined;
  offset?: number;
  length?: number;
}

class FakeRegistry {
  readonly log: LoggedRequest[] = [];
  readonly sessions = new Map<string, FakeSession>();
  readonly versions = new Map<string, { files: ManifestEntryBody[]; bytes: Map<string, Buffer> }>();
  knobs: Knobs = {};
  url = '';
  #server: Server | undefined;
  #nextId = 1;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.#problem(res, 500, 'internal_error', String(err));
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  count(method: string, pattern: RegExp): number {
    return this.log.filter((r) => r.method === method && pattern.test(r.path)).length;
  }

  /** Seed an available version directly (for pull tests). */
  seed(files: Record<string, Buffer>): ManifestEntryBody[] {
    const manifest = Object.entries(files)
      .map(([p, data]) => ({ path: p, size: data.length, sha256: sha256(data) }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    this.versions.set(`${REF.project}/${REF.artifact}:${REF.version}`, {
      files: manifest,
      bytes: new Map(Object.entries(files)),
    });
    return manifest;
  }

  #problem(res: ServerResponse, status: number, code: string, detail: string, details?: object): void {
    res.writeHead(status, {
      'content-type': 'application/problem+json',
      'x-request-id': `req-${this.log.length}`,
    });
    res.end(
      JSON.stringify({
        type: 'about:blank',
        title: code,
        status,
        code,
        detail,
        requestId: `req-${this.log.length}`,
        details,
      }),
    );
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  async #readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  #view(s: FakeSession): UploadView {
    return {
      id: s.id,
      ...REF,
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      segmentSize: SEGMENT,
      parts: s.parts.map((p) => ({ index: p.index, size: p.size, received: p.received, files: p.files })),
    };
  }

  #detail(key: string, files: ManifestEntryBody[]): VersionDetail {
    const [project = '', rest = ''] = key.split('/');
    const [artifact = '', version = ''] = rest.split(':');
    const now = new Date().toISOString();
    return {
      version: {
        project,
        artifact,
        version,
        state: 'available',
        fileCount: files.length,
        totalSize: files.reduce((n, f) => n + f.size, 0),
        manifestDigest: `sha256:${'ab'.repeat(32)}`,
        createdAt: now,
        createdBy: 'alice',
        committedAt: now,
      },
      artifact: {
        project,
        name: artifact,
        kind: 'model',
        sensitivity: 'internal',
        description: '',
        tags: [],
        owner: 'alice',
        createdAt: now,
        updatedAt: now,
      },
      files,
      metadata: null,
    };
  }

  #plan(files: ManifestEntryBody[]): FakePart[] {
    const parts: FakePart[] = [];
    let pack: FakePart | undefined;
    files.forEach((file, i) => {
      if (file.size >= LARGE_FILE) {
        pack = undefined;
        parts.push({ index: parts.length, size: file.size, received: 0, files: [i], data: Buffer.alloc(0) });
        return;
      }
      if (pack === undefined || pack.size + file.size > PACK) {
        pack = { index: parts.length, size: 0, received: 0, files: [], data: Buffer.alloc(0) };
        parts.push(pack);
      }
      pack.files.push(i);
      pack.size += file.size;
    });
    for (const part of parts) part.data = Buffer.alloc(part.size);
    return parts;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: LoggedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      search: url.search,
      authorization: req.headers.authorization,
    };
    this.log.push(entry);
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return this.#problem(res, 401, 'unauthenticated', 'bad token');
    const p = url.pathname;
    const versionPath =
      /^\/api\/v1\/projects\/([^/]+)\/artifacts\/([^/]+)\/versions\/([^/]+)(\/uploads|\/file)?$/.exec(p);
    const uploadPath = /^\/api\/v1\/uploads\/([^/]+)(?:\/(commit)|\/parts\/(\d+))?$/.exec(p);
    if (p === '/api/v1/whoami') return this.#json(res, 200, { principal: 'alice', authMethod: 'token' });
    if (p === '/api/v1/projects' && req.method === 'GET') {
      return this.#problem(res, 418, 'teapot_melted', 'a code this client has never heard of', {
        temperature: 451,
      });
    }
    if (versionPath) {
      const key = `${versionPath[1]}/${versionPath[2]}:${versionPath[3]}`;
      if (versionPath[4] === '/uploads' && req.method === 'POST') {
        const body = (await this.#readJson(req)) as { files: ManifestEntryBody[] };
        const session: FakeSession = {
          id: `upl_${String(this.#nextId++).padStart(32, '0')}`,
          files: body.files,
          parts: this.#plan(body.files),
        };
        this.sessions.set(session.id, session);
        return this.#json(res, 201, this.#view(session));
      }
      const version = this.versions.get(key);
      if (version === undefined) return this.#problem(res, 404, 'version_not_found', 'no such version');
      if (versionPath[4] === '/file')
        return this.#download(req, res, version, url.searchParams.get('path') ?? '');
      return this.#json(res, 200, this.#detail(key, this.knobs.manifest ?? version.files));
    }
    if (uploadPath) {
      const session = this.sessions.get(uploadPath[1] ?? '');
      if (session === undefined) return this.#problem(res, 404, 'upload_not_found', 'no such upload');
      if (uploadPath[2] === 'commit') {
        const late = ((await this.#readJson(req)) ?? {}) as { files?: { path: string; sha256: string }[] };
        // The real server's commit schema is strict: each late digest is exactly {path, sha256}.
        if ((late.files ?? []).some((f) => Object.keys(f).sort().join() !== 'path,sha256')) {
          return this.#problem(res, 400, 'invalid_request', 'body/files must NOT have additional properties');
        }
        return this.#commit(res, session, late.files ?? []);
      }
      if (uploadPath[3] !== undefined) return this.#receive(req, res, session, Number(uploadPath[3]), entry);
      if (req.method === 'DELETE') {
        this.sessions.delete(session.id);
        res.writeHead(204).end();
        return;
      }
      const view = this.#view(session);
      if (this.knobs.staleViewOnce) {
        this.knobs.staleViewOnce = false;
        for (const part of view.parts) part.received = 0;
      }
      return this.#json(res, 200, view);
    }
    this.#problem(res, 404, 'route_not_found', 'no route');
  }

  #receive(
    req: IncomingMessage,
    res: ServerResponse,
    session: FakeSession,
    index: number,
    entry: LoggedRequest,
  ): void {
    const part = session.parts[index];
    if (part === undefined) return this.#problem(res, 404, 'upload_not_found', 'no such part');
    const offset = Number(req.headers['upload-offset']);
    const length = Number(req.headers['content-length']);
    entry.offset = offset;
    entry.length = length;
    if (this.knobs.unavailableOnce) {
      this.knobs.unavailableOnce = false;
      res.setHeader('connection', 'close');
      return this.#problem(res, 503, 'not_ready', 'warming up');
    }
    if (offset !== part.received) {
      return this.#problem(res, 409, 'upload_offset_mismatch', 'wrong offset', { received: part.received });
    }
    const drop = this.knobs.drop;
    let got = 0;
    let dropped = false;
    req.on('data', (chunk: Buffer) => {
      if (dropped) return;
      chunk.copy(part.data, offset + got);
      got += chunk.length;
      if (drop !== undefined && drop.part === index && drop.times > 0 && got >= drop.afterBytes) {
        // Only whole segments of an interrupted chunk are durable (docs/api.md step 4); the rest is lost.
        drop.times -= 1;
        dropped = true;
        part.received = offset + Math.floor(got / SEGMENT) * SEGMENT;
        part.data.fill(0, part.received);
        req.socket.destroy();
      }
    });
    req.on('end', () => {
      if (dropped) return;
      part.received = offset + got;
      if (part.received < part.size && got % SEGMENT !== 0) {
        return this.#problem(res, 409, 'chunk_misaligned', 'misaligned');
      }
      if (part.received === part.size && !this.#verifyPart(session, part)) {
        this.sessions.delete(session.id);
        return this.#problem(res, 422, 'digest_mismatch', 'a file does not match its declared SHA-256');
      }
      this.#json(res, 200, {
        index,
        size: part.size,
        received: part.received,
        complete: part.received === part.size,
      });
    });
  }

  #verifyPart(session: FakeSession, part: FakePart): boolean {
    if (this.knobs.corruptUpload && part.size > 0) part.data[0] = (part.data[0] ?? 0) ^ 0xff;
    let at = 0;
    for (const i of part.files) {
      const file = session.files[i]!;
      // A file declared without a digest is checked at commit (a single-pass push).
      if (file.sha256 !== undefined && sha256(part.data.subarray(at, at + file.size)) !== file.sha256)
        return false;
      at += file.size;
    }
    return true;
  }

  #commit(res: ServerResponse, session: FakeSession, late: { path: string; sha256: string }[]): void {
    if (session.parts.some((p) => p.received !== p.size))
      return this.#problem(res, 409, 'upload_incomplete', 'not yet');
    const bytes = new Map<string, Buffer>();
    for (const part of session.parts) {
      let at = 0;
      for (const i of part.files) {
        const file = session.files[i]!;
        bytes.set(file.path, Buffer.from(part.data.subarray(at, at + file.size)));
        at += file.size;
      }
    }
    // Like the real server: every digest declared now or before, and equal to the digest of the bytes held.
    const lateByPath = new Map(late.map((d) => [d.path, d.sha256]));
    for (const file of session.files) {
      const expected = file.sha256 ?? lateByPath.get(file.path);
      if (expected === undefined)
        return this.#problem(res, 400, 'invalid_request', `no digest for ${file.path}`);
      if (sha256(bytes.get(file.path)!) !== expected) {
        this.sessions.delete(session.id);
        return this.#problem(res, 422, 'digest_mismatch', 'a file does not match its declared SHA-256');
      }
      file.sha256 = expected;
    }
    const key = `${REF.project}/${REF.artifact}:${REF.version}`;
    const settled = session.files as ManifestEntryBody[];
    this.versions.set(key, { files: settled, bytes });
    this.sessions.delete(session.id);
    if (this.knobs.loseCommitAnswer) {
      this.knobs.loseCommitAnswer = false;
      res.socket?.destroy();
      return;
    }
    const files = this.knobs.tamperCommit
      ? settled.map((f, i) => (i === 0 ? { ...f, sha256: 'f'.repeat(64) } : f))
      : settled;
    this.#json(res, 201, this.#detail(key, files));
  }

  #download(
    req: IncomingMessage,
    res: ServerResponse,
    version: { bytes: Map<string, Buffer> },
    filePath: string,
  ): void {
    const stored = version.bytes.get(filePath);
    if (stored === undefined) return this.#problem(res, 404, 'file_not_found', 'no such file');
    let data = Buffer.from(stored);
    if (this.knobs.corruptDownload === filePath && data.length > 0)
      data[data.length - 1] = (data.at(-1) ?? 0) ^ 1;
    if (this.knobs.extraBytes === filePath) data = Buffer.concat([data, Buffer.from('and then some')]);
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] === '' ? data.length - 1 : Number(range[2]);
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${data.length}` });
      res.end(data.subarray(start, end + 1));
      return;
    }
    // No Content-Length on purpose when lying, so only the client's own counting can catch it.
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(data);
  }
}

// ---------------------------------------------------------------------------------------------------------

let registry: FakeRegistry;
let work: string;
let client: StrongroomClient;

beforeEach(async () => {
  registry = new FakeRegistry();
  await registry.start();
  work = await mkdtemp(path.join(tmpdir(), 'strongroom-client-'));
  client = new StrongroomClient({ url: registry.url, token: TOKEN });
});

afterEach(async () => {
  await registry.stop();
  await rm(work, { recursive: true, force: true });
});

async function makeTree(files: Record<string, Buffer | string>): Promise<string> {
  const root = path.join(work, 'src');
  for (const [name, data] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), data);
  }
  return root;
}

async function listTree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true });
  return entries.map(String).sort();
}

const push = (source: string, extra: Partial<Parameters<StrongroomClient['pushVersion']>[0]> = {}) =>
  client.pushVersion({ ...REF, source, retryDelayMs: 1, ...extra });

describe('pushVersion', () => {
  it('declares files sorted by byte order and the server stores exactly the bytes on disk', async () => {
    const files = {
      'b.bin': randomBytes(300 * 1024),
      'a/x.txt': 'x',
      'a/y.txt': randomBytes(70_000),
      'Z.txt': '',
    };
    const source = await makeTree(files);
    const detail = await push(source);
    expect(detail.files.map((f) => f.path)).toEqual(['Z.txt', 'a/x.txt', 'a/y.txt', 'b.bin']);
    const stored = registry.versions.get('vision/resnet:1.0.0')!;
    for (const [name, data] of Object.entries(files)) {
      expect(stored.bytes.get(name)?.equals(Buffer.from(data)), name).toBe(true);
    }
  });

  it('resumes from the durable offset after the server drops the connection mid-part', async () => {
    // Five 50 KiB files packed into one part: any whole-segment offset falls inside a file.
    const files = Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`f${i}.bin`, randomBytes(50 * 1024)]));
    const source = await makeTree(files);
    registry.knobs.drop = { part: 0, afterBytes: 150_000, times: 1 };
    const progress: number[] = [];
    const detail = await push(source, { onProgress: (sent) => progress.push(sent) });

    const puts = registry.log.filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(2);
    const resumedAt = puts[1]!.offset!;
    expect(puts[0]!.offset).toBe(0);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt % SEGMENT).toBe(0);
    expect([51_200, 102_400, 153_600, 204_800]).not.toContain(resumedAt);
    expect(puts[1]!.length).toBe(5 * 51_200 - resumedAt);
    expect(registry.count('GET', /^\/api\/v1\/uploads\//)).toBe(1);
    expect(progress.at(-1)).toBe(5 * 51_200);
    const stored = registry.versions.get('vision/resnet:1.0.0')!;
    for (const [name, data] of Object.entries(files))
      expect(stored.bytes.get(name)?.equals(data), name).toBe(true);
    expect(detail.version.fileCount).toBe(5);
  });

  it('retries a 503 by asking the server where the part stands', async () => {
    const source = await makeTree({ 'model.bin': randomBytes(100_000) });
    registry.knobs.unavailableOnce = true;
    await push(source);
    expect(registry.count('PUT', /parts\/0$/)).toBe(2);
    expect(registry.versions.get('vision/resnet:1.0.0')?.bytes.get('model.bin')?.length).toBe(100_000);
  });

  it('recovers when a stale offset earns a 409: it asks again and resumes from the real offset', async () => {
    const data = randomBytes(300 * 1024);
    const source = await makeTree({ 'model.bin': data });
    registry.knobs.drop = { part: 0, afterBytes: 150_000, times: 1 };
    registry.knobs.staleViewOnce = true;
    await push(source);
    const offsets = registry.log.filter((r) => r.method === 'PUT').map((r) => r.offset);
    expect(offsets).toHaveLength(3);
    expect(offsets[1]).toBe(0);
    expect(offsets[2]).toBeGreaterThan(0);
    expect(registry.versions.get('vision/resnet:1.0.0')?.bytes.get('model.bin')?.equals(data)).toBe(true);
  });

  it.runIf(existsSync('/proc/self/fd'))(
    'closes the file of a body that fetch abandoned after an early answer',
    async () => {
      const source = await makeTree({ 'model.bin': randomBytes(1024 * 1024) });
      let abandoned = false;
      // Pull one chunk (the file is now open), then answer 409 without reading further, as undici does when
      // a server answers before the body is sent.
      const abandoning: typeof fetch = async (input, init) => {
        if (init?.method !== 'PUT' || abandoned) return fetch(input, init);
        abandoned = true;
        await (init.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]().next();
        const problem = {
          type: 'about:blank',
          title: 'conflict',
          status: 409,
          code: 'upload_offset_mismatch',
          detail: 'x',
          requestId: 'r',
        };
        return new Response(JSON.stringify(problem), {
          status: 409,
          headers: { 'content-type': 'application/problem+json' },
        });
      };
      const flaky = new StrongroomClient({ url: registry.url, token: TOKEN, fetch: abandoning });
      await flaky.pushVersion({ ...REF, source, retryDelayMs: 1 });
      expect(abandoned).toBe(true);
      const open = readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          return [readlinkSync(`/proc/self/fd/${fd}`)];
        } catch {
          return [];
        }
      });
      expect(open.filter((target) => target.startsWith(source))).toEqual([]);
    },
  );

  it('keeps the session and names it when the connection keeps failing', async () => {
    const source = await makeTree({ 'model.bin': randomBytes(300 * 1024) });
    registry.knobs.drop = { part: 0, afterBytes: 1, times: 100 };
    const err = await push(source, { maxRetries: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    const connection = err as ConnectionError;
    expect(connection.code).toBe('connection_failed');
    expect(connection.uploadId).toMatch(/^upl_/);
    expect(registry.sessions.has(connection.uploadId!)).toBe(true);
    expect(registry.count('DELETE', /uploads/)).toBe(0);
    expect(registry.count('PUT', /parts/)).toBe(3);
  });

  it('resumes a kept session by id and completes it', async () => {
    const data = randomBytes(300 * 1024);
    const source = await makeTree({ 'model.bin': data });
    registry.knobs.drop = { part: 0, afterBytes: 140_000, times: 100 };
    const err = (await push(source, { maxRetries: 0 }).catch((e: unknown) => e)) as ConnectionError;
    delete registry.knobs.drop;
    await push(source, { resumeUploadId: err.uploadId! });
    const puts = registry.log.filter((r) => r.method === 'PUT');
    expect(puts[1]!.offset).toBeGreaterThan(0);
    expect(registry.versions.get('vision/resnet:1.0.0')?.bytes.get('model.bin')?.equals(data)).toBe(true);
  });

  it('fails when the server computes a different digest, and deletes the session', async () => {
    const source = await makeTree({ 'model.bin': randomBytes(10_000) });
    registry.knobs.corruptUpload = true;
    const err = await push(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('digest_mismatch');
    expect((err as ApiError).status).toBe(422);
    expect(registry.count('DELETE', /uploads/)).toBe(1);
    // A single-pass push declares its digests at commit, which is where the difference is found.
    expect(registry.count('POST', /commit$/)).toBe(1);
  });

  it('treats a lost commit answer as success once the version is there with the pushed manifest', async () => {
    const data = randomBytes(10_000);
    const source = await makeTree({ 'model.bin': data });
    registry.knobs.loseCommitAnswer = true;
    const detail = await push(source);
    expect(registry.count('POST', /commit$/)).toBe(2);
    expect(detail.files).toEqual([{ path: 'model.bin', size: data.length, sha256: sha256(data) }]);
    expect(registry.count('DELETE', /uploads/)).toBe(0);
  });

  it('refuses a committed manifest that differs from the files pushed', async () => {
    const source = await makeTree({ 'model.bin': randomBytes(10_000) });
    registry.knobs.tamperCommit = true;
    const err = await push(source).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrongroomError);
    expect((err as StrongroomError).code).toBe('digest_mismatch');
  });

  it('fails clearly when a file changes size during the upload, and deletes the session', async () => {
    const source = await makeTree({ 'a.bin': randomBytes(300 * 1024), 'b.bin': randomBytes(300 * 1024) });
    let grown = false;
    const err = await push(source, {
      onProgress: () => {
        if (grown) return;
        grown = true;
        appendFileSync(path.join(source, 'b.bin'), 'more');
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrongroomError);
    expect((err as StrongroomError).code).toBe('size_mismatch');
    expect((err as Error).message).toMatch(/`b\.bin` changed size while it was being pushed/);
    expect(registry.count('DELETE', /uploads/)).toBe(1);
    expect(registry.count('POST', /commit$/)).toBe(0);
  });

  it('fails when a file is rewritten in place (same size) during the push', async () => {
    const source = await makeTree({ 'a.bin': randomBytes(300 * 1024), 'b.bin': randomBytes(300 * 1024) });
    let edited = false;
    const err = await push(source, {
      onProgress: () => {
        if (edited) return;
        edited = true;
        const target = path.join(source, 'b.bin');
        writeFileSync(target, randomBytes(300 * 1024));
        // Make the change visible even on a file system with coarse timestamps.
        utimesSync(target, new Date(), new Date(Date.now() + 5000));
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StrongroomError);
    expect((err as StrongroomError).code).toBe('size_mismatch');
    expect((err as Error).message).toMatch(/`b\.bin` changed while it was being pushed/);
    expect(registry.count('POST', /commit$/)).toBe(0);
  });

  it('pushes a single file under its base name', async () => {
    const source = await makeTree({ 'deep/dir/weights.safetensors': 'abc' });
    const detail = await push(path.join(source, 'deep/dir/weights.safetensors'));
    expect(detail.files).toEqual([
      { path: 'weights.safetensors', size: 3, sha256: sha256(Buffer.from('abc')) },
    ]);
  });

  describe('refuses what it must never follow or send, before any request', () => {
    it('a symbolic link to a file outside the tree', async () => {
      const source = await makeTree({ 'model.bin': 'ok' });
      await writeFile(path.join(work, 'secret'), 'do not upload');
      await symlink(path.join(work, 'secret'), path.join(source, 'innocent.txt'));
      await expect(push(source)).rejects.toMatchObject({ code: 'invalid_path', message: /symbolic link/ });
      expect(registry.log).toEqual([]);
    });

    it('a symbolic link to a directory', async () => {
      const source = await makeTree({ 'model.bin': 'ok' });
      await mkdir(path.join(work, 'elsewhere'));
      await writeFile(path.join(work, 'elsewhere', 'x'), 'x');
      await symlink(path.join(work, 'elsewhere'), path.join(source, 'sub'));
      await expect(push(source)).rejects.toMatchObject({
        code: 'invalid_path',
        message: /`sub` is a symbolic link/,
      });
      expect(registry.log).toEqual([]);
    });

    it('a source that is itself a symbolic link', async () => {
      const source = await makeTree({ 'model.bin': 'ok' });
      await symlink(source, path.join(work, 'link'));
      await expect(push(path.join(work, 'link'))).rejects.toMatchObject({ code: 'invalid_path' });
      expect(registry.log).toEqual([]);
    });

    it('a named pipe', async () => {
      const source = await makeTree({ 'model.bin': 'ok' });
      execFileSync('mkfifo', [path.join(source, 'pipe')]);
      await expect(push(source)).rejects.toMatchObject({ code: 'invalid_path', message: /named pipe/ });
      expect(registry.log).toEqual([]);
    });

    it('a file name the path validator refuses', async () => {
      const source = await makeTree({ 'model.bin': 'ok', 'aux.txt': 'reserved on windows' });
      await expect(push(source)).rejects.toMatchObject({ code: 'invalid_path' });
      expect(registry.log).toEqual([]);
    });
  });
});

describe('pullVersion', () => {
  const files = {
    'config.json': Buffer.from('{"layers": 50}'),
    'weights/model.bin': randomBytes(200_000),
    'empty.txt': Buffer.alloc(0),
  };

  it('writes every file, verified, and leaves no temp files', async () => {
    registry.seed(files);
    const outDir = path.join(work, 'out');
    const result = await client.pullVersion({ ...REF, outDir });
    expect(result.files.map((f) => f.path).sort()).toEqual(Object.keys(files).sort());
    for (const [name, data] of Object.entries(files)) {
      expect((await readFile(path.join(outDir, name))).equals(data), name).toBe(true);
    }
    expect((await listTree(outDir)).filter((n) => n.includes(TEMP_PREFIX))).toEqual([]);
  });

  it('fails on a digest mismatch and leaves nothing behind', async () => {
    registry.seed(files);
    registry.knobs.corruptDownload = 'weights/model.bin';
    const outDir = path.join(work, 'out');
    await expect(client.pullVersion({ ...REF, outDir })).rejects.toMatchObject({ code: 'digest_mismatch' });
    expect(await listTree(outDir)).toEqual([]);
  });

  it('fails on a digest mismatch in an existing directory and leaves only what was there', async () => {
    registry.seed(files);
    registry.knobs.corruptDownload = 'config.json';
    const outDir = path.join(work, 'out');
    await mkdir(outDir);
    await writeFile(path.join(outDir, 'keep.txt'), 'mine');
    await expect(client.pullVersion({ ...REF, outDir, concurrency: 1 })).rejects.toMatchObject({
      code: 'digest_mismatch',
    });
    expect(await listTree(outDir)).toEqual(['keep.txt']);
  });

  it('stops reading a file that is longer than the manifest says', async () => {
    registry.seed(files);
    registry.knobs.extraBytes = 'config.json';
    const outDir = path.join(work, 'out');
    await expect(client.pullVersion({ ...REF, outDir })).rejects.toMatchObject({ code: 'size_mismatch' });
    expect(await listTree(outDir)).toEqual([]);
  });

  it.each([
    ['../evil'],
    ['a/../../evil'],
    ['/tmp/strongroom-evil-absolute'],
    ['..\\evil'],
    ['C:/evil'],
    ['%2e%2e/evil'],
  ])('refuses the manifest path %s from a malicious server and writes nothing outside', async (evil) => {
    registry.seed({ 'ok.txt': Buffer.from('ok') });
    registry.knobs.manifest = [
      { path: 'ok.txt', size: 2, sha256: sha256(Buffer.from('ok')) },
      { path: evil, size: 2, sha256: sha256(Buffer.from('ok')) },
    ];
    const outDir = path.join(work, 'nested', 'out');
    await expect(client.pullVersion({ ...REF, outDir })).rejects.toMatchObject({ code: 'invalid_path' });
    expect(await listTree(work)).toEqual([]);
    expect(existsSync('/tmp/strongroom-evil-absolute')).toBe(false);
    expect(registry.count('GET', /\/file$/)).toBe(0);
  });

  it('does not write through a symbolic link planted inside the output directory', async () => {
    registry.seed({ 'sub/model.bin': Buffer.from('weights') });
    const outDir = path.join(work, 'out');
    const outside = path.join(work, 'outside');
    await mkdir(outDir);
    await mkdir(outside);
    await symlink(outside, path.join(outDir, 'sub'));
    await expect(client.pullVersion({ ...REF, outDir })).rejects.toMatchObject({ code: 'invalid_path' });
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses to overwrite an existing file unless asked', async () => {
    registry.seed(files);
    const outDir = path.join(work, 'out');
    await mkdir(outDir);
    await writeFile(path.join(outDir, 'config.json'), 'precious');
    const err = await client.pullVersion({ ...REF, outDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileExistsError);
    expect((err as FileExistsError).code).toBe('file_exists');
    expect(await readFile(path.join(outDir, 'config.json'), 'utf8')).toBe('precious');
    expect(await listTree(outDir)).toEqual(['config.json']);

    await client.pullVersion({ ...REF, outDir, overwrite: true });
    expect((await readFile(path.join(outDir, 'config.json'))).equals(files['config.json'])).toBe(true);
  });

  it('round-trips a pushed directory', async () => {
    const pushed = { 'a.bin': randomBytes(300 * 1024), 'nested/b.txt': randomBytes(1000) };
    await push(await makeTree(pushed));
    const outDir = path.join(work, 'roundtrip');
    await client.pullVersion({ ...REF, outDir });
    for (const [name, data] of Object.entries(pushed)) {
      expect((await readFile(path.join(outDir, name))).equals(data), name).toBe(true);
    }
  });
});

describe('downloadFile', () => {
  it('returns a byte range as a stream', async () => {
    const data = randomBytes(1000);
    registry.seed({ 'model.bin': data });
    const download = await client.downloadFile({ ...REF, path: 'model.bin', range: { start: 10, end: 19 } });
    const chunks: Buffer[] = [];
    for await (const chunk of download.body as AsyncIterable<Buffer>) chunks.push(chunk);
    expect(download.status).toBe(206);
    expect(Buffer.concat(chunks).equals(data.subarray(10, 20))).toBe(true);
  });

  it('validates the path before asking', async () => {
    await expect(client.downloadFile({ ...REF, path: '../etc/passwd' })).rejects.toMatchObject({
      code: 'invalid_path',
    });
    expect(registry.log).toEqual([]);
  });
});

describe('errors', () => {
  it('an unknown server code maps to internal_error and keeps the original string', async () => {
    const err = await client.listProjects().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toBeInstanceOf(StrongroomError);
    expect(err).toMatchObject({
      status: 418,
      code: 'internal_error',
      serverCode: 'teapot_melted',
      requestId: 'req-1',
      details: { temperature: 451 },
      message: 'a code this client has never heard of',
    });
  });

  it('a known code passes through with the request id', async () => {
    const err = await client.getVersion(REF).catch((e: unknown) => e);
    expect(err).toMatchObject({
      status: 404,
      code: 'version_not_found',
      serverCode: 'version_not_found',
      requestId: 'req-1',
    });
  });

  it('an unreachable server is a ConnectionError that never carries the token', async () => {
    await registry.stop();
    const err = await client.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectionError);
    expect(err).not.toBeInstanceOf(StrongroomError);
    expect((err as ConnectionError).code).toBe('connection_failed');
    expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(TOKEN);
    expect(inspect(client, { depth: 10, showHidden: true })).not.toContain(TOKEN);
  });

  it('sends the token only in the Authorization header', async () => {
    await client.whoami();
    await client.downloadFile({ ...REF, path: 'x' }).catch(() => undefined);
    expect(registry.log.map((r) => r.authorization)).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    expect(registry.log.some((r) => r.search.includes(TOKEN) || r.path.includes(TOKEN))).toBe(false);
  });

  it('refuses plain http to a host that is not loopback', () => {
    expect(() => new StrongroomClient({ url: 'http://registry.example.com', token: TOKEN })).toThrow(
      /plain http/,
    );
    expect(() => new StrongroomClient({ url: 'https://user:pw@registry.example.com' })).toThrow(
      /credentials/,
    );
    expect(new StrongroomClient({ url: 'https://registry.example.com/prefix/' }).url).toBe(
      'https://registry.example.com/prefix',
    );
  });
});
