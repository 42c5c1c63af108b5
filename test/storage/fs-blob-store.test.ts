import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrongroomError } from '../../src/core/errors.js';
import { newId, type BlobId } from '../../src/core/ids.js';
import { FsBlobStore, openFsBlobStore } from '../../src/storage/fs/fs-blob-store.js';
import { nodeFsOps, type FsOps } from '../../src/storage/fs/fs-ops.js';
import { collect, describeBlobStoreConformance, readAll, writeStaging } from './blob-store.conformance.js';
import { expectCode } from './expect-code.js';
import { faultyFsOps, type InjectedErrno } from './faulty-fs-ops.js';

let dir: string;
let roots = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-blobs-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const nextRoot = (): string => join(dir, `store-${++roots}`);

describeBlobStoreConformance('fs', () => openFsBlobStore(nextRoot()));

/** A store whose directories exist, then driven through `ops` so only the operations under test are seen. */
async function storeWith(makeOps: (base: FsOps) => FsOps): Promise<{ store: FsBlobStore; root: string }> {
  const root = nextRoot();
  await openFsBlobStore(root);
  return { store: new FsBlobStore(root, makeOps(nodeFsOps)), root };
}

function finalPath(root: string, id: BlobId): string {
  return join(root, 'blobs', id.slice(4, 6), id);
}

const payload = [Buffer.from('first chunk of bytes, '), Buffer.from('second chunk of bytes')];
const whole = Buffer.concat(payload);

async function writeAndPromote(store: FsBlobStore, id: BlobId): Promise<void> {
  await writeStaging(store, id, 0, payload);
  await store.promote(id);
}

/** The mutating operations of a clean write + commit + promote, in order. */
async function cleanSequence(): Promise<readonly string[]> {
  const ops = faultyFsOps(nodeFsOps, 0, 'EIO');
  const { store } = await storeWith(() => ops);
  await writeAndPromote(store, newId('blob'));
  return [...ops.log];
}

describe('FsBlobStore', () => {
  it('follows the durability protocol: data sync, then rename, then both directories synced (N1)', async () => {
    expect(await cleanSequence()).toEqual([
      'open(create)',
      'write',
      'write',
      'datasync',
      'syncDir', // the staging directory, for the entry of the file this writer created
      'mkdir', // the shard
      'syncDir', // blobs/, for the shard entry
      'rename',
      'syncDir', // the shard, for the blob entry
      'syncDir', // staging/, for the removed entry
    ]);
  });

  it('creates blob files with mode 0600 and directories with mode 0700', async () => {
    const root = nextRoot();
    const store = await openFsBlobStore(root);
    const staged = newId('blob');
    const promoted = newId('blob');
    await writeStaging(store, staged, 0, payload);
    await writeAndPromote(store, promoted);
    const mode = async (path: string) => (await stat(path)).mode & 0o777;
    expect(await mode(join(root, 'staging', staged))).toBe(0o600);
    expect(await mode(finalPath(root, promoted))).toBe(0o600);
    for (const d of [
      root,
      join(root, 'blobs'),
      join(root, 'staging'),
      join(root, 'blobs', promoted.slice(4, 6)),
    ]) {
      expect(await mode(d)).toBe(0o700);
    }
  });

  it('a failed datasync poisons the writer: commit rejects, a second commit rejects, promote refuses (N6)', async () => {
    const datasyncAt = (await cleanSequence()).indexOf('datasync') + 1;
    const { store } = await storeWith((base) => faultyFsOps(base, datasyncAt, 'EIO'));
    const id = newId('blob');
    const writer = await store.openStaging(id, 0);
    for (const chunk of payload) await writer.write(chunk);
    const err = await expectCode(writer.commit(), 'storage_error');
    expect(err.cause).toMatchObject({ code: 'EIO' });
    await expectCode(writer.commit(), 'storage_error');
    await expectCode(writer.write(Buffer.from('more')), 'storage_error');
    await expect(writer.abort()).resolves.toBeUndefined();
    await expectCode(store.promote(id), 'storage_error');
    expect(await store.size(id)).toBeUndefined();
    // Rewriting from a durable offset makes the id usable again.
    await writeAndPromote(store, id);
    expect(await readAll(await store.read(id, 0, whole.length - 1))).toEqual(whole);
  });

  it('a failed background write-back fails the commit, even if the final fsync would succeed (N6)', async () => {
    const { store } = await storeWith((base) => ({
      ...base,
      async open(path, mode, permissions) {
        const handle = await base.open(path, mode, permissions);
        if (mode !== 'read') return handle;
        return {
          ...handle,
          datasync: async () => {
            throw Object.assign(new Error('EIO: injected'), { code: 'EIO' });
          },
        };
      },
    }));
    const id = newId('blob');
    const writer = await store.openStaging(id, 0);
    for (const chunk of payload) await writer.write(chunk);
    // Only the write-back descriptor fails; the writer's own final fsync would succeed.
    writer.writeBackSoon?.();
    await expectCode(writer.commit(), 'storage_error');
    await expectCode(store.promote(id), 'storage_error');
    expect(await store.size(id)).toBeUndefined();
  });

  it('a background write-back that succeeds changes nothing but timing', async () => {
    const { store } = await storeWith((base) => base);
    const id = newId('blob');
    const writer = await store.openStaging(id, 0);
    for (const chunk of payload) {
      await writer.write(chunk);
      writer.writeBackSoon?.();
    }
    expect(await writer.commit()).toBe(whole.length);
    await store.promote(id);
    expect(await readAll(await store.read(id, 0, whole.length - 1))).toEqual(whole);
  });

  describe.each<InjectedErrno>(['EIO', 'ENOSPC'])(
    'with %s injected at each mutating operation in turn',
    (code) => {
      it('write + commit + promote either succeeds or leaves no partial final blob, and the store keeps working', async () => {
        const clean = await cleanSequence();
        const renameAt = clean.indexOf('rename') + 1;
        for (let k = 1; k <= clean.length; k++) {
          const ops = faultyFsOps(nodeFsOps, k, code);
          const { store, root } = await storeWith(() => ops);
          const id = newId('blob');
          const err = await expectCode(writeAndPromote(store, id), 'storage_error');
          expect(err.cause, `fault at ${k} (${ops.log[k - 1]})`).toMatchObject({ code });

          const size = await store.size(id);
          if (k <= renameAt) expect(size, `fault at ${k} (${ops.log[k - 1]})`).toBeUndefined();
          if (size !== undefined) expect(await readFile(finalPath(root, id))).toEqual(whole);
          // Retrying the promotion never publishes something partial either.
          const retried = await store.promote(id).then(
            () => true,
            () => false,
          );
          if (retried) expect(await readFile(finalPath(root, id))).toEqual(whole);

          const next = newId('blob');
          await writeAndPromote(store, next);
          expect(await readAll(await store.read(next, 0, whole.length - 1))).toEqual(whole);
        }
      });
    },
  );

  it('a failure while probing makes checkWritable fail and leaves no probe behind', async () => {
    for (let k = 1; k <= 4; k++) {
      const { store, root } = await storeWith((base) => faultyFsOps(base, k, 'ENOSPC'));
      await expectCode(store.checkWritable(), 'storage_error');
      expect((await readdir(root)).sort()).toEqual(['blobs', 'staging']);
      await store.checkWritable();
    }
  });

  it('an aborted writer with unsynced bytes cannot be promoted until rewritten from a durable offset', async () => {
    const store = await openFsBlobStore(nextRoot());
    const id = newId('blob');
    await writeStaging(store, id, 0, [Buffer.from('durable')]);
    const writer = await store.openStaging(id, 7);
    await writer.write(Buffer.from(' unsynced'));
    await writer.abort();
    await expectCode(store.promote(id), 'storage_error');
    await writeStaging(store, id, 7, []);
    await store.promote(id);
    expect(await readAll(await store.read(id, 0, 6))).toEqual(Buffer.from('durable'));
  });

  it('never moves a staging copy over an existing final blob (N3)', async () => {
    const root = nextRoot();
    const store = await openFsBlobStore(root);
    const id = newId('blob');
    await writeAndPromote(store, id);
    await writeStaging(store, id, 0, [Buffer.from('replacement')]);
    await expectCode(store.promote(id), 'storage_error');
    expect(await readFile(finalPath(root, id))).toEqual(whole);
  });

  describe('read streams', () => {
    /** Counts file handles opened for reading that are not closed yet. */
    function trackingOps(base: FsOps, failReads = false): FsOps & { readonly openReads: () => number } {
      let open = 0;
      return {
        ...base,
        openReads: () => open,
        async open(path, mode, permissions) {
          const handle = await base.open(path, mode, permissions);
          if (mode !== 'read') return handle;
          open++;
          return {
            ...handle,
            read: failReads
              ? () => Promise.reject(Object.assign(new Error('EIO: injected'), { code: 'EIO' }))
              : (buffer, position) => handle.read(buffer, position),
            close: async () => {
              open--;
              await handle.close();
            },
          };
        },
      };
    }

    const closed = (stream: NodeJS.ReadableStream): Promise<void> =>
      new Promise((resolve) => stream.once('close', () => resolve()));

    it('close their file handle at the end, on early destroy and on error', async () => {
      const ops = trackingOps(nodeFsOps);
      const { store } = await storeWith(() => ops);
      const id = newId('blob');
      await writeStaging(store, id, 0, [Buffer.alloc(512 * 1024, 7)]);
      await store.promote(id);

      expect((await readAll(await store.read(id, 0, 512 * 1024 - 1))).length).toBe(512 * 1024);
      expect(ops.openReads()).toBe(0);

      const early = await store.read(id, 0, 512 * 1024 - 1);
      await new Promise((resolve) => early.once('readable', resolve));
      const done = closed(early);
      early.destroy();
      await done;
      expect(ops.openReads()).toBe(0);

      const failing = trackingOps(nodeFsOps, true);
      const broken = new FsBlobStore((await storeWith(() => nodeFsOps)).root, failing);
      const brokenId = newId('blob');
      await writeAndPromote(broken, brokenId);
      const err = await readAll(await broken.read(brokenId, 0, 3)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StrongroomError);
      expect((err as StrongroomError).code).toBe('storage_error');
      expect(failing.openReads()).toBe(0);
    });

    it('an opened blob closes its file handle once, and read errors become storage_error', async () => {
      const ops = trackingOps(nodeFsOps);
      const { store } = await storeWith(() => ops);
      const id = newId('blob');
      await writeAndPromote(store, id);
      const file = await store.open(id);
      expect(ops.openReads()).toBe(1);
      await Promise.all([file.close(), file.close()]);
      expect(ops.openReads()).toBe(0);

      const failing = trackingOps(nodeFsOps, true);
      const broken = new FsBlobStore((await storeWith(() => nodeFsOps)).root, failing);
      const brokenId = newId('blob');
      await writeAndPromote(broken, brokenId);
      const opened = await broken.open(brokenId);
      await expectCode(opened.read(Buffer.alloc(4), 0), 'storage_error');
      await opened.close();
      expect(failing.openReads()).toBe(0);
    });

    it('stop at the end of the file when the range runs past it', async () => {
      const store = await openFsBlobStore(nextRoot());
      const id = newId('blob');
      await writeAndPromote(store, id);
      expect(await readAll(await store.read(id, 6, whole.length + 100))).toEqual(whole.subarray(6));
    });
  });

  describe('the directory holds only what ids name', () => {
    it('symbolic links planted in place of blobs are not followed', async () => {
      const root = nextRoot();
      const store = await openFsBlobStore(root);
      const outside = join(dir, `outside-${roots}`);
      await writeFile(outside, 'do not touch me');
      const staged = newId('blob');
      await symlink(outside, join(root, 'staging', staged));
      await expectCode(store.openStaging(staged, 5), 'storage_error');
      await expectCode(store.openStaging(staged, 0), 'storage_error');
      await expectCode(store.readStaging(staged, 0, 3), 'storage_error');
      const promoted = newId('blob');
      await mkdir(join(root, 'blobs', promoted.slice(4, 6)), { recursive: true });
      await symlink(outside, finalPath(root, promoted));
      await expectCode(store.read(promoted, 0, 3), 'storage_error');
      await expectCode(store.open(promoted), 'storage_error');
      expect(await store.size(promoted)).toBeUndefined();
      expect(await readFile(outside, 'utf8')).toBe('do not touch me');
    });

    it('listings skip names that are not blob ids or sit in the wrong shard', async () => {
      const root = nextRoot();
      const store = await openFsBlobStore(root);
      const id = newId('blob');
      const wrongShard = id.slice(4, 6) === '00' ? '01' : '00';
      await mkdir(join(root, 'blobs', wrongShard));
      await mkdir(join(root, 'blobs', 'zz'));
      await writeFile(join(root, 'blobs', wrongShard, id), 'misplaced');
      await writeFile(join(root, 'blobs', 'zz', newId('blob')), 'bad shard');
      await writeFile(join(root, 'blobs', 'README'), 'junk');
      await writeFile(join(root, 'staging', 'junk'), 'junk');
      await writeFile(join(root, 'staging', `${newId('blob')}.tmp`), 'junk');
      await mkdir(join(root, 'staging', newId('blob')));
      expect(await collect(store.list())).toEqual([]);
      expect(await collect(store.listStaging())).toEqual([]);
    });

    it('opening creates missing directories, including parents', async () => {
      const root = join(nextRoot(), 'nested', 'deeper');
      const store = await openFsBlobStore(root);
      await store.checkWritable();
      expect((await readdir(root)).sort()).toEqual(['blobs', 'staging']);
    });
  });
});
