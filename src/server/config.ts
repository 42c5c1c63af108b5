import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { StrongroomError } from '../core/errors.js';

const GiB = 1024 ** 3;

const CheckpointSinkSchema = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('file'), name: z.string().regex(/^[a-z0-9-]{1,40}$/), path: z.string().min(1) })
    .strict(),
  z
    .object({
      type: z.literal('http'),
      name: z.string().regex(/^[a-z0-9-]{1,40}$/),
      url: z.url({ protocol: /^https?$/ }),
      /** Name of an environment variable holding the Authorization header value (never the value itself). */
      authorizationEnv: z
        .string()
        .regex(/^[A-Z_][A-Z0-9_]*$/)
        .optional(),
    })
    .strict(),
]);

const ExporterName = z.string().regex(/^[a-z0-9-]{1,40}$/);
const SiemFormat = z.enum(['json', 'ocsf']).optional();

/** SIEM exporters (docs/siem.md); each sink validates its own ranges and files when it is built. */
const ExporterSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('syslog'),
      name: ExporterName.optional(),
      format: SiemFormat,
      host: z.string().min(1),
      port: z.number().int().min(1).max(65535),
      transport: z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('tcp') }).strict(),
        z
          .object({
            kind: z.literal('tls'),
            caFile: z.string().min(1),
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            servername: z.string().min(1).optional(),
          })
          .strict(),
      ]),
      facility: z.number().int().min(0).max(23).optional(),
      hostname: z.string().min(1).optional(),
      appName: z.string().min(1).optional(),
      procId: z.string().min(1).optional(),
      sdId: z.string().min(1).optional(),
      connectTimeoutMs: z.number().int().positive().optional(),
      writeTimeoutMs: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('jsonl'),
      name: ExporterName.optional(),
      format: SiemFormat,
      directory: z.string().min(1),
      maxBytes: z.number().int().positive().optional(),
      maxFiles: z.number().int().positive().optional(),
    })
    .strict(),
]);
export type ExporterConfig = z.infer<typeof ExporterSchema>;

/** The audit log (DESIGN.md section 5, docs/audit.md). */
const AuditConfigSchema = z
  .object({
    /** The checkpoint origin; fixed at the first start (default `strongroom/audit/<random>`). */
    origin: z.string().min(1).max(200).optional(),
    /** Sign a checkpoint after this many events... */
    checkpointEvery: z.number().int().positive().default(1000),
    /** ...or this many seconds after the last one, if events arrived since. */
    checkpointIntervalSeconds: z.number().int().positive().default(60),
    /** Outside copies of every checkpoint (a file on other storage, a witness or transparency service). */
    checkpointSinks: z.array(CheckpointSinkSchema).default([]),
    /** Copies of every event for a SIEM, each delivered in order with its own persisted position. */
    exporters: z.array(ExporterSchema).default([]),
    retention: z
      .object({
        /** Archive and prune events older than this; unset keeps everything. */
        maxAgeDays: z.number().int().positive().optional(),
        /** Where archives go (default DATA/audit-archive). */
        archiveDir: z.string().min(1).optional(),
        intervalSeconds: z.number().int().positive().default(3600),
      })
      .strict()
      .default({ intervalSeconds: 3600 }),
    /** Also record the unauthenticated probes (health, readiness, metrics, OpenAPI). */
    recordProbes: z.boolean().default(false),
  })
  .strict();

/** Users, sessions, tokens, lockout and step-up (docs/identity.md). */
const IdentityConfigSchema = z
  .object({
    accessTokenTtlSeconds: z.number().int().min(60).max(3600).default(900),
    refreshTokenTtlSeconds: z
      .number()
      .int()
      .min(300)
      .max(7 * 86_400)
      .default(12 * 3600),
    inviteTtlSeconds: z
      .number()
      .int()
      .min(300)
      .max(30 * 86_400)
      .default(3 * 86_400),
    apiTokenMaxTtlSeconds: z
      .number()
      .int()
      .min(60)
      .max(366 * 86_400)
      .default(90 * 86_400),
    /** Sensitive actions need a TOTP verification at most this old. */
    stepUpMaxAgeSeconds: z.number().int().min(60).max(86_400).default(900),
    lockout: z
      .object({
        /** Failures before the first lock... */
        threshold: z.number().int().min(1).max(100).default(5),
        /** ...which lasts this long, doubling with each further failure... */
        baseSeconds: z.number().int().min(1).default(60),
        /** ...up to this. */
        maxSeconds: z.number().int().min(1).default(3600),
      })
      .strict()
      .default({ threshold: 5, baseSeconds: 60, maxSeconds: 3600 }),
    totpIssuer: z.string().min(1).max(64).default('Strongroom'),
    /** The server's external base URL: single sign-on redirects to `<publicUrl>/api/v1/auth/oidc/callback`. */
    publicUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Outbound calls to identity providers (discovery, keys, token endpoint): threat group D. */
    outbound: z
      .object({
        /** Hosts, IPs or CIDRs allowed even when private or loopback (and then also over http). */
        allowHosts: z.array(z.string().min(1)).default([]),
        timeoutMs: z.number().int().min(100).max(60_000).default(5000),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .max(16 * 1024 * 1024)
          .default(1024 * 1024),
        maxRedirects: z.number().int().min(0).max(10).default(3),
      })
      .strict()
      .default({ allowHosts: [], timeoutMs: 5000, maxBytes: 1024 * 1024, maxRedirects: 3 }),
    oidcProviders: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9-]{1,40}$/),
            issuer: z.url(),
            clientId: z.string().min(1),
            /** Name of the environment variable holding the client secret (never the secret itself). */
            clientSecretEnv: z
              .string()
              .regex(/^[A-Z_][A-Z0-9_]*$/)
              .optional(),
            scopes: z.array(z.string().min(1)).optional(),
            groupsClaim: z.string().min(1).optional(),
            /** A device posture claim of the signed ID token, passed to policies (docs/authorization.md). */
            devicePostureClaim: z.string().min(1).max(64).optional(),
            algorithms: z.array(z.string().min(1)).optional(),
            groupMapping: z.record(z.string(), z.string()).default({}),
            autoCreateUsers: z.boolean().default(true),
            mfaAsserted: z.boolean().default(false),
          })
          .strict(),
      )
      .default([]),
    federation: z
      .object({
        issuers: z
          .array(
            z
              .object({
                issuer: z.url(),
                audiences: z.array(z.string().min(1)).min(1),
                algorithms: z.array(z.string().min(1)).min(1),
                jwksUri: z.url().optional(),
                clockSkewSeconds: z.number().int().min(0).max(300).optional(),
              })
              .strict(),
          )
          .default([]),
        rules: z
          .array(
            z
              .object({
                issuer: z.url(),
                audience: z.string().min(1),
                subject: z.string().min(1),
                claims: z.record(z.string(), z.string()).optional(),
                serviceAccount: z.string().min(1),
                maxTtlSeconds: z.number().int().min(1).max(86_400),
                scope: z
                  .object({
                    projects: z.array(z.string()).optional(),
                    actions: z.array(z.string()).optional(),
                    readOnly: z.boolean(),
                  })
                  .strict()
                  .optional(),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .default({ issuers: [], rules: [] }),
  })
  .strict();

/** Authorization (docs/authorization.md). */
const AuthorizationConfigSchema = z
  .object({
    /** Decisions kept in the in-memory cache (least recently used evicted first); 0 turns it off. */
    cacheSize: z.number().int().min(0).max(1_000_000).default(10_000),
    elevation: z
      .object({
        /** The longest just-in-time elevation that can be asked for. */
        maxDurationSeconds: z
          .number()
          .int()
          .min(60)
          .max(7 * 86_400)
          .default(8 * 3600),
        /** A request not decided within this long expires. */
        requestTtlSeconds: z
          .number()
          .int()
          .min(60)
          .max(30 * 86_400)
          .default(86_400),
      })
      .strict()
      .default({ maxDurationSeconds: 8 * 3600, requestTtlSeconds: 86_400 }),
    /**
     * Device posture for policies (`context.devicePosture`): the value of this request header, accepted only
     * when the connection comes from one of `trustedProxies` (the proxy sets it after checking the device).
     */
    devicePostureHeader: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/)
      .optional(),
  })
  .strict();

/**
 * Every setting with its default, in one schema (DESIGN.md section 9). Unknown keys are rejected, the result
 * is frozen, and values come from a JSON file, then `STRONGROOM_*` variables, then command-line flags.
 * Secrets (the master key) are never part of the parsed config that gets logged.
 */
export const ConfigSchema = z
  .object({
    dataDir: z.string().min(1).default('./strongroom-data'),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7700),
    /** Path of the 0600 master key file; created on first start when neither it nor the variable exists. */
    masterKeyFile: z.string().min(1).optional(),
    tls: z
      .object({
        certFile: z.string().min(1),
        keyFile: z.string().min(1),
        clientCaFile: z.string().min(1).optional(),
      })
      .strict()
      .optional(),
    /**
     * Addresses or CIDRs of reverse proxies whose X-Forwarded-For (and device posture header) is believed;
     * the client address of every other connection is its socket peer.
     */
    trustedProxies: z.array(z.string().min(1)).default([]),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    limits: z
      .object({
        maxFileBytes: z
          .number()
          .int()
          .positive()
          .default(256 * GiB),
        maxVersionBytes: z
          .number()
          .int()
          .positive()
          .default(1024 * GiB),
        maxFiles: z.number().int().positive().max(1_000_000).default(100_000),
        maxMetadataBytes: z
          .number()
          .int()
          .positive()
          .max(16 * 1024 * 1024)
          .default(1024 * 1024),
        maxJsonBodyBytes: z
          .number()
          .int()
          .positive()
          .default(32 * 1024 * 1024),
        /** A connection that sends nothing for this long is closed (slow-loris, F1). */
        idleTimeoutSeconds: z.number().int().positive().default(60),
      })
      .strict()
      .default({
        maxFileBytes: 256 * GiB,
        maxVersionBytes: 1024 * GiB,
        maxFiles: 100_000,
        maxMetadataBytes: 1024 * 1024,
        maxJsonBodyBytes: 32 * 1024 * 1024,
        idleTimeoutSeconds: 60,
      }),
    uploads: z
      .object({
        sessionTtlSeconds: z
          .number()
          .int()
          .positive()
          .default(24 * 3600),
        gcIntervalSeconds: z.number().int().positive().default(600),
      })
      .strict()
      .default({ sessionTtlSeconds: 24 * 3600, gcIntervalSeconds: 600 }),
    audit: AuditConfigSchema.default(AuditConfigSchema.parse({})),
    identity: IdentityConfigSchema.default(IdentityConfigSchema.parse({})),
    authorization: AuthorizationConfigSchema.default(AuthorizationConfigSchema.parse({})),
  })
  .strict();

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

export interface ConfigSources {
  readonly file?: string | undefined;
  readonly env?: NodeJS.ProcessEnv;
  readonly overrides?: Readonly<Record<string, unknown>>;
}

const ENV_KEYS: Readonly<Record<string, (v: string) => [string, unknown]>> = {
  STRONGROOM_DATA: (v) => ['dataDir', v],
  STRONGROOM_HOST: (v) => ['host', v],
  STRONGROOM_PORT: (v) => ['port', Number(v)],
  STRONGROOM_MASTER_KEY_FILE: (v) => ['masterKeyFile', v],
  STRONGROOM_LOG_LEVEL: (v) => ['logLevel', v],
};

/** Loads, validates and freezes the configuration; `config_invalid` names every problem. */
export function loadConfig(sources: ConfigSources = {}): Config {
  const env = sources.env ?? process.env;
  let raw: Record<string, unknown> = {};
  if (sources.file) {
    try {
      raw = JSON.parse(readFileSync(sources.file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new StrongroomError(
        'config_invalid',
        `cannot read config file ${sources.file}: ${(err as Error).message}`,
      );
    }
  }
  for (const [name, map] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value !== undefined && value !== '') {
      const [key, parsed] = map(value);
      raw[key] = parsed;
    }
  }
  for (const [key, value] of Object.entries(sources.overrides ?? {}))
    if (value !== undefined) raw[key] = value;

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new StrongroomError('config_invalid', `invalid configuration: ${problems}`);
  }
  const config = { ...parsed.data, dataDir: resolve(parsed.data.dataDir) };
  if (!config.tls && !isLoopback(config.host)) {
    throw new StrongroomError(
      'config_invalid',
      `plain HTTP is only allowed on loopback; configure tls to listen on ${config.host}`,
    );
  }
  return deepFreeze(config);
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
