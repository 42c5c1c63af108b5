import { runInScope, systemScope } from '../audit/audit-scope.js';
import type { Readable } from 'node:stream';
import type { Clock } from '../core/clock.js';
import type {
  Artifact,
  ArtifactKind,
  Blob,
  FileDigest,
  ManifestEntry,
  Page,
  PageRequest,
  Project,
  Sensitivity,
  StoredFile,
  UploadPart,
  UploadSession,
  Version,
} from '../core/domain.js';
import { StrongroomError, isStrongroomError, quote } from '../core/errors.js';
import { newId, parseId } from '../core/ids.js';
import {
  checkManifestPaths,
  parseArtifactName,
  parseFilePath,
  parseProjectName,
  parseVersionTag,
} from '../core/names.js';
import { openValue, sealValue } from '../crypto/stream-aead.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataReader, MetadataStore, MetadataWriter } from '../storage/metadata-store.js';
import type { KeyService } from './key-service.js';
import { manifestDigest } from './manifest-digest.js';
import { compareUtf8, planParts } from './part-plan.js';
import { PartReceiver, type ChunkResult } from './part-receiver.js';
import { BlobReader, type ByteRange } from './blob-reader.js';

export interface RegistryLimits {
  readonly maxFileBytes: number;
  readonly maxVersionBytes: number;
  readonly maxFiles: number;
  readonly maxMetadataBytes: number;
  readonly uploadTtlSeconds: number;
}

export interface VersionDetailModel {
  readonly project: Project;
  readonly artifact: Artifact;
  readonly version: Version;
  readonly files: readonly ManifestEntry[];
  readonly metadata: Record<string, unknown> | null;
}

export interface UploadModel {
  readonly session: UploadSession;
  readonly project: Project;
  readonly artifact: Artifact;
  readonly version: Version;
  readonly parts: readonly (UploadPart & { readonly files: readonly number[] })[];
}

export interface CreateUploadInput {
  readonly kind?: ArtifactKind | undefined;
  readonly sensitivity?: Sensitivity | undefined;
  readonly description?: string | undefined;
  readonly tags?: readonly string[] | undefined;
  readonly metadata?: Record<string, unknown> | undefined;
  /** Each file's path and size, and its SHA-256 unless the client declares it at commit (single pass). */
  readonly files: readonly DeclaredFile[];
}

export interface DeclaredFile {
  readonly path: string;
  readonly size: number;
  readonly sha256?: string | undefined;
}

export interface OpenedFile {
  readonly file: ManifestEntry;
  readonly range: ByteRange | null;
  readonly stream: Readable;
}

/**
 * The artifact service: projects, artifacts, immutable versions, resumable upload sessions and downloads.
 * It owns invariants N1-N4 and I3; callers (the HTTP layer) have already authenticated and authorized.
 */
export class RegistryService {
  private readonly receiver: PartReceiver;
  private readonly reader: BlobReader;
  private readonly commitsInFlight = new Set<string>();

  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly keys: KeyService,
    private readonly clock: Clock,
    private readonly limits: RegistryLimits,
  ) {
    this.receiver = new PartReceiver(store, blobs, keys);
    this.reader = new BlobReader(store, blobs, keys);
  }

  // ---- projects and artifacts --------------------------------------------------------------------------------

  async createProject(principal: string, name: string, description = ''): Promise<Project> {
    const project: Project = {
      id: newId('project'),
      name: parseProjectName(name),
      description,
      createdAt: this.now(),
      createdBy: principal,
    };
    await this.store.transaction((tx) => tx.insertProject(project));
    return project;
  }

  async getProject(name: string): Promise<Project> {
    const project = isProjectName(name) ? await this.store.getProjectByName(name) : undefined;
    if (!project) throw new StrongroomError('project_not_found', `project ${quote(name)} does not exist`);
    return project;
  }

  listProjects(page: PageRequest): Promise<Page<Project>> {
    return this.store.listProjects(page);
  }

  async createArtifact(
    principal: string,
    projectName: string,
    input: {
      name: string;
      kind: ArtifactKind;
      sensitivity: Sensitivity;
      description?: string;
      tags?: readonly string[];
    },
  ): Promise<{ project: Project; artifact: Artifact }> {
    const project = await this.getProject(projectName);
    const now = this.now();
    const artifact: Artifact = {
      id: newId('artifact'),
      projectId: project.id,
      name: parseArtifactName(input.name),
      kind: input.kind,
      sensitivity: input.sensitivity,
      description: input.description ?? '',
      tags: input.tags ?? [],
      owner: principal,
      createdAt: now,
      updatedAt: now,
    };
    await this.store.transaction((tx) => tx.insertArtifact(artifact));
    return { project, artifact };
  }

  async getArtifact(projectName: string, name: string): Promise<{ project: Project; artifact: Artifact }> {
    const project = await this.getProject(projectName);
    const artifact = isArtifactName(name) ? await this.store.getArtifact(project.id, name) : undefined;
    if (!artifact)
      throw new StrongroomError(
        'artifact_not_found',
        `artifact ${quote(`${projectName}/${name}`)} does not exist`,
      );
    return { project, artifact };
  }

  async listArtifacts(
    projectName: string,
    page: PageRequest,
  ): Promise<{ project: Project; page: Page<Artifact> }> {
    const project = await this.getProject(projectName);
    return { project, page: await this.store.listArtifacts(project.id, page) };
  }

  async updateArtifact(
    projectName: string,
    name: string,
    patch: { description?: string | undefined; tags?: readonly string[] | undefined },
  ): Promise<{ project: Project; artifact: Artifact }> {
    const { artifact } = await this.getArtifact(projectName, name);
    await this.store.transaction((tx) =>
      tx.updateArtifact(artifact.id, {
        ...(patch.description !== undefined ? { description: patch.description } : {}),
        ...(patch.tags !== undefined ? { tags: patch.tags } : {}),
        updatedAt: this.now(),
      }),
    );
    return this.getArtifact(projectName, name);
  }

  // ---- versions ----------------------------------------------------------------------------------------------

  async listVersions(
    projectName: string,
    artifactName: string,
    page: PageRequest,
  ): Promise<{ project: Project; artifact: Artifact; page: Page<Version> }> {
    const { project, artifact } = await this.getArtifact(projectName, artifactName);
    return { project, artifact, page: await this.store.listVersions(artifact.id, page) };
  }

  /** An available version; uploading reservations are not found (N2). */
  async getVersion(projectName: string, artifactName: string, tag: string) {
    const { project, artifact } = await this.getArtifact(projectName, artifactName);
    const version = isVersionTag(tag) ? await this.store.getVersion(artifact.id, tag) : undefined;
    if (!version || version.state !== 'available') {
      throw new StrongroomError(
        'version_not_found',
        `version ${quote(`${projectName}/${artifactName}:${tag}`)} does not exist`,
      );
    }
    return { project, artifact, version };
  }

  async getVersionDetail(
    projectName: string,
    artifactName: string,
    tag: string,
  ): Promise<VersionDetailModel> {
    const { project, artifact, version } = await this.getVersion(projectName, artifactName, tag);
    const [files, metadata] = await Promise.all([
      this.store.listFiles(version.id),
      this.readMetadata(version),
    ]);
    return { project, artifact, version, files: files.map(toManifestEntry), metadata };
  }

  private async readMetadata(version: Version): Promise<Record<string, unknown> | null> {
    const sealed = await this.store.getVersionMetadata(version.id);
    if (!sealed) return null;
    const dek = await this.keys.unwrap(sealed.dataKeyId);
    return JSON.parse(openValue(dek, version.id, sealed.sealed).toString('utf8')) as Record<string, unknown>;
  }

  /** Opens one file of an available version for reading, optionally a byte range of it. */
  async openFile(
    projectName: string,
    artifactName: string,
    tag: string,
    path: string,
    range: (size: number) => ByteRange | null,
  ): Promise<OpenedFile & { version: Version; artifact: Artifact; project: Project }> {
    const found = await this.getVersion(projectName, artifactName, tag);
    const safePath = parseFilePath(path);
    const file = await this.store.getFile(found.version.id, safePath);
    if (!file) throw new StrongroomError('file_not_found', `version has no file ${quote(safePath)}`);
    const wanted = range(file.size);
    const stream = await this.reader.open(file, wanted);
    return { ...found, file: toManifestEntry(file), range: wanted, stream };
  }

  // ---- uploads -----------------------------------------------------------------------------------------------

  /**
   * Reserves the version (exactly one concurrent creator wins: the store's uniqueness, I3) and plans its
   * parts. Nothing becomes visible until `commitUpload`.
   */
  async createUpload(
    principal: string,
    projectName: string,
    artifactName: string,
    tag: string,
    input: CreateUploadInput,
  ): Promise<UploadModel> {
    const project = await this.getProject(projectName);
    parseArtifactName(artifactName);
    parseVersionTag(tag);
    const files = this.checkManifest(input.files);
    const metadataBytes = this.encodeMetadata(input.metadata);
    const artifact = await this.ensureArtifact(principal, project, artifactName, input);

    const now = this.clock.now();
    const versionId = newId('version');
    const uploadId = newId('upload');
    const plan = planParts(files);
    const version: Version = {
      id: versionId,
      artifactId: artifact.id,
      tag,
      state: 'uploading',
      fileCount: files.length,
      totalSize: files.reduce((sum, f) => sum + f.size, 0),
      manifestDigest: null,
      createdAt: now.toISOString(),
      createdBy: principal,
      committedAt: null,
    };
    const session: UploadSession = {
      id: uploadId,
      versionId,
      principal,
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + this.limits.uploadTtlSeconds * 1000).toISOString(),
    };

    const parts = await this.store.transaction(async (tx) => {
      let metadata = null;
      if (metadataBytes) {
        const key = await this.keys.createDataKey(tx);
        metadata = { dataKeyId: key.id, sealed: sealValue(key.dek, versionId, metadataBytes) };
      }
      await tx.insertVersion(version, metadata);
      const stored: StoredFile[] = [];
      const partRows: UploadPart[] = [];
      const blobRows: Blob[] = [];
      for (const [index, planned] of plan.entries()) {
        const blobId = newId('blob');
        const key = await this.keys.createDataKey(tx);
        blobRows.push({
          id: blobId,
          dataKeyId: key.id,
          size: planned.size,
          state: 'staging',
          uploadId,
          createdAt: session.createdAt,
        });
        partRows.push({ uploadId, index, blobId, size: planned.size, received: 0 });
        planned.files.forEach((fileIndex, i) => {
          const f = files[fileIndex] as PendingFile;
          // An empty file's digest is known without a byte, even if its part never sees a chunk.
          const computedSha256 = f.size === 0 ? EMPTY_SHA256 : null;
          stored.push({ ...f, computedSha256, versionId, blobId, offset: planned.offsets[i] ?? 0 });
        });
      }
      for (const blob of blobRows) await tx.insertBlob(blob);
      await tx.insertFiles(stored);
      await tx.insertUpload(session, partRows);
      return partRows;
    });
    return {
      session,
      project,
      artifact,
      version,
      parts: parts.map((p, i) => ({ ...p, files: plan[i]?.files ?? [] })),
    };
  }

  private checkManifest(declared: readonly DeclaredFile[]): PendingFile[] {
    if (declared.length === 0)
      throw new StrongroomError('invalid_request', 'a version needs at least one file');
    if (declared.length > this.limits.maxFiles) {
      throw new StrongroomError(
        'payload_too_large',
        `a version may have at most ${this.limits.maxFiles} files`,
      );
    }
    checkManifestPaths(declared.map((f) => f.path));
    let total = 0;
    for (const f of declared) {
      if (f.size === 0 && f.sha256 !== undefined && f.sha256 !== EMPTY_SHA256) {
        throw new StrongroomError(
          'digest_mismatch',
          `file ${quote(f.path)} is empty, so its sha256 must be ${EMPTY_SHA256}`,
        );
      }
      if (!Number.isSafeInteger(f.size) || f.size < 0)
        throw new StrongroomError('invalid_request', `file ${quote(f.path)} has an invalid size`);
      if (f.sha256 !== undefined && !SHA256_HEX.test(f.sha256))
        throw new StrongroomError('invalid_request', `file ${quote(f.path)} needs a lowercase hex sha256`);
      if (f.size > this.limits.maxFileBytes) {
        throw new StrongroomError(
          'payload_too_large',
          `file ${quote(f.path)} is larger than the limit of ${this.limits.maxFileBytes} bytes`,
        );
      }
      total += f.size;
    }
    if (total > this.limits.maxVersionBytes) {
      throw new StrongroomError(
        'payload_too_large',
        `the version is larger than the limit of ${this.limits.maxVersionBytes} bytes`,
      );
    }
    return declared
      .map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 ?? null }))
      .sort((a, b) => compareUtf8(a.path, b.path));
  }

  private encodeMetadata(metadata: Record<string, unknown> | undefined): Buffer | null {
    if (metadata === undefined) return null;
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new StrongroomError('invalid_metadata', 'metadata must be a JSON object');
    }
    const bytes = Buffer.from(JSON.stringify(metadata), 'utf8');
    if (bytes.length > this.limits.maxMetadataBytes) {
      throw new StrongroomError(
        'invalid_metadata',
        `metadata is larger than the limit of ${this.limits.maxMetadataBytes} bytes`,
      );
    }
    return bytes;
  }

  /** The artifact a push goes to: created on first push, and never silently changed by a later one. */
  private async ensureArtifact(
    principal: string,
    project: Project,
    name: string,
    input: CreateUploadInput,
  ): Promise<Artifact> {
    const existing = await this.store.getArtifact(project.id, name);
    if (existing) {
      const conflicts = [
        input.kind !== undefined && input.kind !== existing.kind ? `kind ${existing.kind}` : null,
        input.sensitivity !== undefined && input.sensitivity !== existing.sensitivity
          ? `sensitivity ${existing.sensitivity}`
          : null,
      ].filter((c): c is string => c !== null);
      if (conflicts.length > 0) {
        throw new StrongroomError(
          'artifact_conflict',
          `artifact ${quote(name)} exists with ${conflicts.join(' and ')}`,
          {
            details: { kind: existing.kind, sensitivity: existing.sensitivity },
          },
        );
      }
      return existing;
    }
    try {
      return (
        await this.createArtifact(principal, project.name, {
          name,
          kind: input.kind ?? 'other',
          sensitivity: input.sensitivity ?? 'internal',
          ...(input.description !== undefined ? { description: input.description } : {}),
          ...(input.tags !== undefined ? { tags: input.tags } : {}),
        })
      ).artifact;
    } catch (err) {
      // Two first pushes raced to create the artifact: the loser uses the winner's.
      if (isStrongroomError(err, 'artifact_exists'))
        return this.ensureArtifact(principal, project, name, input);
      throw err;
    }
  }

  /** The session as its owner sees it; to anyone else, or once expired, it does not exist. */
  async getUpload(principal: string, id: string): Promise<UploadModel> {
    const session = await this.findSession(this.store, principal, id);
    const version = await this.store.getVersionById(session.versionId);
    if (!version) throw uploadNotFound(id);
    const [parts, files] = await Promise.all([
      this.store.listParts(session.id),
      this.store.listFiles(version.id),
    ]);
    const { project, artifact } = await this.artifactOf(version);
    const indexOfBlob = new Map<string, number[]>();
    files.forEach((f, i) => indexOfBlob.set(f.blobId, [...(indexOfBlob.get(f.blobId) ?? []), i]));
    return {
      session,
      project,
      artifact,
      version,
      parts: parts.map((p) => ({ ...p, files: indexOfBlob.get(p.blobId) ?? [] })),
    };
  }

  private async artifactOf(version: Version): Promise<{ project: Project; artifact: Artifact }> {
    const artifact = await this.store.getArtifactById(version.artifactId);
    const project = artifact ? await this.store.getProjectById(artifact.projectId) : undefined;
    if (!artifact || !project)
      throw new StrongroomError('internal_error', 'a version refers to a missing artifact');
    return { project, artifact };
  }

  private async findSession(reader: MetadataReader, principal: string, id: string): Promise<UploadSession> {
    const uploadId = parseId('upload', id);
    const session = uploadId ? await reader.getUpload(uploadId) : undefined;
    if (!session || session.principal !== principal || session.expiresAt <= this.now())
      throw uploadNotFound(id);
    return session;
  }

  /**
   * Receives bytes [offset, offset + length) of one part. On success they are durable (fsynced) before the
   * progress is recorded (N1). A digest mismatch aborts the whole session: nothing of it is kept (E6).
   */
  async writePart(
    principal: string,
    id: string,
    index: number,
    offset: number,
    length: number,
    body: AsyncIterable<Buffer>,
  ): Promise<ChunkResult> {
    const session = await this.findSession(this.store, principal, id);
    const parts = await this.store.listParts(session.id);
    const part = parts.find((p) => p.index === index);
    if (!part) throw new StrongroomError('invalid_request', `upload has no part ${index}`);
    try {
      return await this.receiver.receive(session, part, offset, length, body);
    } catch (err) {
      if (isStrongroomError(err, 'digest_mismatch') || isStrongroomError(err, 'size_mismatch')) {
        await this.discardUpload(session);
      }
      throw err;
    }
  }

  /**
   * Makes the version available: every file's computed digest checked against the declared one (given up front
   * or now, in `late`), blobs promoted durably, then one metadata transaction (N1, N2, N4). A mismatch aborts
   * the whole session, as it does during the upload (E6).
   */
  async commitUpload(
    principal: string,
    id: string,
    late: readonly FileDigest[] = [],
  ): Promise<VersionDetailModel> {
    const session = await this.findSession(this.store, principal, id);
    if (this.commitsInFlight.has(session.id)) {
      throw new StrongroomError('upload_incomplete', 'this upload is already being committed');
    }
    this.commitsInFlight.add(session.id);
    try {
      const parts = await this.store.listParts(session.id);
      const missing = parts.filter((p) => p.received !== p.size);
      if (missing.length > 0) {
        throw new StrongroomError(
          'upload_incomplete',
          `${missing.length} of ${parts.length} parts are not complete`,
          {
            details: { incompleteParts: missing.map((p) => p.index) },
          },
        );
      }
      const version = await this.store.getVersionById(session.versionId);
      if (!version) throw uploadNotFound(id);
      const stored = await this.store.listFiles(version.id);
      let final: { files: ManifestEntry[]; declaredNow: FileDigest[] };
      try {
        final = settleDigests(stored, late);
      } catch (err) {
        if (isStrongroomError(err, 'digest_mismatch')) await this.discardUpload(session);
        throw err;
      }
      for (const part of parts) {
        if (part.size === 0) await this.receiver.sealEmpty(part);
        await this.blobs.promote(part.blobId);
      }
      const digest = manifestDigest(final.files);
      await this.store.transaction(async (tx) => {
        if (!(await tx.getUpload(session.id))) throw uploadNotFound(id);
        if (final.declaredNow.length > 0) await tx.setDeclaredDigests(version.id, final.declaredNow);
        await tx.markVersionAvailable(version.id, digest, this.now());
        await tx.commitBlobs(session.id);
        await tx.deleteUpload(session.id);
      });
      this.receiver.forget(session.id);
      const { project, artifact } = await this.artifactOf(version);
      return this.getVersionDetail(project.name, artifact.name, version.tag);
    } finally {
      this.commitsInFlight.delete(session.id);
    }
  }

  async abortUpload(principal: string, id: string): Promise<void> {
    const session = await this.findSession(this.store, principal, id);
    await this.discardUpload(session);
  }

  /**
   * Frees a reservation: metadata first, in one transaction, then the staged bytes. A crash in between leaves
   * only unreferenced files, which `collectGarbage` removes (N4).
   */
  private async discardUpload(session: UploadSession): Promise<void> {
    this.receiver.forget(session.id);
    const blobs = await this.store.transaction(async (tx) => {
      const staged = await tx.listUploadBlobs(session.id);
      await discardRows(tx, session, staged);
      return staged;
    });
    for (const blob of blobs) await this.blobs.delete(blob.id);
  }

  // ---- maintenance -------------------------------------------------------------------------------------------

  /**
   * Collects what a crash or an abandoned client left behind: expired sessions with their reservations, staged
   * objects no session owns, and final blobs no row refers to (N4). Safe to run at any time.
   */
  async collectGarbage(): Promise<{ expiredUploads: number; orphanObjects: number }> {
    let expiredUploads = 0;
    for (;;) {
      const expired = await this.store.listExpiredUploads(this.now(), 100);
      if (expired.length === 0) break;
      for (const session of expired) {
        const scope = systemScope('upload:expire', `upload/${session.id}`, () => ({
          version: session.versionId,
        }));
        await runInScope(scope, () => this.discardUpload(session));
        expiredUploads++;
      }
    }
    let orphanObjects = 0;
    const staged: { id: Blob['id'] }[] = [];
    for await (const entry of this.blobs.listStaging()) staged.push(entry);
    const finals: Blob['id'][] = [];
    for await (const blobId of this.blobs.list()) finals.push(blobId);
    for (const batch of chunks([...staged.map((s) => s.id), ...finals], 500)) {
      const known = await this.store.existingBlobIds(batch);
      for (const blobId of batch) {
        if (known.has(blobId)) continue;
        await this.blobs.delete(blobId);
        orphanObjects++;
      }
    }
    return { expiredUploads, orphanObjects };
  }

  private now(): string {
    return this.clock.now().toISOString();
  }
}

async function discardRows(
  tx: MetadataWriter,
  session: UploadSession,
  staged: readonly Blob[],
): Promise<void> {
  const version = await tx.getVersionById(session.versionId);
  const metadata = version ? await tx.getVersionMetadata(version.id) : undefined;
  await tx.deleteUpload(session.id);
  if (version && version.state === 'uploading') await tx.deleteVersion(version.id);
  if (metadata) await tx.deleteDataKey(metadata.dataKeyId);
  for (const blob of staged) {
    await tx.deleteBlob(blob.id);
    await tx.deleteDataKey(blob.dataKeyId);
  }
}

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** An available version's file as clients see it; its declared digest is always set by then. */
function toManifestEntry(f: StoredFile): ManifestEntry {
  if (f.sha256 === null) throw new StrongroomError('internal_error', 'an available file has no digest');
  return { path: f.path, size: f.size, sha256: f.sha256 };
}

interface PendingFile {
  readonly path: string;
  readonly size: number;
  readonly sha256: string | null;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The final manifest of a commit: each file's expected digest (declared up front, or in `late`) must be given
 * exactly once and equal the digest the server computed from the sealed bytes.
 */
function settleDigests(
  stored: readonly StoredFile[],
  late: readonly FileDigest[],
): { files: ManifestEntry[]; declaredNow: FileDigest[] } {
  const lateByPath = new Map<string, string>();
  for (const d of late) {
    if (lateByPath.has(d.path))
      throw new StrongroomError('invalid_request', `file ${quote(d.path)} is declared twice`);
    if (!SHA256_HEX.test(d.sha256)) {
      throw new StrongroomError('invalid_request', `file ${quote(d.path)} needs a lowercase hex sha256`);
    }
    lateByPath.set(d.path, d.sha256);
  }
  const files: ManifestEntry[] = [];
  const declaredNow: FileDigest[] = [];
  for (const f of stored) {
    const given = lateByPath.get(f.path);
    lateByPath.delete(f.path);
    const expected = f.sha256 ?? given;
    if (expected === undefined) {
      throw new StrongroomError(
        'invalid_request',
        `file ${quote(f.path)} has no declared sha256; declare it at commit`,
      );
    }
    if (given !== undefined && f.sha256 !== null && given !== f.sha256) {
      throw new StrongroomError(
        'digest_mismatch',
        `file ${quote(f.path)} was declared with two different digests`,
      );
    }
    if (f.computedSha256 === null) {
      throw new StrongroomError(
        'upload_incomplete',
        `file ${quote(f.path)} has not been received completely`,
      );
    }
    if (f.computedSha256 !== expected) {
      throw new StrongroomError(
        'digest_mismatch',
        `file ${quote(f.path)} has sha256 ${f.computedSha256}, not the declared ${expected}`,
        { details: { path: f.path, expected, actual: f.computedSha256 } },
      );
    }
    if (f.sha256 === null) declaredNow.push({ path: f.path, sha256: expected });
    files.push({ path: f.path, size: f.size, sha256: expected });
  }
  const unknown = [...lateByPath.keys()];
  if (unknown.length > 0)
    throw new StrongroomError('invalid_request', `the version has no file ${quote(unknown[0] ?? '')}`);
  return { files, declaredNow };
}

function uploadNotFound(id: string): StrongroomError {
  return new StrongroomError('upload_not_found', `upload ${quote(id)} does not exist`);
}

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const attempt = (parse: (s: string) => string) => (s: string) => {
  try {
    parse(s);
    return true;
  } catch {
    return false;
  }
};
const isProjectName = attempt(parseProjectName);
const isArtifactName = attempt(parseArtifactName);
const isVersionTag = attempt(parseVersionTag);
