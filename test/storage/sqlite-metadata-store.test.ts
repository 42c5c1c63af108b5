import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql } from 'kysely';
import { migrationProvider } from '../../src/storage/sqlite/migrations.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { StrongroomError } from '../../src/core/errors.js';
import { newId } from '../../src/core/ids.js';
import type { MetadataWriter } from '../../src/storage/metadata-store.js';
import {
  openSqliteMetadataStore,
  type SqliteMetadataStore,
} from '../../src/storage/sqlite/sqlite-metadata-store.js';
import { expectCode } from './expect-code.js';
import { describeMetadataStoreConformance } from './metadata-store.conformance.js';

let dir: string;
let files = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-sqlite-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const nextPath = (): string => join(dir, `metadata-${++files}.sqlite`);

describeMetadataStoreConformance('sqlite in memory', () => openSqliteMetadataStore(':memory:'));
describeMetadataStoreConformance('sqlite file (WAL)', () => openSqliteMetadataStore(nextPath()));

describe('SqliteMetadataStore', () => {
  const opened: SqliteMetadataStore[] = [];
  const openStore = async (path: string): Promise<SqliteMetadataStore> => {
    const store = await openSqliteMetadataStore(path);
    opened.push(store);
    await store.migrate();
    return store;
  };

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  const project = (name: string) => ({
    id: newId('project'),
    name,
    description: '',
    createdAt: new Date().toISOString(),
    createdBy: 'usr_alice',
  });

  it('a committed write survives close and reopen of the file', async () => {
    const path = nextPath();
    const first = await openSqliteMetadataStore(path);
    await first.migrate();
    const p = project('durable');
    await first.transaction(async (tx) => {
      await tx.insertProject(p);
      await tx.setSetting('k', 'v');
    });
    await first.close();
    const second = await openStore(path);
    expect(await second.getProjectByName('durable')).toEqual(p);
    expect(await second.getSetting('k')).toBe('v');
  });

  it('a committed write is visible to another connection while the writer is still open (WAL)', async () => {
    const path = nextPath();
    const writer = await openStore(path);
    await writer.transaction((tx) => tx.insertProject(project('shared')));
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(raw.prepare('select name from projects').pluck().all()).toEqual(['shared']);
    } finally {
      raw.close();
    }
    const reader = await openStore(path);
    expect(await reader.getProjectByName('shared')).toBeDefined();
  });

  it('the database file is created readable by its owner only', async () => {
    const path = nextPath();
    await openStore(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('calling the store inside its own transaction fails instead of deadlocking', async () => {
    const store = await openStore(':memory:');
    const attempt = store.transaction(async (tx) => {
      await tx.setSetting('k', 'v');
      await store.getSetting('k');
    });
    await expectCode(attempt, 'internal_error');
    await expectCode(
      store.transaction(() => store.transaction(() => Promise.resolve())),
      'internal_error',
    );
    expect(await store.getSetting('k')).toBeUndefined();
  });

  it('a transaction writer used after its transaction ended fails', async () => {
    const store = await openStore(':memory:');
    let leaked: MetadataWriter | undefined;
    await store.transaction((tx) => {
      leaked = tx;
      return Promise.resolve();
    });
    await expectCode(leaked!.setSetting('k', 'v'), 'internal_error');
    await expectCode(leaked!.getSetting('k'), 'internal_error');
  });

  it('a driver failure becomes storage_error without SQL or values in the message, keeping the cause', async () => {
    const store = await openStore(':memory:');
    const secretName = 'secret-artifact-name';
    const err = await expectCode(
      store.transaction((tx) =>
        tx.insertArtifact({
          id: newId('artifact'),
          projectId: newId('project'),
          name: secretName,
          kind: 'model',
          sensitivity: 'internal',
          description: '',
          tags: [],
          owner: 'usr_alice',
          createdAt: '2030-01-01T00:00:00.000Z',
          updatedAt: '2030-01-01T00:00:00.000Z',
        }),
      ),
      'storage_error',
    );
    expect(err.message).toMatch(/^metadata store insertArtifact failed \(SQLITE_CONSTRAINT_FOREIGNKEY\)$/);
    expect(err.message).not.toContain(secretName);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('a uniqueness error names the conflict with the user value quoted', async () => {
    const store = await openStore(':memory:');
    await store.transaction((tx) => tx.insertProject(project('dup')));
    const err = await expectCode(
      store.transaction((tx) => tx.insertProject(project('dup'))),
      'project_exists',
    );
    expect(err.message).toBe('project `dup` already exists');
  });

  it('ping and every query fail with storage_error once the store is closed', async () => {
    const store = await openSqliteMetadataStore(':memory:');
    await store.migrate();
    await store.close();
    await expectCode(store.ping(), 'storage_error');
    await expectCode(store.getSetting('k'), 'storage_error');
  });

  it('an invalid page limit is refused', async () => {
    const store = await openStore(':memory:');
    await expectCode(store.listProjects({ limit: 0 }), 'invalid_request');
    await expectCode(store.listProjects({ limit: Number.NaN }), 'invalid_request');
  });

  it('opening a database in a missing directory fails with storage_error', async () => {
    const err = await expectCode(openSqliteMetadataStore(join(dir, 'missing', 'x.sqlite')), 'storage_error');
    expect(err).toBeInstanceOf(StrongroomError);
  });

  it('0002 keeps the files of a database created by 0001, with their digest as the computed one', async () => {
    const path = nextPath();
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    const migrator = new Migrator({ db, provider: migrationProvider });
    expect((await migrator.migrateTo('0001_initial')).error).toBeUndefined();
    await sql`insert into projects (id, name, description, created_at, created_by) values ('prj_x', 'p', '', 't', 'u')`.execute(
      db,
    );
    await sql`insert into artifacts (id, project_id, name, kind, sensitivity, description, tags, owner, created_at, updated_at)
      values ('art_x', 'prj_x', 'a', 'model', 'internal', '', '[]', 'u', 't', 't')`.execute(db);
    await sql`insert into versions (id, artifact_id, tag, state, file_count, total_size, created_at, created_by)
      values ('ver_x', 'art_x', '1', 'available', 1, 3, 't', 'u')`.execute(db);
    await sql`insert into files (version_id, path, size, sha256, blob_id, "offset")
      values ('ver_x', 'a.bin', 3, ${'a'.repeat(64)}, 'blb_y', 0)`.execute(db);
    await db.destroy();
    const store = await openStore(path);
    const [file] = await store.listFiles('ver_x' as never);
    expect(file).toMatchObject({ path: 'a.bin', sha256: 'a'.repeat(64), computedSha256: 'a'.repeat(64) });
  });

  it('migrations are recorded by name', async () => {
    const path = nextPath();
    await openStore(path);
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      expect(raw.prepare('select name from kysely_migration order by name').pluck().all()).toEqual([
        '0001_initial',
        '0002_file_digests',
        '0003_audit',
        '0004_identity',
        '0005_authorization',
      ]);
    } finally {
      raw.close();
    }
  });
});
