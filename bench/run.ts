/**
 * `npm run bench`: hot paths measured against baselines taken in the same run on the same machine, reported
 * as ratios (never a pass/fail test). Options: `--quick` (256 MiB instead of 1 GiB, skips 4 GiB),
 * `--dir DIR` (where data goes; default the OS temp dir), `--server-node-flags "FLAGS"` (Node.js flags for the
 * server process; the client's are those this process runs with). Both sets are printed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrongroomClient } from '../src/client/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SEGMENT = 64 * 1024;
const quick = process.argv.includes('--quick');
const dirArg = process.argv.indexOf('--dir');
const baseDir = dirArg > 0 ? (process.argv[dirArg + 1] ?? tmpdir()) : tmpdir();
const flagsArg = process.argv.indexOf('--server-node-flags');
const serverNodeFlags = flagsArg > 0 ? (process.argv[flagsArg + 1] ?? '').split(' ').filter(Boolean) : [];
const BIG = quick ? 256 * MiB : GiB;

const rate = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
const fmt = (n: number, digits = 1) => n.toFixed(digits);

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** Baseline: SHA-256 + AES-256-GCM over 64 KiB segments in this process, as the server's inner loop. */
function baselineCrypto(bytes: number, decrypt: boolean): number {
  const key = Buffer.from(hkdfSync('sha256', randomBytes(32), randomBytes(16), 'bench', 32));
  const plain = randomBytes(SEGMENT);
  const nonce = randomBytes(12);
  // For decryption, one sealed segment opened again and again (valid tag; a benchmark, so nonce reuse is moot).
  const sealer = createCipheriv('aes-256-gcm', key, nonce);
  const sealed = Buffer.concat([sealer.update(plain), sealer.final()]);
  const tag = sealer.getAuthTag();
  const hash = createHash('sha256');
  const start = performance.now();
  for (let i = 0; i < bytes / SEGMENT; i++) {
    if (decrypt) {
      const d = createDecipheriv('aes-256-gcm', key, nonce);
      d.setAuthTag(tag);
      const out = d.update(sealed);
      d.final();
      hash.update(out);
    } else {
      nonce.writeUInt32BE(i, 7);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      hash.update(plain);
      c.update(plain);
      c.final();
      c.getAuthTag();
    }
  }
  hash.digest();
  return rate(bytes, performance.now() - start);
}

/** Baseline: a raw file write of the same size in 1 MiB writes, then one fdatasync. */
async function baselineDurableWrite(dir: string, bytes: number): Promise<number> {
  const path = join(dir, 'raw-write.bin');
  const chunk = randomBytes(MiB);
  const start = performance.now();
  const handle = await open(path, 'w');
  for (let written = 0; written < bytes; written += MiB) await handle.write(chunk);
  await handle.datasync();
  await handle.close();
  const ms = performance.now() - start;
  await rm(path);
  return rate(bytes, ms);
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  const chunk = randomBytes(4 * MiB);
  for (let written = 0; written < bytes; written += chunk.length)
    await handle.write(chunk, 0, Math.min(chunk.length, bytes - written));
  // On disk before it is measured, so write-back of the input does not compete with the registry.
  await handle.datasync();
  await handle.close();
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function memory(pid: number): Promise<{ rss: number }> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((text) => ({
    rss: Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0) * 1024,
  }));
}

async function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const cli = fileURLToPath(new URL('../bin/strongroom', import.meta.url));
  const child = spawn(
    process.execPath,
    [...serverNodeFlags, cli, 'serve', '--data', dataDir, '--port', String(port)],
    {
      env: { ...process.env, STRONGROOM_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { child, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('server did not start');
}

/** The server's resident memory once started and idle; growth is measured from here. */
let idleRss = 0;

async function pushAndPull(
  client: StrongroomClient,
  pid: number,
  source: string,
  tag: string,
  files: readonly string[],
  toDisk?: string,
) {
  let peak = 0;
  const start = idleRss;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, (await memory(pid)).rss - start);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    let sessionAt = 0;
    const push = await timed(() =>
      client.pushVersion({
        project: 'bench',
        artifact: 'm',
        version: tag,
        source,
        onSession: () => (sessionAt = performance.now()),
      }),
    );
    const uploadMs = performance.now() - sessionAt;
    let pulled = 0;
    const pull = await timed(async () => {
      for (const path of files) {
        const download = await client.downloadFile({ project: 'bench', artifact: 'm', version: tag, path });
        const hash = createHash('sha256');
        for await (const chunk of download.body) {
          hash.update(chunk as Buffer);
          pulled += (chunk as Buffer).length;
        }
        hash.digest();
      }
    });
    // The client as users run it: every file hashed, written to a temp file, fsynced and renamed into place.
    let pullToDiskMs: number | undefined;
    if (toDisk !== undefined) {
      const outDir = await mkdtemp(join(toDisk, 'pulled-'));
      pullToDiskMs = (
        await timed(() => client.pullVersion({ project: 'bench', artifact: 'm', version: tag, outDir }))
      ).ms;
      await rm(outDir, { recursive: true, force: true });
    }
    return { pushMs: push.ms, uploadMs, pullMs: pull.ms, pulled, pullToDiskMs, rssGrowth: peak };
  } finally {
    running = false;
    await sampler;
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(baseDir, 'strongroom-bench-'));
  try {
    console.log(
      `# Strongroom benchmark (${quick ? 'quick' : 'full'}), ${new Date().toISOString()}, node ${process.version}`,
    );
    // `--import tsx` (how the bench runs TypeScript) is not a tuning flag.
    const flags = (list: readonly string[]) =>
      list.filter((f, i) => !f.startsWith('--import') && list[i - 1] !== '--import').join(' ') || 'none';
    console.log(`# node flags: client ${flags(process.execArgv)}, server ${flags(serverNodeFlags)}`);
    const encRate = baselineCrypto(BIG, false);
    const decRate = baselineCrypto(BIG, true);
    const diskRate = await baselineDurableWrite(work, BIG);
    const pushBase = Math.min(encRate, diskRate);
    console.log(
      `baseline sha256+aes-gcm encrypt ${fmt(encRate)} MiB/s, decrypt ${fmt(decRate)} MiB/s, fdatasync'd write ${fmt(diskRate)} MiB/s`,
    );

    const dataDir = join(work, 'data');
    const { child, url } = await startServer(dataDir);
    try {
      const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
      const client = new StrongroomClient({ url, token });
      await client.createProject({ name: 'bench' });
      const pid = child.pid!;
      idleRss = (await memory(pid)).rss;

      const bigFile = join(work, 'big.bin');
      await writeRandomFile(bigFile, BIG);
      const big = await pushAndPull(client, pid, bigFile, 'big', ['big.bin'], work);
      const pushRate = rate(BIG, big.pushMs);
      const pullRate = rate(big.pulled, big.pullMs);
      console.log(
        `push ${BIG / MiB} MiB file: ${fmt(pushRate)} MiB/s = ${fmt(pushRate / pushBase, 2)} x baseline (target >= 0.5)`,
      );
      console.log(
        `  of which finding the files took ${fmt(big.pushMs - big.uploadMs, 0)} ms, the upload and commit ${fmt(big.uploadMs, 0)} ms (${fmt(rate(BIG, big.uploadMs))} MiB/s)`,
      );
      console.log(
        `pull ${BIG / MiB} MiB file: ${fmt(pullRate)} MiB/s = ${fmt(pullRate / decRate, 2)} x baseline (target >= 0.7)`,
      );
      if (big.pullToDiskMs !== undefined) {
        const toDiskRate = rate(BIG, big.pullToDiskMs);
        console.log(
          `pull ${BIG / MiB} MiB file to disk (pullVersion: hash, write, fsync): ${fmt(toDiskRate)} MiB/s = ${fmt(toDiskRate / Math.min(decRate, diskRate), 2)} x min(hash+decrypt, durable write)`,
        );
      }
      console.log(
        `server peak RSS above idle (${BIG / MiB} MiB): ${fmt(big.rssGrowth / MiB)} MiB (target <= 64)`,
      );
      await rm(bigFile);

      if (!quick) {
        const hugeFile = join(work, 'huge.bin');
        await writeRandomFile(hugeFile, 4 * GiB);
        const huge = await pushAndPull(client, pid, hugeFile, 'huge', ['huge.bin']);
        console.log(
          `server peak RSS above idle (4096 MiB): ${fmt(huge.rssGrowth / MiB)} MiB; push ${fmt(rate(4 * GiB, huge.pushMs))} MiB/s, pull ${fmt(rate(huge.pulled, huge.pullMs))} MiB/s`,
        );
        await rm(hugeFile);
      }

      const smallDir = join(work, 'small');
      await mkdir(smallDir);
      const count = 1000;
      const each = 16 * 1024;
      const names: string[] = [];
      for (let i = 0; i < count; i++) {
        const name = `shard-${String(i).padStart(4, '0')}.bin`;
        names.push(name);
        await writeFile(join(smallDir, name), randomBytes(each));
      }
      const oneFile = join(work, 'same-total.bin');
      await writeRandomFile(oneFile, count * each);
      const one = await timed(() =>
        client.pushVersion({ project: 'bench', artifact: 'm', version: 'one', source: oneFile }),
      );
      const many = await timed(() =>
        client.pushVersion({ project: 'bench', artifact: 'm', version: 'many', source: smallDir }),
      );
      console.log(
        `push ${count} files of ${each / 1024} KiB: ${fmt(many.ms, 0)} ms vs one ${(count * each) / MiB} MiB file ${fmt(one.ms, 0)} ms = ${fmt(many.ms / one.ms, 2)} x (target < 3)`,
      );
    } finally {
      child.kill('SIGTERM');
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
