/**
 * `npm run bench:authorization` (`-- --quick` for a short run): what authorization costs (issue 5). A
 * report, never a pass/fail test. Two parts:
 *
 * 1. Decision cost, p50 and p99, of `CedarAuthorizer.authorize` with the built-in role policies only, with
 *    100 and with 1,000 custom policies spread over 100 projects, without the decision cache and with it:
 *    hits on a working set of 1,000 requests, and hits on one request repeated in a full cache (10,000
 *    entries). Target: p99 <= 100 us with the built-ins and 100 custom policies. Each configuration runs in
 *    a fresh process (`bench/authorization-decisions.ts`), the configurations in turn, for several rounds;
 *    the table shows the median over the rounds.
 * 2. Authorized metadata requests per second against the same route without authorization, in one run
 *    (target >= 0.6 x): `GET .../versions/:version` by a service account allowed through a viewer binding,
 *    with the three example policies stored, on one server process (`bench/authorization-server.ts`) with
 *    two listeners, the Cedar authorizer behind one and an allow-everything authorizer behind the other,
 *    measured in alternating rounds. The server also times `AccessService.authorize` in-process (what the
 *    pipeline calls: the policy revision read and the resource attribute lookups included).
 *
 * `--node-flags "FLAGS"` starts every child process (decision runs, server) with these Node.js flags.
 * `--experiments` adds two more sides to part 2 (see `bench/authorization-server.ts`): the same authorizer
 * with a nearly empty decision cache, and one whose attribute read is memoized, to measure what a cache fix
 * and an attribute cache would gain before making them.
 *
 * The machine is noisy (2 shared cores): medians of interleaved rounds, and the server's CPU time per
 * request, which load from elsewhere disturbs much less than requests per second.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from './http-call.js';
import { fileURLToPath } from 'node:url';

const quick = process.argv.includes('--quick');
/** Also measure the experiments of `bench/authorization-server.ts` (two more sides). */
const experiments = process.argv.includes('--experiments');
const flagsArg = process.argv.indexOf('--node-flags');
/** Node.js flags for every child process (the decision runs and the server), e.g. to compare V8 flags. */
const nodeFlags = flagsArg > 0 ? (process.argv[flagsArg + 1] ?? '').split(' ').filter(Boolean) : [];
/** The V8 11.3 abort's workaround (`bench/authorization-decisions.ts`): a run that died reruns with it. */
const NO_WASM_INLINING = '--no-turbo-inline-js-wasm-calls';
const DECISION_ROUNDS = quick ? 1 : 3;
const DECISION_SAMPLES = quick ? 2_000 : 10_000;
const CONFIGURATIONS = [0, 100, 1_000] as const;
const CACHE_MODES = ['uncached', 'cached', 'hot'] as const;
type CacheMode = (typeof CACHE_MODES)[number];
const CACHE_LABELS: Record<CacheMode, string> = {
  uncached: 'off',
  cached: 'hit, 1,000 entries',
  hot: 'hit, one request, 10,000 entries',
};
const CLIENTS = 50;
const HTTP_ROUNDS = quick ? 6 : 12;
const ROUND_MS = quick ? 1000 : 1500;
const ACCESS_SAMPLES = quick ? 3_000 : 20_000;

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const us = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0));

interface ChildRun {
  readonly result: Record<string, unknown> | undefined;
  readonly crashed: string | undefined;
}

/** Run a bench child to completion and take its `RESULT` line; report how it died if it did. */
function runChild(script: string, args: readonly string[], flags: readonly string[]): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...flags, '--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const match = /^RESULT (.*)$/m.exec(out);
      if (match)
        return resolve({ result: JSON.parse(match[1]!) as Record<string, unknown>, crashed: undefined });
      const fatal = /# (Fatal error.*)\n#\s*(.*)/.exec(err);
      if (signal === 'SIGTRAP' || code === 133 || fatal)
        return resolve({
          result: undefined,
          crashed: fatal ? `${fatal[1]}: ${fatal[2]}` : `signal ${signal}`,
        });
      reject(new Error(`${script} ${args.join(' ')} exited with ${code ?? signal}:\n${err}`));
    });
  });
}

interface DecisionRow {
  readonly custom: number;
  readonly cache: CacheMode;
  readonly p50: number[];
  readonly p99: number[];
  readonly constructMs: number[];
  allowedShare: number;
  crashes: number;
  retriedWithFlag: number;
}

async function decisions(): Promise<DecisionRow[]> {
  const script = fileURLToPath(new URL('./authorization-decisions.ts', import.meta.url));
  const rows: DecisionRow[] = [];
  for (const custom of CONFIGURATIONS)
    for (const cache of CACHE_MODES) {
      // A quick run keeps the full-cache row only for the configuration the target names.
      if (quick && cache === 'hot' && custom !== 100) continue;
      rows.push({
        custom,
        cache,
        p50: [],
        p99: [],
        constructMs: [],
        allowedShare: 0,
        crashes: 0,
        retriedWithFlag: 0,
      });
    }
  for (let round = 0; round < DECISION_ROUNDS; round++) {
    for (const row of rows) {
      const args = [String(row.custom), row.cache, String(DECISION_SAMPLES)];
      let run = await runChild(script, args, nodeFlags);
      if (run.crashed !== undefined) {
        row.crashes++;
        console.error(
          `  (a run of ${args.join(' ')} died: ${run.crashed}; retried with ${NO_WASM_INLINING})`,
        );
        run = await runChild(script, args, [...nodeFlags, NO_WASM_INLINING]);
        if (run.crashed !== undefined) throw new Error(`${args.join(' ')} died again: ${run.crashed}`);
        row.retriedWithFlag++;
      }
      const r = run.result!;
      row.p50.push(r['p50'] as number);
      row.p99.push(r['p99'] as number);
      row.constructMs.push(r['constructMs'] as number);
      row.allowedShare = r['allowedShare'] as number;
    }
  }
  return rows;
}

// ---- HTTP -------------------------------------------------------------------------------------------------

/** The server's CPU time so far (user + system), in milliseconds. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 after the command name, in clock ticks.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

interface Round {
  readonly rate: number;
  /** Server CPU per request, microseconds. */
  readonly cpuUs: number;
}

async function load(url: string, token: string, ms: number, pid: number): Promise<Round> {
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  let done = 0;
  const cpuBefore = await cpuMs(pid);
  const start = performance.now();
  const until = start + ms;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        await call(agent, url, token);
        done++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const cpu = (await cpuMs(pid)) - cpuBefore;
  agent.destroy();
  return { rate: done / seconds, cpuUs: (cpu * 1000) / done };
}

interface HttpReport {
  readonly path: string;
  /** Side name -> one measurement per round. */
  readonly rounds: ReadonlyMap<string, Round[]>;
  readonly access: Record<string, { p50: number; p99: number; n: number }>;
  /** The Node.js flags the server ran with, and why when they are not the ones asked for. */
  readonly serverFlags: readonly string[];
  note: string;
}

interface Ready {
  readonly authorizedUrl: string;
  readonly unauthorizedUrl: string;
  readonly experimentUrls: Record<string, string>;
  readonly token: string;
  readonly path: string;
}

async function http(flags: readonly string[]): Promise<HttpReport> {
  const dir = await mkdtemp(join(tmpdir(), 'strongroom-bench-authorization-'));
  const script = fileURLToPath(new URL('./authorization-server.ts', import.meta.url));
  const args = [script, join(dir, 'data'), String(ACCESS_SAMPLES), ...(experiments ? ['--experiments'] : [])];
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
    process.stderr.write(c);
  });
  try {
    const { access, ready } = await new Promise<{ access: HttpReport['access']; ready: Ready }>(
      (resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const result = /^RESULT (.*)$/m.exec(out);
          const ready = /^READY (.*)$/m.exec(out);
          if (result && ready) resolve({ access: JSON.parse(result[1]!), ready: JSON.parse(ready[1]!) });
        });
        child.on('exit', (code, signal) =>
          reject(
            new ServerDied(
              `server exited with ${code ?? signal}`,
              signal === 'SIGTRAP' || code === 133 || /Fatal error/.test(err),
            ),
          ),
        );
      },
    );
    const pid = child.pid!;
    const sides: [string, string][] = [
      ['authorized', `${ready.authorizedUrl}${ready.path}`],
      ['allow-all', `${ready.unauthorizedUrl}${ready.path}`],
      ...Object.entries(ready.experimentUrls).map(([name, url]): [string, string] => [
        name,
        `${url}${ready.path}`,
      ]),
    ];
    for (const [, url] of sides) await load(url, ready.token, quick ? 1000 : 1500, pid); // warm-up
    const rounds = new Map<string, Round[]>(sides.map(([name]) => [name, []]));
    for (let round = 0; round < HTTP_ROUNDS; round++) {
      // Rotate which side goes first, so a trend in background load does not favour one side.
      for (let i = 0; i < sides.length; i++) {
        const [name, url] = sides[(round + i) % sides.length]!;
        rounds.get(name)!.push(await load(url, ready.token, ROUND_MS, pid));
      }
    }
    return {
      path: ready.path,
      rounds,
      access,
      serverFlags: flags,
      note: '',
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
}

class ServerDied extends Error {
  constructor(
    message: string,
    readonly v8Abort: boolean,
  ) {
    super(message);
  }
}

/**
 * The HTTP part; a server that died of the V8 abort is started again once with the workaround flag. (Since
 * `src/policy/cedar/v8-workaround.ts` sets that flag whenever Cedar loads, this only guards older commits.)
 */
async function httpOnce(): Promise<HttpReport> {
  try {
    return await http(nodeFlags);
  } catch (e) {
    if (!(e instanceof ServerDied) || !e.v8Abort) throw e;
    console.error(`  (the server died of a V8 abort; started again with ${NO_WASM_INLINING})`);
    const report = await http([...nodeFlags, NO_WASM_INLINING]);
    report.note = `; the server was started again with ${NO_WASM_INLINING} after a V8 abort`;
    return report;
  }
}

// ---- report -----------------------------------------------------------------------------------------------

const startedAt = new Date();
const began = performance.now();
const rows = await decisions();
const report = await httpOnce();
const seconds = (performance.now() - began) / 1000;

console.log(
  `# Authorization benchmark (${quick ? 'quick' : 'full'}), ${startedAt.toISOString()}, node ${process.version}, ${seconds.toFixed(0)} s`,
);
console.log(`child Node.js flags: ${nodeFlags.length > 0 ? nodeFlags.join(' ') : '(none)'}`);
console.log('');
console.log(
  `## Decision cost: CedarAuthorizer.authorize, ${DECISION_SAMPLES} samples per run, ${DECISION_ROUNDS} run(s) per row, one process per run`,
);
console.log(
  '103 bindings, 100 projects; cache off: 5,000 distinct requests; hits: a working set of 1,000 requests alone in the cache, or one request repeated among 10,000 entries (the default size, full)',
);
console.log(
  '| policies | cache | p50 us (median) | p99 us (median) | p99 per run | construct ms | allowed | target |',
);
console.log('| --- | --- | ---: | ---: | --- | ---: | ---: | --- |');
for (const r of rows) {
  const label = r.custom === 0 ? 'built-ins' : `built-ins + ${r.custom.toLocaleString('en')} custom`;
  const target = r.custom <= 100 ? 'p99 <= 100 us' : '';
  const marks =
    r.retriedWithFlag > 0
      ? ` (${r.retriedWithFlag} run(s) retried with ${NO_WASM_INLINING} after a V8 abort)`
      : '';
  console.log(
    `| ${label} | ${CACHE_LABELS[r.cache]} | ${us(median(r.p50))} | ${us(median(r.p99))} | ${r.p99.map(us).join(', ')} | ${median(r.constructMs).toFixed(0)} | ${(100 * r.allowedShare).toFixed(0)}% | ${target}${marks} |`,
  );
}
const crashes = rows.reduce((n, r) => n + r.crashes, 0);
console.log(
  `V8 aborts (each retried once with ${NO_WASM_INLINING}): ${crashes} of ${rows.length * DECISION_ROUNDS} runs`,
);
console.log('');
console.log(
  `## AccessService.authorize in the server process (the decision of GET ${report.path}), microseconds`,
);
console.log('| measure | p50 | p99 | samples |');
console.log('| --- | ---: | ---: | ---: |');
const accessLabels: Record<string, string> = {
  cached: 'authorize, decision cache on (the default)',
  uncached: 'authorize, a cache miss every time',
  revisionRead: 'part of both: the policy revision read',
  attributeReads: 'part of both: the resource attribute read (getResourceFacts)',
  'experiment: fresh-cache': 'experiment: hit, a second AccessService whose cache holds only this entry',
  'experiment: memoized': 'experiment: hit, a second AccessService with the attribute read memoized',
};
for (const [k, v] of Object.entries(report.access))
  console.log(`| ${accessLabels[k] ?? k} | ${us(v.p50)} | ${us(v.p99)} | ${v.n} |`);
console.log('');
const sides = [...report.rounds.keys()];
console.log(
  `## Requests/s: GET ${report.path}, ${CLIENTS} keep-alive clients, ${HTTP_ROUNDS} rounds of ${ROUND_MS} ms, sides in rotating order, one server process (Node.js flags: ${report.serverFlags.join(' ') || 'none'}${report.note})`,
);
const base = report.rounds.get('allow-all')!;
const others = sides.filter((s) => s !== 'allow-all');
console.log(
  `| round | ${sides.map((s) => `${s} req/s`).join(' | ')} | ${others.map((s) => `${s} / allow-all`).join(' | ')} | ${sides.map((s) => `${s} CPU us/req`).join(' | ')} |`,
);
console.log(`| --- |${' ---: |'.repeat(sides.length * 2 + others.length)}`);
for (let i = 0; i < HTTP_ROUNDS; i++) {
  const at = (s: string) => report.rounds.get(s)![i]!;
  console.log(
    `| ${i + 1} | ${sides.map((s) => at(s).rate.toFixed(0)).join(' | ')} | ${others.map((s) => (at(s).rate / base[i]!.rate).toFixed(2)).join(' | ')} | ${sides.map((s) => at(s).cpuUs.toFixed(0)).join(' | ')} |`,
  );
}
const rates = (s: string) => report.rounds.get(s)!.map((r) => r.rate);
const cpus = (s: string) => report.rounds.get(s)!.map((r) => r.cpuUs);
const ratios = (s: string) => report.rounds.get(s)!.map((r, i) => r.rate / base[i]!.rate);
console.log(
  `| **median** | ${sides.map((s) => median(rates(s)).toFixed(0)).join(' | ')} | ${others.map((s) => `**${median(ratios(s)).toFixed(2)}**`).join(' | ')} | ${sides.map((s) => median(cpus(s)).toFixed(0)).join(' | ')} |`,
);
for (const s of others) {
  const r = ratios(s);
  console.log(
    `${s}: ratio ${median(r).toFixed(2)} (rounds ${Math.min(...r).toFixed(2)} to ${Math.max(...r).toFixed(2)}; target >= 0.6), by server CPU per request ${(median(cpus('allow-all')) / median(cpus(s))).toFixed(2)}, authorization adds ${(median(cpus(s)) - median(cpus('allow-all'))).toFixed(0)} us of server CPU per request`,
  );
}
