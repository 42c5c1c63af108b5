/**
 * `npm run bench:identity`: authenticated metadata requests per second against the same route without
 * authentication, in one run on one server (issue 4: authentication must not be what limits the API; target
 * >= 0.8). Both sides include everything else a request does (routing, authorization, the audit event).
 * Options: `--quick` (shorter load).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from './http-call.js';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
const CLIENTS = 50;
/** Short alternating rounds, so load from anything else on the machine hits both sides alike. */
const ROUNDS = quick ? 6 : 12;
const ROUND_MS = 1500;

async function rate(url: string, token: string, ms: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  let done = 0;
  const until = performance.now() + ms;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        await call(agent, url, token);
        done++;
      }
    }),
  );
  agent.destroy();
  return done / ((performance.now() - start) / 1000);
}

async function post(base: string, path: string, token: string, body: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : res.json();
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'strongroom-bench-identity-'));
  const script = fileURLToPath(new URL('./identity-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, join(dir, 'data')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const [authenticated, open] = await new Promise<[string, string]>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        const match = /READY (\S+) (\S+)/.exec(out);
        if (match) resolve([match[1] as string, match[2] as string]);
      });
      child.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
    });
    const admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
    await post(authenticated, '/api/v1/projects', admin, { name: 'bench' });
    await post(authenticated, '/api/v1/service-accounts', admin, {
      name: 'bench',
      environment: 'production',
    });
    await post(authenticated, '/api/v1/groups', admin, { name: 'admins' });
    await post(authenticated, '/api/v1/groups/admins/members', admin, { principal: 'sa:bench' });
    const { token } = (await post(authenticated, '/api/v1/service-accounts/bench/tokens', admin, {
      scope: { projects: ['bench'], readOnly: true },
      ttlSeconds: 3600,
    })) as { token: string };
    const path = '/api/v1/projects/bench';
    await rate(`${authenticated}${path}`, token, 1000); // warm-up
    await rate(`${open}${path}`, token, 1000);
    const pairs: [number, number][] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const first = round % 2 === 0;
      const a = first ? await rate(`${authenticated}${path}`, token, ROUND_MS) : 0;
      const b = await rate(`${open}${path}`, token, ROUND_MS);
      const a2 = first ? a : await rate(`${authenticated}${path}`, token, ROUND_MS);
      pairs.push([a2, b]);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
    const ratios = pairs.map(([a, b]) => a / b);
    console.log(
      `# Identity benchmark (${quick ? 'quick' : 'full'}), ${new Date().toISOString()}, node ${process.version}`,
    );
    console.log(`GET ${path}, ${CLIENTS} keep-alive clients, a scoped service-account token (srk_),`);
    console.log(`${ROUNDS} alternating rounds of ${ROUND_MS} ms on one server process`);
    console.log('| measure | authenticated req/s | without authentication req/s | ratio (target >= 0.8) |');
    console.log('| --- | ---: | ---: | ---: |');
    console.log(
      `| median | ${median(pairs.map((p) => p[0])).toFixed(0)} | ${median(pairs.map((p) => p[1])).toFixed(0)} | ${median(ratios).toFixed(2)} |`,
    );
    console.log(
      `| ratio spread | | | ${Math.min(...ratios).toFixed(2)} to ${Math.max(...ratios).toFixed(2)} |`,
    );
  } finally {
    child.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
