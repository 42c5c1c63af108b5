import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Schema migrations, in code so the package carries no loose SQL files. Names sort in the order they run;
 * a migration, once released, is never edited: change the schema with a new one.
 *
 * Tables are STRICT so a value of the wrong type is refused instead of stored. Foreign keys are declared only
 * where they match the lifecycle: files and upload parts die with their owner; data keys, blobs and upload
 * sessions are not tied to the rows that mention them because each is created, erased (crypto-shredding) or
 * collected on its own schedule, and a constraint there would block those steps.
 */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001_initial': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('keks')
        .addColumn('version', 'integer', (c) => c.primaryKey())
        .addColumn('wrapped_key', 'blob', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('destroyed_at', 'text')
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('projects')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('artifacts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('project_id', 'text', (c) => c.notNull().references('projects.id'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('sensitivity', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('tags', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('artifacts_project_name', ['project_id', 'name'])
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('data_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('wrapped', 'blob', (c) => c.notNull())
        .addColumn('kek_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('data_keys_kek_version').on('data_keys').column('kek_version').execute();

      await db.schema
        .createTable('versions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('artifact_id', 'text', (c) => c.notNull().references('artifacts.id'))
        .addColumn('tag', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('file_count', 'integer', (c) => c.notNull())
        .addColumn('total_size', 'integer', (c) => c.notNull())
        .addColumn('manifest_digest', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('committed_at', 'text')
        .addColumn('metadata_data_key_id', 'text')
        .addColumn('metadata_sealed', 'blob')
        // I3: the store, not a read-then-write, decides which of two concurrent creators wins.
        .addUniqueConstraint('versions_artifact_tag', ['artifact_id', 'tag'])
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('files')
        .addColumn('version_id', 'text', (c) => c.notNull().references('versions.id').onDelete('cascade'))
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('blob_id', 'text', (c) => c.notNull())
        .addColumn('offset', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('files_pk', ['version_id', 'path'])
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('uploads')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('version_id', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('uploads_expires_at').on('uploads').column('expires_at').execute();

      await db.schema
        .createTable('upload_parts')
        .addColumn('upload_id', 'text', (c) => c.notNull().references('uploads.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('blob_id', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('received', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('upload_parts_pk', ['upload_id', 'idx'])
        .modifyEnd(sql`strict`)
        .execute();

      await db.schema
        .createTable('blobs')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('data_key_id', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('upload_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('blobs_upload_id').on('blobs').column('upload_id').execute();
    },
  },
  // A single-pass push declares digests at commit: a file's declared digest may be absent while it uploads,
  // and the digest the server computed is kept beside it until the two are compared.
  '0002_file_digests': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('files_next')
        .addColumn('version_id', 'text', (c) => c.notNull().references('versions.id').onDelete('cascade'))
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('sha256', 'text')
        .addColumn('computed_sha256', 'text')
        .addColumn('blob_id', 'text', (c) => c.notNull())
        .addColumn('offset', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('files_next_pk', ['version_id', 'path'])
        .modifyEnd(sql`strict`)
        .execute();
      await sql`insert into files_next (version_id, path, size, sha256, computed_sha256, blob_id, "offset")
        select version_id, path, size, sha256, sha256, blob_id, "offset" from files`.execute(db);
      await db.schema.dropTable('files').execute();
      await db.schema.alterTable('files_next').renameTo('files').execute();
    },
  },
  // The audit log (issue 3): events with their Merkle leaves, the log's end state, and signed checkpoints.
  '0003_audit': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('audit_events')
        .addColumn('seq', 'integer', (c) => c.primaryKey())
        .addColumn('time', 'text')
        .addColumn('actor', 'text')
        .addColumn('action', 'text')
        .addColumn('resource', 'text')
        .addColumn('outcome', 'text')
        .addColumn('body', 'text')
        .addColumn('leaf', 'blob', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('audit_events_time').on('audit_events').columns(['time', 'seq']).execute();
      await db.schema
        .createIndex('audit_events_actor')
        .on('audit_events')
        .columns(['actor', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_events_action')
        .on('audit_events')
        .columns(['action', 'seq'])
        .execute();
      await db.schema
        .createIndex('audit_events_resource')
        .on('audit_events')
        .columns(['resource', 'seq'])
        .execute();
      await db.schema
        .createTable('audit_state')
        .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('last_hash', 'text', (c) => c.notNull())
        .addColumn('frontier', 'blob', (c) => c.notNull())
        .addColumn('pruned_through', 'integer', (c) => c.notNull())
        .addColumn('pruned_hash', 'text', (c) => c.notNull())
        .addColumn('pruned_frontier', 'blob', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      const genesis = '0'.repeat(64);
      await sql`insert into audit_state (id, size, last_hash, frontier, pruned_through, pruned_hash, pruned_frontier)
        values (1, 0, ${genesis}, x'', 0, ${genesis}, x'')`.execute(db);
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('size', 'integer', (c) => c.primaryKey())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
    },
  },
  // Identity (issue 4): users, groups, service accounts, sessions, tokens (hashes only), recovery codes.
  '0004_identity': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text')
        .addColumn('totp_data_key_id', 'text')
        .addColumn('totp_sealed', 'blob')
        .addColumn('totp_last_step', 'integer', (c) => c.notNull())
        .addColumn('failed_logins', 'integer', (c) => c.notNull())
        .addColumn('locked_until', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('group_members')
        .addColumn('group_id', 'text', (c) => c.notNull().references('groups.id').onDelete('cascade'))
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('group_members_pk', ['group_id', 'principal_id'])
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createIndex('group_members_principal')
        .on('group_members')
        .column('principal_id')
        .execute();
      await db.schema
        .createTable('service_accounts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull().unique())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('environment', 'text', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('auth_method', 'text', (c) => c.notNull())
        .addColumn('mfa_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('principal_kind', 'text', (c) => c.notNull())
        .addColumn('session_id', 'text')
        .addColumn('parent_id', 'text')
        .addColumn('scope', 'text')
        .addColumn('environment', 'text')
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('tokens_principal').on('tokens').column('principal_id').execute();
      await db.schema.createIndex('tokens_session').on('tokens').column('session_id').execute();
      await db.schema
        .createTable('recovery_codes')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addPrimaryKeyConstraint('recovery_codes_pk', ['user_id', 'hash'])
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('federated_identities')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('federated_identities_pk', ['provider', 'subject'])
        .modifyEnd(sql`strict`)
        .execute();
    },
  },
  '0005_authorization': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('role_bindings')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('principal_type', 'text', (c) => c.notNull())
        .addColumn('principal_id', 'text', (c) => c.notNull())
        .addColumn('scope_type', 'text', (c) => c.notNull())
        .addColumn('scope_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('elevation_id', 'text')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('policies')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('scope_type', 'text', (c) => c.notNull())
        .addColumn('scope_id', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('updated_by', 'text', (c) => c.notNull())
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema
        .createTable('elevations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('requester_id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('scope_type', 'text', (c) => c.notNull())
        .addColumn('scope_id', 'text', (c) => c.notNull())
        .addColumn('duration_seconds', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('requested_at', 'text', (c) => c.notNull())
        .addColumn('request_expires_at', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text')
        .addColumn('decided_at', 'text')
        .addColumn('decision_reason', 'text')
        .addColumn('binding_id', 'text')
        .addColumn('grant_expires_at', 'text')
        .modifyEnd(sql`strict`)
        .execute();
      await db.schema.createIndex('elevations_requested').on('elevations').column('requested_at').execute();
      // What the identity provider asserted about the device at single sign-on, for policies.
      await db.schema.alterTable('sessions').addColumn('device_posture', 'text').execute();
      // What the interim authorizer granted by group membership becomes two ordinary bindings, so an
      // upgraded data directory keeps its administrators and auditors (docs/authorization.md).
      const now = new Date().toISOString();
      for (const [id, role, group] of [
        ['admins', 'admin', 'admins'],
        ['auditors', 'auditor', 'auditors'],
      ] as const) {
        await sql`insert into role_bindings (id, role, principal_type, principal_id, scope_type, scope_id,
          expires_at, description, created_at, created_by, elevation_id)
          values (${id}, ${role}, 'Group', ${group}, 'Organization', 'default', null,
          ${`members of the ${group} group`}, ${now}, 'system', null)`.execute(db);
      }
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...migrations }),
};
