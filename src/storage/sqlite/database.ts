/**
 * Row shapes of the SQLite schema as Kysely sees them (see migrations.ts for the DDL). Columns are snake_case;
 * times are ISO 8601 UTC strings as `Date#toISOString` writes them, so text order is time order; byte strings
 * are BLOBs; booleans and enums are plain text checked when a row is read back.
 */
export interface Database {
  settings: SettingsTable;
  keks: KeksTable;
  projects: ProjectsTable;
  artifacts: ArtifactsTable;
  data_keys: DataKeysTable;
  versions: VersionsTable;
  files: FilesTable;
  uploads: UploadsTable;
  upload_parts: UploadPartsTable;
  blobs: BlobsTable;
  audit_events: AuditEventsTable;
  audit_state: AuditStateTable;
  audit_checkpoints: AuditCheckpointsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_members: GroupMembersTable;
  service_accounts: ServiceAccountsTable;
  sessions: SessionsTable;
  role_bindings: RoleBindingsTable;
  policies: PoliciesTable;
  elevations: ElevationsTable;
  tokens: TokensTable;
  recovery_codes: RecoveryCodesTable;
  federated_identities: FederatedIdentitiesTable;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface KeksTable {
  version: number;
  wrapped_key: Buffer;
  created_at: string;
  destroyed_at: string | null;
}

export interface ProjectsTable {
  id: string;
  name: string;
  description: string;
  created_at: string;
  created_by: string;
}

export interface ArtifactsTable {
  id: string;
  project_id: string;
  name: string;
  kind: string;
  sensitivity: string;
  description: string;
  /** JSON array of strings. */
  tags: string;
  owner: string;
  created_at: string;
  updated_at: string;
}

export interface DataKeysTable {
  id: string;
  wrapped: Buffer;
  kek_version: number;
  created_at: string;
}

export interface VersionsTable {
  id: string;
  artifact_id: string;
  tag: string;
  state: string;
  file_count: number;
  total_size: number;
  manifest_digest: string | null;
  created_at: string;
  created_by: string;
  committed_at: string | null;
  metadata_data_key_id: string | null;
  metadata_sealed: Buffer | null;
}

export interface FilesTable {
  version_id: string;
  path: string;
  size: number;
  sha256: string | null;
  computed_sha256: string | null;
  blob_id: string;
  offset: number;
}

export interface UploadsTable {
  id: string;
  version_id: string;
  principal: string;
  created_at: string;
  expires_at: string;
}

export interface UploadPartsTable {
  upload_id: string;
  idx: number;
  blob_id: string;
  size: number;
  received: number;
}

export interface BlobsTable {
  id: string;
  data_key_id: string;
  size: number;
  state: string;
  upload_id: string | null;
  created_at: string;
}

/** One row per audit event; `body` and the indexed columns become NULL when retention prunes the event. */
export interface AuditEventsTable {
  seq: number;
  time: string | null;
  actor: string | null;
  action: string | null;
  resource: string | null;
  outcome: string | null;
  /** The event's RFC 8785 canonical JSON, exactly as hashed. */
  body: string | null;
  /** RFC 6962 leaf hash, kept after pruning so proofs stay possible. */
  leaf: Buffer;
}

/** The single row (id 1) describing the log's end: size, last chain hash, compact range, retention boundary. */
export interface AuditStateTable {
  id: number;
  size: number;
  last_hash: string;
  /** Concatenated 32-byte compact-range nodes, largest subtree first. */
  frontier: Buffer;
  pruned_through: number;
  /** Hash of event `pruned_through` and the compact range at that size: where the retained log starts. */
  pruned_hash: string;
  pruned_frontier: Buffer;
}

export interface AuditCheckpointsTable {
  size: number;
  note: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  username: string;
  display_name: string;
  email: string | null;
  state: string;
  password_hash: string | null;
  totp_data_key_id: string | null;
  totp_sealed: Buffer | null;
  totp_last_step: number;
  failed_logins: number;
  locked_until: string | null;
  created_at: string;
  created_by: string;
  updated_at: string;
}

export interface GroupsTable {
  id: string;
  name: string;
  description: string;
  created_at: string;
}

export interface GroupMembersTable {
  group_id: string;
  principal_id: string;
  source: string;
}

export interface ServiceAccountsTable {
  id: string;
  name: string;
  description: string;
  environment: string;
  disabled: number;
  created_at: string;
  created_by: string;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  auth_method: string;
  mfa_at: string | null;
  device_posture: string | null;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface TokensTable {
  id: string;
  kind: string;
  hash: string;
  principal_id: string;
  principal_kind: string;
  session_id: string | null;
  parent_id: string | null;
  /** JSON TokenScope, or null. */
  scope: string | null;
  environment: string | null;
  description: string;
  created_at: string;
  created_by: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface RecoveryCodesTable {
  user_id: string;
  hash: string;
  used_at: string | null;
}

export interface FederatedIdentitiesTable {
  provider: string;
  subject: string;
  user_id: string;
  created_at: string;
}

export interface RoleBindingsTable {
  id: string;
  role: string;
  principal_type: string;
  principal_id: string;
  scope_type: string;
  scope_id: string;
  expires_at: string | null;
  description: string;
  created_at: string;
  created_by: string;
  elevation_id: string | null;
}

export interface PoliciesTable {
  id: string;
  text: string;
  scope_type: string;
  scope_id: string;
  description: string;
  created_at: string;
  created_by: string;
  updated_at: string;
  updated_by: string;
}

export interface ElevationsTable {
  id: string;
  requester_id: string;
  role: string;
  scope_type: string;
  scope_id: string;
  duration_seconds: number;
  reason: string;
  state: string;
  requested_at: string;
  request_expires_at: string;
  decided_by: string | null;
  decided_at: string | null;
  decision_reason: string | null;
  binding_id: string | null;
  grant_expires_at: string | null;
}
