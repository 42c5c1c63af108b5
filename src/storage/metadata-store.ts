import type {
  Artifact,
  ArtifactKind,
  ElevationRecord,
  ElevationState,
  PolicyRecord,
  RoleBindingRecord,
  Group,
  ServiceAccount,
  Session,
  TokenRecord,
  User,
  Blob,
  DataKey,
  FileDigest,
  KekRecord,
  Page,
  PageRequest,
  Project,
  SealedValue,
  Sensitivity,
  StoredFile,
  UploadPart,
  UploadSession,
  Version,
  VersionState,
} from '../core/domain.js';
import type {
  ArtifactId,
  BlobId,
  ElevationId,
  DataKeyId,
  GroupId,
  ProjectId,
  ServiceAccountId,
  SessionId,
  TokenId,
  UploadId,
  UserId,
  VersionId,
} from '../core/ids.js';

/**
 * Metadata persistence, owned by the core and implemented per backend (SQLite now, PostgreSQL later). Every
 * implementation passes the same conformance suite (test/storage/metadata-store.conformance.ts) unchanged.
 *
 * Reads may happen anywhere; writes happen only inside `transaction`, so a change and its audit record commit
 * together or not at all (invariants N1, N4, N5). Uniqueness is enforced by the store, not by read-then-write,
 * so two concurrent creators get exactly one success (I3). Implementations translate constraint violations
 * into the StrongroomError codes named below and every other failure into `storage_error`.
 */
export interface MetadataReader {
  getSetting(key: string): Promise<string | undefined>;
  listKeks(): Promise<readonly KekRecord[]>;

  getProjectByName(name: string): Promise<Project | undefined>;
  getProjectById(id: ProjectId): Promise<Project | undefined>;
  /** Ordered by name; `after` is a name. */
  listProjects(page: PageRequest): Promise<Page<Project>>;

  getArtifact(projectId: ProjectId, name: string): Promise<Artifact | undefined>;
  getArtifactById(id: ArtifactId): Promise<Artifact | undefined>;
  /** Ordered by name; `after` is a name. */
  listArtifacts(projectId: ProjectId, page: PageRequest): Promise<Page<Artifact>>;

  getVersion(artifactId: ArtifactId, tag: string): Promise<Version | undefined>;
  /**
   * What authorization needs about an artifact (and one of its versions), by names, in one read: undefined
   * when the project or artifact does not exist; `versionState` null when the version does not.
   */
  getResourceFacts(project: string, artifact: string, tag: string | null): Promise<ResourceFacts | undefined>;
  getVersionById(id: VersionId): Promise<Version | undefined>;
  /** Ordered by tag; `after` is a tag. Only `available` versions unless `includeUploading`. */
  listVersions(artifactId: ArtifactId, page: PageRequest, includeUploading?: boolean): Promise<Page<Version>>;
  getVersionMetadata(versionId: VersionId): Promise<SealedValue | undefined>;
  /** Every file of a version, ordered by path (byte order of the UTF-8 path). */
  listFiles(versionId: VersionId): Promise<readonly StoredFile[]>;
  getFile(versionId: VersionId, path: string): Promise<StoredFile | undefined>;

  getUpload(id: UploadId): Promise<UploadSession | undefined>;
  /** Ordered by index. */
  listParts(uploadId: UploadId): Promise<readonly UploadPart[]>;
  /** Sessions whose `expiresAt` is at or before `now`. */
  listExpiredUploads(now: string, limit: number): Promise<readonly UploadSession[]>;

  getBlob(id: BlobId): Promise<Blob | undefined>;
  /** Which of these ids have a blob row (any state); used to collect orphaned files. */
  existingBlobIds(ids: readonly BlobId[]): Promise<ReadonlySet<BlobId>>;

  getDataKey(id: DataKeyId): Promise<DataKey | undefined>;
  /** Data keys wrapped by a KEK version lower than `kekVersion`, any order, at most `limit`. */
  listDataKeysBelow(kekVersion: number, limit: number): Promise<readonly DataKey[]>;
  /** How many data keys each KEK version wraps. */
  countDataKeysByKek(): Promise<ReadonlyMap<number, number>>;

  /** The audit log's end (always present; size 0 for a new log). */
  getAuditState(): Promise<AuditLogState>;
  /** Where the retained log starts (size 0 until retention prunes). */
  getAuditBoundary(): Promise<AuditBoundary>;
  /** Stored (not pruned) events matching the query, in sequence order, after `afterSeq`, at most `limit`. */
  searchAuditEvents(query: AuditQuery): Promise<readonly StoredAuditEvent[]>;
  /** Leaf hashes of events `fromSeq..toSeq` inclusive, pruned events included, in sequence order. */
  listAuditLeaves(fromSeq: number, toSeq: number): Promise<readonly Buffer[]>;
  /** The highest sequence number whose event time is before `time`; 0 when there is none. */
  lastAuditSeqBefore(time: string): Promise<number>;
  getAuditCheckpoint(size: number): Promise<StoredCheckpoint | undefined>;
  latestAuditCheckpoint(): Promise<StoredCheckpoint | undefined>;
  /** Checkpoints with `fromSize <= size <= toSize`, by size, at most `limit`. */
  listAuditCheckpoints(fromSize: number, toSize: number, limit: number): Promise<readonly StoredCheckpoint[]>;

  getUserById(id: UserId): Promise<User | undefined>;
  getUserByName(username: string): Promise<User | undefined>;
  /** Ordered by username; `after` is a username. */
  listUsers(page: PageRequest): Promise<Page<User>>;
  getGroupByName(name: string): Promise<Group | undefined>;
  /** Ordered by name; `after` is a name. */
  listGroups(page: PageRequest): Promise<Page<Group>>;
  /** Principal ids in the group, ordered. */
  listGroupMembers(groupId: GroupId): Promise<readonly { principalId: string; source: string }[]>;
  /** Names of the groups a principal belongs to, ordered. */
  groupsOf(principalId: string): Promise<readonly string[]>;
  getServiceAccountById(id: ServiceAccountId): Promise<ServiceAccount | undefined>;
  getServiceAccountByName(name: string): Promise<ServiceAccount | undefined>;
  /** Ordered by name; `after` is a name. */
  listServiceAccounts(page: PageRequest): Promise<Page<ServiceAccount>>;
  getSession(id: SessionId): Promise<Session | undefined>;
  getTokenByHash(hash: string): Promise<TokenRecord | undefined>;
  getTokenById(id: TokenId): Promise<TokenRecord | undefined>;
  /** Tokens of a principal (every kind except invitations and revoked ones unless asked), newest first. */
  listTokens(principalId: string, includeRevoked: boolean): Promise<readonly TokenRecord[]>;
  /** The user a federated identity (provider + subject) belongs to. */
  getFederatedUser(provider: string, subject: string): Promise<UserId | undefined>;
  /** How many recovery codes the user has left. */
  countRecoveryCodes(userId: UserId): Promise<number>;

  /** Every role binding, expired ones included, ordered by id (the authorizer compiles them all). */
  listRoleBindings(): Promise<readonly RoleBindingRecord[]>;
  getRoleBinding(id: string): Promise<RoleBindingRecord | undefined>;
  /** Every custom policy, ordered by id. */
  listPolicies(): Promise<readonly PolicyRecord[]>;
  getPolicy(id: string): Promise<PolicyRecord | undefined>;
  getElevation(id: ElevationId): Promise<ElevationRecord | undefined>;
  /** Elevation requests, newest first, optionally only one state or one requester. */
  listElevations(filter: ElevationFilter): Promise<readonly ElevationRecord[]>;
}

export interface ResourceFacts {
  readonly sensitivity: Sensitivity;
  readonly versionState: VersionState | null;
}

export interface ElevationFilter {
  readonly state?: ElevationState;
  readonly requesterId?: UserId;
  readonly limit: number;
}

/** How a pending elevation request was closed. */
export interface ElevationDecision {
  readonly state: Exclude<ElevationState, 'pending'>;
  readonly decidedBy: string;
  readonly decidedAt: string;
  readonly decisionReason: string | null;
  readonly bindingId: string | null;
  readonly grantExpiresAt: string | null;
}

export interface UserPatch {
  readonly displayName?: string;
  readonly email?: string | null;
  readonly state?: User['state'];
  readonly passwordHash?: string | null;
  readonly totp?: SealedValue | null;
  readonly totpLastStep?: number;
  readonly failedLogins?: number;
  readonly lockedUntil?: string | null;
  readonly updatedAt: string;
}

/** The end of the audit log: how many events, the hash of the last, the RFC 6962 compact range over all. */
export interface AuditLogState {
  readonly size: number;
  readonly lastHash: string;
  /** Compact-range nodes (32 bytes each), largest subtree first. */
  readonly frontier: readonly Buffer[];
  /** Events up to this seq were archived and pruned (0 when none were). */
  readonly prunedThrough: number;
}

/** The log just before its first retained event: what an export after pruning starts from. */
export interface AuditBoundary {
  readonly size: number;
  /** Hash of event `size` (64 zeros when size is 0). */
  readonly lastHash: string;
  /** Compact range over the first `size` leaves. */
  readonly frontier: readonly Buffer[];
}

/** An audit event as persisted: its canonical JSON plus the columns searches use. */
export interface StoredAuditEvent {
  readonly seq: number;
  readonly time: string;
  readonly actor: string | null;
  readonly action: string;
  readonly resource: string | null;
  readonly outcome: string;
  /** RFC 8785 canonical JSON of the event, exactly the bytes that were hashed. */
  readonly body: string;
  /** RFC 6962 leaf hash of `body`. */
  readonly leaf: Buffer;
}

export interface AuditQuery {
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  /** An exact resource, or a prefix when it ends with `*` (`vision/*`). */
  readonly resource?: string | undefined;
  readonly outcome?: string | undefined;
  /** Inclusive lower and exclusive upper bound on the event time (RFC 3339 UTC). */
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly afterSeq: number;
  readonly limit: number;
}

export interface StoredCheckpoint {
  readonly size: number;
  /** The C2SP signed note, as signed. */
  readonly note: string;
  readonly createdAt: string;
}

export interface ArtifactPatch {
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly sensitivity?: Sensitivity;
  readonly kind?: ArtifactKind;
  readonly updatedAt: string;
}

export interface MetadataWriter extends MetadataReader {
  /** Returns false (and changes nothing) when the key already has a value. */
  insertSettingIfAbsent(key: string, value: string): Promise<boolean>;
  setSetting(key: string, value: string): Promise<void>;

  insertKek(kek: KekRecord): Promise<void>;
  /** Forget a KEK's material for good; the row stays so its version number is never reused. */
  destroyKek(version: number, at: string): Promise<void>;

  /** Throws `project_exists` on a duplicate name. */
  insertProject(project: Project): Promise<void>;
  /** Throws `artifact_exists` on a duplicate name within the project. */
  insertArtifact(artifact: Artifact): Promise<void>;
  updateArtifact(id: ArtifactId, patch: ArtifactPatch): Promise<void>;

  insertDataKey(key: DataKey): Promise<void>;
  /** Compare-and-set: replaces the wrap only if it is still under `expectedKekVersion`; false otherwise. */
  rewrapDataKey(
    id: DataKeyId,
    wrapped: Buffer,
    kekVersion: number,
    expectedKekVersion: number,
  ): Promise<boolean>;
  deleteDataKey(id: DataKeyId): Promise<void>;

  /** Throws `version_exists` when the artifact already has that tag, in any state. */
  insertVersion(version: Version, metadata: SealedValue | null): Promise<void>;
  insertFiles(files: readonly StoredFile[]): Promise<void>;
  /** Records the digests the server computed for files of a version (by path); other files are unchanged. */
  setComputedDigests(versionId: VersionId, digests: readonly FileDigest[]): Promise<void>;
  /** Records digests a client declared late (at commit) for files of a version (by path). */
  setDeclaredDigests(versionId: VersionId, digests: readonly FileDigest[]): Promise<void>;
  /** `uploading` -> `available`, only from `uploading`; returns false when the version was not uploading. */
  markVersionAvailable(id: VersionId, manifestDigest: string, committedAt: string): Promise<boolean>;
  /** Removes a version with its files and metadata (used when an upload is aborted or expires). */
  deleteVersion(id: VersionId): Promise<void>;

  insertUpload(session: UploadSession, parts: readonly UploadPart[]): Promise<void>;
  /** Records durable progress; never moves backwards. */
  setPartReceived(uploadId: UploadId, index: number, received: number): Promise<void>;
  /** Starts a part over from byte 0 (its staged bytes can no longer be trusted to extend). */
  restartPart(uploadId: UploadId, index: number): Promise<void>;
  /** Removes the session and its parts (not its blobs). */
  deleteUpload(id: UploadId): Promise<void>;

  insertBlob(blob: Blob): Promise<void>;
  /** Every staging blob of the upload becomes committed and forgets the upload. */
  commitBlobs(uploadId: UploadId): Promise<void>;
  deleteBlob(id: BlobId): Promise<void>;
  /** Staging blobs of an upload (for cleanup). */
  listUploadBlobs(uploadId: UploadId): Promise<readonly Blob[]>;

  /**
   * Appends events at the end of the audit log and records its new end. Fails with `storage_error` unless the
   * log still ends at `expectedSize`: the chain can never fork, even across server instances.
   */
  appendAuditEvents(
    expectedSize: number,
    events: readonly StoredAuditEvent[],
    next: AuditLogState,
  ): Promise<void>;
  /** A checkpoint at a size already signed is ignored (the first one stays). */
  insertAuditCheckpoint(checkpoint: StoredCheckpoint): Promise<void>;
  /** Drops the bodies of events up to `boundary.size` (their leaves stay) and records the boundary. */
  pruneAuditEvents(boundary: AuditBoundary): Promise<void>;

  /** Throws `user_exists` on a duplicate username. */
  insertUser(user: User): Promise<void>;
  updateUser(id: UserId, patch: UserPatch): Promise<void>;
  /**
   * Compare-and-set of the TOTP replay guard: records `step` only if it is later than the stored one, so a
   * code is accepted once even by concurrent logins (A5). Returns false for a replay.
   */
  advanceTotpStep(id: UserId, step: number): Promise<boolean>;
  /** Throws `group_exists` on a duplicate name. */
  insertGroup(group: Group): Promise<void>;
  /** Removes a group with its memberships. */
  deleteGroup(id: GroupId): Promise<void>;
  /** Idempotent. */
  addGroupMember(groupId: GroupId, principalId: string, source: string): Promise<void>;
  /** Returns false when the principal was not a member. */
  removeGroupMember(groupId: GroupId, principalId: string): Promise<boolean>;
  /** Throws `service_account_exists` on a duplicate name. */
  insertServiceAccount(account: ServiceAccount): Promise<void>;
  setServiceAccountDisabled(id: ServiceAccountId, disabled: boolean): Promise<void>;
  insertSession(session: Session): Promise<void>;
  setSessionMfa(id: SessionId, at: string): Promise<void>;
  /** Revokes one session, or every session of a user; returns how many were revoked. */
  revokeSessions(
    target: { readonly sessionId: SessionId } | { readonly userId: UserId },
    at: string,
  ): Promise<number>;
  insertToken(token: TokenRecord): Promise<void>;
  /**
   * Revokes a token, or every token of a principal, and every token derived from those; returns how many of
   * the targeted tokens were revoked by this call (0 when already revoked: a compare-and-set).
   */
  revokeTokens(
    target: { readonly tokenId: TokenId } | { readonly principalId: string },
    at: string,
  ): Promise<number>;
  insertFederatedIdentity(provider: string, subject: string, userId: UserId, at: string): Promise<void>;
  /** Replaces every recovery code of the user with these hashes. */
  replaceRecoveryCodes(userId: UserId, hashes: readonly string[]): Promise<void>;
  /** Uses one code: true if it existed and was unused (then it is used up). */
  useRecoveryCode(userId: UserId, hash: string, at: string): Promise<boolean>;

  /** Fails with `binding_exists` when the id is taken. */
  insertRoleBinding(binding: RoleBindingRecord): Promise<void>;
  /** True if the binding existed. */
  deleteRoleBinding(id: string): Promise<boolean>;
  /** Inserts the policy or replaces the one with its id (keeping its creation fields). */
  upsertPolicy(policy: PolicyRecord): Promise<void>;
  /** True if the policy existed. */
  deletePolicy(id: string): Promise<boolean>;
  insertElevation(elevation: ElevationRecord): Promise<void>;
  /** Closes a request only while it is still pending: false when another decision came first. */
  decideElevation(id: ElevationId, decision: ElevationDecision): Promise<boolean>;
}

export interface MetadataStore extends MetadataReader {
  /** Runs `fn` in one serializable transaction; any throw rolls everything back and is rethrown. */
  transaction<T>(fn: (tx: MetadataWriter) => Promise<T>): Promise<T>;
  /** Applies pending schema migrations; safe to call on every start. */
  migrate(): Promise<void>;
  /** Throws `storage_error` when the backend cannot answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
