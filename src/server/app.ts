import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Problem } from '../api/schemas.js';
import { systemClock, type Clock } from '../core/clock.js';
import { ERROR_CODES } from '../core/errors.js';
import { bootstrapAuthorizer, type Authorizer } from '../policy/authorizer.js';
import { KeyService } from '../registry/key-service.js';
import { RegistryService } from '../registry/registry-service.js';
import type { BlobStore } from '../storage/blob-store.js';
import { openFsBlobStore } from '../storage/fs/fs-blob-store.js';
import type { FsOps } from '../storage/fs/fs-ops.js';
import type { MetadataStore } from '../storage/metadata-store.js';
import { openSqliteMetadataStore } from '../storage/sqlite/sqlite-metadata-store.js';
import { BootstrapTokenAuthenticator, type Authenticator } from './authenticator.js';
import { ensureBootstrapToken } from './bootstrap-token.js';
import type { Config } from './config.js';
import { mapError } from './error-mapper.js';
import { loadMasterKey } from './master-key.js';
import { createMetrics, type HttpMetrics } from './metrics.js';
import { installPipeline, type RouteDeclaration } from './pipeline.js';
import { registryRoutes } from './routes/registry-routes.js';
import { systemRoutes } from './routes/system-routes.js';

/** Everything the HTTP layer needs, built once: the one composition root (STYLE.md practice 1). */
export interface ServerContext {
  readonly config: Config;
  readonly store: MetadataStore;
  readonly blobs: BlobStore;
  readonly keys: KeyService;
  readonly registry: RegistryService;
  readonly authenticator: Authenticator;
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
  const store = await openSqliteMetadataStore(dbPath);
  try {
    await store.migrate();
    const blobs = await openFsBlobStore(join(config.dataDir, 'blobs'), options.fsOps);
    const keys = await KeyService.open(store, master.key, clock);
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
    return {
      config,
      store,
      blobs,
      keys,
      registry,
      authenticator: new BootstrapTokenAuthenticator(store),
      authorizer: bootstrapAuthorizer,
      clock,
      newAdminToken,
      masterKey: { origin: master.origin, created: master.created },
      close: () => store.close(),
    };
  } catch (err) {
    await store.close();
    throw err;
  }
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

  const routes = installPipeline(app, { authenticator: ctx.authenticator, authorizer: ctx.authorizer });

  app.setErrorHandler((err, request, reply) => {
    const mapped = mapError(err);
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
      .send({
        type: `urn:strongroom:error:${mapped.code}`,
        title: ERROR_CODES[mapped.code],
        status: mapped.status,
        code: mapped.code,
        detail: mapped.detail,
        instance: request.url.split('?')[0],
        requestId: request.id,
        ...(mapped.details ? { details: mapped.details } : {}),
      });
  });

  app.setNotFoundHandler((request, reply) => {
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
  await app.register(registryRoutes, { registry: ctx.registry, metrics });
  await app.ready();
  return { app, routes, metrics };
}
