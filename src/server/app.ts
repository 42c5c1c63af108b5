import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Problem } from '../api/schemas.js';
import { loadAuditIdentity } from '../audit/audit-identity.js';
import { AuditLog } from '../audit/audit-log.js';
import { AuditPublisher } from '../audit/audit-publisher.js';
import { auditedStore } from '../audit/audit-scope.js';
import { FileCheckpointSink, HttpCheckpointSink } from '../audit/checkpoint-sinks.js';
import { formatVerifierKey } from '../audit/signed-note.js';
import type { AuditSink } from '../audit/siem/audit-sink.js';
import { JsonLinesFileSink, type JsonLinesFileSinkOptions } from '../audit/siem/jsonl-file-sink.js';
import { SyslogSink, type SyslogSinkOptions } from '../audit/siem/syslog-sink.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ERROR_CODES, StrongroomError } from '../core/errors.js';
import type { Authorizer, ClientFacts } from '../policy/authorizer.js';
import { AccessService } from '../governance/access-service.js';
import { IdentityAuthenticator } from '../identity/identity-authenticator.js';
import { IdentityService, checkScope } from '../identity/identity-service.js';
import { JwtVerifier, type TrustedIssuer } from '../identity/jwt-verifier.js';
import { OidcClient } from '../identity/oidc-client.js';
import type { OutboundPolicy } from '../identity/outbound-fetch.js';
import { SsoService, type ScopedFederationRule, type SsoProvider } from '../identity/sso-service.js';
import { checkFederationRules } from '../identity/workload-federation.js';
import { STEP_UP_ACTIONS, requireRecentMfa } from '../identity/step-up.js';
import { KeyService } from '../registry/key-service.js';
import { RegistryService } from '../registry/registry-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import { openFsBlobStore } from '../storage/fs/fs-blob-store.js';
import type { FsOps } from '../storage/fs/fs-ops.js';
import type { MetadataStore } from '../storage/metadata-store.js';
import { openSqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { TokenAuthenticator, type Authenticator } from './authenticator.js';
import { ensureBootstrapToken } from './bootstrap-token.js';
import type { Config, ExporterConfig } from './config.js';
import type { TokenScope } from '../core/domain.js';
import { mapError, problemBody } from './error-mapper.js';
import { loadMasterKey } from './master-key.js';
import { createMetrics, type HttpMetrics } from './metrics.js';
import { installPipeline, type RouteDeclaration } from './pipeline.js';
import { accessRoutes } from './routes/access-routes.js';
import { auditRoutes } from './routes/audit-routes.js';
import { identityRoutes } from './routes/identity-routes.js';
import { registryRoutes } from './routes/registry-routes.js';
import { systemRoutes } from './routes/system-routes.js';

/** Everything the HTTP layer needs, built once: the one composition root (STYLE.md practice 1). */
export interface ServerContext {
  readonly config: Config;
  /** The metadata store as services see it: every transaction in an audit scope records its event. */
  readonly store: MetadataStore;
  /** The same store without audit recording, for reading the audit log and for its own bookkeeping. */
  readonly rawStore: MetadataStore;
  readonly blobs: BlobStore;
  readonly keys: KeyService;
  readonly registry: RegistryService;
  readonly audit: AuditLog;
  readonly identity: IdentityService;
  readonly sso: SsoService;
  /** The verifier key of the audit log's checkpoints (C2SP signed-note). */
  readonly auditVerifierKey: string;
  readonly auditPublisher: AuditPublisher;
  readonly authenticator: Authenticator;
  /** Role bindings, custom policies, elevation, access review; also the authorizer. */
  readonly access: AccessService;
  readonly authorizer: Authorizer;
  readonly clock: Clock;
  /** The bootstrap admin token, only on the very first start of a data directory. */
  readonly newAdminToken: string | undefined;
  /** Where the master key came from (a path or the variable's name), and whether it was just created. */
  readonly masterKey: { readonly origin: string; readonly created: boolean };
  close(): Promise<void>;
}

const SOCKET_BUFFER_BYTES = 1024 * 1024;
const CREDENTIAL_PARAMS = /([?&](?:access_token|token|api_key|key|password)=)[^&]*/gi;

/** The request as logged: no headers at all, and credential-looking query values blanked (A6, G5). */
function serializeRequest(request: FastifyRequest) {
  return {
    method: request.method,
    url: request.url.replace(CREDENTIAL_PARAMS, '$1[redacted]'),
    host: request.hostname,
    remoteAddress: request.ip,
    ...(request.socket.remotePort !== undefined ? { remotePort: request.socket.remotePort } : {}),
  };
}

export const LOG_REDACTIONS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
];

/** Opens storage under the data directory, loads the keyring and runs start-up recovery. */
export interface ContextOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly clock?: Clock;
  /** File-system operations under the blob store (fault-injection tests replace them). */
  readonly fsOps?: FsOps;
  /** Failures of background work (checkpoint sinks, exporters, retention), for the server log. */
  readonly onBackgroundError?: (what: string, err: unknown) => void;
}

export async function createServerContext(
  config: Config,
  options: ContextOptions = {},
): Promise<ServerContext> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? systemClock;
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const dbPath = join(config.dataDir, 'strongroom.db');
  const newDataDirectory = !existsSync(dbPath);
  const master = await loadMasterKey({
    env,
    file: config.masterKeyFile ?? join(config.dataDir, 'master.key'),
    newDataDirectory,
  });
  const rawStore = await openSqliteMetadataStore(dbPath);
  let publisher: AuditPublisher | undefined;
  try {
    await rawStore.migrate();
    // Services need the audited store before the log exists (its signing key lives in the keyring).
    const opened: { log?: AuditLog } = {};
    // Every service gets the audited store: each transaction made for a request or a background action
    // commits that action's audit event with it (H3).
    const store = auditedStore(rawStore, () => {
      if (!opened.log) throw new StrongroomError('internal_error', 'the audit log is not open yet');
      return opened.log;
    });
    const blobs = await openFsBlobStore(join(config.dataDir, 'blobs'), options.fsOps);
    const keys = await KeyService.open(store, master.key, clock);
    const auditIdentity = await loadAuditIdentity(rawStore, keys, config.audit.origin);
    const audit = new AuditLog(rawStore, clock, {
      origin: auditIdentity.origin,
      signer: auditIdentity.signer,
      checkpointEvery: config.audit.checkpointEvery,
    });
    opened.log = audit;
    const auditVerifierKey = formatVerifierKey(auditIdentity.signer);
    publisher = new AuditPublisher({
      store: rawStore,
      log: audit,
      clock,
      checkpointIntervalMs: config.audit.checkpointIntervalSeconds * 1000,
      checkpointSinks: config.audit.checkpointSinks.map((sink) =>
        sink.type === 'file'
          ? new FileCheckpointSink(sink.name, resolve(sink.path))
          : new HttpCheckpointSink(
              sink.name,
              sink.url,
              sink.authorizationEnv ? env[sink.authorizationEnv] : undefined,
            ),
      ),
      eventSinks: uniqueNames(config.audit.exporters.map(buildExporter)),
      retention: {
        store: rawStore,
        audited: store,
        log: { origin: auditIdentity.origin, verifierKey: auditVerifierKey },
        archiveDir: resolve(config.audit.retention.archiveDir ?? join(config.dataDir, 'audit-archive')),
        maxAgeMs:
          config.audit.retention.maxAgeDays === undefined
            ? undefined
            : config.audit.retention.maxAgeDays * 86_400_000,
        intervalMs: config.audit.retention.intervalSeconds * 1000,
      },
      onError: (what, err) => options.onBackgroundError?.(what, err),
    });
    // A rotation interrupted by a crash resumes before anything else (G4).
    if (await keys.rewrapPending()) await keys.rewrapAll();
    const registry = new RegistryService(store, blobs, keys, clock, {
      maxFileBytes: config.limits.maxFileBytes,
      maxVersionBytes: config.limits.maxVersionBytes,
      maxFiles: config.limits.maxFiles,
      maxMetadataBytes: config.limits.maxMetadataBytes,
      uploadTtlSeconds: config.uploads.sessionTtlSeconds,
    });
    await registry.collectGarbage();
    const newAdminToken = await ensureBootstrapToken(store, join(config.dataDir, 'admin.token'));
    await publisher.start();
    const started = publisher;
    const identity = new IdentityService(store, keys, clock, {
      accessTokenTtlSeconds: config.identity.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.identity.refreshTokenTtlSeconds,
      inviteTtlSeconds: config.identity.inviteTtlSeconds,
      apiTokenMaxTtlSeconds: config.identity.apiTokenMaxTtlSeconds,
      lockout: config.identity.lockout,
      totpIssuer: config.identity.totpIssuer,
    });
    const sso = buildSso(config, identity, clock, env);
    const access = await AccessService.open(store, clock, {
      cacheSize: config.authorization.cacheSize,
      maxElevationSeconds: config.authorization.elevation.maxDurationSeconds,
      elevationRequestTtlSeconds: config.authorization.elevation.requestTtlSeconds,
    });
    return {
      config,
      store,
      rawStore,
      blobs,
      keys,
      registry,
      audit,
      identity,
      sso,
      auditVerifierKey,
      auditPublisher: started,
      authenticator: new TokenAuthenticator(
        new IdentityAuthenticator(rawStore, clock),
        config.tls?.clientCaFile !== undefined,
      ),
      access,
      authorizer: access,
      clock,
      newAdminToken,
      masterKey: { origin: master.origin, created: master.created },
      close: async () => {
        try {
          await started.stop();
        } finally {
          await rawStore.close();
        }
      },
    };
  } catch (err) {
    await publisher?.stop().catch(() => undefined);
    await rawStore.close();
    throw err;
  }
}

/** A SIEM exporter from its configuration (docs/siem.md); names default to the type and must be unique. */
function buildExporter(exporter: ExporterConfig): AuditSink {
  const { type, ...options } = exporter;
  return type === 'syslog'
    ? new SyslogSink(options as SyslogSinkOptions)
    : new JsonLinesFileSink(options as JsonLinesFileSinkOptions);
}

/** Single sign-on providers and workload federation from the configuration (docs/sso.md). */
function buildSso(
  config: Config,
  identity: IdentityService,
  clock: Clock,
  env: NodeJS.ProcessEnv,
): SsoService {
  const c = config.identity;
  const policy: OutboundPolicy = { ...c.outbound };
  const now = () => clock.now();
  const providers = new Map<string, SsoProvider>();
  for (const p of c.oidcProviders) {
    const secret = p.clientSecretEnv ? env[p.clientSecretEnv] : undefined;
    if (p.clientSecretEnv && !secret)
      throw new StrongroomError(
        'config_invalid',
        `identity provider \`${p.id}\`: ${p.clientSecretEnv} is not set`,
      );
    const client = new OidcClient(
      {
        id: p.id,
        issuer: p.issuer,
        clientId: p.clientId,
        ...(secret ? { clientSecret: secret } : {}),
        ...(p.scopes ? { scopes: p.scopes } : {}),
        ...(p.groupsClaim ? { groupsClaim: p.groupsClaim } : {}),
        ...(p.devicePostureClaim ? { devicePostureClaim: p.devicePostureClaim } : {}),
        ...(p.algorithms ? { algorithms: p.algorithms } : {}),
      },
      policy,
      now,
    );
    providers.set(p.id, {
      client,
      groupMapping: p.groupMapping,
      autoCreateUsers: p.autoCreateUsers,
      mfaAsserted: p.mfaAsserted,
    });
  }
  const base = c.publicUrl ?? `${config.tls ? 'https' : 'http'}://${config.host}:${config.port}`;
  const rules = c.federation.rules.map((r) => ({
    ...r,
    ...(r.scope ? { scope: checkScope(r.scope as TokenScope) } : {}),
  })) as ScopedFederationRule[];
  checkFederationRules(rules);
  const federation =
    c.federation.issuers.length > 0
      ? { verifier: new JwtVerifier(c.federation.issuers as TrustedIssuer[], policy, now), rules }
      : undefined;
  return new SsoService(
    identity,
    clock,
    providers,
    `${base.replace(/\/$/, '')}/api/v1/auth/oidc/callback`,
    federation,
  );
}

/**
 * The client facts policies see: the address Fastify resolved (X-Forwarded-For only through trusted proxies)
 * and, when configured, a device posture header, believed only on a connection from a trusted proxy.
 */
function clientFactsOf(config: Config): (request: FastifyRequest) => ClientFacts {
  const proxies = new BlockList();
  for (const entry of config.trustedProxies) {
    const [address, bits] = entry.split('/');
    const family = address !== undefined && isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (address === undefined || isIP(address) === 0 || (bits !== undefined && !/^\d{1,3}$/.test(bits)))
      throw new StrongroomError('config_invalid', `trustedProxies: \`${entry}\` is not an address or CIDR`);
    if (bits === undefined) proxies.addAddress(address, family);
    else proxies.addSubnet(address, Number(bits), family);
  }
  const header = config.authorization.devicePostureHeader;
  return (request) => {
    const ip = unmapped(request.ip);
    // The identity provider's signed claim from the session's sign-in, unless a trusted proxy says otherwise.
    const claimed = request.principal?.devicePosture ?? undefined;
    const fallback = claimed === undefined ? { ip } : { ip, devicePosture: claimed };
    if (header === undefined) return fallback;
    const peer = request.socket.remoteAddress && unmapped(request.socket.remoteAddress);
    const value = request.headers[header];
    const trusted =
      peer !== undefined &&
      proxies.check(peer, isIP(peer) === 6 ? 'ipv6' : 'ipv4') &&
      typeof value === 'string';
    return trusted ? { ip, devicePosture: value.slice(0, 128) } : fallback;
  };
}

/** An IPv4 client on a dual-stack socket (`::ffff:10.1.2.3`) is the IPv4 address policies name. */
function unmapped(address: string): string {
  const v4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return v4?.[1] ?? address;
}

/** Positions are persisted by name, so two exporters with one name would share (and corrupt) a position. */
function uniqueNames<T extends { readonly name: string }>(sinks: T[]): T[] {
  const seen = new Set<string>();
  for (const sink of sinks) {
    if (seen.has(sink.name))
      throw new StrongroomError('config_invalid', `two audit exporters are named \`${sink.name}\``);
    seen.add(sink.name);
  }
  return sinks;
}

export interface BuiltApp {
  readonly app: FastifyInstance;
  readonly routes: readonly RouteDeclaration[];
  readonly metrics: HttpMetrics;
}

/** The Fastify app over a context: pipeline hooks, error mapping, routes, OpenAPI. */
export async function buildApp(
  ctx: ServerContext,
  opts: { logger?: boolean; logStream?: NodeJS.WritableStream } = {},
): Promise<BuiltApp> {
  const { config } = ctx;
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: config.logLevel,
            redact: { paths: LOG_REDACTIONS, censor: '[redacted]' },
            serializers: { req: serializeRequest },
            ...(opts.logStream ? { stream: opts.logStream } : {}),
          },
    genReqId: () => randomUUID(),
    bodyLimit: config.limits.maxJsonBodyBytes,
    // Idle sockets are closed; whole-request time is unlimited so a 20 GB upload is not cut off (F1).
    connectionTimeout: config.limits.idleTimeoutSeconds * 1000,
    requestTimeout: 0,
    exposeHeadRoutes: false,
    return503OnClosing: true,
    // X-Forwarded-For is believed only from the configured proxies; otherwise the client is the socket peer.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    // Socket buffers of 1 MiB: a download's burst of decrypted segments is written with one vectored write
    // (src/server/send-body-stream.ts), and an upload reads up to this much ahead before pausing.
    http: { highWaterMark: SOCKET_BUFFER_BYTES },
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
    },
    ...(config.tls
      ? {
          https: {
            highWaterMark: SOCKET_BUFFER_BYTES,
            cert: readFileSync(config.tls.certFile),
            key: readFileSync(config.tls.keyFile),
            ...(config.tls.clientCaFile
              ? { ca: readFileSync(config.tls.clientCaFile), requestCert: true, rejectUnauthorized: false }
              : {}),
          },
        }
      : {}),
  });
  const metrics = createMetrics();
  app.addSchema({ ...Problem, $id: 'Problem' });
  await app.register(swagger, {
    refResolver: {
      buildLocalReference: (json, _base, _fragment, i) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Strongroom API',
        version: '1',
        description: 'Zero-trust registry for machine-learning artifacts.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  const routes = installPipeline(app, {
    authenticator: ctx.authenticator,
    authorizer: ctx.authorizer,
    audit: ctx.audit,
    recordProbes: config.audit.recordProbes,
    clientFacts: clientFactsOf(config),
    stepUp: (principal, action) => {
      if (STEP_UP_ACTIONS.has(action))
        requireRecentMfa(principal, ctx.clock.now(), config.identity.stepUpMaxAgeSeconds, `\`${action}\``);
    },
  });

  app.setErrorHandler((err, request, reply) => {
    const mapped = mapError(err);
    request.errorCode = mapped.code;
    if (mapped.status >= 500) request.log.error({ err }, 'request failed');
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    // An error answered before the body was read: close the connection rather than leave the client's unread
    // bytes to be taken for the next request on a kept-alive socket.
    if (!request.raw.complete) reply.header('connection', 'close');
    return reply
      .code(mapped.status)
      .header('content-type', 'application/problem+json')
      .header('cache-control', 'no-store')
      .send(problemBody(mapped, request));
  });

  app.setNotFoundHandler((request, reply) => {
    request.errorCode = 'route_not_found';
    reply
      .code(404)
      .header('content-type', 'application/problem+json')
      .send({
        type: 'urn:strongroom:error:route_not_found',
        title: ERROR_CODES.route_not_found,
        status: 404,
        code: 'route_not_found',
        detail: `no route for ${request.method} ${request.url.split('?')[0]}`,
        requestId: request.id,
      });
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ method: request.method, route, status: String(reply.statusCode) });
    metrics.duration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  await app.register(systemRoutes, {
    store: ctx.store,
    blobs: ctx.blobs,
    keys: ctx.keys,
    metrics,
    openapi: () => app.swagger(),
  });
  await app.register(registryRoutes, {
    registry: ctx.registry,
    metrics,
    requireStepUp: (principal, what) =>
      requireRecentMfa(principal, ctx.clock.now(), config.identity.stepUpMaxAgeSeconds, what),
  });
  await app.register(identityRoutes, { identity: ctx.identity, sso: ctx.sso, store: ctx.store });
  await app.register(accessRoutes, { access: ctx.access });
  await app.register(auditRoutes, {
    store: ctx.rawStore,
    audit: ctx.audit,
    verifierKey: ctx.auditVerifierKey,
    publisher: ctx.auditPublisher,
    clock: ctx.clock,
  });
  await app.ready();
  return { app, routes, metrics };
}
