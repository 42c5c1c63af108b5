import { AsyncLocalStorage } from 'node:async_hooks';
import { open } from 'node:fs/promises';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  Migrator,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
  type Selectable,
  type SqliteDialectConfig,
} from 'kysely';
import {
  ARTIFACT_KINDS,
  BLOB_STATES,
  MAX_PAGE_SIZE,
  SENSITIVITIES,
  VERSION_STATES,
  type Artifact,
  type Blob,
  type DataKey,
  type KekRecord,
  type Page,
  type PageRequest,
  type Project,
  type SealedValue,
  type StoredFile,
  type FileDigest,
  type UploadPart,
  type UploadSession,
  type Version,
  ENVIRONMENTS,
  TOKEN_KINDS,
  USER_STATES,
  type Group,
  type ServiceAccount,
  type Session,
  type TokenRecord,
  type TokenScope,
  type User,
  BINDING_PRINCIPAL_TYPES,
  ELEVATION_STATES,
  POLICY_SCOPE_TYPES,
  type ElevationRecord,
  type PolicyRecord,
  type PolicyScope,
  type RoleBindingRecord,
} from '../../core/domain.js';
import { StrongroomError, quote } from '../../core/errors.js';
import type {
  ArtifactId,
  BlobId,
  DataKeyId,
  ElevationId,
  GroupId,
  ProjectId,
  ServiceAccountId,
  SessionId,
  TokenId,
  UploadId,
  UserId,
  VersionId,
} from '../../core/ids.js';
import type {
  ArtifactPatch,
  AuditBoundary,
  AuditLogState,
  AuditQuery,
  ElevationDecision,
  ElevationFilter,
  MetadataReader,
  MetadataStore,
  MetadataWriter,
  ResourceFacts,
  StoredAuditEvent,
  StoredCheckpoint,
  UserPatch,
} from '../metadata-store.js';
import type {
  ArtifactsTable,
  AuditCheckpointsTable,
  AuditEventsTable,
  GroupsTable,
  ElevationsTable,
  PoliciesTable,
  RoleBindingsTable,
  ServiceAccountsTable,
  SessionsTable,
  TokensTable,
  UsersTable,
  BlobsTable,
  Database,
  DataKeysTable,
  FilesTable,
  KeksTable,
  ProjectsTable,
  UploadPartsTable,
  UploadsTable,
} from './database.js';
import { migrationProvider } from './migrations.js';

/** Rows per multi-row statement: well under SQLite's bound-parameter limit for the widest table. */
const BATCH_ROWS = 500;

const VERSION_COLUMNS = [
  'id',
  'artifact_id',
  'tag',
  'state',
  'file_count',
  'total_size',
  'manifest_digest',
  'created_at',
  'created_by',
  'committed_at',
] as const;

type Executor = Kysely<Database>;
/** Turns a UNIQUE violation (named by its `table.column, ...` target) into a domain error, if it is one. */
type UniqueHandler = (target: string) => StrongroomError | undefined;

/**
 * A reader over any Kysely executor: the store's connection or an open transaction. Every query goes through
 * `query`, so error translation and the misuse checks live in one place for both.
 */
class SqliteMetadataReader implements MetadataReader {
  readonly #db: Executor;
  readonly #check: () => void;

  constructor(db: Executor, check: () => void) {
    this.#db = db;
    this.#check = check;
  }

  protected async query<T>(
    operation: string,
    run: (db: Executor) => Promise<T>,
    onUnique?: UniqueHandler,
  ): Promise<T> {
    this.#check();
    try {
      return await run(this.#db);
    } catch (err) {
      throw translateError(operation, err, onUnique);
    }
  }

  getSetting(key: string): Promise<string | undefined> {
    return this.query('getSetting', async (db) => {
      const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    });
  }

  listKeks(): Promise<readonly KekRecord[]> {
    return this.query('listKeks', async (db) => {
      const rows = await db.selectFrom('keks').selectAll().orderBy('version').execute();
      return rows.map(toKek);
    });
  }

  getProjectByName(name: string): Promise<Project | undefined> {
    return this.query('getProjectByName', async (db) => {
      const row = await db.selectFrom('projects').selectAll().where('name', '=', name).executeTakeFirst();
      return row && toProject(row);
    });
  }

  getProjectById(id: ProjectId): Promise<Project | undefined> {
    return this.query('getProjectById', async (db) => {
      const row = await db.selectFrom('projects').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toProject(row);
    });
  }

  listProjects(page: PageRequest): Promise<Page<Project>> {
    return this.query('listProjects', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('projects').selectAll();
      if (page.after !== undefined) q = q.where('name', '>', page.after);
      const rows = await q
        .orderBy('name')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toProject), limit, (p) => p.name);
    });
  }

  getArtifact(projectId: ProjectId, name: string): Promise<Artifact | undefined> {
    return this.query('getArtifact', async (db) => {
      const row = await db
        .selectFrom('artifacts')
        .selectAll()
        .where('project_id', '=', projectId)
        .where('name', '=', name)
        .executeTakeFirst();
      return row && toArtifact(row);
    });
  }

  getArtifactById(id: ArtifactId): Promise<Artifact | undefined> {
    return this.query('getArtifactById', async (db) => {
      const row = await db.selectFrom('artifacts').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toArtifact(row);
    });
  }

  listArtifacts(projectId: ProjectId, page: PageRequest): Promise<Page<Artifact>> {
    return this.query('listArtifacts', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('artifacts').selectAll().where('project_id', '=', projectId);
      if (page.after !== undefined) q = q.where('name', '>', page.after);
      const rows = await q
        .orderBy('name')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toArtifact), limit, (a) => a.name);
    });
  }

  getVersion(artifactId: ArtifactId, tag: string): Promise<Version | undefined> {
    return this.query('getVersion', async (db) => {
      const row = await db
        .selectFrom('versions')
        .select(VERSION_COLUMNS)
        .where('artifact_id', '=', artifactId)
        .where('tag', '=', tag)
        .executeTakeFirst();
      return row && toVersion(row);
    });
  }

  getVersionById(id: VersionId): Promise<Version | undefined> {
    return this.query('getVersionById', async (db) => {
      const row = await db
        .selectFrom('versions')
        .select(VERSION_COLUMNS)
        .where('id', '=', id)
        .executeTakeFirst();
      return row && toVersion(row);
    });
  }

  listVersions(artifactId: ArtifactId, page: PageRequest, includeUploading = false): Promise<Page<Version>> {
    return this.query('listVersions', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('versions').select(VERSION_COLUMNS).where('artifact_id', '=', artifactId);
      // N2: a reservation is never listed to readers unless the caller asks for it explicitly.
      if (!includeUploading) q = q.where('state', '=', 'available');
      if (page.after !== undefined) q = q.where('tag', '>', page.after);
      const rows = await q
        .orderBy('tag')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toVersion), limit, (v) => v.tag);
    });
  }

  getVersionMetadata(versionId: VersionId): Promise<SealedValue | undefined> {
    return this.query('getVersionMetadata', async (db) => {
      const row = await db
        .selectFrom('versions')
        .select(['metadata_data_key_id', 'metadata_sealed'])
        .where('id', '=', versionId)
        .executeTakeFirst();
      const dataKeyId = row?.metadata_data_key_id ?? null;
      const sealed = row?.metadata_sealed ?? null;
      return dataKeyId === null || sealed === null
        ? undefined
        : { dataKeyId: dataKeyId as DataKeyId, sealed };
    });
  }

  listFiles(versionId: VersionId): Promise<readonly StoredFile[]> {
    return this.query('listFiles', async (db) => {
      // BINARY collation compares the UTF-8 bytes, which is the order the interface promises.
      const rows = await db
        .selectFrom('files')
        .selectAll()
        .where('version_id', '=', versionId)
        .orderBy('path')
        .execute();
      return rows.map(toStoredFile);
    });
  }

  getFile(versionId: VersionId, path: string): Promise<StoredFile | undefined> {
    return this.query('getFile', async (db) => {
      const row = await db
        .selectFrom('files')
        .selectAll()
        .where('version_id', '=', versionId)
        .where('path', '=', path)
        .executeTakeFirst();
      return row && toStoredFile(row);
    });
  }

  getUpload(id: UploadId): Promise<UploadSession | undefined> {
    return this.query('getUpload', async (db) => {
      const row = await db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toUpload(row);
    });
  }

  listParts(uploadId: UploadId): Promise<readonly UploadPart[]> {
    return this.query('listParts', async (db) => {
      const rows = await db
        .selectFrom('upload_parts')
        .selectAll()
        .where('upload_id', '=', uploadId)
        .orderBy('idx')
        .execute();
      return rows.map(toPart);
    });
  }

  listExpiredUploads(now: string, limit: number): Promise<readonly UploadSession[]> {
    return this.query('listExpiredUploads', async (db) => {
      const rows = await db
        .selectFrom('uploads')
        .selectAll()
        .where('expires_at', '<=', now)
        .orderBy('expires_at')
        .orderBy('id')
        .limit(positiveLimit(limit))
        .execute();
      return rows.map(toUpload);
    });
  }

  getBlob(id: BlobId): Promise<Blob | undefined> {
    return this.query('getBlob', async (db) => {
      const row = await db.selectFrom('blobs').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toBlob(row);
    });
  }

  existingBlobIds(ids: readonly BlobId[]): Promise<ReadonlySet<BlobId>> {
    return this.query('existingBlobIds', async (db) => {
      const found = new Set<BlobId>();
      for (const batch of batches(ids)) {
        const rows = await db.selectFrom('blobs').select('id').where('id', 'in', batch).execute();
        for (const row of rows) found.add(row.id as BlobId);
      }
      return found;
    });
  }

  getDataKey(id: DataKeyId): Promise<DataKey | undefined> {
    return this.query('getDataKey', async (db) => {
      const row = await db.selectFrom('data_keys').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toDataKey(row);
    });
  }

  listDataKeysBelow(kekVersion: number, limit: number): Promise<readonly DataKey[]> {
    return this.query('listDataKeysBelow', async (db) => {
      const rows = await db
        .selectFrom('data_keys')
        .selectAll()
        .where('kek_version', '<', kekVersion)
        .orderBy('kek_version')
        .orderBy('id')
        .limit(positiveLimit(limit))
        .execute();
      return rows.map(toDataKey);
    });
  }

  countDataKeysByKek(): Promise<ReadonlyMap<number, number>> {
    return this.query('countDataKeysByKek', async (db) => {
      const rows = await db
        .selectFrom('data_keys')
        .select(['kek_version', db.fn.countAll<number>().as('count')])
        .groupBy('kek_version')
        .execute();
      return new Map(rows.map((r) => [r.kek_version, Number(r.count)]));
    });
  }

  getAuditState(): Promise<AuditLogState> {
    return this.query('getAuditState', async (db) => {
      const row = await db
        .selectFrom('audit_state')
        .selectAll()
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return {
        size: row.size,
        lastHash: row.last_hash,
        frontier: splitNodes(row.frontier),
        prunedThrough: row.pruned_through,
      };
    });
  }

  getAuditBoundary(): Promise<AuditBoundary> {
    return this.query('getAuditBoundary', async (db) => {
      const row = await db
        .selectFrom('audit_state')
        .selectAll()
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return {
        size: row.pruned_through,
        lastHash: row.pruned_hash,
        frontier: splitNodes(row.pruned_frontier),
      };
    });
  }

  searchAuditEvents(q: AuditQuery): Promise<readonly StoredAuditEvent[]> {
    return this.query('searchAuditEvents', async (db) => {
      let query = db
        .selectFrom('audit_events')
        .selectAll()
        .where('seq', '>', q.afterSeq)
        .where('body', 'is not', null);
      if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
      if (q.action !== undefined) query = query.where('action', '=', q.action);
      if (q.outcome !== undefined) query = query.where('outcome', '=', q.outcome);
      if (q.since !== undefined) query = query.where('time', '>=', q.since);
      if (q.until !== undefined) query = query.where('time', '<', q.until);
      if (q.resource !== undefined) {
        if (q.resource.endsWith('*')) {
          // A byte-order range instead of LIKE: no wildcard escaping, and the index applies.
          const prefix = q.resource.slice(0, -1);
          query = query.where('resource', '>=', prefix).where('resource', '<', `${prefix}\u{10ffff}`);
        } else {
          query = query.where('resource', '=', q.resource);
        }
      }
      const rows = await query.orderBy('seq').limit(positiveLimit(q.limit)).execute();
      return rows.map(toStoredAuditEvent);
    });
  }

  listAuditLeaves(fromSeq: number, toSeq: number): Promise<readonly Buffer[]> {
    return this.query('listAuditLeaves', async (db) => {
      const rows = await db
        .selectFrom('audit_events')
        .select(['seq', 'leaf'])
        .where('seq', '>=', fromSeq)
        .where('seq', '<=', toSeq)
        .orderBy('seq')
        .execute();
      if (rows.length !== Math.max(0, toSeq - fromSeq + 1)) {
        throw new StrongroomError('storage_error', `audit leaves ${fromSeq}..${toSeq} are incomplete`);
      }
      return rows.map((r) => r.leaf);
    });
  }

  lastAuditSeqBefore(time: string): Promise<number> {
    return this.query('lastAuditSeqBefore', async (db) => {
      const row = await db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .where('time', '<', time)
        .executeTakeFirst();
      return row?.seq ?? 0;
    });
  }

  getAuditCheckpoint(size: number): Promise<StoredCheckpoint | undefined> {
    return this.query('getAuditCheckpoint', async (db) => {
      const row = await db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('size', '=', size)
        .executeTakeFirst();
      return row && toCheckpoint(row);
    });
  }

  latestAuditCheckpoint(): Promise<StoredCheckpoint | undefined> {
    return this.query('latestAuditCheckpoint', async (db) => {
      const row = await db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .orderBy('size', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row && toCheckpoint(row);
    });
  }

  listAuditCheckpoints(
    fromSize: number,
    toSize: number,
    limit: number,
  ): Promise<readonly StoredCheckpoint[]> {
    return this.query('listAuditCheckpoints', async (db) => {
      const rows = await db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('size', '>=', fromSize)
        .where('size', '<=', toSize)
        .orderBy('size')
        .limit(positiveLimit(limit))
        .execute();
      return rows.map(toCheckpoint);
    });
  }

  getUserById(id: UserId): Promise<User | undefined> {
    return this.query('getUserById', async (db) => {
      const row = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toUser(row);
    });
  }

  getUserByName(username: string): Promise<User | undefined> {
    return this.query('getUserByName', async (db) => {
      const row = await db
        .selectFrom('users')
        .selectAll()
        .where('username', '=', username)
        .executeTakeFirst();
      return row && toUser(row);
    });
  }

  listUsers(page: PageRequest): Promise<Page<User>> {
    return this.query('listUsers', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('users').selectAll();
      if (page.after !== undefined) q = q.where('username', '>', page.after);
      const rows = await q
        .orderBy('username')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toUser), limit, (u) => u.username);
    });
  }

  getGroupByName(name: string): Promise<Group | undefined> {
    return this.query('getGroupByName', async (db) => {
      const row = await db.selectFrom('groups').selectAll().where('name', '=', name).executeTakeFirst();
      return row && toGroup(row);
    });
  }

  listGroups(page: PageRequest): Promise<Page<Group>> {
    return this.query('listGroups', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('groups').selectAll();
      if (page.after !== undefined) q = q.where('name', '>', page.after);
      const rows = await q
        .orderBy('name')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toGroup), limit, (g) => g.name);
    });
  }

  listGroupMembers(groupId: GroupId): Promise<readonly { principalId: string; source: string }[]> {
    return this.query('listGroupMembers', async (db) => {
      const rows = await db
        .selectFrom('group_members')
        .select(['principal_id', 'source'])
        .where('group_id', '=', groupId)
        .orderBy('principal_id')
        .execute();
      return rows.map((r) => ({ principalId: r.principal_id, source: r.source }));
    });
  }

  groupsOf(principalId: string): Promise<readonly string[]> {
    return this.query('groupsOf', async (db) => {
      const rows = await db
        .selectFrom('group_members')
        .innerJoin('groups', 'groups.id', 'group_members.group_id')
        .select('groups.name')
        .where('group_members.principal_id', '=', principalId)
        .orderBy('groups.name')
        .execute();
      return rows.map((r) => r.name);
    });
  }

  getServiceAccountById(id: ServiceAccountId): Promise<ServiceAccount | undefined> {
    return this.query('getServiceAccountById', async (db) => {
      const row = await db.selectFrom('service_accounts').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toServiceAccount(row);
    });
  }

  getServiceAccountByName(name: string): Promise<ServiceAccount | undefined> {
    return this.query('getServiceAccountByName', async (db) => {
      const row = await db
        .selectFrom('service_accounts')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return row && toServiceAccount(row);
    });
  }

  listServiceAccounts(page: PageRequest): Promise<Page<ServiceAccount>> {
    return this.query('listServiceAccounts', async (db) => {
      const limit = pageLimit(page.limit);
      let q = db.selectFrom('service_accounts').selectAll();
      if (page.after !== undefined) q = q.where('name', '>', page.after);
      const rows = await q
        .orderBy('name')
        .limit(limit + 1)
        .execute();
      return toPage(rows.map(toServiceAccount), limit, (a) => a.name);
    });
  }

  getSession(id: SessionId): Promise<Session | undefined> {
    return this.query('getSession', async (db) => {
      const row = await db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toSession(row);
    });
  }

  getTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    return this.query('getTokenByHash', async (db) => {
      const row = await db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
      return row && toToken(row);
    });
  }

  getTokenById(id: TokenId): Promise<TokenRecord | undefined> {
    return this.query('getTokenById', async (db) => {
      const row = await db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toToken(row);
    });
  }

  listTokens(principalId: string, includeRevoked: boolean): Promise<readonly TokenRecord[]> {
    return this.query('listTokens', async (db) => {
      let q = db
        .selectFrom('tokens')
        .selectAll()
        .where('principal_id', '=', principalId)
        .where('kind', '!=', 'invite');
      if (!includeRevoked) q = q.where('revoked_at', 'is', null);
      const rows = await q.orderBy('created_at', 'desc').orderBy('id').limit(1000).execute();
      return rows.map(toToken);
    });
  }

  getFederatedUser(provider: string, subject: string): Promise<UserId | undefined> {
    return this.query('getFederatedUser', async (db) => {
      const row = await db
        .selectFrom('federated_identities')
        .select('user_id')
        .where('provider', '=', provider)
        .where('subject', '=', subject)
        .executeTakeFirst();
      return row?.user_id as UserId | undefined;
    });
  }

  countRecoveryCodes(userId: UserId): Promise<number> {
    return this.query('countRecoveryCodes', async (db) => {
      const row = await db
        .selectFrom('recovery_codes')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    });
  }

  getResourceFacts(
    project: string,
    artifact: string,
    tag: string | null,
  ): Promise<ResourceFacts | undefined> {
    return this.query('getResourceFacts', async (db) => {
      const row = await db
        .selectFrom('projects as p')
        .innerJoin('artifacts as a', (j) => j.onRef('a.project_id', '=', 'p.id').on('a.name', '=', artifact))
        .leftJoin('versions as v', (j) => j.onRef('v.artifact_id', '=', 'a.id').on('v.tag', '=', tag ?? ''))
        .select(['a.sensitivity as sensitivity', 'v.state as state'])
        .where('p.name', '=', project)
        .executeTakeFirst();
      return row && toResourceFacts(row);
    });
  }

  listRoleBindings(): Promise<readonly RoleBindingRecord[]> {
    return this.query('listRoleBindings', async (db) => {
      const rows = await db.selectFrom('role_bindings').selectAll().orderBy('id').execute();
      return rows.map(toRoleBinding);
    });
  }

  getRoleBinding(id: string): Promise<RoleBindingRecord | undefined> {
    return this.query('getRoleBinding', async (db) => {
      const row = await db.selectFrom('role_bindings').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRoleBinding(row);
    });
  }

  listPolicies(): Promise<readonly PolicyRecord[]> {
    return this.query('listPolicies', async (db) => {
      const rows = await db.selectFrom('policies').selectAll().orderBy('id').execute();
      return rows.map(toPolicy);
    });
  }

  getPolicy(id: string): Promise<PolicyRecord | undefined> {
    return this.query('getPolicy', async (db) => {
      const row = await db.selectFrom('policies').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toPolicy(row);
    });
  }

  getElevation(id: ElevationId): Promise<ElevationRecord | undefined> {
    return this.query('getElevation', async (db) => {
      const row = await db.selectFrom('elevations').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toElevation(row);
    });
  }

  listElevations(filter: ElevationFilter): Promise<readonly ElevationRecord[]> {
    return this.query('listElevations', async (db) => {
      let q = db.selectFrom('elevations').selectAll();
      if (filter.state !== undefined) q = q.where('state', '=', filter.state);
      if (filter.requesterId !== undefined) q = q.where('requester_id', '=', filter.requesterId);
      const rows = await q
        .orderBy('requested_at', 'desc')
        .orderBy('id')
        .limit(positiveLimit(filter.limit))
        .execute();
      return rows.map(toElevation);
    });
  }
}

/** Inserts audit rows with one prepared statement on the transaction's own connection (the hot path). */
type AuditInsert = (events: readonly StoredAuditEvent[]) => void;

class SqliteMetadataWriter extends SqliteMetadataReader implements MetadataWriter {
  readonly #insertAudit: AuditInsert | undefined;

  constructor(db: Executor, check: () => void, insertAudit?: AuditInsert) {
    super(db, check);
    this.#insertAudit = insertAudit;
  }

  insertSettingIfAbsent(key: string, value: string): Promise<boolean> {
    return this.query('insertSettingIfAbsent', async (db) => {
      const result = await db
        .insertInto('settings')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doNothing())
        .executeTakeFirst();
      return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
    });
  }

  setSetting(key: string, value: string): Promise<void> {
    return this.query('setSetting', async (db) => {
      await db
        .insertInto('settings')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute();
    });
  }

  insertKek(kek: KekRecord): Promise<void> {
    return this.query('insertKek', async (db) => {
      await db
        .insertInto('keks')
        .values({
          version: kek.version,
          wrapped_key: kek.wrappedKey,
          created_at: kek.createdAt,
          destroyed_at: kek.destroyedAt,
        })
        .execute();
    });
  }

  destroyKek(version: number, at: string): Promise<void> {
    return this.query('destroyKek', async (db) => {
      // The row stays so the version number is never reused; the first destruction time is the one kept.
      await db
        .updateTable('keks')
        .set({ wrapped_key: Buffer.alloc(0), destroyed_at: sql<string>`coalesce(destroyed_at, ${at})` })
        .where('version', '=', version)
        .execute();
    });
  }

  insertProject(project: Project): Promise<void> {
    return this.query(
      'insertProject',
      async (db) => {
        await db
          .insertInto('projects')
          .values({
            id: project.id,
            name: project.name,
            description: project.description,
            created_at: project.createdAt,
            created_by: project.createdBy,
          })
          .execute();
      },
      (target) =>
        target === 'projects.name'
          ? new StrongroomError('project_exists', `project ${quote(project.name)} already exists`)
          : undefined,
    );
  }

  insertArtifact(artifact: Artifact): Promise<void> {
    return this.query(
      'insertArtifact',
      async (db) => {
        await db
          .insertInto('artifacts')
          .values({
            id: artifact.id,
            project_id: artifact.projectId,
            name: artifact.name,
            kind: artifact.kind,
            sensitivity: artifact.sensitivity,
            description: artifact.description,
            tags: JSON.stringify(artifact.tags),
            owner: artifact.owner,
            created_at: artifact.createdAt,
            updated_at: artifact.updatedAt,
          })
          .execute();
      },
      (target) =>
        target === 'artifacts.project_id, artifacts.name'
          ? new StrongroomError(
              'artifact_exists',
              `artifact ${quote(artifact.name)} already exists in the project`,
            )
          : undefined,
    );
  }

  updateArtifact(id: ArtifactId, patch: ArtifactPatch): Promise<void> {
    return this.query('updateArtifact', async (db) => {
      await db
        .updateTable('artifacts')
        .set({
          updated_at: patch.updatedAt,
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.tags !== undefined ? { tags: JSON.stringify(patch.tags) } : {}),
          ...(patch.sensitivity !== undefined ? { sensitivity: patch.sensitivity } : {}),
          ...(patch.kind !== undefined ? { kind: patch.kind } : {}),
        })
        .where('id', '=', id)
        .execute();
    });
  }

  insertDataKey(key: DataKey): Promise<void> {
    return this.query('insertDataKey', async (db) => {
      await db
        .insertInto('data_keys')
        .values({ id: key.id, wrapped: key.wrapped, kek_version: key.kekVersion, created_at: key.createdAt })
        .execute();
    });
  }

  rewrapDataKey(
    id: DataKeyId,
    wrapped: Buffer,
    kekVersion: number,
    expectedKekVersion: number,
  ): Promise<boolean> {
    return this.query('rewrapDataKey', async (db) => {
      const result = await db
        .updateTable('data_keys')
        .set({ wrapped, kek_version: kekVersion })
        .where('id', '=', id)
        .where('kek_version', '=', expectedKekVersion)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  deleteDataKey(id: DataKeyId): Promise<void> {
    return this.query('deleteDataKey', async (db) => {
      await db.deleteFrom('data_keys').where('id', '=', id).execute();
    });
  }

  insertVersion(version: Version, metadata: SealedValue | null): Promise<void> {
    return this.query(
      'insertVersion',
      async (db) => {
        await db
          .insertInto('versions')
          .values({
            id: version.id,
            artifact_id: version.artifactId,
            tag: version.tag,
            state: version.state,
            file_count: version.fileCount,
            total_size: version.totalSize,
            manifest_digest: version.manifestDigest,
            created_at: version.createdAt,
            created_by: version.createdBy,
            committed_at: version.committedAt,
            metadata_data_key_id: metadata?.dataKeyId ?? null,
            metadata_sealed: metadata?.sealed ?? null,
          })
          .execute();
      },
      (target) =>
        target === 'versions.artifact_id, versions.tag'
          ? new StrongroomError('version_exists', `version ${quote(version.tag)} already exists`)
          : undefined,
    );
  }

  insertFiles(files: readonly StoredFile[]): Promise<void> {
    return this.query('insertFiles', async (db) => {
      for (const batch of batches(files)) {
        await db
          .insertInto('files')
          .values(
            batch.map((f) => ({
              version_id: f.versionId,
              path: f.path,
              size: f.size,
              sha256: f.sha256,
              computed_sha256: f.computedSha256,
              blob_id: f.blobId,
              offset: f.offset,
            })),
          )
          .execute();
      }
    });
  }

  setComputedDigests(versionId: VersionId, digests: readonly FileDigest[]): Promise<void> {
    return this.setDigests('setComputedDigests', 'computed_sha256', versionId, digests);
  }

  setDeclaredDigests(versionId: VersionId, digests: readonly FileDigest[]): Promise<void> {
    return this.setDigests('setDeclaredDigests', 'sha256', versionId, digests);
  }

  private setDigests(
    operation: string,
    column: 'sha256' | 'computed_sha256',
    versionId: VersionId,
    digests: readonly FileDigest[],
  ): Promise<void> {
    return this.query(operation, async (db) => {
      for (const d of digests) {
        await db
          .updateTable('files')
          .set({ [column]: d.sha256 })
          .where('version_id', '=', versionId)
          .where('path', '=', d.path)
          .execute();
      }
    });
  }

  markVersionAvailable(id: VersionId, manifestDigest: string, committedAt: string): Promise<boolean> {
    return this.query('markVersionAvailable', async (db) => {
      const result = await db
        .updateTable('versions')
        .set({ state: 'available', manifest_digest: manifestDigest, committed_at: committedAt })
        .where('id', '=', id)
        .where('state', '=', 'uploading')
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  deleteVersion(id: VersionId): Promise<void> {
    return this.query('deleteVersion', async (db) => {
      // Files go with the row (ON DELETE CASCADE); the sealed metadata lives in the row itself.
      await db.deleteFrom('versions').where('id', '=', id).execute();
    });
  }

  insertUpload(session: UploadSession, parts: readonly UploadPart[]): Promise<void> {
    return this.query('insertUpload', async (db) => {
      await db
        .insertInto('uploads')
        .values({
          id: session.id,
          version_id: session.versionId,
          principal: session.principal,
          created_at: session.createdAt,
          expires_at: session.expiresAt,
        })
        .execute();
      for (const batch of batches(parts)) {
        await db
          .insertInto('upload_parts')
          .values(
            batch.map((p) => ({
              upload_id: p.uploadId,
              idx: p.index,
              blob_id: p.blobId,
              size: p.size,
              received: p.received,
            })),
          )
          .execute();
      }
    });
  }

  setPartReceived(uploadId: UploadId, index: number, received: number): Promise<void> {
    return this.query('setPartReceived', async (db) => {
      // A late, smaller report (a retried request racing a newer one) must never shrink the durable offset.
      await db
        .updateTable('upload_parts')
        .set({ received: sql<number>`max(received, ${received})` })
        .where('upload_id', '=', uploadId)
        .where('idx', '=', index)
        .execute();
    });
  }

  restartPart(uploadId: UploadId, index: number): Promise<void> {
    return this.query('restartPart', async (db) => {
      await db
        .updateTable('upload_parts')
        .set({ received: 0 })
        .where('upload_id', '=', uploadId)
        .where('idx', '=', index)
        .execute();
    });
  }

  deleteUpload(id: UploadId): Promise<void> {
    return this.query('deleteUpload', async (db) => {
      await db.deleteFrom('uploads').where('id', '=', id).execute();
    });
  }

  insertBlob(blob: Blob): Promise<void> {
    return this.query('insertBlob', async (db) => {
      await db
        .insertInto('blobs')
        .values({
          id: blob.id,
          data_key_id: blob.dataKeyId,
          size: blob.size,
          state: blob.state,
          upload_id: blob.uploadId,
          created_at: blob.createdAt,
        })
        .execute();
    });
  }

  commitBlobs(uploadId: UploadId): Promise<void> {
    return this.query('commitBlobs', async (db) => {
      await db
        .updateTable('blobs')
        .set({ state: 'committed', upload_id: null })
        .where('upload_id', '=', uploadId)
        .where('state', '=', 'staging')
        .execute();
    });
  }

  deleteBlob(id: BlobId): Promise<void> {
    return this.query('deleteBlob', async (db) => {
      await db.deleteFrom('blobs').where('id', '=', id).execute();
    });
  }

  listUploadBlobs(uploadId: UploadId): Promise<readonly Blob[]> {
    return this.query('listUploadBlobs', async (db) => {
      const rows = await db
        .selectFrom('blobs')
        .selectAll()
        .where('upload_id', '=', uploadId)
        .where('state', '=', 'staging')
        .orderBy('id')
        .execute();
      return rows.map(toBlob);
    });
  }

  appendAuditEvents(
    expectedSize: number,
    events: readonly StoredAuditEvent[],
    next: AuditLogState,
  ): Promise<void> {
    return this.query('appendAuditEvents', async (db) => {
      const moved = await db
        .updateTable('audit_state')
        .set({ size: next.size, last_hash: next.lastHash, frontier: Buffer.concat([...next.frontier]) })
        .where('id', '=', 1)
        .where('size', '=', expectedSize)
        .executeTakeFirst();
      if (moved.numUpdatedRows !== 1n) {
        throw new StrongroomError('storage_error', `the audit log no longer ends at ${expectedSize}`);
      }
      if (this.#insertAudit) {
        this.#insertAudit(events);
        return;
      }
      for (const batch of batches(events)) {
        await db
          .insertInto('audit_events')
          .values(
            batch.map((e) => ({
              seq: e.seq,
              time: e.time,
              actor: e.actor,
              action: e.action,
              resource: e.resource,
              outcome: e.outcome,
              body: e.body,
              leaf: e.leaf,
            })),
          )
          .execute();
      }
    });
  }

  insertAuditCheckpoint(checkpoint: StoredCheckpoint): Promise<void> {
    return this.query('insertAuditCheckpoint', async (db) => {
      await db
        .insertInto('audit_checkpoints')
        .values({ size: checkpoint.size, note: checkpoint.note, created_at: checkpoint.createdAt })
        .onConflict((oc) => oc.column('size').doNothing())
        .execute();
    });
  }

  pruneAuditEvents(boundary: AuditBoundary): Promise<void> {
    return this.query('pruneAuditEvents', async (db) => {
      const moved = await db
        .updateTable('audit_state')
        .set({
          pruned_through: boundary.size,
          pruned_hash: boundary.lastHash,
          pruned_frontier: Buffer.concat([...boundary.frontier]),
        })
        .where('id', '=', 1)
        .where('pruned_through', '<', boundary.size)
        .where('size', '>=', boundary.size)
        .executeTakeFirst();
      if (moved.numUpdatedRows !== 1n) {
        throw new StrongroomError('storage_error', `the audit log cannot be pruned through ${boundary.size}`);
      }
      await db
        .updateTable('audit_events')
        .set({ time: null, actor: null, action: null, resource: null, outcome: null, body: null })
        .where('seq', '<=', boundary.size)
        .where('body', 'is not', null)
        .execute();
    });
  }

  insertUser(user: User): Promise<void> {
    return this.query(
      'insertUser',
      async (db) => {
        await db
          .insertInto('users')
          .values({
            id: user.id,
            username: user.username,
            display_name: user.displayName,
            email: user.email,
            state: user.state,
            password_hash: user.passwordHash,
            totp_data_key_id: user.totp?.dataKeyId ?? null,
            totp_sealed: user.totp?.sealed ?? null,
            totp_last_step: user.totpLastStep,
            failed_logins: user.failedLogins,
            locked_until: user.lockedUntil,
            created_at: user.createdAt,
            created_by: user.createdBy,
            updated_at: user.createdAt,
          })
          .execute();
      },
      (target) =>
        target === 'users.username'
          ? new StrongroomError('user_exists', `user ${quote(user.username)} already exists`)
          : undefined,
    );
  }

  updateUser(id: UserId, patch: UserPatch): Promise<void> {
    return this.query('updateUser', async (db) => {
      await db
        .updateTable('users')
        .set({
          updated_at: patch.updatedAt,
          ...(patch.displayName !== undefined ? { display_name: patch.displayName } : {}),
          ...(patch.email !== undefined ? { email: patch.email } : {}),
          ...(patch.state !== undefined ? { state: patch.state } : {}),
          ...(patch.passwordHash !== undefined ? { password_hash: patch.passwordHash } : {}),
          ...(patch.totp !== undefined
            ? { totp_data_key_id: patch.totp?.dataKeyId ?? null, totp_sealed: patch.totp?.sealed ?? null }
            : {}),
          ...(patch.totpLastStep !== undefined ? { totp_last_step: patch.totpLastStep } : {}),
          ...(patch.failedLogins !== undefined ? { failed_logins: patch.failedLogins } : {}),
          ...(patch.lockedUntil !== undefined ? { locked_until: patch.lockedUntil } : {}),
        })
        .where('id', '=', id)
        .execute();
    });
  }

  advanceTotpStep(id: UserId, step: number): Promise<boolean> {
    return this.query('advanceTotpStep', async (db) => {
      const result = await db
        .updateTable('users')
        .set({ totp_last_step: step })
        .where('id', '=', id)
        .where('totp_last_step', '<', step)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    });
  }

  insertGroup(group: Group): Promise<void> {
    return this.query(
      'insertGroup',
      async (db) => {
        await db
          .insertInto('groups')
          .values({
            id: group.id,
            name: group.name,
            description: group.description,
            created_at: group.createdAt,
          })
          .execute();
      },
      (target) =>
        target === 'groups.name'
          ? new StrongroomError('group_exists', `group ${quote(group.name)} already exists`)
          : undefined,
    );
  }

  deleteGroup(id: GroupId): Promise<void> {
    return this.query('deleteGroup', async (db) => {
      await db.deleteFrom('group_members').where('group_id', '=', id).execute();
      await db.deleteFrom('groups').where('id', '=', id).execute();
    });
  }

  addGroupMember(groupId: GroupId, principalId: string, source: string): Promise<void> {
    return this.query('addGroupMember', async (db) => {
      await db
        .insertInto('group_members')
        .values({ group_id: groupId, principal_id: principalId, source })
        .onConflict((oc) => oc.columns(['group_id', 'principal_id']).doNothing())
        .execute();
    });
  }

  removeGroupMember(groupId: GroupId, principalId: string): Promise<boolean> {
    return this.query('removeGroupMember', async (db) => {
      const result = await db
        .deleteFrom('group_members')
        .where('group_id', '=', groupId)
        .where('principal_id', '=', principalId)
        .executeTakeFirst();
      return result.numDeletedRows === 1n;
    });
  }

  insertServiceAccount(account: ServiceAccount): Promise<void> {
    return this.query(
      'insertServiceAccount',
      async (db) => {
        await db
          .insertInto('service_accounts')
          .values({
            id: account.id,
            name: account.name,
            description: account.description,
            environment: account.environment,
            disabled: account.disabled ? 1 : 0,
            created_at: account.createdAt,
            created_by: account.createdBy,
          })
          .execute();
      },
      (target) =>
        target === 'service_accounts.name'
          ? new StrongroomError(
              'service_account_exists',
              `service account ${quote(account.name)} already exists`,
            )
          : undefined,
    );
  }

  setServiceAccountDisabled(id: ServiceAccountId, disabled: boolean): Promise<void> {
    return this.query('setServiceAccountDisabled', async (db) => {
      await db
        .updateTable('service_accounts')
        .set({ disabled: disabled ? 1 : 0 })
        .where('id', '=', id)
        .execute();
    });
  }

  insertSession(session: Session): Promise<void> {
    return this.query('insertSession', async (db) => {
      await db
        .insertInto('sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          auth_method: session.authMethod,
          mfa_at: session.mfaAt,
          device_posture: session.devicePosture,
          created_at: session.createdAt,
          expires_at: session.expiresAt,
          revoked_at: session.revokedAt,
        })
        .execute();
    });
  }

  setSessionMfa(id: SessionId, at: string): Promise<void> {
    return this.query('setSessionMfa', async (db) => {
      await db.updateTable('sessions').set({ mfa_at: at }).where('id', '=', id).execute();
    });
  }

  revokeSessions(
    target: { readonly sessionId: SessionId } | { readonly userId: UserId },
    at: string,
  ): Promise<number> {
    return this.query('revokeSessions', async (db) => {
      let q = db.updateTable('sessions').set({ revoked_at: at }).where('revoked_at', 'is', null);
      q =
        'sessionId' in target ? q.where('id', '=', target.sessionId) : q.where('user_id', '=', target.userId);
      return Number((await q.executeTakeFirst()).numUpdatedRows);
    });
  }

  insertToken(token: TokenRecord): Promise<void> {
    return this.query('insertToken', async (db) => {
      await db
        .insertInto('tokens')
        .values({
          id: token.id,
          kind: token.kind,
          hash: token.hash,
          principal_id: token.principalId,
          principal_kind: token.principalKind,
          session_id: token.sessionId,
          parent_id: token.parentId,
          scope: token.scope === null ? null : JSON.stringify(token.scope),
          environment: token.environment,
          description: token.description,
          created_at: token.createdAt,
          created_by: token.createdBy,
          expires_at: token.expiresAt,
          revoked_at: token.revokedAt,
        })
        .execute();
    });
  }

  revokeTokens(
    target: { readonly tokenId: TokenId } | { readonly principalId: string },
    at: string,
  ): Promise<number> {
    return this.query('revokeTokens', async (db) => {
      let q = db.updateTable('tokens').set({ revoked_at: at }).where('revoked_at', 'is', null);
      q =
        'tokenId' in target
          ? q.where('id', '=', target.tokenId)
          : q.where('principal_id', '=', target.principalId);
      const revoked = Number((await q.executeTakeFirst()).numUpdatedRows);
      // Everything derived from a revoked token is revoked with it in the record too (A7), so listings
      // show what authentication already enforces through the parent chain.
      await sql`with recursive derived(id) as (
          select id from tokens where revoked_at = ${at}
          union select t.id from tokens t join derived d on t.parent_id = d.id)
        update tokens set revoked_at = ${at} where revoked_at is null and id in (select id from derived)`.execute(
        db,
      );
      return revoked;
    });
  }

  insertFederatedIdentity(provider: string, subject: string, userId: UserId, at: string): Promise<void> {
    return this.query('insertFederatedIdentity', async (db) => {
      await db
        .insertInto('federated_identities')
        .values({ provider, subject, user_id: userId, created_at: at })
        .execute();
    });
  }

  replaceRecoveryCodes(userId: UserId, hashes: readonly string[]): Promise<void> {
    return this.query('replaceRecoveryCodes', async (db) => {
      await db.deleteFrom('recovery_codes').where('user_id', '=', userId).execute();
      if (hashes.length > 0) {
        await db
          .insertInto('recovery_codes')
          .values(hashes.map((hash) => ({ user_id: userId, hash, used_at: null })))
          .execute();
      }
    });
  }

  useRecoveryCode(userId: UserId, hash: string, at: string): Promise<boolean> {
    return this.query('useRecoveryCode', async (db) => {
      const result = await db
        .updateTable('recovery_codes')
        .set({ used_at: at })
        .where('user_id', '=', userId)
        .where('hash', '=', hash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    });
  }

  insertRoleBinding(binding: RoleBindingRecord): Promise<void> {
    return this.query(
      'insertRoleBinding',
      async (db) => {
        await db
          .insertInto('role_bindings')
          .values({
            id: binding.id,
            role: binding.role,
            principal_type: binding.principal.type,
            principal_id: binding.principal.id,
            scope_type: binding.scope.type,
            scope_id: binding.scope.id,
            expires_at: binding.expiresAt,
            description: binding.description,
            created_at: binding.createdAt,
            created_by: binding.createdBy,
            elevation_id: binding.elevationId,
          })
          .execute();
      },
      (target) =>
        target === 'role_bindings.id'
          ? new StrongroomError('binding_exists', `role binding ${quote(binding.id)} already exists`)
          : undefined,
    );
  }

  deleteRoleBinding(id: string): Promise<boolean> {
    return this.query('deleteRoleBinding', async (db) => {
      const result = await db.deleteFrom('role_bindings').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows === 1n;
    });
  }

  upsertPolicy(policy: PolicyRecord): Promise<void> {
    return this.query('upsertPolicy', async (db) => {
      await db
        .insertInto('policies')
        .values({
          id: policy.id,
          text: policy.text,
          scope_type: policy.scope.type,
          scope_id: policy.scope.id,
          description: policy.description,
          created_at: policy.createdAt,
          created_by: policy.createdBy,
          updated_at: policy.updatedAt,
          updated_by: policy.updatedBy,
        })
        .onConflict((oc) =>
          oc.column('id').doUpdateSet({
            text: policy.text,
            scope_type: policy.scope.type,
            scope_id: policy.scope.id,
            description: policy.description,
            updated_at: policy.updatedAt,
            updated_by: policy.updatedBy,
          }),
        )
        .execute();
    });
  }

  deletePolicy(id: string): Promise<boolean> {
    return this.query('deletePolicy', async (db) => {
      const result = await db.deleteFrom('policies').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows === 1n;
    });
  }

  insertElevation(elevation: ElevationRecord): Promise<void> {
    return this.query('insertElevation', async (db) => {
      await db
        .insertInto('elevations')
        .values({
          id: elevation.id,
          requester_id: elevation.requesterId,
          role: elevation.role,
          scope_type: elevation.scope.type,
          scope_id: elevation.scope.id,
          duration_seconds: elevation.durationSeconds,
          reason: elevation.reason,
          state: elevation.state,
          requested_at: elevation.requestedAt,
          request_expires_at: elevation.requestExpiresAt,
          decided_by: elevation.decidedBy,
          decided_at: elevation.decidedAt,
          decision_reason: elevation.decisionReason,
          binding_id: elevation.bindingId,
          grant_expires_at: elevation.grantExpiresAt,
        })
        .execute();
    });
  }

  decideElevation(id: ElevationId, decision: ElevationDecision): Promise<boolean> {
    return this.query('decideElevation', async (db) => {
      const result = await db
        .updateTable('elevations')
        .set({
          state: decision.state,
          decided_by: decision.decidedBy,
          decided_at: decision.decidedAt,
          decision_reason: decision.decisionReason,
          binding_id: decision.bindingId,
          grant_expires_at: decision.grantExpiresAt,
        })
        .where('id', '=', id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    });
  }
}

interface TransactionState {
  active: boolean;
}

/**
 * MetadataStore over SQLite (the embedded default, DESIGN section 10). Kysely's SQLite driver has one
 * connection behind a mutex, so transactions are serialized, which makes them serializable; they start with
 * BEGIN IMMEDIATE so a second process on the same file waits on `busy_timeout` for the write lock instead of
 * failing with SQLITE_BUSY when a read lock would have to be upgraded mid-transaction.
 *
 * Inside `transaction(fn)`, `fn` must use only its `tx`: the connection is held for the whole transaction, so
 * calling this store from `fn` would wait for itself forever. Such calls are detected and fail with
 * `internal_error` instead of hanging.
 *
 * Open one store per database file per process: better-sqlite3 waits for another connection's lock
 * synchronously, so a second store in the same thread would block the event loop for `busy_timeout` while the
 * first could never finish, then fail with `storage_error`.
 */
export class SqliteMetadataStore extends SqliteMetadataReader implements MetadataStore {
  readonly #db: Executor;
  readonly #transactions: AsyncLocalStorage<TransactionState>;
  readonly #reader: BetterSqlite3.Database | undefined;
  readonly #insertAudit: AuditInsert | undefined;
  #settingStatement: BetterSqlite3.Statement<[string], { value: string }> | undefined;
  #factsStatement:
    | BetterSqlite3.Statement<[string, string, string], { sensitivity: string; state: string | null }>
    | undefined;

  /**
   * `reader` is an optional second, read-only connection: settings read on every request (the identity
   * epoch) go through it, so they never queue behind a write transaction that is waiting for its fsync (in
   * WAL mode readers do not wait for writers, and they see exactly what is committed).
   */
  constructor(db: Kysely<Database>, reader?: BetterSqlite3.Database, connection?: BetterSqlite3.Database) {
    const transactions = new AsyncLocalStorage<TransactionState>();
    super(db, () => assertOutsideTransaction(transactions));
    this.#db = db;
    this.#transactions = transactions;
    this.#reader = reader;
    if (connection) {
      // Kysely's SQLite driver runs every transaction on this one connection behind its mutex, so a statement
      // run on it from inside `transaction(fn)` is part of that transaction.
      let insert: BetterSqlite3.Statement | undefined;
      this.#insertAudit = (events) => {
        insert ??= connection.prepare(
          'insert into audit_events (seq, time, actor, action, resource, outcome, body, leaf) values (?, ?, ?, ?, ?, ?, ?, ?)',
        );
        for (const e of events)
          insert.run(e.seq, e.time, e.actor, e.action, e.resource, e.outcome, e.body, e.leaf);
      };
    }
  }

  /** The authorization hot path: one prepared join on the read-only connection (never behind a write). */
  override getResourceFacts(
    project: string,
    artifact: string,
    tag: string | null,
  ): Promise<ResourceFacts | undefined> {
    if (this.#reader === undefined || this.#transactions.getStore()?.active === true)
      return super.getResourceFacts(project, artifact, tag);
    try {
      this.#factsStatement ??= this.#reader.prepare<
        [string, string, string],
        { sensitivity: string; state: string | null }
      >(
        `select a.sensitivity as sensitivity, v.state as state
           from projects p
           join artifacts a on a.project_id = p.id and a.name = ?
           left join versions v on v.artifact_id = a.id and v.tag = ?
          where p.name = ?`,
      );
      const row = this.#factsStatement.get(artifact, tag ?? '', project);
      return Promise.resolve(row && toResourceFacts(row));
    } catch (err) {
      return Promise.reject(err instanceof StrongroomError ? err : translateError('getResourceFacts', err));
    }
  }

  override getSetting(key: string): Promise<string | undefined> {
    if (this.#reader === undefined) return super.getSetting(key);
    try {
      assertOutsideTransaction(this.#transactions);
      this.#settingStatement ??= this.#reader.prepare<[string], { value: string }>(
        'select value from settings where key = ?',
      );
      return Promise.resolve(this.#settingStatement.get(key)?.value);
    } catch (err) {
      return Promise.reject(err instanceof StrongroomError ? err : translateError('getSetting', err));
    }
  }

  async transaction<T>(fn: (tx: MetadataWriter) => Promise<T>): Promise<T> {
    assertOutsideTransaction(this.#transactions);
    const state: TransactionState = { active: true };
    let thrownByFn: { readonly error: unknown } | undefined;
    try {
      return await this.#db.transaction().execute((trx) =>
        this.#transactions.run(state, async () => {
          try {
            return await fn(new SqliteMetadataWriter(trx, () => assertActive(state), this.#insertAudit));
          } catch (error) {
            thrownByFn = { error };
            throw error;
          }
        }),
      );
    } catch (err) {
      // What `fn` threw is the caller's to see unchanged; only begin/commit/rollback failures are ours.
      if (thrownByFn !== undefined && err === thrownByFn.error) throw err;
      throw translateError('transaction', err);
    } finally {
      state.active = false;
    }
  }

  async migrate(): Promise<void> {
    assertOutsideTransaction(this.#transactions);
    const { error, results } = await new Migrator({
      db: this.#db,
      provider: migrationProvider,
    }).migrateToLatest();
    if (error === undefined) return;
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new StrongroomError(
      'storage_error',
      failed === undefined ? 'metadata migration failed' : `metadata migration ${quote(failed)} failed`,
      { cause: error },
    );
  }

  ping(): Promise<void> {
    return this.query('ping', async (db) => {
      await sql`select 1`.execute(db);
    });
  }

  async close(): Promise<void> {
    try {
      this.#reader?.close();
      await this.#db.destroy();
    } catch (err) {
      throw translateError('close', err);
    }
  }
}

/**
 * Opens (creating if needed) the SQLite database at `path`; ':memory:' gives a private in-memory database.
 * Call `migrate()` before use. The file is created with mode 0600 (it holds wrapped keys); SQLite gives its
 * -wal and -shm files the same mode.
 */
export async function openSqliteMetadataStore(path: string): Promise<SqliteMetadataStore> {
  let database: BetterSqlite3.Database | undefined;
  try {
    if (path !== ':memory:') await (await open(path, 'a', 0o600)).close();
    database = new BetterSqlite3(path);
    // busy_timeout first, so switching to WAL waits for another process instead of failing.
    database.pragma('busy_timeout = 5000');
    database.pragma('journal_mode = WAL');
    // N1: FULL syncs the WAL on every commit, so a committed transaction survives power loss.
    database.pragma('synchronous = FULL');
    database.pragma('foreign_keys = ON');
    // Crypto-shredding: deleted wrapped keys are overwritten with zeros instead of lingering in free pages.
    database.pragma('secure_delete = ON');
  } catch (err) {
    database?.close();
    throw new StrongroomError(
      'storage_error',
      `cannot open the metadata database ${quote(path)}${codeSuffix(err)}`,
      {
        cause: err,
      },
    );
  }
  let reader: BetterSqlite3.Database | undefined;
  if (path !== ':memory:') {
    try {
      reader = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
      reader.pragma('busy_timeout = 5000');
    } catch (err) {
      database.close();
      throw new StrongroomError(
        'storage_error',
        `cannot open the metadata database ${quote(path)}${codeSuffix(err)}`,
        {
          cause: err,
        },
      );
    }
  }
  return new SqliteMetadataStore(
    new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database }) }),
    reader,
    database,
  );
}

class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

function assertOutsideTransaction(transactions: AsyncLocalStorage<TransactionState>): void {
  if (transactions.getStore()?.active === true) {
    throw new StrongroomError(
      'internal_error',
      'the metadata store was called inside its own transaction; use the transaction writer (it would deadlock)',
    );
  }
}

function assertActive(state: TransactionState): void {
  if (!state.active) {
    throw new StrongroomError(
      'internal_error',
      'a metadata transaction writer was used after its transaction ended',
    );
  }
}

function sqliteCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const { code } = err;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

function codeSuffix(err: unknown): string {
  const code =
    sqliteCode(err) ??
    (err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined);
  return code === undefined ? '' : ` (${code})`;
}

/**
 * The one place driver errors become domain errors. Messages name the operation and the SQLite result code,
 * never SQL text or values; the driver error stays available as `cause` for the server log.
 */
function translateError(operation: string, err: unknown, onUnique?: UniqueHandler): StrongroomError {
  if (err instanceof StrongroomError) return err;
  const code = sqliteCode(err);
  if (
    onUnique !== undefined &&
    (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  ) {
    // better-sqlite3 reports `UNIQUE constraint failed: table.column, ...`: column names only, no values.
    const target =
      err instanceof Error ? /^UNIQUE constraint failed: (.+)$/.exec(err.message)?.[1] : undefined;
    const mapped = target === undefined ? undefined : onUnique(target);
    if (mapped !== undefined) return mapped;
  }
  return new StrongroomError('storage_error', `metadata store ${operation} failed${codeSuffix(err)}`, {
    cause: err,
  });
}

function pageLimit(limit: number): number {
  return Math.min(positiveLimit(limit), MAX_PAGE_SIZE);
}

function positiveLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StrongroomError('invalid_request', `limit ${quote(String(limit))} must be a positive integer`);
  }
  return limit;
}

/** `rows` holds up to `limit + 1` items; the extra one only says that another page exists. */
function toPage<T>(rows: readonly T[], limit: number, key: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return { items, next: rows.length > limit && last !== undefined ? key(last) : null };
}

function* batches<T>(items: readonly T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH_ROWS) yield items.slice(i, i + BATCH_ROWS);
}

function member<T extends string>(allowed: readonly T[], value: string, column: string): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) {
    throw new StrongroomError('storage_error', `metadata store holds an unknown ${column} value`);
  }
  return found;
}

function parseTags(text: string): readonly string[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (Array.isArray(value) && value.every((t): t is string => typeof t === 'string')) return value;
  throw new StrongroomError('storage_error', 'metadata store holds malformed artifact tags');
}

function toKek(r: Selectable<KeksTable>): KekRecord {
  return {
    version: r.version,
    wrappedKey: r.wrapped_key,
    createdAt: r.created_at,
    destroyedAt: r.destroyed_at,
  };
}

function toProject(r: Selectable<ProjectsTable>): Project {
  return {
    id: r.id as ProjectId,
    name: r.name,
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

function toArtifact(r: Selectable<ArtifactsTable>): Artifact {
  return {
    id: r.id as ArtifactId,
    projectId: r.project_id as ProjectId,
    name: r.name,
    kind: member(ARTIFACT_KINDS, r.kind, 'artifact kind'),
    sensitivity: member(SENSITIVITIES, r.sensitivity, 'sensitivity'),
    description: r.description,
    tags: parseTags(r.tags),
    owner: r.owner,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

type VersionRow = Pick<Selectable<Database['versions']>, (typeof VERSION_COLUMNS)[number]>;

function toVersion(r: VersionRow): Version {
  return {
    id: r.id as VersionId,
    artifactId: r.artifact_id as ArtifactId,
    tag: r.tag,
    state: member(VERSION_STATES, r.state, 'version state'),
    fileCount: r.file_count,
    totalSize: r.total_size,
    manifestDigest: r.manifest_digest,
    createdAt: r.created_at,
    createdBy: r.created_by,
    committedAt: r.committed_at,
  };
}

function toStoredFile(r: Selectable<FilesTable>): StoredFile {
  return {
    versionId: r.version_id as VersionId,
    path: r.path,
    size: r.size,
    sha256: r.sha256,
    computedSha256: r.computed_sha256,
    blobId: r.blob_id as BlobId,
    offset: r.offset,
  };
}

function toUpload(r: Selectable<UploadsTable>): UploadSession {
  return {
    id: r.id as UploadId,
    versionId: r.version_id as VersionId,
    principal: r.principal,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

function toPart(r: Selectable<UploadPartsTable>): UploadPart {
  return {
    uploadId: r.upload_id as UploadId,
    index: r.idx,
    blobId: r.blob_id as BlobId,
    size: r.size,
    received: r.received,
  };
}

function toBlob(r: Selectable<BlobsTable>): Blob {
  return {
    id: r.id as BlobId,
    dataKeyId: r.data_key_id as DataKeyId,
    size: r.size,
    state: member(BLOB_STATES, r.state, 'blob state'),
    uploadId: r.upload_id as UploadId | null,
    createdAt: r.created_at,
  };
}

function toDataKey(r: Selectable<DataKeysTable>): DataKey {
  return { id: r.id as DataKeyId, wrapped: r.wrapped, kekVersion: r.kek_version, createdAt: r.created_at };
}

function splitNodes(bytes: Buffer): Buffer[] {
  if (bytes.length % 32 !== 0) throw new StrongroomError('storage_error', 'the audit frontier is corrupt');
  const nodes: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 32) nodes.push(Buffer.from(bytes.subarray(i, i + 32)));
  return nodes;
}

function toStoredAuditEvent(r: Selectable<AuditEventsTable>): StoredAuditEvent {
  if (r.body === null || r.time === null || r.action === null || r.outcome === null) {
    throw new StrongroomError('storage_error', `audit event ${r.seq} has been pruned`);
  }
  return {
    seq: r.seq,
    time: r.time,
    actor: r.actor,
    action: r.action,
    resource: r.resource,
    outcome: r.outcome,
    body: r.body,
    leaf: r.leaf,
  };
}

function toCheckpoint(r: Selectable<AuditCheckpointsTable>): StoredCheckpoint {
  return { size: r.size, note: r.note, createdAt: r.created_at };
}

function toUser(r: Selectable<UsersTable>): User {
  return {
    id: r.id as UserId,
    username: r.username,
    displayName: r.display_name,
    email: r.email,
    state: member(USER_STATES, r.state, 'users.state'),
    passwordHash: r.password_hash,
    totp:
      r.totp_data_key_id !== null && r.totp_sealed !== null
        ? { dataKeyId: r.totp_data_key_id as DataKeyId, sealed: r.totp_sealed }
        : null,
    totpLastStep: r.totp_last_step,
    failedLogins: r.failed_logins,
    lockedUntil: r.locked_until,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

function toGroup(r: Selectable<GroupsTable>): Group {
  return { id: r.id as GroupId, name: r.name, description: r.description, createdAt: r.created_at };
}

function toServiceAccount(r: Selectable<ServiceAccountsTable>): ServiceAccount {
  return {
    id: r.id as ServiceAccountId,
    name: r.name,
    description: r.description,
    environment: member(ENVIRONMENTS, r.environment, 'service_accounts.environment'),
    disabled: r.disabled === 1,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

function toSession(r: Selectable<SessionsTable>): Session {
  return {
    id: r.id as SessionId,
    userId: r.user_id as UserId,
    authMethod: r.auth_method,
    mfaAt: r.mfa_at,
    devicePosture: r.device_posture,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

function toToken(r: Selectable<TokensTable>): TokenRecord {
  return {
    id: r.id as TokenId,
    kind: member(TOKEN_KINDS, r.kind, 'tokens.kind'),
    hash: r.hash,
    principalId: r.principal_id,
    principalKind: member(['user', 'service'] as const, r.principal_kind, 'tokens.principal_kind'),
    sessionId: r.session_id as SessionId | null,
    parentId: r.parent_id as TokenId | null,
    scope: r.scope === null ? null : (JSON.parse(r.scope) as TokenScope),
    environment: r.environment === null ? null : member(ENVIRONMENTS, r.environment, 'tokens.environment'),
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

function toResourceFacts(r: { sensitivity: string; state: string | null }): ResourceFacts {
  return {
    sensitivity: member(SENSITIVITIES, r.sensitivity, 'sensitivity'),
    versionState: r.state === null ? null : member(VERSION_STATES, r.state, 'state'),
  };
}

function toScope(type: string, id: string): PolicyScope {
  return { type: member(POLICY_SCOPE_TYPES, type, 'scope_type'), id };
}

function toRoleBinding(r: Selectable<RoleBindingsTable>): RoleBindingRecord {
  return {
    id: r.id,
    role: r.role,
    principal: {
      type: member(BINDING_PRINCIPAL_TYPES, r.principal_type, 'principal_type'),
      id: r.principal_id,
    },
    scope: toScope(r.scope_type, r.scope_id),
    expiresAt: r.expires_at,
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
    elevationId: r.elevation_id as ElevationId | null,
  };
}

function toPolicy(r: Selectable<PoliciesTable>): PolicyRecord {
  return {
    id: r.id,
    text: r.text,
    scope: toScope(r.scope_type, r.scope_id),
    description: r.description,
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  };
}

function toElevation(r: Selectable<ElevationsTable>): ElevationRecord {
  return {
    id: r.id as ElevationId,
    requesterId: r.requester_id as UserId,
    role: r.role,
    scope: toScope(r.scope_type, r.scope_id),
    durationSeconds: r.duration_seconds,
    reason: r.reason,
    state: member(ELEVATION_STATES, r.state, 'state'),
    requestedAt: r.requested_at,
    requestExpiresAt: r.request_expires_at,
    decidedBy: r.decided_by,
    decidedAt: r.decided_at,
    decisionReason: r.decision_reason,
    bindingId: r.binding_id,
    grantExpiresAt: r.grant_expires_at,
  };
}
