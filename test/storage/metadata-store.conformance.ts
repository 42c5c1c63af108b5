import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_PAGE_SIZE,
  type Artifact,
  type ElevationRecord,
  type PolicyRecord,
  type RoleBindingRecord,
  type Blob,
  type DataKey,
  type Project,
  type SealedValue,
  type StoredFile,
  type UploadPart,
  type UploadSession,
  type Version,
  type VersionState,
} from '../../src/core/domain.js';
import { StrongroomError, type ErrorCode } from '../../src/core/errors.js';
import { newId, type BlobId, type UploadId, type UserId, type VersionId } from '../../src/core/ids.js';
import type { MetadataStore, MetadataWriter } from '../../src/storage/metadata-store.js';
import { expectCode } from './expect-code.js';

/**
 * The behaviour every MetadataStore backend must show (SQLite now, PostgreSQL later), run unchanged against
 * each. `open` returns a fresh, empty store per test (migrated or not: the suite calls `migrate()` itself);
 * the suite closes it afterwards. Cleaning up files or databases behind it is the caller's job.
 */
export function describeMetadataStoreConformance(name: string, open: () => Promise<MetadataStore>): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    let store: MetadataStore;

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });

    afterEach(async () => {
      await store.close();
    });

    const write = <T>(fn: (tx: MetadataWriter) => Promise<T>): Promise<T> => store.transaction(fn);

    const seedProject = async (projectName = 'vision'): Promise<Project> => {
      const project = makeProject(projectName);
      await write((tx) => tx.insertProject(project));
      return project;
    };

    const seedArtifact = async (project?: Project, artifactName = 'resnet'): Promise<Artifact> => {
      const artifact = makeArtifact(project ?? (await seedProject()), artifactName);
      await write((tx) => tx.insertArtifact(artifact));
      return artifact;
    };

    const seedVersion = async (
      artifact: Artifact,
      tag: string,
      state: VersionState = 'available',
      metadata: SealedValue | null = null,
    ): Promise<Version> => {
      const version = makeVersion(artifact, tag, state);
      await write((tx) => tx.insertVersion(version, metadata));
      return version;
    };

    describe('schema and health', () => {
      it('migrate() twice is harmless and keeps the data', async () => {
        const project = await seedProject();
        await store.migrate();
        await store.migrate();
        expect(await store.getProjectByName('vision')).toEqual(project);
      });

      it('ping() answers on a healthy store', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });

    describe('settings', () => {
      it('an unknown key reads as undefined', async () => {
        expect(await store.getSetting('absent')).toBeUndefined();
      });

      it('insertSettingIfAbsent writes once and never overwrites', async () => {
        expect(await write((tx) => tx.insertSettingIfAbsent('instance.id', 'first'))).toBe(true);
        expect(await write((tx) => tx.insertSettingIfAbsent('instance.id', 'second'))).toBe(false);
        expect(await store.getSetting('instance.id')).toBe('first');
      });

      it('setSetting creates and overwrites', async () => {
        await write((tx) => tx.setSetting('k', 'v1'));
        await write((tx) => tx.setSetting('k', 'v2'));
        expect(await store.getSetting('k')).toBe('v2');
        expect(await write((tx) => tx.insertSettingIfAbsent('k', 'v3'))).toBe(false);
      });
    });

    describe('keks', () => {
      it('round-trips KEK records with binary material, ordered by version', async () => {
        const v2 = { version: 2, wrappedKey: allBytes(), createdAt: at(2), destroyedAt: null };
        const v1 = {
          version: 1,
          wrappedKey: Buffer.from([0, 1, 0, 255]),
          createdAt: at(1),
          destroyedAt: null,
        };
        await write(async (tx) => {
          await tx.insertKek(v2);
          await tx.insertKek(v1);
        });
        const keks = await store.listKeks();
        expect(keks).toEqual([v1, v2]);
        expect(Buffer.isBuffer(keks[1]?.wrappedKey)).toBe(true);
      });

      it('destroyKek drops the material but keeps the row and its version number', async () => {
        await write((tx) =>
          tx.insertKek({ version: 1, wrappedKey: allBytes(), createdAt: at(1), destroyedAt: null }),
        );
        await write((tx) => tx.destroyKek(1, at(9)));
        const [kek] = await store.listKeks();
        expect(kek?.version).toBe(1);
        expect(kek?.destroyedAt).toBe(at(9));
        expect(kek?.wrappedKey.length).toBe(0);
      });
    });

    describe('projects', () => {
      it('round-trips a project by name and by id', async () => {
        const project = await seedProject('vision');
        expect(await store.getProjectByName('vision')).toEqual(project);
        expect(await store.getProjectById(project.id)).toEqual(project);
        expect(await store.getProjectByName('other')).toBeUndefined();
        expect(await store.getProjectById(newId('project'))).toBeUndefined();
      });

      it('a duplicate project name throws project_exists', async () => {
        await seedProject('vision');
        await expectCode(
          write((tx) => tx.insertProject(makeProject('vision'))),
          'project_exists',
        );
      });
    });

    describe('artifacts', () => {
      it('round-trips an artifact with its tags, by name and by id', async () => {
        const project = await seedProject();
        const artifact = { ...makeArtifact(project, 'resnet'), tags: ['vision', 'ünïcode', 'a"quote'] };
        await write((tx) => tx.insertArtifact(artifact));
        expect(await store.getArtifact(project.id, 'resnet')).toEqual(artifact);
        expect(await store.getArtifactById(artifact.id)).toEqual(artifact);
        expect(await store.getArtifact(project.id, 'other')).toBeUndefined();
        expect(await store.getArtifactById(newId('artifact'))).toBeUndefined();
      });

      it('round-trips an artifact without tags', async () => {
        const artifact = await seedArtifact();
        expect((await store.getArtifactById(artifact.id))?.tags).toEqual([]);
      });

      it('a duplicate name in the same project throws artifact_exists; another project may reuse it', async () => {
        const a = await seedProject('a');
        const b = await seedProject('b');
        await seedArtifact(a, 'resnet');
        await expectCode(
          write((tx) => tx.insertArtifact(makeArtifact(a, 'resnet'))),
          'artifact_exists',
        );
        await seedArtifact(b, 'resnet');
        expect(await store.getArtifact(b.id, 'resnet')).toBeDefined();
      });

      it('updateArtifact changes only the fields in the patch', async () => {
        const artifact = await seedArtifact();
        await write((tx) =>
          tx.updateArtifact(artifact.id, { tags: ['new'], sensitivity: 'restricted', updatedAt: at(5) }),
        );
        expect(await store.getArtifactById(artifact.id)).toEqual({
          ...artifact,
          tags: ['new'],
          sensitivity: 'restricted',
          updatedAt: at(5),
        });
        await write((tx) =>
          tx.updateArtifact(artifact.id, { description: 'described', kind: 'dataset', updatedAt: at(6) }),
        );
        expect(await store.getArtifactById(artifact.id)).toEqual({
          ...artifact,
          tags: ['new'],
          sensitivity: 'restricted',
          description: 'described',
          kind: 'dataset',
          updatedAt: at(6),
        });
      });
    });

    describe('versions', () => {
      it('round-trips a version with sealed metadata, by tag and by id', async () => {
        const artifact = await seedArtifact();
        const metadata = { dataKeyId: newId('datakey'), sealed: allBytes() };
        const version = await seedVersion(artifact, '1.0.0', 'uploading', metadata);
        expect(await store.getVersion(artifact.id, '1.0.0')).toEqual(version);
        expect(await store.getVersionById(version.id)).toEqual(version);
        const stored = await store.getVersionMetadata(version.id);
        expect(stored).toEqual(metadata);
        expect(Buffer.isBuffer(stored?.sealed)).toBe(true);
      });

      it('a version without metadata has none, and its nullable fields stay null', async () => {
        const artifact = await seedArtifact();
        const version = await seedVersion(artifact, '1.0.0', 'uploading');
        expect(await store.getVersionMetadata(version.id)).toBeUndefined();
        const stored = await store.getVersionById(version.id);
        expect(stored?.manifestDigest).toBeNull();
        expect(stored?.committedAt).toBeNull();
        expect(await store.getVersionMetadata(newId('version'))).toBeUndefined();
        expect(await store.getVersion(artifact.id, '9.9.9')).toBeUndefined();
        expect(await store.getVersionById(newId('version'))).toBeUndefined();
      });

      it('a duplicate tag throws version_exists whatever the state of the first', async () => {
        const artifact = await seedArtifact();
        await seedVersion(artifact, 'uploading-one', 'uploading');
        await seedVersion(artifact, 'available-one', 'available');
        await expectCode(
          write((tx) => tx.insertVersion(makeVersion(artifact, 'uploading-one'), null)),
          'version_exists',
        );
        await expectCode(
          write((tx) => tx.insertVersion(makeVersion(artifact, 'available-one'), null)),
          'version_exists',
        );
      });

      it('the same tag may exist in two artifacts', async () => {
        const project = await seedProject();
        const a = await seedArtifact(project, 'a');
        const b = await seedArtifact(project, 'b');
        await seedVersion(a, '1.0.0');
        await seedVersion(b, '1.0.0');
        expect(await store.getVersion(b.id, '1.0.0')).toBeDefined();
      });

      it('two transactions creating the same version together: exactly one wins, the other gets version_exists', async () => {
        const artifact = await seedArtifact();
        const attempt = (version: Version) =>
          store.transaction(async (tx) => {
            // A read first, as the registry does, but the store and not the read must decide (I3).
            await tx.getVersion(artifact.id, '1.0.0');
            await tx.insertVersion(version, null);
            return version.id;
          });
        const first = makeVersion(artifact, '1.0.0', 'uploading');
        const second = makeVersion(artifact, '1.0.0', 'uploading');
        const results = await Promise.allSettled([attempt(first), attempt(second)]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(codeOf(lost[0]?.reason)).toBe('version_exists');
        const winner = won[0]?.value;
        expect((await store.getVersion(artifact.id, '1.0.0'))?.id).toBe(winner);
      });

      it('markVersionAvailable moves uploading to available exactly once', async () => {
        const artifact = await seedArtifact();
        const version = await seedVersion(artifact, '1.0.0', 'uploading');
        const digest = 'a'.repeat(64);
        expect(await write((tx) => tx.markVersionAvailable(version.id, digest, at(7)))).toBe(true);
        const available = { ...version, state: 'available', manifestDigest: digest, committedAt: at(7) };
        expect(await store.getVersionById(version.id)).toEqual(available);
        expect(await write((tx) => tx.markVersionAvailable(version.id, 'b'.repeat(64), at(8)))).toBe(false);
        expect(await store.getVersionById(version.id)).toEqual(available);
        expect(await write((tx) => tx.markVersionAvailable(newId('version'), digest, at(8)))).toBe(false);
      });

      it('listVersions hides uploading versions unless asked for them', async () => {
        const artifact = await seedArtifact();
        await seedVersion(artifact, '1.0.0', 'available');
        await seedVersion(artifact, '2.0.0', 'uploading');
        await seedVersion(artifact, '3.0.0', 'available');
        const visible = await store.listVersions(artifact.id, { limit: 10 });
        expect(visible.items.map((v) => v.tag)).toEqual(['1.0.0', '3.0.0']);
        expect(visible.next).toBeNull();
        const all = await store.listVersions(artifact.id, { limit: 10 }, true);
        expect(all.items.map((v) => v.tag)).toEqual(['1.0.0', '2.0.0', '3.0.0']);
      });

      it('listVersions pages by tag and is scoped to the artifact', async () => {
        const project = await seedProject();
        const artifact = await seedArtifact(project, 'a');
        const other = await seedArtifact(project, 'b');
        for (const tag of ['v5', 'v1', 'v3', 'v2', 'v4']) await seedVersion(artifact, tag);
        await seedVersion(other, 'v0');
        const first = await store.listVersions(artifact.id, { limit: 2 });
        expect(first.items.map((v) => v.tag)).toEqual(['v1', 'v2']);
        expect(first.next).toBe('v2');
        const rest = await collect((after) => store.listVersions(artifact.id, { limit: 2, after }));
        expect(rest.map((v) => v.tag)).toEqual(['v1', 'v2', 'v3', 'v4', 'v5']);
      });

      it('deleteVersion removes the version, its files and its metadata, and frees the tag', async () => {
        const artifact = await seedArtifact();
        const metadata = { dataKeyId: newId('datakey'), sealed: Buffer.from('sealed') };
        const doomed = await seedVersion(artifact, '1.0.0', 'uploading', metadata);
        const kept = await seedVersion(artifact, '2.0.0');
        await write((tx) => tx.insertFiles([makeFile(doomed.id, 'a.bin'), makeFile(kept.id, 'a.bin')]));
        await write((tx) => tx.deleteVersion(doomed.id));
        expect(await store.getVersionById(doomed.id)).toBeUndefined();
        expect(await store.getVersionMetadata(doomed.id)).toBeUndefined();
        expect(await store.listFiles(doomed.id)).toEqual([]);
        expect(await store.getFile(doomed.id, 'a.bin')).toBeUndefined();
        expect(await store.listFiles(kept.id)).toHaveLength(1);
        await seedVersion(artifact, '1.0.0');
        expect((await store.getVersion(artifact.id, '1.0.0'))?.state).toBe('available');
      });
    });

    describe('files', () => {
      it('round-trips files, listed in UTF-8 byte order of the path', async () => {
        const version = await seedVersion(await seedArtifact(), '1.0.0');
        // UTF-16 order would put U+1F600 (a surrogate pair) before U+FF46; UTF-8 byte order puts it after.
        const paths = ['b.txt', 'B.txt', 'a/b', 'a-b', 'a.b', 'ｆ.txt', '\u{1F600}.txt', 'é.txt', 'z'];
        const files = paths.map((p, i) => ({ ...makeFile(version.id, p), offset: i * 10, size: i }));
        await write((tx) => tx.insertFiles(files));
        const listed = await store.listFiles(version.id);
        expect(listed.map((f) => f.path)).toEqual(byteOrder(paths));
        expect(listed).toEqual(byteOrder(paths).map((p) => files.find((f) => f.path === p)));
        expect(await store.getFile(version.id, 'ｆ.txt')).toEqual(files[5]);
        expect(await store.getFile(version.id, 'F.txt')).toBeUndefined();
      });

      it('records computed and late-declared digests by path, touching only the named files', async () => {
        const artifact = await seedArtifact();
        const version = await seedVersion(artifact, '1.0.0', 'uploading');
        const other = await seedVersion(artifact, '2.0.0', 'uploading');
        const pending = { ...makeFile(version.id, 'a'), sha256: null };
        await write((tx) =>
          tx.insertFiles([pending, makeFile(version.id, 'b'), { ...makeFile(other.id, 'a'), sha256: null }]),
        );
        expect(await store.getFile(version.id, 'a')).toEqual(pending);
        await write((tx) => tx.setComputedDigests(version.id, [{ path: 'a', sha256: '1'.repeat(64) }]));
        await write((tx) => tx.setDeclaredDigests(version.id, [{ path: 'a', sha256: '2'.repeat(64) }]));
        expect(await store.getFile(version.id, 'a')).toMatchObject({
          sha256: '2'.repeat(64),
          computedSha256: '1'.repeat(64),
        });
        expect(await store.getFile(version.id, 'b')).toMatchObject({
          sha256: 'e'.repeat(64),
          computedSha256: null,
        });
        expect(await store.getFile(other.id, 'a')).toMatchObject({ sha256: null, computedSha256: null });
      });

      it('insertFiles with no files is a no-op, and large batches are stored whole', async () => {
        const version = await seedVersion(await seedArtifact(), '1.0.0');
        await write((tx) => tx.insertFiles([]));
        expect(await store.listFiles(version.id)).toEqual([]);
        const many = Array.from({ length: 2500 }, (_, i) =>
          makeFile(version.id, `f/${String(i).padStart(5, '0')}`),
        );
        await write((tx) => tx.insertFiles(many));
        const listed = await store.listFiles(version.id);
        expect(listed).toHaveLength(2500);
        expect(listed.at(-1)?.path).toBe('f/02499');
      });

      it('a duplicate path in one version fails with storage_error and stores nothing', async () => {
        const version = await seedVersion(await seedArtifact(), '1.0.0');
        await expectCode(
          write((tx) => tx.insertFiles([makeFile(version.id, 'x'), makeFile(version.id, 'x')])),
          'storage_error',
        );
        expect(await store.listFiles(version.id)).toEqual([]);
      });
    });

    describe('uploads', () => {
      const setup = async (): Promise<{ session: UploadSession; parts: UploadPart[] }> => {
        const version = await seedVersion(await seedArtifact(), '1.0.0', 'uploading');
        const session = makeUpload(version.id, at(100));
        const parts = [2, 0, 1].map((index) => makePart(session.id, index));
        await write((tx) => tx.insertUpload(session, parts));
        return { session, parts };
      };

      it('round-trips a session and its parts, ordered by index', async () => {
        const { session, parts } = await setup();
        expect(await store.getUpload(session.id)).toEqual(session);
        expect(await store.listParts(session.id)).toEqual([...parts].sort((a, b) => a.index - b.index));
        expect(await store.getUpload(newId('upload'))).toBeUndefined();
        expect(await store.listParts(newId('upload'))).toEqual([]);
      });

      it('setPartReceived records progress and never moves backwards', async () => {
        const { session } = await setup();
        const received = async () => (await store.listParts(session.id)).find((p) => p.index === 1)?.received;
        await write((tx) => tx.setPartReceived(session.id, 1, 65536));
        expect(await received()).toBe(65536);
        await write((tx) => tx.setPartReceived(session.id, 1, 1024));
        expect(await received()).toBe(65536);
        await write((tx) => tx.setPartReceived(session.id, 1, 131072));
        expect(await received()).toBe(131072);
        expect((await store.listParts(session.id)).find((p) => p.index === 0)?.received).toBe(0);
      });

      it('restartPart puts one part back to zero and leaves the others alone', async () => {
        const { session } = await setup();
        await write((tx) => tx.setPartReceived(session.id, 0, 65536));
        await write((tx) => tx.setPartReceived(session.id, 1, 131072));
        await write((tx) => tx.restartPart(session.id, 1));
        const parts = await store.listParts(session.id);
        expect(parts.find((p) => p.index === 1)?.received).toBe(0);
        expect(parts.find((p) => p.index === 0)?.received).toBe(65536);
      });

      it('deleteUpload removes the session and its parts but not its blobs', async () => {
        const { session, parts } = await setup();
        const blob = makeBlob(parts[0]!.blobId, session.id);
        await write((tx) => tx.insertBlob(blob));
        await write((tx) => tx.deleteUpload(session.id));
        expect(await store.getUpload(session.id)).toBeUndefined();
        expect(await store.listParts(session.id)).toEqual([]);
        expect(await store.getBlob(blob.id)).toEqual(blob);
      });

      it('listExpiredUploads returns sessions expiring at or before now, at most limit', async () => {
        const version = await seedVersion(await seedArtifact(), '1.0.0', 'uploading');
        const sessions = [10, 20, 30, 40].map((s) => makeUpload(version.id, at(s)));
        await write(async (tx) => {
          for (const s of sessions) await tx.insertUpload(s, []);
        });
        const ids = async (now: string, limit: number) =>
          new Set((await store.listExpiredUploads(now, limit)).map((s) => s.id));
        expect(await ids(at(5), 10)).toEqual(new Set());
        expect(await ids(at(20), 10)).toEqual(new Set([sessions[0]!.id, sessions[1]!.id]));
        expect(await ids(at(25), 10)).toEqual(new Set([sessions[0]!.id, sessions[1]!.id]));
        expect(await ids(at(99), 10)).toEqual(new Set(sessions.map((s) => s.id)));
        const limited = await store.listExpiredUploads(at(99), 3);
        expect(limited).toHaveLength(3);
        for (const s of limited) expect(sessions).toContainEqual(s);
      });
    });

    describe('blobs', () => {
      it('round-trips staging and committed blobs', async () => {
        const uploadId = newId('upload');
        const staging = makeBlob(newId('blob'), uploadId);
        const committed = { ...makeBlob(newId('blob'), null), state: 'committed' as const };
        await write(async (tx) => {
          await tx.insertBlob(staging);
          await tx.insertBlob(committed);
        });
        expect(await store.getBlob(staging.id)).toEqual(staging);
        expect(await store.getBlob(committed.id)).toEqual(committed);
        expect(await store.getBlob(newId('blob'))).toBeUndefined();
      });

      it('listUploadBlobs and commitBlobs: the upload staging blobs become committed and forget the upload', async () => {
        const mine = newId('upload');
        const theirs = newId('upload');
        const a = makeBlob(newId('blob'), mine);
        const b = makeBlob(newId('blob'), mine);
        const other = makeBlob(newId('blob'), theirs);
        await write(async (tx) => {
          for (const blob of [a, b, other]) await tx.insertBlob(blob);
        });
        const listed = await write((tx) => tx.listUploadBlobs(mine));
        expect(new Set(listed.map((x) => x.id))).toEqual(new Set([a.id, b.id]));
        await write((tx) => tx.commitBlobs(mine));
        expect(await store.getBlob(a.id)).toEqual({ ...a, state: 'committed', uploadId: null });
        expect(await store.getBlob(b.id)).toEqual({ ...b, state: 'committed', uploadId: null });
        expect(await store.getBlob(other.id)).toEqual(other);
        expect(await write((tx) => tx.listUploadBlobs(mine))).toEqual([]);
        expect(await write((tx) => tx.listUploadBlobs(theirs))).toEqual([other]);
      });

      it('deleteBlob removes the row', async () => {
        const blob = makeBlob(newId('blob'), null);
        await write((tx) => tx.insertBlob(blob));
        await write((tx) => tx.deleteBlob(blob.id));
        expect(await store.getBlob(blob.id)).toBeUndefined();
      });

      it('existingBlobIds reports which ids have a row in any state, for any number of ids', async () => {
        const staging = makeBlob(newId('blob'), newId('upload'));
        const committed = { ...makeBlob(newId('blob'), null), state: 'committed' as const };
        await write(async (tx) => {
          await tx.insertBlob(staging);
          await tx.insertBlob(committed);
        });
        expect(await store.existingBlobIds([])).toEqual(new Set());
        const unknown = Array.from({ length: 2000 }, () => newId('blob'));
        const found = await store.existingBlobIds([
          ...unknown.slice(0, 1000),
          staging.id,
          ...unknown.slice(1000),
          committed.id,
        ]);
        expect(found).toEqual(new Set([staging.id, committed.id]));
      });
    });

    describe('data keys', () => {
      const seedKeys = async (versions: readonly number[]): Promise<DataKey[]> => {
        const keys = versions.map((v) => makeDataKey(v));
        await write(async (tx) => {
          for (const k of keys) await tx.insertDataKey(k);
        });
        return keys;
      };

      it('round-trips a data key with binary material', async () => {
        const [key] = await seedKeys([1]);
        const stored = await store.getDataKey(key!.id);
        expect(stored).toEqual(key);
        expect(Buffer.isBuffer(stored?.wrapped)).toBe(true);
        expect(await store.getDataKey(newId('datakey'))).toBeUndefined();
      });

      it('rewrapDataKey is a compare-and-set on the KEK version', async () => {
        const [key] = await seedKeys([1]);
        const rewrapped = Buffer.from('rewrapped under 2');
        expect(await write((tx) => tx.rewrapDataKey(key!.id, rewrapped, 2, 1))).toBe(true);
        expect(await store.getDataKey(key!.id)).toEqual({ ...key, wrapped: rewrapped, kekVersion: 2 });
        // A second rewrapper that read the old version loses and changes nothing.
        expect(await write((tx) => tx.rewrapDataKey(key!.id, Buffer.from('stale'), 2, 1))).toBe(false);
        expect(await store.getDataKey(key!.id)).toEqual({ ...key, wrapped: rewrapped, kekVersion: 2 });
        expect(await write((tx) => tx.rewrapDataKey(newId('datakey'), rewrapped, 2, 1))).toBe(false);
      });

      it('deleteDataKey erases the key', async () => {
        const [key] = await seedKeys([1]);
        await write((tx) => tx.deleteDataKey(key!.id));
        expect(await store.getDataKey(key!.id)).toBeUndefined();
      });

      it('countDataKeysByKek counts the keys each KEK version wraps', async () => {
        await seedKeys([1, 1, 1, 2, 3, 3]);
        const counts = await store.countDataKeysByKek();
        expect(counts.get(1)).toBe(3);
        expect(counts.get(2)).toBe(1);
        expect(counts.get(3)).toBe(2);
        expect(counts.get(4) ?? 0).toBe(0);
      });

      it('listDataKeysBelow returns keys under a KEK version, at most limit', async () => {
        const keys = await seedKeys([1, 1, 2, 3, 3]);
        const below3 = await store.listDataKeysBelow(3, 10);
        expect(new Set(below3.map((k) => k.id))).toEqual(new Set(keys.slice(0, 3).map((k) => k.id)));
        expect(await store.listDataKeysBelow(1, 10)).toEqual([]);
        const limited = await store.listDataKeysBelow(4, 2);
        expect(limited).toHaveLength(2);
        for (const k of limited) expect(keys).toContainEqual(k);
      });
    });

    describe('pagination', () => {
      it('pages projects by name with limit, after and next (null on the last page)', async () => {
        const names = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
        await write(async (tx) => {
          for (const n of [...names].reverse()) await tx.insertProject(makeProject(n));
        });
        const first = await store.listProjects({ limit: 4 });
        expect(first.items.map((p) => p.name)).toEqual(['p1', 'p2', 'p3', 'p4']);
        expect(first.next).toBe('p4');
        const second = await store.listProjects({ limit: 4, after: first.next! });
        expect(second.items.map((p) => p.name)).toEqual(['p5', 'p6']);
        expect(second.next).toBeNull();
        // A last page that is exactly full still says it is the last.
        const exact = await store.listProjects({ limit: 3, after: 'p3' });
        expect(exact.items.map((p) => p.name)).toEqual(['p4', 'p5', 'p6']);
        expect(exact.next).toBeNull();
        expect(await store.listProjects({ limit: 3, after: 'p6' })).toEqual({ items: [], next: null });
        expect((await store.listProjects({ limit: 3, after: 'p35' })).items.map((p) => p.name)).toEqual([
          'p4',
          'p5',
          'p6',
        ]);
      });

      it('orders names by bytes, not by locale or case', async () => {
        const names = ['b', 'a_b', 'a.b', 'a-b', 'a0', 'aa', 'B', 'Z1'];
        await write(async (tx) => {
          for (const n of names) await tx.insertProject(makeProject(n));
        });
        const all = await collect((after) => store.listProjects({ limit: 3, after }));
        expect(all.map((p) => p.name)).toEqual(byteOrder(names));
      });

      it(`caps a page at MAX_PAGE_SIZE (${MAX_PAGE_SIZE})`, async () => {
        const names = Array.from({ length: MAX_PAGE_SIZE + 5 }, (_, i) => `p${String(i).padStart(4, '0')}`);
        await write(async (tx) => {
          for (const n of names) await tx.insertProject(makeProject(n));
        });
        const page = await store.listProjects({ limit: MAX_PAGE_SIZE * 10 });
        expect(page.items).toHaveLength(MAX_PAGE_SIZE);
        expect(page.next).toBe(names[MAX_PAGE_SIZE - 1]);
        const rest = await store.listProjects({ limit: MAX_PAGE_SIZE * 10, after: page.next! });
        expect(rest.items).toHaveLength(5);
        expect(rest.next).toBeNull();
      });

      it('pages artifacts by name within one project', async () => {
        const a = await seedProject('a');
        const b = await seedProject('b');
        for (const n of ['x3', 'x1', 'x2']) await seedArtifact(a, n);
        await seedArtifact(b, 'x0');
        const first = await store.listArtifacts(a.id, { limit: 2 });
        expect(first.items.map((x) => x.name)).toEqual(['x1', 'x2']);
        expect(first.next).toBe('x2');
        const second = await store.listArtifacts(a.id, { limit: 2, after: 'x2' });
        expect(second.items.map((x) => x.name)).toEqual(['x3']);
        expect(second.next).toBeNull();
        expect(second.items[0]).toEqual(await store.getArtifact(a.id, 'x3'));
      });
    });

    describe('resource facts for authorization', () => {
      it('reads sensitivity and version state by names, in and out of a transaction', async () => {
        const artifact = await seedArtifact();
        await seedVersion(artifact, '1.0.0');
        await seedVersion(artifact, '2.0.0', 'uploading');
        for (const read of [
          (p: string, a: string, t: string | null) => store.getResourceFacts(p, a, t),
          (p: string, a: string, t: string | null) => write((tx) => tx.getResourceFacts(p, a, t)),
        ]) {
          expect(await read('vision', 'resnet', null)).toEqual({
            sensitivity: 'internal',
            versionState: null,
          });
          expect(await read('vision', 'resnet', '1.0.0')).toEqual({
            sensitivity: 'internal',
            versionState: 'available',
          });
          expect(await read('vision', 'resnet', '2.0.0')).toEqual({
            sensitivity: 'internal',
            versionState: 'uploading',
          });
          expect(await read('vision', 'resnet', '9.9.9')).toEqual({
            sensitivity: 'internal',
            versionState: null,
          });
          expect(await read('vision', 'nope', null)).toBeUndefined();
          expect(await read('nope', 'resnet', '1.0.0')).toBeUndefined();
        }
        await write((tx) => tx.updateArtifact(artifact.id, { sensitivity: 'restricted', updatedAt: at(9) }));
        expect((await store.getResourceFacts('vision', 'resnet', null))?.sensitivity).toBe('restricted');
      });
    });

    describe('role bindings, policies and elevations', () => {
      const binding = (id: string, over: Partial<RoleBindingRecord> = {}): RoleBindingRecord => ({
        id,
        role: 'viewer',
        principal: { type: 'Group', id: 'ml' },
        scope: { type: 'Project', id: 'vision' },
        expiresAt: null,
        description: 'ml reads vision',
        createdAt: at(1),
        createdBy: 'usr_admin',
        elevationId: null,
        ...over,
      });

      it('a fresh store holds the admins and auditors group bindings', async () => {
        const seeded = await store.listRoleBindings();
        expect(seeded.map((b) => [b.id, b.role, b.principal.type, b.principal.id, b.scope.type])).toEqual([
          ['admins', 'admin', 'Group', 'admins', 'Organization'],
          ['auditors', 'auditor', 'Group', 'auditors', 'Organization'],
        ]);
      });

      it('stores, lists in id order, refuses a taken id and deletes bindings', async () => {
        const elevated = binding('z-elevated', {
          principal: { type: 'User', id: 'usr_bob' },
          scope: { type: 'Artifact', id: 'vision/resnet' },
          expiresAt: at(9),
          elevationId: newId('elevation'),
        });
        await write(async (tx) => {
          await tx.insertRoleBinding(elevated);
          await tx.insertRoleBinding(binding('b-viewers'));
        });
        expect((await store.listRoleBindings()).map((b) => b.id)).toEqual([
          'admins',
          'auditors',
          'b-viewers',
          'z-elevated',
        ]);
        expect(await store.getRoleBinding('z-elevated')).toEqual(elevated);
        await expectCode(
          write((tx) => tx.insertRoleBinding(binding('b-viewers'))),
          'binding_exists',
        );
        expect(await write((tx) => tx.deleteRoleBinding('b-viewers'))).toBe(true);
        expect(await write((tx) => tx.deleteRoleBinding('b-viewers'))).toBe(false);
        expect(await store.getRoleBinding('b-viewers')).toBeUndefined();
      });

      it('upserts a policy keeping its creation fields, and deletes it', async () => {
        const first: PolicyRecord = {
          id: 'office-hours',
          text: 'forbid (principal, action, resource) when { context.hourUtc < 6 };',
          scope: { type: 'Project', id: 'vision' },
          description: 'no night work',
          createdAt: at(1),
          createdBy: 'usr_admin',
          updatedAt: at(1),
          updatedBy: 'usr_admin',
        };
        await write((tx) => tx.upsertPolicy(first));
        const second = {
          ...first,
          text: 'forbid (principal, action, resource);',
          createdAt: at(5),
          createdBy: 'x',
          updatedAt: at(5),
          updatedBy: 'usr_other',
        };
        await write((tx) => tx.upsertPolicy(second));
        expect(await store.getPolicy('office-hours')).toEqual({
          ...second,
          createdAt: at(1),
          createdBy: 'usr_admin',
        });
        expect((await store.listPolicies()).map((p) => p.id)).toEqual(['office-hours']);
        expect(await write((tx) => tx.deletePolicy('office-hours'))).toBe(true);
        expect(await write((tx) => tx.deletePolicy('office-hours'))).toBe(false);
        expect(await store.listPolicies()).toEqual([]);
      });

      it('closes an elevation request once only, and filters the list', async () => {
        const request = (requestedAt: string, requesterId = 'usr_bob'): ElevationRecord => ({
          id: newId('elevation'),
          requesterId: requesterId as UserId,
          role: 'incident-responder',
          scope: { type: 'Project', id: 'vision' },
          durationSeconds: 3600,
          reason: 'incident 42',
          state: 'pending',
          requestedAt,
          requestExpiresAt: at(50),
          decidedBy: null,
          decidedAt: null,
          decisionReason: null,
          bindingId: null,
          grantExpiresAt: null,
        });
        const older = request(at(1));
        const newer = request(at(2), 'usr_carol');
        await write(async (tx) => {
          await tx.insertElevation(older);
          await tx.insertElevation(newer);
        });
        expect(await store.getElevation(older.id)).toEqual(older);
        const decision = {
          state: 'approved' as const,
          decidedBy: 'usr_alice',
          decidedAt: at(3),
          decisionReason: 'ok',
          bindingId: `elevation-${older.id}`,
          grantExpiresAt: at(4),
        };
        expect(await write((tx) => tx.decideElevation(older.id, decision))).toBe(true);
        expect(await write((tx) => tx.decideElevation(older.id, { ...decision, state: 'denied' }))).toBe(
          false,
        );
        expect(await store.getElevation(older.id)).toEqual({ ...older, ...decision });
        expect((await store.listElevations({ limit: 10 })).map((e) => e.id)).toEqual([newer.id, older.id]);
        expect((await store.listElevations({ state: 'pending', limit: 10 })).map((e) => e.id)).toEqual([
          newer.id,
        ]);
        expect(
          (await store.listElevations({ requesterId: 'usr_bob' as UserId, limit: 10 })).map((e) => e.id),
        ).toEqual([older.id]);
        expect(await store.listElevations({ limit: 1 })).toHaveLength(1);
      });
    });

    describe('transactions', () => {
      it('returns what the function returns, and the function sees its own writes', async () => {
        const project = makeProject('vision');
        const seen = await write(async (tx) => {
          await tx.insertProject(project);
          return tx.getProjectByName('vision');
        });
        expect(seen).toEqual(project);
      });

      it('a throw rolls back every write and is rethrown unchanged', async () => {
        const artifact = await seedArtifact();
        const version = makeVersion(artifact, '1.0.0', 'uploading');
        const session = makeUpload(version.id, at(50));
        const blob = makeBlob(newId('blob'), session.id);
        const key = makeDataKey(1);
        const boom = new Error('boom');
        const attempt = write(async (tx) => {
          await tx.setSetting('k', 'v');
          await tx.insertKek({
            version: 1,
            wrappedKey: Buffer.from('k'),
            createdAt: at(1),
            destroyedAt: null,
          });
          await tx.insertProject(makeProject('other'));
          await tx.updateArtifact(artifact.id, { description: 'changed', updatedAt: at(9) });
          await tx.insertDataKey(key);
          await tx.insertVersion(version, { dataKeyId: key.id, sealed: Buffer.from('m') });
          await tx.insertFiles([makeFile(version.id, 'a')]);
          await tx.insertUpload(session, [makePart(session.id, 0)]);
          await tx.insertBlob(blob);
          throw boom;
        });
        await expect(attempt).rejects.toBe(boom);
        expect(await store.getSetting('k')).toBeUndefined();
        expect(await store.listKeks()).toEqual([]);
        expect(await store.getProjectByName('other')).toBeUndefined();
        expect(await store.getArtifactById(artifact.id)).toEqual(artifact);
        expect(await store.getDataKey(key.id)).toBeUndefined();
        expect(await store.getVersionById(version.id)).toBeUndefined();
        expect(await store.listFiles(version.id)).toEqual([]);
        expect(await store.getUpload(session.id)).toBeUndefined();
        expect(await store.listParts(session.id)).toEqual([]);
        expect(await store.getBlob(blob.id)).toBeUndefined();
      });

      it('a failed write inside a transaction rolls back the writes before it', async () => {
        await seedProject('taken');
        const attempt = write(async (tx) => {
          await tx.insertProject(makeProject('fresh'));
          await tx.insertProject(makeProject('taken'));
        });
        await expectCode(attempt, 'project_exists');
        expect(await store.getProjectByName('fresh')).toBeUndefined();
      });

      it('after a rollback the store keeps working', async () => {
        await expect(write(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
        await seedProject('after');
        expect(await store.getProjectByName('after')).toBeDefined();
      });
    });
  });
}

/** Byte order of the UTF-8 encoding, the order the store promises for names, tags and paths. */
export function byteOrder(values: readonly string[]): string[] {
  return [...values].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
}

function codeOf(err: unknown): ErrorCode | undefined {
  return err instanceof StrongroomError ? err.code : undefined;
}

async function collect<T>(
  page: (after: string | undefined) => Promise<{ items: readonly T[]; next: string | null }>,
): Promise<T[]> {
  const all: T[] = [];
  let after: string | undefined;
  for (let guard = 0; guard < 1000; guard++) {
    const result = await page(after);
    all.push(...result.items);
    if (result.next === null) return all;
    after = result.next;
  }
  throw new Error('pagination did not end');
}

function at(seconds: number): string {
  return new Date(Date.UTC(2030, 0, 1, 0, 0, seconds)).toISOString();
}

function allBytes(): Buffer {
  return Buffer.from(Array.from({ length: 256 }, (_, i) => i));
}

function makeProject(name: string): Project {
  return {
    id: newId('project'),
    name,
    description: `the ${name} project`,
    createdAt: at(0),
    createdBy: 'usr_alice',
  };
}

function makeArtifact(project: Project, name: string): Artifact {
  return {
    id: newId('artifact'),
    projectId: project.id,
    name,
    kind: 'model',
    sensitivity: 'internal',
    description: '',
    tags: [],
    owner: 'usr_alice',
    createdAt: at(1),
    updatedAt: at(1),
  };
}

function makeVersion(artifact: Artifact, tag: string, state: VersionState = 'available'): Version {
  const available = state === 'available';
  return {
    id: newId('version'),
    artifactId: artifact.id,
    tag,
    state,
    fileCount: 3,
    totalSize: 2 ** 40 + 7,
    manifestDigest: available ? 'f'.repeat(64) : null,
    createdAt: at(2),
    createdBy: 'usr_alice',
    committedAt: available ? at(3) : null,
  };
}

function makeFile(versionId: VersionId, path: string): StoredFile {
  return {
    versionId,
    path,
    size: 42,
    sha256: 'e'.repeat(64),
    computedSha256: null,
    blobId: newId('blob'),
    offset: 0,
  };
}

function makeUpload(versionId: VersionId, expiresAt: string): UploadSession {
  return { id: newId('upload'), versionId, principal: 'usr_alice', createdAt: at(0), expiresAt };
}

function makePart(uploadId: UploadId, index: number): UploadPart {
  return { uploadId, index, blobId: newId('blob'), size: 1 << 20, received: 0 };
}

function makeBlob(id: BlobId, uploadId: UploadId | null): Blob {
  return { id, dataKeyId: newId('datakey'), size: 12345, state: 'staging', uploadId, createdAt: at(4) };
}

function makeDataKey(kekVersion: number): DataKey {
  return {
    id: newId('datakey'),
    wrapped: Buffer.from(`wrapped under ${kekVersion}\u0000\u00ff`, 'latin1'),
    kekVersion,
    createdAt: at(0),
  };
}
