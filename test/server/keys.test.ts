import { randomBytes } from 'node:crypto';
import { open, readdir, rm } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStrongroomError } from '../../src/core/errors.js';
import { pushFiles, sha256, startTestServer, type TestServer } from '../support/server-harness.js';

let dataDir: string;
let masterKey: string;
let server: TestServer;
const files = [
  { path: 'a.bin', data: randomBytes(200_000) },
  { path: 'b.bin', data: randomBytes(9 * 1024 * 1024) },
];

async function download(
  s: TestServer,
  path: string,
  version = '1',
): Promise<{ status: number; body: Buffer | null }> {
  const res = await s.api(`/api/v1/projects/p/artifacts/m/versions/${version}/file?path=${path}`);
  if (res.status !== 200) return { status: res.status, body: null };
  try {
    return { status: 200, body: Buffer.from(await res.arrayBuffer()) };
  } catch {
    return { status: 200, body: null };
  }
}

/** Pushes one file `c.bin` as `version`; resolves to the path of the blob that holds it. */
async function pushOneFile(version: string, data: Buffer): Promise<string> {
  const before = new Set(await blobFiles(dataDir));
  const pushed = await pushFiles(server, { project: 'p', artifact: 'm', version }, [{ path: 'c.bin', data }]);
  expect(pushed.status).toBe(201);
  const added = (await blobFiles(dataDir)).filter((b) => !before.has(b));
  expect(added).toHaveLength(1);
  return added[0]!;
}

/** The plaintext stream of `c.bin` read to its end or its first error. */
async function readPlaintext(version: string): Promise<{ bytes: Buffer; error: unknown }> {
  const { stream } = await server.ctx.registry.openFile('p', 'm', version, 'c.bin', () => null);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error };
  }
}

async function blobFiles(dir: string): Promise<string[]> {
  const root = join(dir, 'blobs', 'blobs');
  const out: string[] = [];
  for (const shard of await readdir(root))
    for (const name of await readdir(join(root, shard))) out.push(join(root, shard, name));
  return out;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'strongroom-keys-'));
  masterKey = randomBytes(32).toString('hex');
  server = await startTestServer({ dataDir, masterKey });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'p' } });
  expect(
    (await pushFiles(server, { project: 'p', artifact: 'm', version: '1' }, files, { metadata: { k: 'v' } }))
      .status,
  ).toBe(201);
});
afterAll(async () => {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('key rotation', () => {
  it('rotating makes a new KEK current, rewraps every DEK and destroys the old KEK; data stays readable', async () => {
    const before = (await (await server.api('/api/v1/keys')).json()) as { current: number };
    const res = await server.api('/api/v1/keys/rotate', { method: 'POST' });
    expect(res.status).toBe(200);
    const rotated = (await res.json()) as {
      kekVersion: number;
      rewrapped: number;
      destroyedVersions: number[];
    };
    expect(rotated.kekVersion).toBe(before.current + 1);
    expect(rotated.rewrapped).toBe(4); // two blobs' DEKs, the metadata DEK and the audit signing key's DEK
    expect(rotated.destroyedVersions).toEqual([before.current]);
    const keys = (await (await server.api('/api/v1/keys')).json()) as {
      versions: { version: number; state: string; dataKeys: number }[];
    };
    expect(keys.versions).toEqual([
      expect.objectContaining({ version: before.current, state: 'destroyed', dataKeys: 0 }),
      expect.objectContaining({ version: rotated.kekVersion, state: 'current', dataKeys: 4 }),
    ]);
    for (const f of files) expect(sha256((await download(server, f.path)).body!)).toBe(sha256(f.data));
    const detail = (await (await server.api('/api/v1/projects/p/artifacts/m/versions/1')).json()) as {
      metadata: unknown;
    };
    expect(detail.metadata).toEqual({ k: 'v' });
  });

  it('an interrupted rewrap resumes at start-up and converges (G4)', async () => {
    // Simulate a crash right after the new KEK was recorded: rotate the keyring without rewrapping.
    const keys = server.ctx.keys as unknown as { keyring: { rotate(at: string): unknown } };
    const record = keys.keyring.rotate(new Date().toISOString());
    await server.ctx.store.transaction((tx) => tx.insertKek(record as never));
    expect(await server.ctx.keys.rewrapPending()).toBe(true);
    await server.close();
    server = await startTestServer({ dataDir, masterKey });
    expect(await server.ctx.keys.rewrapPending()).toBe(false);
    const listed = (await (await server.api('/api/v1/keys')).json()) as {
      current: number;
      versions: { state: string; dataKeys: number }[];
    };
    expect(listed.versions.filter((v) => v.state !== 'destroyed')).toEqual([
      expect.objectContaining({ state: 'current', dataKeys: 4 }),
    ]);
    for (const f of files) expect(sha256((await download(server, f.path)).body!)).toBe(sha256(f.data));
  });

  it('rotating twice in a row is safe', async () => {
    const [a, b] = await Promise.all([
      server.api('/api/v1/keys/rotate', { method: 'POST' }),
      server.api('/api/v1/keys/rotate', { method: 'POST' }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    for (const f of files) expect(sha256((await download(server, f.path)).body!)).toBe(sha256(f.data));
  });

  it('a different master key cannot open the data directory', async () => {
    await server.close();
    await expect(startTestServer({ dataDir, masterKey: randomBytes(32).toString('hex') })).rejects.toSatisfy(
      (err: unknown) => isStrongroomError(err, 'master_key_invalid'),
    );
    server = await startTestServer({ dataDir, masterKey });
  });
});

describe('tampering with stored data (G1, G2)', () => {
  it('a flipped bit in a blob is never served', async () => {
    const blobs = await blobFiles(dataDir);
    expect(blobs).toHaveLength(2);
    for (const blob of blobs) {
      const handle = await open(blob, 'r+');
      const { size } = await handle.stat();
      const at = Math.floor(size / 2);
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0]! ^= 0x01;
      await handle.write(byte, 0, 1, at);
      await handle.close();
    }
    for (const f of files) {
      const got = await download(server, f.path);
      if (got.body) expect(sha256(got.body)).not.toBe(sha256(f.data));
      expect(got.body === null || got.body.length < f.data.length).toBe(true);
    }
  });

  it('a blob cut short, inside a segment or on a segment boundary, fails the download instead of ending it early', async () => {
    const segment = 65536 + 16;
    const data = randomBytes(3 * 1024 * 1024);
    for (const [version, keep] of [
      ['cut-inside', 32 + 20 * segment + 1000],
      ['cut-boundary', 32 + 20 * segment],
    ] as const) {
      const blob = await pushOneFile(version, data);
      const handle = await open(blob, 'r+');
      await handle.truncate(keep);
      await handle.close();
      const read = await readPlaintext(version);
      expect(read.error).toSatisfy((err: unknown) => isStrongroomError(err, 'integrity_error'));
      // What was released before the failure is the verified start of the file, never more.
      expect(read.bytes.length).toBeLessThanOrEqual(20 * 65536);
      expect(read.bytes.equals(data.subarray(0, read.bytes.length))).toBe(true);
      const got = await download(server, 'c.bin', version);
      expect(got.body === null || got.body.length < data.length).toBe(true);
    }
  });

  it('a flipped bit deep in a large file stops its plaintext at the last segment before it', async () => {
    const data = randomBytes(5 * 1024 * 1024);
    const blob = await pushOneFile('flip-deep', data);
    const handle = await open(blob, 'r+');
    const at = 32 + 40 * (65536 + 16) + 123;
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0]! ^= 0x80;
    await handle.write(byte, 0, 1, at);
    await handle.close();
    const read = await readPlaintext('flip-deep');
    expect(read.error).toSatisfy((err: unknown) => isStrongroomError(err, 'integrity_error'));
    expect(read.bytes.length).toBeLessThanOrEqual(40 * 65536);
    expect(read.bytes.equals(data.subarray(0, read.bytes.length))).toBe(true);
  });

  it('two objects swapped on disk both fail (identity bound as associated data)', async () => {
    const fresh = [
      { path: 'x.bin', data: randomBytes(100_000) },
      { path: 'y.bin', data: randomBytes(9 * 1024 * 1024) },
    ];
    const before = new Set(await blobFiles(dataDir));
    expect((await pushFiles(server, { project: 'p', artifact: 'm', version: '2' }, fresh)).status).toBe(201);
    const added = (await blobFiles(dataDir)).filter((b) => !before.has(b));
    expect(added).toHaveLength(2);
    const [first, second] = added as [string, string];
    const tmp = `${first}.swap`;
    const { rename } = await import('node:fs/promises');
    await rename(first, tmp);
    await rename(second, first);
    await rename(tmp, second);
    for (const f of fresh) {
      const got = await download(server, f.path, '2');
      expect(got.body === null || sha256(got.body) !== sha256(f.data)).toBe(true);
    }
  });
});
