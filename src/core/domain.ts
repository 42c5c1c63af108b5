import type {
  ArtifactId,
  ElevationId,
  BlobId,
  DataKeyId,
  GroupId,
  ProjectId,
  ServiceAccountId,
  SessionId,
  TokenId,
  UploadId,
  UserId,
  VersionId,
} from './ids.js';

export const ARTIFACT_KINDS = ['model', 'dataset', 'features', 'evaluation', 'other'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

export const SENSITIVITIES = ['public', 'internal', 'confidential', 'restricted'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** `uploading` versions are reservations: never readable, never listed as available (invariant N2). */
export const VERSION_STATES = ['uploading', 'available'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export interface Project {
  readonly id: ProjectId;
  readonly name: string;
  readonly description: string;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface Artifact {
  readonly id: ArtifactId;
  readonly projectId: ProjectId;
  readonly name: string;
  readonly kind: ArtifactKind;
  readonly sensitivity: Sensitivity;
  readonly description: string;
  readonly tags: readonly string[];
  readonly owner: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Version {
  readonly id: VersionId;
  readonly artifactId: ArtifactId;
  readonly tag: string;
  readonly state: VersionState;
  readonly fileCount: number;
  readonly totalSize: number;
  /** SHA-256 over the canonical manifest; set when the version becomes available. */
  readonly manifestDigest: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly committedAt: string | null;
}

/** What a client declares and what `show` returns for each file. */
export interface ManifestEntry {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

/**
 * Where a file's bytes live: a range of one blob's plaintext. Small files share a blob (a pack) so a directory
 * of a thousand files costs one durable write, not a thousand. Never returned to clients (B4).
 */
export interface StoredFile {
  readonly versionId: VersionId;
  readonly path: string;
  readonly size: number;
  /**
   * The SHA-256 the client declared: when the session was created, or (for a single-pass push) at commit.
   * Always set once the version is available.
   */
  readonly sha256: string | null;
  /** The SHA-256 the server computed from the bytes it sealed; set once the file's last byte is durable. */
  readonly computedSha256: string | null;
  readonly blobId: BlobId;
  readonly offset: number;
}

/** A file's digest, declared or computed. */
export interface FileDigest {
  readonly path: string;
  readonly sha256: string;
}

/** An envelope-encrypted data key: a random DEK wrapped by a KEK version. Destroying it erases its data. */
export interface DataKey {
  readonly id: DataKeyId;
  readonly wrapped: Buffer;
  readonly kekVersion: number;
  readonly createdAt: string;
}

export const BLOB_STATES = ['staging', 'committed'] as const;
export type BlobState = (typeof BLOB_STATES)[number];

/** One encrypted object in the blob store; its plaintext is one upload part. */
export interface Blob {
  readonly id: BlobId;
  readonly dataKeyId: DataKeyId;
  readonly size: number;
  readonly state: BlobState;
  /** The upload session that is writing it while it is staging; null once committed. */
  readonly uploadId: UploadId | null;
  readonly createdAt: string;
}

/** A reservation of a version plus the plan for its bytes; resumable until it expires. */
export interface UploadSession {
  readonly id: UploadId;
  readonly versionId: VersionId;
  readonly principal: string;
  readonly createdAt: string;
  readonly expiresAt: string;
}

/** One resumable byte stream of an upload: either one large file or several small files back to back. */
export interface UploadPart {
  readonly uploadId: UploadId;
  readonly index: number;
  readonly blobId: BlobId;
  readonly size: number;
  /** Durably received plaintext bytes; always a whole number of segments until the part is complete. */
  readonly received: number;
}

export interface PageRequest {
  readonly limit: number;
  /** Opaque cursor from the previous page: the sort key of its last item. */
  readonly after?: string | undefined;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass as `after` for the next page; null on the last page. */
  readonly next: string | null;
}

export const MAX_PAGE_SIZE = 200;
export const DEFAULT_PAGE_SIZE = 50;

/** A key-encryption key as stored: wrapped by the master key; its material is dropped once destroyed. */
export interface KekRecord {
  readonly version: number;
  readonly wrappedKey: Buffer;
  readonly createdAt: string;
  readonly destroyedAt: string | null;
}

/** Encrypted free-form version metadata: sealed with its own data key, bound to the version id. */
export interface SealedValue {
  readonly dataKeyId: DataKeyId;
  readonly sealed: Buffer;
}

// ---- identity (issue 4, docs/identity.md) -----------------------------------------------------------------

export const USER_STATES = ['invited', 'active', 'disabled'] as const;
export type UserState = (typeof USER_STATES)[number];

export const ENVIRONMENTS = ['development', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export interface User {
  readonly id: UserId;
  readonly username: string;
  readonly displayName: string;
  readonly email: string | null;
  readonly state: UserState;
  /** argon2id PHC string; null until the invitation is accepted (or for single-sign-on-only users). */
  readonly passwordHash: string | null;
  /** The TOTP secret sealed under a data key; null until enrolment finished. */
  readonly totp: SealedValue | null;
  /** The last TOTP time step accepted: a code of that step or earlier is a replay (A5). */
  readonly totpLastStep: number;
  readonly failedLogins: number;
  readonly lockedUntil: string | null;
  readonly createdAt: string;
  readonly createdBy: string;
}

export interface Group {
  readonly id: GroupId;
  readonly name: string;
  readonly description: string;
  readonly createdAt: string;
}

export interface ServiceAccount {
  readonly id: ServiceAccountId;
  readonly name: string;
  readonly description: string;
  readonly environment: Environment;
  readonly disabled: boolean;
  readonly createdAt: string;
  readonly createdBy: string;
}

/** What a token may do, on top of what policy allows its principal: it can only narrow (least privilege). */
export interface TokenScope {
  /** Project names; absent means every project the principal may use. */
  readonly projects?: readonly string[];
  /** Action names; absent means every action. */
  readonly actions?: readonly string[];
  /** Only read actions (list, read, download). */
  readonly readOnly: boolean;
}

export const TOKEN_KINDS = ['access', 'refresh', 'api', 'federated', 'invite'] as const;
export type TokenKind = (typeof TOKEN_KINDS)[number];

export interface Session {
  readonly id: SessionId;
  readonly userId: UserId;
  readonly authMethod: string;
  /** When the user last proved a second factor in this session (login or step-up). */
  readonly mfaAt: string | null;
  /** The device posture the identity provider asserted at sign-in (single sign-on only). */
  readonly devicePosture: string | null;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
}

export interface TokenRecord {
  readonly id: TokenId;
  readonly kind: TokenKind;
  /** SHA-256 of the token: the token itself is never stored (A6). */
  readonly hash: string;
  readonly principalId: string;
  readonly principalKind: 'user' | 'service';
  readonly sessionId: SessionId | null;
  /** The token this one was derived from (A7: revoking it revokes this one). */
  readonly parentId: TokenId | null;
  readonly scope: TokenScope | null;
  readonly environment: Environment | null;
  readonly description: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly expiresAt: string;
  readonly revokedAt: string | null;
}

// ---- authorization (issue 5, docs/authorization.md) -------------------------------------------------------

export const POLICY_SCOPE_TYPES = ['Organization', 'Project', 'Artifact'] as const;
export type PolicyScopeType = (typeof POLICY_SCOPE_TYPES)[number];
/** Where a binding or policy applies: the organization, a project, or an artifact (`project/artifact`). */
export interface PolicyScope {
  readonly type: PolicyScopeType;
  readonly id: string;
}

export const BINDING_PRINCIPAL_TYPES = ['User', 'ServiceAccount', 'Group'] as const;
export type BindingPrincipalType = (typeof BINDING_PRINCIPAL_TYPES)[number];

/** A stored role binding: a built-in role granted to a user, service account or group at a scope. */
export interface RoleBindingRecord {
  readonly id: string;
  readonly role: string;
  /** A user or service account by id, a group by name (the ids Cedar entities carry). */
  readonly principal: { readonly type: BindingPrincipalType; readonly id: string };
  readonly scope: PolicyScope;
  /** After this RFC 3339 time the binding grants nothing; null for a standing binding. */
  readonly expiresAt: string | null;
  readonly description: string;
  readonly createdAt: string;
  readonly createdBy: string;
  /** The approved just-in-time elevation that created this binding. */
  readonly elevationId: ElevationId | null;
}

/** A stored custom Cedar policy, confined to its scope. */
export interface PolicyRecord {
  readonly id: string;
  readonly text: string;
  readonly scope: PolicyScope;
  readonly description: string;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

export const ELEVATION_STATES = ['pending', 'approved', 'denied', 'cancelled'] as const;
export type ElevationState = (typeof ELEVATION_STATES)[number];

/** A just-in-time elevation: a role for a scope and a duration, asked for with a reason, decided by another. */
export interface ElevationRecord {
  readonly id: ElevationId;
  readonly requesterId: UserId;
  readonly role: string;
  readonly scope: PolicyScope;
  readonly durationSeconds: number;
  readonly reason: string;
  readonly state: ElevationState;
  readonly requestedAt: string;
  /** A request still pending at this time can no longer be approved. */
  readonly requestExpiresAt: string;
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly decisionReason: string | null;
  /** The binding an approval created, and when it ends. */
  readonly bindingId: string | null;
  readonly grantExpiresAt: string | null;
}
