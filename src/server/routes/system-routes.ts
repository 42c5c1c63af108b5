import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Health, KeysView, RotateResult, WhoAmI } from '../../api/schemas.js';
import { StrongroomError } from '../../core/errors.js';
import type { KeyService } from '../../registry/key-service.js';
import type { BlobStore } from '../../storage/blob-store.js';
import type { MetadataStore } from '../../storage/metadata-store.js';
import type { HttpMetrics } from '../metrics.js';
import { resourceOf } from '../pipeline.js';

const errors = { '4xx': { $ref: 'Problem#' }, '5xx': { $ref: 'Problem#' } } as const;

/** Health, readiness, metrics, the OpenAPI document, the caller's identity and key management. */
export async function systemRoutes(
  base: FastifyInstance,
  opts: {
    store: MetadataStore;
    blobs: BlobStore;
    keys: KeyService;
    metrics: HttpMetrics;
    openapi: () => unknown;
  },
): Promise<void> {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { store, blobs, keys, metrics } = opts;

  app.get(
    '/healthz',
    { schema: { tags: ['system'], response: { 200: Health } }, config: { public: true, probe: true } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: { tags: ['system'], response: { 200: Health, ...errors } },
      config: { public: true, probe: true },
    },
    async () => {
      try {
        await store.ping();
        await blobs.checkWritable();
      } catch (err) {
        throw new StrongroomError('not_ready', 'storage is not ready', { cause: err });
      }
      return { status: 'ready' };
    },
  );

  app.get(
    '/metrics',
    { schema: { hide: true }, config: { public: true, probe: true } },
    async (_request, reply) =>
      reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  app.get(
    '/api/v1/openapi.json',
    { schema: { hide: true }, config: { public: true, probe: true } },
    async () => opts.openapi(),
  );

  app.get(
    '/api/v1/whoami',
    {
      schema: { tags: ['identity'], response: { 200: WhoAmI, ...errors } },
      config: { action: 'session:read', resource: resourceOf.organization },
    },
    async (request) => {
      const p = request.principal;
      if (!p) throw new StrongroomError('unauthenticated', 'the request has no credentials');
      return {
        principal: p.id,
        authMethod: p.authMethod,
        kind: p.kind,
        ...(p.name !== undefined ? { name: p.name } : {}),
        ...(p.groups !== undefined ? { groups: [...p.groups] } : {}),
        ...(p.sessionId !== undefined ? { sessionId: p.sessionId } : {}),
        ...(p.tokenId !== undefined ? { tokenId: p.tokenId } : {}),
        ...(p.mfaAt !== undefined ? { mfaAt: p.mfaAt } : {}),
        ...(p.scope !== undefined
          ? {
              scope:
                p.scope === null
                  ? null
                  : {
                      readOnly: p.scope.readOnly,
                      ...(p.scope.projects ? { projects: [...p.scope.projects] } : {}),
                      ...(p.scope.actions ? { actions: [...p.scope.actions] } : {}),
                    },
            }
          : {}),
        ...(p.environment !== undefined ? { environment: p.environment } : {}),
      };
    },
  );

  app.get(
    '/api/v1/keys',
    {
      schema: { tags: ['keys'], response: { 200: KeysView, ...errors } },
      config: { action: 'key:read', resource: resourceOf.organization },
    },
    async () => {
      const { current, versions } = await keys.listVersions();
      return { current, versions: versions.map((v) => ({ ...v })) };
    },
  );

  app.post(
    '/api/v1/keys/rotate',
    {
      schema: { tags: ['keys'], response: { 200: RotateResult, ...errors } },
      config: { action: 'key:rotate', resource: resourceOf.organization },
    },
    async () => {
      const result = await keys.rotate();
      return { ...result, destroyedVersions: [...result.destroyedVersions] };
    },
  );
}
