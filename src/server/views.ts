import type { ArtifactView, ProjectView, UploadView, VersionDetail, VersionView } from '../api/schemas.js';
import type { Artifact, Page, Project, Version } from '../core/domain.js';
import { SEGMENT_SIZE } from '../crypto/stream-aead.js';
import type { UploadModel, VersionDetailModel } from '../registry/registry-service.js';

/**
 * Domain records -> API views. Only fields listed here ever leave the server (B4): ids of storage objects,
 * wrapped keys and owners of upload sessions never do.
 */
export function projectView(p: Project): ProjectView {
  return { name: p.name, description: p.description, createdAt: p.createdAt, createdBy: p.createdBy };
}

export function artifactView(project: Project, a: Artifact): ArtifactView {
  return {
    project: project.name,
    name: a.name,
    kind: a.kind,
    sensitivity: a.sensitivity,
    description: a.description,
    tags: [...a.tags],
    owner: a.owner,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}

export function versionView(project: Project, artifact: Artifact, v: Version): VersionView {
  return {
    project: project.name,
    artifact: artifact.name,
    version: v.tag,
    state: v.state,
    fileCount: v.fileCount,
    totalSize: v.totalSize,
    manifestDigest: v.manifestDigest,
    createdAt: v.createdAt,
    createdBy: v.createdBy,
    committedAt: v.committedAt,
  };
}

export function versionDetailView(d: VersionDetailModel): VersionDetail {
  return {
    version: versionView(d.project, d.artifact, d.version),
    artifact: artifactView(d.project, d.artifact),
    files: d.files.map((f) => ({ path: f.path, size: f.size, sha256: f.sha256 })),
    metadata: d.metadata,
  };
}

export function uploadDetail(u: UploadModel): UploadView {
  return {
    id: u.session.id,
    project: u.project.name,
    artifact: u.artifact.name,
    version: u.version.tag,
    expiresAt: u.session.expiresAt,
    segmentSize: SEGMENT_SIZE,
    parts: u.parts.map((p) => ({ index: p.index, size: p.size, received: p.received, files: [...p.files] })),
  };
}

export function pageView<T, V>(
  page: Page<T>,
  map: (item: T) => V,
): { items: V[]; nextCursor: string | null } {
  return {
    items: page.items.map(map),
    nextCursor: page.next === null ? null : Buffer.from(page.next, 'utf8').toString('base64url'),
  };
}

/** Cursors are opaque to clients: base64url of the last key. */
export function decodeCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  return Buffer.from(cursor, 'base64url').toString('utf8');
}
