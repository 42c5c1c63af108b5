/**
 * The server half of `bench/authorization.ts`: `node --import tsx bench/authorization-server.ts DATA_DIR
 * SAMPLES [--experiments]`. One server context, two listeners: the first authorizes every request with the
 * Cedar authorizer (the `AccessService`, as `strongroom serve` does); the second answers the same routes
 * with the authorizer replaced by one that allows everything, so the difference is what authorization costs.
 *
 * It sets itself up over HTTP as an administrator would (a project, a pushed version, a service account
 * with a viewer binding at the project and a scoped token, the three documented example policies), then
 * times `AccessService.authorize` in this process (cache hits and cache misses, each including the policy
 * revision read and the resource attribute lookups, and those two parts alone), prints `RESULT {json}`,
 * then `READY {json}` with what the client needs, and serves until killed.
 *
 * With `--experiments`, two more listeners, each with its own `AccessService` over the same store: one
 * exactly like the measured one but whose decision cache holds only this route's entry (the measured one's
 * holds 10,000 after the cache misses timed here), and one whose resource attribute read is memoized (the
 * most an attribute cache could save; correct here only because nothing changes during the run).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StrongroomClient } from '../src/client/index.js';
import { AccessService } from '../src/governance/access-service.js';
import type { AuthorizationRequest, Authorizer } from '../src/policy/authorizer.js';
import { buildApp, createServerContext } from '../src/server/app.js';
import { loadConfig } from '../src/server/config.js';
import type { MetadataStore } from '../src/storage/metadata-store.js';

const [dataDir, samplesArg] = process.argv.slice(2);
const experiments = process.argv.includes('--experiments');
const SAMPLES = Number(samplesArg ?? 20_000);
if (!dataDir || !Number.isInteger(SAMPLES))
  throw new Error('usage: authorization-server.ts DATA_DIR SAMPLES');

const PROJECT = 'bench';
const ARTIFACT = 'model';
const VERSION = '1.0.0';
const ACCOUNT = 'reader';
const EXAMPLES = [
  'production-pulls-production',
  'quarantine-incident-responders-only',
  'restricted-corporate-mfa',
];

// Exit on SIGTERM (instead of being killed by it), so `--cpu-prof` can write its profile.
process.on('SIGTERM', () => process.exit(0));
const config = loadConfig({ env: {}, overrides: { dataDir, port: 0, logLevel: 'warn' } });
const ctx = await createServerContext(config);
const allowAll: Authorizer = {
  authorize: () => Promise.resolve({ decision: 'allow', reasons: ['bench:allow-all'], errors: [] }),
};
const authorized = await buildApp(ctx, { logger: false });
const unauthorized = await buildApp({ ...ctx, authorizer: allowAll }, { logger: false });
const authorizedUrl = await authorized.app.listen({ host: '127.0.0.1', port: 0 });
const unauthorizedUrl = await unauthorized.app.listen({ host: '127.0.0.1', port: 0 });

// ---- setup, through the API -------------------------------------------------------------------------------
const adminToken = ctx.newAdminToken ?? (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
const admin = new StrongroomClient({ url: authorizedUrl, token: adminToken });
await admin.createProject({ name: PROJECT });
const source = join(dirname(dataDir), 'weights.bin');
await mkdir(dirname(source), { recursive: true });
await writeFile(source, Buffer.alloc(4096, 7));
await admin.pushVersion({
  project: PROJECT,
  artifact: ARTIFACT,
  version: VERSION,
  source,
  kind: 'model',
  sensitivity: 'internal',
});
await admin.createServiceAccount({ name: ACCOUNT, environment: 'production' });
await admin.createRoleBinding({ role: 'viewer', principal: `sa:${ACCOUNT}`, scope: `project:${PROJECT}` });
const examples = fileURLToPath(new URL('../test/fixtures/policy/examples/', import.meta.url));
for (const id of EXAMPLES)
  await admin.putPolicy(id, {
    text: await readFile(join(examples, `${id}.cedar`), 'utf8'),
    scope: 'organization',
  });
const { token } = await admin.createServiceAccountToken(ACCOUNT, {
  scope: { projects: [PROJECT], readOnly: true },
  ttlSeconds: 3600,
});
const path = `/api/v1/projects/${PROJECT}/artifacts/${ARTIFACT}/versions/${VERSION}`;
for (const base of [authorizedUrl, unauthorizedUrl]) {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (res.status !== 200) throw new Error(`setup: GET ${path} on ${base} answered ${res.status}`);
  await res.arrayBuffer();
}
// The principal exactly as the pipeline sees it for this token.
const principal = await ctx.authenticator.authenticate({
  headers: { authorization: `Bearer ${token}` },
  url: path,
  clientCertificate: undefined,
});

const store = ctx.store;

// ---- experiments ------------------------------------------------------------------------------------------
const experimental = new Map<string, AccessService>();
if (experiments) {
  const accessOver = (overrides: Partial<MetadataStore>) =>
    AccessService.open(
      new Proxy(store, {
        get(target, property) {
          if (typeof property === 'string' && property in overrides)
            return overrides[property as keyof MetadataStore];
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      }),
      ctx.clock,
      {
        cacheSize: config.authorization.cacheSize,
        maxElevationSeconds: config.authorization.elevation.maxDurationSeconds,
        elevationRequestTtlSeconds: config.authorization.elevation.requestTtlSeconds,
      },
    );
  // The same code as the measured authorizer, but its decision cache holds only this route's entry.
  experimental.set('fresh-cache', await accessOver({}));
  const memo = new Map<string, ReturnType<MetadataStore['getResourceFacts']>>();
  experimental.set(
    'memoized',
    await accessOver({
      getResourceFacts: (project, artifact, tag) => {
        const key = JSON.stringify([project, artifact, tag]);
        let facts = memo.get(key);
        if (facts === undefined) memo.set(key, (facts = store.getResourceFacts(project, artifact, tag)));
        return facts;
      },
    }),
  );
}

// ---- decision cost through the AccessService, in this process ---------------------------------------------
const request: AuthorizationRequest = {
  principal,
  action: 'version:read',
  resource: { kind: 'version', project: PROJECT, artifact: ARTIFACT, version: VERSION },
  client: { ip: '127.0.0.1' },
};
// Cache misses on the same instance: one of the example policies reads `context.ip`, so the client address is
// part of the cache key, and 65,536 addresses in turn never repeat within the 10,000 entries kept. (Not a
// second `AccessService` with the cache off: two `CedarAuthorizer` instances in one process make the V8 abort
// described in `bench/authorization-decisions.ts` likely.)
let miss = 0;
const missRequest = (): AuthorizationRequest => {
  miss = (miss + 1) % 65_536;
  return { ...request, client: { ip: `10.9.${miss >> 8}.${miss & 255}` } };
};
const cases: Record<string, () => Promise<unknown>> = {
  cached: () => ctx.access.authorize(request),
  uncached: () => ctx.access.authorize(missRequest()),
  ...Object.fromEntries(
    [...experimental].map(([name, access]) => [`experiment: ${name}`, () => access.authorize(request)]),
  ),
  revisionRead: () => store.getSetting('policy.revision'),
  // What `AccessService` loads for a version before every decision, cached or not.
  attributeReads: () => store.getResourceFacts(PROJECT, ARTIFACT, VERSION),
};
for (const [name, run] of Object.entries(cases)) {
  const answer = await run();
  const part = name === 'revisionRead' || name === 'attributeReads';
  if (!part && (answer as { decision: string }).decision !== 'allow')
    throw new Error(`setup: ${name} decision is not allow: ${JSON.stringify(answer)}`);
}
const ROUNDS = 4;
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, [] as number[]]));
for (let round = 0; round <= ROUNDS; round++) {
  // Round 0 warms up and is not kept; then the cases alternate, so load from elsewhere hits each alike.
  for (const [name, run] of Object.entries(cases)) {
    for (let i = 0; i < SAMPLES / ROUNDS; i++) {
      const t = process.hrtime.bigint();
      await run();
      if (round > 0) times[name]!.push(Number(process.hrtime.bigint() - t) / 1000);
    }
  }
}
const percentile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0;
};
process.stdout.write(
  `RESULT ${JSON.stringify(
    Object.fromEntries(
      Object.entries(times).map(([k, xs]) => [
        k,
        { p50: percentile(xs, 0.5), p99: percentile(xs, 0.99), n: xs.length },
      ]),
    ),
  )}\n`,
);

// ---- listeners for the experiments, then ready ------------------------------------------------------------
const experimentUrls: Record<string, string> = {};
for (const [name, authorizer] of experimental) {
  const built = await buildApp({ ...ctx, authorizer }, { logger: false });
  experimentUrls[name] = await built.app.listen({ host: '127.0.0.1', port: 0 });
}
process.stdout.write(
  `READY ${JSON.stringify({ authorizedUrl, unauthorizedUrl, experimentUrls, token, path })}\n`,
);
