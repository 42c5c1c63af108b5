import { Type, type Static, type TSchema } from 'typebox';
import {
  ARTIFACT_KINDS,
  ENVIRONMENTS,
  MAX_PAGE_SIZE,
  SENSITIVITIES,
  VERSION_STATES,
} from '../core/domain.js';

/**
 * The HTTP API contract (DESIGN.md section 8), shared by the server (route schemas, OpenAPI generation) and
 * the client SDK (types). Request schemas reject unknown properties, so a client can never set a
 * server-owned field such as state, digest or owner (B4). Responses list exactly what may leave the server:
 * no wrapped keys, storage locations or token hashes.
 */

const strict = { additionalProperties: false } as const;
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'lowercase hex SHA-256' });
const Timestamp = Type.String({ format: 'date-time' });
const Description = Type.String({ maxLength: 4096 });
const Tag = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._:/=-]*$' });
const Tags = Type.Array(Tag, { maxItems: 64, uniqueItems: true });

export const ArtifactKindSchema = Type.Enum(ARTIFACT_KINDS);
export const SensitivitySchema = Type.Enum(SENSITIVITIES);
export const VersionStateSchema = Type.Enum(VERSION_STATES);

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    requestId: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { description: 'RFC 9457 problem details with a stable `code` (docs/errors.md)' },
);
export type Problem = Static<typeof Problem>;

export const PageQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_PAGE_SIZE })),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
  },
  strict,
);
export type PageQuery = Static<typeof PageQuery>;

function pageOf<T extends TSchema>(item: T) {
  return Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });
}

export const ProjectParams = Type.Object({ project: Type.String({ maxLength: 256 }) }, strict);
export const ArtifactParams = Type.Object(
  { project: Type.String({ maxLength: 256 }), artifact: Type.String({ maxLength: 256 }) },
  strict,
);
export const VersionParams = Type.Object(
  {
    project: Type.String({ maxLength: 256 }),
    artifact: Type.String({ maxLength: 256 }),
    version: Type.String({ maxLength: 256 }),
  },
  strict,
);
export const UploadParams = Type.Object({ upload: Type.String({ maxLength: 64 }) }, strict);
export const PartParams = Type.Object(
  { upload: Type.String({ maxLength: 64 }), part: Type.Integer({ minimum: 0 }) },
  strict,
);
export const FileQuery = Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, strict);

export const ProjectView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  createdAt: Timestamp,
  createdBy: Type.String(),
});
export type ProjectView = Static<typeof ProjectView>;
export const ProjectPage = pageOf(ProjectView);
export type ProjectPage = Static<typeof ProjectPage>;

export const CreateProjectBody = Type.Object(
  { name: Type.String({ maxLength: 256 }), description: Type.Optional(Description) },
  strict,
);
export type CreateProjectBody = Static<typeof CreateProjectBody>;

export const ArtifactView = Type.Object({
  project: Type.String(),
  name: Type.String(),
  kind: ArtifactKindSchema,
  sensitivity: SensitivitySchema,
  description: Type.String(),
  tags: Type.Array(Type.String()),
  owner: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type ArtifactView = Static<typeof ArtifactView>;
export const ArtifactPage = pageOf(ArtifactView);
export type ArtifactPage = Static<typeof ArtifactPage>;

export const CreateArtifactBody = Type.Object(
  {
    name: Type.String({ maxLength: 256 }),
    kind: ArtifactKindSchema,
    sensitivity: SensitivitySchema,
    description: Type.Optional(Description),
    tags: Type.Optional(Tags),
  },
  strict,
);
export type CreateArtifactBody = Static<typeof CreateArtifactBody>;

export const UpdateArtifactBody = Type.Object(
  { description: Type.Optional(Description), tags: Type.Optional(Tags) },
  { ...strict, minProperties: 1 },
);
export type UpdateArtifactBody = Static<typeof UpdateArtifactBody>;

export const VersionView = Type.Object({
  project: Type.String(),
  artifact: Type.String(),
  version: Type.String(),
  state: VersionStateSchema,
  fileCount: Type.Integer(),
  totalSize: Type.Integer(),
  manifestDigest: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  createdBy: Type.String(),
  committedAt: Type.Union([Timestamp, Type.Null()]),
});
export type VersionView = Static<typeof VersionView>;
export const VersionPage = pageOf(VersionView);
export type VersionPage = Static<typeof VersionPage>;

export const ManifestEntrySchema = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Sha256,
  },
  strict,
);
export type ManifestEntryBody = Static<typeof ManifestEntrySchema>;

export const VersionDetail = Type.Object({
  version: VersionView,
  artifact: ArtifactView,
  files: Type.Array(ManifestEntrySchema),
  metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
});
export type VersionDetail = Static<typeof VersionDetail>;

export const DeclaredFileSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, maxLength: 4096 }),
    size: Type.Integer({ minimum: 0 }),
    sha256: Type.Optional({
      ...Sha256,
      description: 'lowercase hex SHA-256; when omitted, it must be declared at commit (a single-pass push)',
    }),
  },
  strict,
);
export type DeclaredFileBody = Static<typeof DeclaredFileSchema>;

export const CreateUploadBody = Type.Object(
  {
    kind: Type.Optional(ArtifactKindSchema),
    sensitivity: Type.Optional(SensitivitySchema),
    description: Type.Optional(Description),
    tags: Type.Optional(Tags),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    files: Type.Array(DeclaredFileSchema, { minItems: 1 }),
  },
  strict,
);
export type CreateUploadBody = Static<typeof CreateUploadBody>;

export const CommitUploadBody = Type.Object(
  {
    files: Type.Optional(
      Type.Array(
        Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }), sha256: Sha256 }, strict),
        {
          description: 'digests of the files whose sha256 was not declared when the session was created',
        },
      ),
    ),
  },
  strict,
);
export type CommitUploadBody = Static<typeof CommitUploadBody>;

export const UploadPartView = Type.Object({
  index: Type.Integer(),
  size: Type.Integer({ description: 'plaintext bytes the part carries: its files back to back, in order' }),
  received: Type.Integer({ description: 'bytes the server holds durably; resume from here' }),
  files: Type.Array(Type.Integer(), { description: 'indexes into the declared files, in byte order' }),
});
export type UploadPartView = Static<typeof UploadPartView>;

export const UploadView = Type.Object({
  id: Type.String(),
  project: Type.String(),
  artifact: Type.String(),
  version: Type.String(),
  expiresAt: Timestamp,
  segmentSize: Type.Integer({ description: 'non-final chunks must be a multiple of this many bytes' }),
  parts: Type.Array(UploadPartView),
});
export type UploadView = Static<typeof UploadView>;

export const PartProgress = Type.Object({
  index: Type.Integer(),
  size: Type.Integer(),
  received: Type.Integer(),
  complete: Type.Boolean(),
});
export type PartProgress = Static<typeof PartProgress>;

export const KeyVersionView = Type.Object({
  version: Type.Integer(),
  createdAt: Timestamp,
  state: Type.Union([Type.Literal('current'), Type.Literal('retired'), Type.Literal('destroyed')]),
  dataKeys: Type.Integer({ description: 'data keys still wrapped by this version' }),
});
export const KeysView = Type.Object({ current: Type.Integer(), versions: Type.Array(KeyVersionView) });
export type KeysView = Static<typeof KeysView>;

export const RotateResult = Type.Object({
  kekVersion: Type.Integer(),
  rewrapped: Type.Integer(),
  destroyedVersions: Type.Array(Type.Integer()),
});
export type RotateResult = Static<typeof RotateResult>;

export const WhoAmI = Type.Object({
  principal: Type.String(),
  authMethod: Type.String(),
  kind: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  groups: Type.Optional(Type.Array(Type.String())),
  sessionId: Type.Optional(Type.String()),
  tokenId: Type.Optional(Type.String()),
  mfaAt: Type.Optional(Type.Union([Timestamp, Type.Null()])),
  scope: Type.Optional(
    Type.Union([
      Type.Object({
        projects: Type.Optional(Type.Array(Type.String())),
        actions: Type.Optional(Type.Array(Type.String())),
        readOnly: Type.Boolean(),
      }),
      Type.Null(),
    ]),
  ),
  environment: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type WhoAmI = Static<typeof WhoAmI>;

export const Health = Type.Object({ status: Type.String() });

/** Upload protocol headers: the client names where its chunk starts; the server answers where it stands. */
export const UPLOAD_OFFSET_HEADER = 'upload-offset';

// ---- audit (issue 3, docs/audit.md) ------------------------------------------------------------------------

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const AuditEventView = Type.Object(
  {
    v: Type.Integer(),
    seq: Type.Integer({ minimum: 1 }),
    time: Timestamp,
    prevHash: Sha256,
    category: Type.String(),
    actor: Type.Object({ id: NullableString, type: Type.String(), authMethod: NullableString }),
    action: Type.String(),
    resource: NullableString,
    decision: Type.Object({ effect: Type.String(), policies: Type.Array(Type.String()) }),
    outcome: Type.String(),
    errorCode: NullableString,
    severity: Type.String(),
    request: Type.Union([
      Type.Object({
        id: Type.String(),
        method: Type.String(),
        path: Type.String(),
        status: Type.Union([Type.Integer(), Type.Null()]),
        clientAddress: Type.String(),
        userAgent: NullableString,
      }),
      Type.Null(),
    ]),
    details: Type.Optional(
      Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()])),
    ),
  },
  { description: 'an audit event exactly as chained (docs/audit-format.md)' },
);
export type AuditEventView = Static<typeof AuditEventView>;

export const AuditSearchQuery = Type.Object(
  {
    actor: Type.Optional(Type.String({ maxLength: 256 })),
    action: Type.Optional(Type.String({ maxLength: 64 })),
    resource: Type.Optional(
      Type.String({ maxLength: 1024, description: 'exact, or a prefix ending in `*` (`vision/*`)' }),
    ),
    outcome: Type.Optional(Type.Union([Type.Literal('succeeded'), Type.Literal('failed')])),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
    after: Type.Optional(
      Type.Integer({ minimum: 0, description: 'return events after this sequence number' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    wait: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 60,
        description: 'long poll: wait up to this many seconds for a matching event (tail -f)',
      }),
    ),
  },
  strict,
);
export type AuditSearchQuery = Static<typeof AuditSearchQuery>;

export const AuditEventPage = Type.Object({
  items: Type.Array(AuditEventView),
  /** Pass as `after` to continue; the last sequence number looked at. */
  next: Type.Integer(),
});
export type AuditEventPage = Static<typeof AuditEventPage>;

export const AuditCheckpointView = Type.Object({
  origin: Type.String(),
  verifierKey: Type.String({ description: 'C2SP signed-note verifier key of the checkpoints' }),
  size: Type.Integer(),
  note: Type.String({ description: 'the C2SP tlog-checkpoint signed note' }),
});
export type AuditCheckpointView = Static<typeof AuditCheckpointView>;

export const AuditPruneBody = Type.Object(
  { olderThanDays: Type.Integer({ minimum: 0, maximum: 36500 }) },
  strict,
);

export const AuditPruneResult = Type.Object({
  pruned: Type.Boolean(),
  from: Type.Optional(Type.Integer()),
  through: Type.Optional(Type.Integer()),
  archive: Type.Optional(Type.String({ description: 'file name of the archive in the archive directory' })),
  sha256: Type.Optional(Sha256),
});
export type AuditPruneResult = Static<typeof AuditPruneResult>;

const HexHash = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const InclusionProofQuery = Type.Object(
  {
    seq: Type.Integer({ minimum: 1 }),
    size: Type.Optional(
      Type.Integer({ minimum: 1, description: 'a checkpointed tree size (default: the latest checkpoint)' }),
    ),
  },
  strict,
);

export const ConsistencyProofQuery = Type.Object(
  {
    old: Type.Integer({ minimum: 0 }),
    new: Type.Optional(
      Type.Integer({ minimum: 1, description: 'a checkpointed tree size (default: the latest checkpoint)' }),
    ),
  },
  strict,
);

export const InclusionProofView = Type.Object(
  {
    seq: Type.Integer(),
    treeSize: Type.Integer(),
    leafHash: HexHash,
    path: Type.Array(HexHash),
    checkpoint: Type.String(),
    event: Type.Optional(AuditEventView),
  },
  { description: 'RFC 9162 inclusion proof against a signed checkpoint (docs/audit-format.md)' },
);
export type InclusionProofView = Static<typeof InclusionProofView>;

export const ConsistencyProofView = Type.Object(
  {
    oldSize: Type.Integer(),
    newSize: Type.Integer(),
    path: Type.Array(HexHash),
    oldCheckpoint: Type.Optional(Type.String()),
    newCheckpoint: Type.String(),
  },
  { description: 'RFC 9162 consistency proof between two tree sizes (docs/audit-format.md)' },
);
export type ConsistencyProofView = Static<typeof ConsistencyProofView>;

// ---- identity (issue 4, docs/identity.md) -------------------------------------------------------------------

const Secret = (description: string) => Type.String({ minLength: 1, maxLength: 512, description });
const TotpCode = Type.String({ pattern: '^[0-9]{6}$', description: 'a 6-digit TOTP code' });
const PrincipalRef = Type.String({
  pattern: '^(user|sa):[a-z0-9._-]{1,64}$',
  description: '`user:NAME` or `sa:NAME`',
});
const EnvironmentSchema = Type.Enum(ENVIRONMENTS);

export const LoginBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 128 }),
    password: Type.String({ minLength: 1, maxLength: 1024 }),
    code: Type.Optional(TotpCode),
    recoveryCode: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  strict,
);
export type LoginBody = Static<typeof LoginBody>;

export const SessionTokensView = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  accessExpiresAt: Timestamp,
  refreshExpiresAt: Timestamp,
  sessionId: Type.String(),
});
export type SessionTokensView = Static<typeof SessionTokensView>;

export const RefreshBody = Type.Object({ refreshToken: Secret('the refresh token') }, strict);
export const StepUpBody = Type.Object({ code: TotpCode }, strict);
export const StepUpView = Type.Object({ mfaAt: Timestamp });
export const EnrollStartBody = Type.Object(
  { inviteToken: Secret('the invitation token'), password: Type.String({ minLength: 1, maxLength: 1024 }) },
  strict,
);
export const EnrollStartView = Type.Object({
  username: Type.String(),
  otpauthUri: Type.String({ description: 'scan into an authenticator app' }),
  secret: Type.String({ description: 'the base32 TOTP secret, for manual entry' }),
});
export type EnrollStartView = Static<typeof EnrollStartView>;
export const EnrollFinishBody = Type.Object(
  { inviteToken: Secret('the invitation token'), code: TotpCode },
  strict,
);
export const EnrollFinishView = Type.Object({
  recoveryCodes: Type.Array(Type.String(), { description: 'single-use; shown once' }),
  session: SessionTokensView,
});
export type EnrollFinishView = Static<typeof EnrollFinishView>;

export const UserView = Type.Object({
  id: Type.String(),
  username: Type.String(),
  displayName: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  lockedUntil: Type.Union([Timestamp, Type.Null()]),
  failedLogins: Type.Integer(),
  createdAt: Timestamp,
});
export type UserView = Static<typeof UserView>;
export const UserPage = pageOf(UserView);
export type UserPage = Static<typeof UserPage>;
export const UserParams = Type.Object({ user: Type.String({ maxLength: 128 }) }, strict);
export const InviteUserBody = Type.Object(
  {
    username: Type.String({ minLength: 1, maxLength: 64 }),
    displayName: Type.Optional(Type.String({ maxLength: 256 })),
    email: Type.Optional(Type.String({ maxLength: 256, format: 'email' })),
  },
  strict,
);
export type InviteUserBody = Static<typeof InviteUserBody>;
export const InviteView = Type.Object({
  user: UserView,
  inviteToken: Type.String({ description: 'shown once; give it to the user over a trusted channel' }),
  expiresAt: Timestamp,
});
export type InviteView = Static<typeof InviteView>;

export const GroupView = Type.Object({
  name: Type.String(),
  description: Type.String(),
  createdAt: Timestamp,
});
export type GroupView = Static<typeof GroupView>;
export const GroupPage = pageOf(GroupView);
export type GroupPage = Static<typeof GroupPage>;
export const GroupParams = Type.Object({ group: Type.String({ maxLength: 128 }) }, strict);
export const CreateGroupBody = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 64 }), description: Type.Optional(Description) },
  strict,
);
export const GroupMembersView = Type.Object({
  group: GroupView,
  members: Type.Array(Type.Object({ principal: Type.String(), source: Type.String() })),
});
export type GroupMembersView = Static<typeof GroupMembersView>;
export const GroupMemberBody = Type.Object({ principal: PrincipalRef }, strict);
export const GroupMemberParams = Type.Object(
  { group: Type.String({ maxLength: 128 }), principal: PrincipalRef },
  strict,
);

export const ServiceAccountView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Type.String(),
  environment: Type.String(),
  disabled: Type.Boolean(),
  createdAt: Timestamp,
});
export type ServiceAccountView = Static<typeof ServiceAccountView>;
export const ServiceAccountPage = pageOf(ServiceAccountView);
export type ServiceAccountPage = Static<typeof ServiceAccountPage>;
export const ServiceAccountParams = Type.Object({ account: Type.String({ maxLength: 128 }) }, strict);
export const CreateServiceAccountBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    environment: EnvironmentSchema,
    description: Type.Optional(Description),
  },
  strict,
);

export const TokenScopeSchema = Type.Object(
  {
    projects: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 100, uniqueItems: true })),
    actions: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100, uniqueItems: true })),
    readOnly: Type.Boolean(),
  },
  strict,
);
export const CreateTokenBody = Type.Object(
  {
    scope: TokenScopeSchema,
    ttlSeconds: Type.Integer({ minimum: 60, maximum: 366 * 86_400 }),
    description: Type.Optional(Type.String({ maxLength: 256 })),
  },
  strict,
);
export type CreateTokenBody = Static<typeof CreateTokenBody>;
export const TokenView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  principal: Type.String(),
  scope: Type.Union([TokenScopeSchema, Type.Null()]),
  environment: Type.Union([Type.String(), Type.Null()]),
  description: Type.String(),
  parentId: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  expiresAt: Timestamp,
  revokedAt: Type.Union([Timestamp, Type.Null()]),
});
export type TokenView = Static<typeof TokenView>;
export const IssuedTokenView = Type.Object({
  token: Type.String({ description: 'shown once; only its hash is kept' }),
  record: TokenView,
});
export type IssuedTokenView = Static<typeof IssuedTokenView>;
export const TokenParams = Type.Object({ token: Type.String({ maxLength: 64 }) }, strict);
export const TokenListQuery = Type.Object(
  { principal: PrincipalRef, includeRevoked: Type.Optional(Type.Boolean()) },
  strict,
);
export const TokenList = Type.Object({ items: Type.Array(TokenView) });
export type TokenList = Static<typeof TokenList>;
export const BootstrapTokenView = Type.Object({
  token: Type.Union([Type.String(), Type.Null()], {
    description: 'the new token (shown once), or null when disabled',
  }),
  enabled: Type.Boolean(),
});
export type BootstrapTokenView = Static<typeof BootstrapTokenView>;

export const SsoProviderParams = Type.Object(
  { provider: Type.String({ pattern: '^[a-z0-9-]{1,40}$' }) },
  strict,
);
export const SsoStartView = Type.Object({
  loginId: Type.String(),
  pollSecret: Type.String({ description: 'keep it: only its holder can collect the session' }),
  authorizationUrl: Type.String(),
  expiresAt: Timestamp,
});
export type SsoStartView = Static<typeof SsoStartView>;
export const SsoCallbackQuery = Type.Object(
  {
    code: Type.Optional(Type.String({ maxLength: 4096 })),
    state: Type.Optional(Type.String({ maxLength: 512 })),
    iss: Type.Optional(Type.String({ maxLength: 2048 })),
    error: Type.Optional(Type.String({ maxLength: 256 })),
    error_description: Type.Optional(Type.String({ maxLength: 2048 })),
    session_state: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
export const SsoPollBody = Type.Object(
  { loginId: Type.String({ maxLength: 64 }), pollSecret: Secret('the poll secret from start') },
  strict,
);
export const SsoPendingView = Type.Object({ status: Type.Literal('pending') });
export const FederateBody = Type.Object(
  { token: Type.String({ minLength: 1, maxLength: 16_384, description: 'the workload OIDC token (a JWT)' }) },
  strict,
);
export const FederatedTokenView = Type.Object({
  token: Type.String({ description: 'a short-lived `srf_` token' }),
  record: TokenView,
  serviceAccount: Type.String(),
});
export type FederatedTokenView = Static<typeof FederatedTokenView>;

export const ChangePasswordBody = Type.Object(
  {
    currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
    newPassword: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  strict,
);
export const RecoveryCodesView = Type.Object({
  recoveryCodes: Type.Array(Type.String(), {
    description: 'single-use; shown once; the old ones no longer work',
  }),
});
export type RecoveryCodesView = Static<typeof RecoveryCodesView>;

// ---- authorization: role bindings, custom policies, explain, access review, elevation (docs/authorization.md)

const ScopeRef = Type.String({
  pattern:
    '^(organization|project:[A-Za-z0-9._-]{1,128}|artifact:[A-Za-z0-9._-]{1,128}/[A-Za-z0-9._-]{1,128})$',
  description: '`organization`, `project:PROJECT` or `artifact:PROJECT/ARTIFACT`',
});
const AccessPrincipal = Type.String({
  pattern: '^(user|sa|group):[A-Za-z0-9._@-]{1,128}$',
  description: '`user:NAME`, `sa:NAME` or `group:NAME`',
});
const PersonOrService = Type.String({
  pattern: '^(user|sa):[A-Za-z0-9._@-]{1,128}$',
  description: '`user:NAME` or `sa:NAME`',
});
const RoleName = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'viewer, contributor, approver, incident-responder, auditor or admin',
});
const RecordId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9._-]*$' });
const ActionName = Type.String({
  minLength: 1,
  maxLength: 64,
  description: 'an action such as `version:download`',
});
const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const ScopeQuery = Type.Object({ scope: Type.Optional(ScopeRef) }, strict);
export const BindingView = Type.Object({
  id: Type.String(),
  role: Type.String(),
  principal: Type.String({
    description: '`user:NAME`, `sa:NAME` or `group:NAME` (the id when the name is gone)',
  }),
  principalId: Type.String(),
  scope: Type.String(),
  expiresAt: Nullable(Timestamp),
  active: Type.Boolean({ description: 'false once expired (an expired binding grants nothing)' }),
  description: Type.String(),
  createdAt: Timestamp,
  createdBy: Type.String(),
  elevationId: Nullable(Type.String()),
});
export type BindingView = Static<typeof BindingView>;
export const BindingList = Type.Object({ items: Type.Array(BindingView) });
export type BindingList = Static<typeof BindingList>;
export const BindingParams = Type.Object({ binding: RecordId }, strict);
export const CreateBindingBody = Type.Object(
  {
    id: Type.Optional(RecordId),
    role: RoleName,
    principal: AccessPrincipal,
    scope: ScopeRef,
    expiresAt: Type.Optional(Timestamp),
    description: Type.Optional(Type.String({ maxLength: 500 })),
  },
  strict,
);
export type CreateBindingBody = Static<typeof CreateBindingBody>;

export const PolicyView = Type.Object({
  id: Type.String(),
  text: Type.String(),
  scope: Type.String(),
  description: Type.String(),
  createdAt: Timestamp,
  createdBy: Type.String(),
  updatedAt: Timestamp,
  updatedBy: Type.String(),
});
export type PolicyView = Static<typeof PolicyView>;
export const PolicyList = Type.Object({ items: Type.Array(PolicyView) });
export type PolicyList = Static<typeof PolicyList>;
export const PolicyParams = Type.Object({ policy: RecordId }, strict);
const PolicyText = Type.String({ minLength: 1, maxLength: 65_536, description: 'exactly one Cedar policy' });
export const PutPolicyBody = Type.Object(
  { text: PolicyText, scope: ScopeRef, description: Type.Optional(Type.String({ maxLength: 500 })) },
  strict,
);
export type PutPolicyBody = Static<typeof PutPolicyBody>;
export const ValidatePolicyBody = Type.Object(
  { id: Type.Optional(RecordId), text: PolicyText, scope: ScopeRef },
  strict,
);
export type ValidatePolicyBody = Static<typeof ValidatePolicyBody>;
export const ValidatePolicyView = Type.Object({ valid: Type.Literal(true) });
export const PolicySchemaView = Type.Object({
  schema: Type.String({ description: 'the Cedar schema, human-readable format' }),
});
export type PolicySchemaView = Static<typeof PolicySchemaView>;

const ExplainContext = Type.Object(
  {
    ip: Type.Optional(Type.String({ maxLength: 64 })),
    time: Type.Optional(Type.Union([Type.Integer(), Timestamp])),
    mfaAgeSeconds: Type.Optional(Type.Integer({ minimum: 0 })),
    authMethod: Type.Optional(Type.String({ maxLength: 64 })),
    environment: Type.Optional(Type.String({ maxLength: 64 })),
    devicePosture: Type.Optional(Type.String({ maxLength: 128 })),
  },
  strict,
);
export const ExplainBody = Type.Object(
  {
    principal: PersonOrService,
    action: ActionName,
    resource: Type.String({
      minLength: 1,
      maxLength: 400,
      description: '`organization`, `PROJECT`, `PROJECT/ARTIFACT` or `PROJECT/ARTIFACT:VERSION`',
    }),
    context: Type.Optional(ExplainContext),
  },
  strict,
);
export type ExplainBody = Static<typeof ExplainBody>;
const EntityRef = Type.Object({ type: Type.String(), id: Type.String() });
export const ExplainView = Type.Object({
  decision: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
  reasons: Type.Array(Type.String(), {
    description: 'ids of the policies that decided; empty = default deny',
  }),
  errors: Type.Array(Type.String()),
  policyVersion: Type.Integer(),
  slice: Type.String(),
  principal: EntityRef,
  action: EntityRef,
  resource: EntityRef,
  context: Type.Record(Type.String(), Type.Unknown()),
  entities: Type.Array(Type.Unknown()),
});
export type ExplainView = Static<typeof ExplainView>;
export const PolicyTestBody = Type.Object(
  { cases: Type.Array(Type.Unknown(), { minItems: 1, maxItems: 10_000 }) },
  strict,
);
export const PolicyTestView = Type.Object({
  passed: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(
    Type.Object({
      name: Type.String(),
      passed: Type.Boolean(),
      expected: Type.String(),
      decision: Type.String(),
      reasons: Type.Array(Type.String()),
      errors: Type.Array(Type.String()),
      failure: Type.Optional(Type.String()),
    }),
  ),
});
export type PolicyTestView = Static<typeof PolicyTestView>;

const AccessGrantView = Type.Object({
  principal: Type.String({
    description: '`user:NAME`, `sa:NAME`, `group:NAME`, `*` (everyone) or `bootstrap-token`',
  }),
  principalId: Type.String(),
  source: Type.String({ description: '`binding:<id>` or `builtin:<name>`' }),
  role: Nullable(Type.String()),
  scope: Type.String(),
  expiresAt: Nullable(Timestamp),
  via: Nullable(Type.String({ description: 'the group it is held through' })),
  actions: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Literal('all')])),
  active: Type.Optional(Type.Boolean()),
});
const ConditionView = Type.Object({ policy: Type.String(), effect: Type.String(), scope: Type.String() });
export const WhoCanQuery = Type.Object(
  { action: ActionName, resource: Type.String({ minLength: 1, maxLength: 400 }) },
  strict,
);
export const WhoCanView = Type.Object({
  action: Type.String(),
  resource: Type.String(),
  grants: Type.Array(AccessGrantView),
  conditions: Type.Array(ConditionView, {
    description: 'custom policies in this scope that can add or take away access under conditions',
  }),
});
export type WhoCanView = Static<typeof WhoCanView>;
export const AccessOfQuery = Type.Object({ principal: PersonOrService }, strict);
export const AccessOfView = Type.Object({
  principal: Type.String(),
  principalId: Type.String(),
  groups: Type.Array(Type.String()),
  grants: Type.Array(AccessGrantView),
  conditions: Type.Array(ConditionView),
});
export type AccessOfView = Static<typeof AccessOfView>;

export const ElevationStatusSchema = Type.Union([
  Type.Literal('pending'),
  Type.Literal('expired'),
  Type.Literal('active'),
  Type.Literal('ended'),
  Type.Literal('denied'),
  Type.Literal('cancelled'),
]);
export const RequestElevationBody = Type.Object(
  {
    role: RoleName,
    scope: ScopeRef,
    durationSeconds: Type.Integer({ minimum: 60, maximum: 30 * 86_400 }),
    reason: Type.String({ minLength: 3, maxLength: 500 }),
  },
  strict,
);
export type RequestElevationBody = Static<typeof RequestElevationBody>;
export const ElevationView = Type.Object({
  id: Type.String(),
  requester: Nullable(Type.String({ description: 'the username' })),
  requesterId: Type.String(),
  role: Type.String(),
  scope: Type.String(),
  durationSeconds: Type.Integer(),
  reason: Type.String(),
  status: ElevationStatusSchema,
  requestedAt: Timestamp,
  requestExpiresAt: Timestamp,
  decidedBy: Nullable(Type.String()),
  decidedAt: Nullable(Timestamp),
  decisionReason: Nullable(Type.String()),
  bindingId: Nullable(Type.String()),
  grantExpiresAt: Nullable(Timestamp),
});
export type ElevationView = Static<typeof ElevationView>;
export const ElevationList = Type.Object({ items: Type.Array(ElevationView) });
export type ElevationList = Static<typeof ElevationList>;
export const ElevationParams = Type.Object(
  { elevation: Type.String({ pattern: '^elv_[0-9a-f]{32}$', description: 'an elevation id, `elv_...`' }) },
  strict,
);
export const ElevationListQuery = Type.Object({ status: Type.Optional(ElevationStatusSchema) }, strict);
export const DecideElevationBody = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  strict,
);
