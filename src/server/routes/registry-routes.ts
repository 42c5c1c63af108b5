import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import {
  ArtifactPage,
  ArtifactParams,
  ArtifactView,
  CommitUploadBody,
  CreateArtifactBody,
  CreateProjectBody,
  CreateUploadBody,
  FileQuery,
  PageQuery,
  PartParams,
  PartProgress,
  ProjectPage,
  ProjectParams,
  ProjectView,
  UpdateArtifactBody,
  UploadParams,
  UploadView,
  VersionDetail,
  VersionPage,
  VersionParams,
  UPLOAD_OFFSET_HEADER,
} from '../../api/schemas.js';
import { DEFAULT_PAGE_SIZE, type Page, type PageRequest } from '../../core/domain.js';
import { StrongroomError } from '../../core/errors.js';
import type { Principal } from '../../policy/authorizer.js';
import type { RegistryService } from '../../registry/registry-service.js';
import { contentDisposition, parseRange } from '../http-range.js';
import type { HttpMetrics } from '../metrics.js';
import { resourceOf } from '../pipeline.js';
import { sendBodyStream } from '../send-body-stream.js';
import {
  artifactView,
  decodeCursor,
  pageView,
  projectView,
  uploadDetail,
  versionDetailView,
  versionView,
} from '../views.js';

const errors = { '4xx': { $ref: 'Problem#' }, '5xx': { $ref: 'Problem#' } } as const;

function page(query: { limit?: number | undefined; cursor?: string | undefined }): PageRequest {
  return { limit: query.limit ?? DEFAULT_PAGE_SIZE, after: decodeCursor(query.cursor) };
}

/**
 * The items of a page the caller may read: a list never shows what a direct read would hide (B1). A page can
 * come back shorter than its limit; its cursor still continues after the last stored item.
 */
async function visible<T>(found: Page<T>, allowed: (item: T) => Promise<boolean>): Promise<Page<T>> {
  const keep = await Promise.all(found.items.map(allowed));
  return { ...found, items: found.items.filter((_, i) => keep[i]) };
}

function principalOf(request: { principal: { id: string } | undefined }): string {
  if (!request.principal) throw new StrongroomError('unauthenticated', 'the request has no credentials');
  return request.principal.id;
}

/** Projects, artifacts, versions, uploads and downloads (docs/api.md). */
export async function registryRoutes(
  base: FastifyInstance,
  opts: {
    registry: RegistryService;
    metrics: HttpMetrics;
    /** Step-up for sensitive reads: throws `mfa_required` when the caller's second factor is too old. */
    requireStepUp?: (principal: Principal, what: string) => void;
  },
): Promise<void> {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { registry, metrics } = opts;

  app.post(
    '/api/v1/projects',
    {
      schema: { tags: ['projects'], body: CreateProjectBody, response: { 201: ProjectView, ...errors } },
      config: { action: 'project:create', resource: resourceOf.organization },
    },
    async (request, reply) => {
      const project = await registry.createProject(
        principalOf(request),
        request.body.name,
        request.body.description,
      );
      return reply.code(201).send(projectView(project));
    },
  );

  app.get(
    '/api/v1/projects',
    {
      schema: { tags: ['projects'], querystring: PageQuery, response: { 200: ProjectPage, ...errors } },
      config: { action: 'project:list', resource: resourceOf.organization },
    },
    async (request) => {
      const found = await registry.listProjects(page(request.query));
      return pageView(
        await visible(found, (p) => request.can('project:read', { kind: 'project', project: p.name })),
        projectView,
      );
    },
  );

  app.get(
    '/api/v1/projects/:project',
    {
      schema: { tags: ['projects'], params: ProjectParams, response: { 200: ProjectView, ...errors } },
      config: { action: 'project:read', resource: resourceOf.project },
    },
    async (request) => projectView(await registry.getProject(request.params.project)),
  );

  app.post(
    '/api/v1/projects/:project/artifacts',
    {
      schema: {
        tags: ['artifacts'],
        params: ProjectParams,
        body: CreateArtifactBody,
        response: { 201: ArtifactView, ...errors },
      },
      config: { action: 'artifact:create', resource: resourceOf.project },
    },
    async (request, reply) => {
      const { project, artifact } = await registry.createArtifact(
        principalOf(request),
        request.params.project,
        request.body,
      );
      return reply.code(201).send(artifactView(project, artifact));
    },
  );

  app.get(
    '/api/v1/projects/:project/artifacts',
    {
      schema: {
        tags: ['artifacts'],
        params: ProjectParams,
        querystring: PageQuery,
        response: { 200: ArtifactPage, ...errors },
      },
      config: { action: 'artifact:list', resource: resourceOf.project },
    },
    async (request) => {
      const { project, page: items } = await registry.listArtifacts(
        request.params.project,
        page(request.query),
      );
      const shown = await visible(items, (a) =>
        request.can('artifact:read', { kind: 'artifact', project: project.name, artifact: a.name }),
      );
      return pageView(shown, (a) => artifactView(project, a));
    },
  );

  app.get(
    '/api/v1/projects/:project/artifacts/:artifact',
    {
      schema: { tags: ['artifacts'], params: ArtifactParams, response: { 200: ArtifactView, ...errors } },
      config: { action: 'artifact:read', resource: resourceOf.artifact },
    },
    async (request) => {
      const { project, artifact } = await registry.getArtifact(
        request.params.project,
        request.params.artifact,
      );
      return artifactView(project, artifact);
    },
  );

  app.patch(
    '/api/v1/projects/:project/artifacts/:artifact',
    {
      schema: {
        tags: ['artifacts'],
        params: ArtifactParams,
        body: UpdateArtifactBody,
        response: { 200: ArtifactView, ...errors },
      },
      config: { action: 'artifact:update', resource: resourceOf.artifact },
    },
    async (request) => {
      const { project, artifact } = await registry.updateArtifact(
        request.params.project,
        request.params.artifact,
        request.body,
      );
      return artifactView(project, artifact);
    },
  );

  app.get(
    '/api/v1/projects/:project/artifacts/:artifact/versions',
    {
      schema: {
        tags: ['versions'],
        params: ArtifactParams,
        querystring: PageQuery,
        response: { 200: VersionPage, ...errors },
      },
      config: { action: 'version:list', resource: resourceOf.artifact },
    },
    async (request) => {
      const found = await registry.listVersions(
        request.params.project,
        request.params.artifact,
        page(request.query),
      );
      const shown = await visible(found.page, (v) =>
        request.can('version:read', {
          kind: 'version',
          project: found.project.name,
          artifact: found.artifact.name,
          version: v.tag,
        }),
      );
      return pageView(shown, (v) => versionView(found.project, found.artifact, v));
    },
  );

  app.get(
    '/api/v1/projects/:project/artifacts/:artifact/versions/:version',
    {
      schema: { tags: ['versions'], params: VersionParams, response: { 200: VersionDetail, ...errors } },
      config: { action: 'version:read', resource: resourceOf.version },
    },
    async (request) => {
      const { project, artifact, version } = request.params;
      return versionDetailView(await registry.getVersionDetail(project, artifact, version));
    },
  );

  app.get(
    '/api/v1/projects/:project/artifacts/:artifact/versions/:version/file',
    {
      schema: {
        tags: ['versions'],
        summary: 'Download one file (Range supported)',
        params: VersionParams,
        querystring: FileQuery,
        response: { 200: Type.Unknown({ description: 'the file bytes' }), 206: Type.Unknown(), ...errors },
      },
      config: { action: 'version:download', resource: resourceOf.version },
    },
    async (request, reply) => {
      const { project, artifact, version } = request.params;
      const { artifact: found } = await registry.getArtifact(project, artifact);
      if (found.sensitivity === 'restricted' && request.principal)
        opts.requireStepUp?.(request.principal, 'downloading a `restricted` artifact');
      const opened = await registry.openFile(project, artifact, version, request.query.path, (size) =>
        parseRange(request.headers.range, size),
      );
      const { file, range, stream } = opened;
      const length = range ? range.end - range.start + 1 : file.size;
      reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', length)
        .header('accept-ranges', 'bytes')
        .header('etag', `"sha256:${file.sha256}"`)
        .header('repr-digest', `sha-256=:${Buffer.from(file.sha256, 'hex').toString('base64')}:`)
        .header('content-disposition', contentDisposition(file.path))
        .header('cache-control', 'no-store')
        .header('x-content-type-options', 'nosniff');
      if (range) reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
      return sendBodyStream(reply, stream, (count) => metrics.bytesSent.inc(count));
    },
  );

  app.post(
    '/api/v1/projects/:project/artifacts/:artifact/versions/:version/uploads',
    {
      schema: {
        tags: ['uploads'],
        params: VersionParams,
        body: CreateUploadBody,
        response: { 201: UploadView, ...errors },
      },
      config: { action: 'version:create', resource: resourceOf.version },
    },
    async (request, reply) => {
      const { project, artifact, version } = request.params;
      const upload = await registry.createUpload(
        principalOf(request),
        project,
        artifact,
        version,
        request.body,
      );
      return reply.code(201).send(uploadDetail(upload));
    },
  );

  app.get(
    '/api/v1/uploads/:upload',
    {
      schema: { tags: ['uploads'], params: UploadParams, response: { 200: UploadView, ...errors } },
      config: { action: 'version:create', resource: resourceOf.upload },
    },
    async (request) => uploadDetail(await registry.getUpload(principalOf(request), request.params.upload)),
  );

  await app.register(async (scope) => {
    // Only this route takes raw bytes; it streams them itself, so the parser hands over the request stream.
    scope.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
    scope.withTypeProvider<TypeBoxTypeProvider>().put(
      '/api/v1/uploads/:upload/parts/:part',
      {
        schema: {
          tags: ['uploads'],
          summary: 'Send bytes of one part, starting at its durable offset',
          params: PartParams,
          headers: Type.Object({ [UPLOAD_OFFSET_HEADER]: Type.Integer({ minimum: 0 }) }),
          response: { 200: PartProgress, ...errors },
        },
        config: { action: 'version:create', resource: resourceOf.upload },
      },
      async (request, reply) => {
        const declared = request.headers['content-length'];
        if (declared === undefined)
          throw new StrongroomError('length_required', 'a chunk needs a Content-Length header');
        const length = Number(declared);
        const offset = request.headers[UPLOAD_OFFSET_HEADER];
        const body = (request.body ?? request.raw) as AsyncIterable<Buffer>;
        const counted = countBytes(body, (n) => metrics.bytesReceived.inc(n));
        const result = await registry.writePart(
          principalOf(request),
          request.params.upload,
          request.params.part,
          offset,
          length,
          counted,
        );
        return reply.header(UPLOAD_OFFSET_HEADER, result.received).send(result);
      },
    );
  });

  app.post(
    '/api/v1/uploads/:upload/commit',
    {
      schema: {
        tags: ['uploads'],
        params: UploadParams,
        body: CommitUploadBody,
        response: { 201: VersionDetail, ...errors },
      },
      config: { action: 'version:create', resource: resourceOf.upload },
      // A commit without a body declares nothing late; it is validated as `{}`.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request, reply) => {
      const detail = await registry.commitUpload(
        principalOf(request),
        request.params.upload,
        request.body.files ?? [],
      );
      return reply.code(201).send(versionDetailView(detail));
    },
  );

  app.delete(
    '/api/v1/uploads/:upload',
    {
      schema: { tags: ['uploads'], params: UploadParams, response: { 204: Type.Null(), ...errors } },
      config: { action: 'version:create', resource: resourceOf.upload },
    },
    async (request, reply) => {
      await registry.abortUpload(principalOf(request), request.params.upload);
      return reply.code(204).send(null);
    },
  );
}

async function* countBytes(body: AsyncIterable<Buffer>, count: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of body) {
    count(chunk.length);
    yield chunk;
  }
}
