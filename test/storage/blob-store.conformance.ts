import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { newId, type BlobId } from '../../src/core/ids.js';
import type { BlobStore } from '../../src/storage/blob-store.js';
import { expectCode } from './expect-code.js';

/**
 * The behaviour every BlobStore backend must show (local files now, S3 later), run unchanged against each.
 * `open` returns a fresh, empty store per test; cleaning up behind it is the caller's job.
 */
export function describeBlobStoreConformance(name: string, open: () => Promise<BlobStore>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    describe('writing and promoting', () => {
      it('a promoted blob reads back whole and in inclusive ranges', async () => {
        const store = await open();
        const id = newId('blob');
        const data = Buffer.from('0123456789abcdefghij');
        await writeStaging(store, id, 0, [data.subarray(0, 7), data.subarray(7)]);
        await store.promote(id);
        expect(await readAll(await store.read(id, 0, data.length - 1))).toEqual(data);
        expect(await readAll(await store.read(id, 3, 3))).toEqual(Buffer.from('3'));
        expect(await readAll(await store.read(id, 10, 19))).toEqual(Buffer.from('abcdefghij'));
        expect(await store.size(id)).toBe(data.length);
      });

      it('open reads a promoted blob at any position into the caller buffer, short only at the end', async () => {
        const store = await open();
        const id = newId('blob');
        const data = Buffer.from('0123456789abcdefghij');
        await writeStaging(store, id, 0, [data]);
        await store.promote(id);
        const file = await store.open(id);
        const into = Buffer.alloc(8);
        expect(await file.read(into, 0)).toBe(8);
        expect(into).toEqual(data.subarray(0, 8));
        expect(await file.read(into, 15)).toBe(5);
        expect(into.subarray(0, 5)).toEqual(data.subarray(15));
        expect(await file.read(into, 20)).toBe(0);
        expect(await file.read(into, 100)).toBe(0);
        await file.close();
        await file.close();
        await expectCode(file.read(into, 0), 'storage_error');
      });

      it('close waits for reads in flight', async () => {
        const store = await open();
        const id = newId('blob');
        const data = randomBytes(1024 * 1024);
        await writeStaging(store, id, 0, [data]);
        await store.promote(id);
        const file = await store.open(id);
        const into = Buffer.alloc(data.length);
        const reading = file.read(into, 0);
        await file.close();
        expect(await reading).toBe(data.length);
        expect(into).toEqual(data);
      });

      it('commit resolves to the durable length, counting bytes kept from before the offset', async () => {
        const store = await open();
        const id = newId('blob');
        expect(await writeStaging(store, id, 0, [Buffer.from('abc'), Buffer.from('de')])).toBe(5);
        expect(await writeStaging(store, id, 5, [Buffer.from('fgh')])).toBe(8);
        expect(await store.stagingSize(id)).toBe(8);
      });

      it('reopening at an offset discards the torn tail and appends after it', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('hello world')]);
        expect(await writeStaging(store, id, 5, [Buffer.from('!!!')])).toBe(8);
        expect(await readAll(await store.readStaging(id, 0, 7))).toEqual(Buffer.from('hello!!!'));
      });

      it('reopening at offset 0 starts the object over', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('old contents')]);
        await writeStaging(store, id, 0, [Buffer.from('new')]);
        expect(await store.stagingSize(id)).toBe(3);
        expect(await readAll(await store.readStaging(id, 0, 2))).toEqual(Buffer.from('new'));
      });

      it('opening at an offset beyond the staging size fails with storage_error', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('12345')]);
        await expectCode(store.openStaging(id, 6), 'storage_error');
        expect(await store.stagingSize(id)).toBe(5);
      });

      it('opening a missing staging object at a non-zero offset fails with storage_error', async () => {
        const store = await open();
        await expectCode(store.openStaging(newId('blob'), 1), 'storage_error');
      });

      it('a negative or fractional offset is refused', async () => {
        const store = await open();
        await expectCode(store.openStaging(newId('blob'), -1), 'invalid_request');
        await expectCode(store.openStaging(newId('blob'), 1.5), 'invalid_request');
      });

      it('a committed writer refuses further writes and commits; abort never throws', async () => {
        const store = await open();
        const writer = await store.openStaging(newId('blob'), 0);
        await writer.write(Buffer.from('x'));
        expect(await writer.commit()).toBe(1);
        await expectCode(writer.write(Buffer.from('y')), 'storage_error');
        await expectCode(writer.commit(), 'storage_error');
        await expect(writer.abort()).resolves.toBeUndefined();
      });

      it('abort keeps the bytes committed before it; reopening at that offset drops the rest', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('durable')]);
        const writer = await store.openStaging(id, 7);
        await writer.write(Buffer.from(' maybe'));
        await writer.abort();
        await writer.abort();
        const size = await store.stagingSize(id);
        expect([7, 13]).toContain(size);
        expect(await writeStaging(store, id, 7, [Buffer.from('!')])).toBe(8);
        expect(await readAll(await store.readStaging(id, 0, 7))).toEqual(Buffer.from('durable!'));
      });

      it('promote is idempotent and leaves no staging object', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('payload')]);
        await store.promote(id);
        await store.promote(id);
        expect(await store.stagingSize(id)).toBeUndefined();
        expect(await readAll(await store.read(id, 0, 6))).toEqual(Buffer.from('payload'));
      });

      it('promoting a blob that exists nowhere fails with storage_error', async () => {
        const store = await open();
        await expectCode(store.promote(newId('blob')), 'storage_error');
      });

      it('a 5 MiB object round-trips as a stream of bounded chunks', async () => {
        const store = await open();
        const id = newId('blob');
        const chunk = 256 * 1024;
        const total = 5 * 1024 * 1024;
        const written = createHash('sha256');
        const writer = await store.openStaging(id, 0);
        for (let i = 0; i < total / chunk; i++) {
          const piece = Buffer.alloc(chunk, i);
          piece.writeUInt32BE(i, 0);
          written.update(piece);
          await writer.write(piece);
        }
        expect(await writer.commit()).toBe(total);
        await store.promote(id);
        expect(await store.size(id)).toBe(total);
        const read = createHash('sha256');
        let bytes = 0;
        let largest = 0;
        for await (const piece of await store.read(id, 0, total - 1)) {
          const buffer = piece as Buffer;
          read.update(buffer);
          bytes += buffer.length;
          largest = Math.max(largest, buffer.length);
        }
        expect(bytes).toBe(total);
        expect(read.digest('hex')).toBe(written.digest('hex'));
        expect(largest).toBeLessThanOrEqual(1024 * 1024);
      });
    });

    describe('staging is not addressable (N2)', () => {
      it('a staging object is invisible to read() and size()', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('secret')]);
        await expectCode(store.read(id, 0, 5), 'storage_error');
        await expectCode(store.open(id), 'storage_error');
        expect(await store.size(id)).toBeUndefined();
      });

      it('readStaging returns inclusive ranges of a staging object, and nothing once it is promoted', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('abcdefgh')]);
        expect(await readAll(await store.readStaging(id, 2, 4))).toEqual(Buffer.from('cde'));
        await store.promote(id);
        await expectCode(store.readStaging(id, 0, 1), 'storage_error');
      });

      it('reading an absent blob fails with storage_error; sizes of absent objects are undefined', async () => {
        const store = await open();
        const id = newId('blob');
        await expectCode(store.read(id, 0, 0), 'storage_error');
        await expectCode(store.open(id), 'storage_error');
        await expectCode(store.readStaging(id, 0, 0), 'storage_error');
        expect(await store.size(id)).toBeUndefined();
        expect(await store.stagingSize(id)).toBeUndefined();
      });

      it('an inverted or negative range is refused', async () => {
        const store = await open();
        const id = newId('blob');
        await writeStaging(store, id, 0, [Buffer.from('abc')]);
        await store.promote(id);
        await expectCode(store.read(id, 2, 1), 'invalid_request');
        await expectCode(store.read(id, -1, 1), 'invalid_request');
      });
    });

    describe('deleting and listing', () => {
      it('delete removes the final blob and any staging object, and is idempotent', async () => {
        const store = await open();
        const promoted = newId('blob');
        const staged = newId('blob');
        await writeStaging(store, promoted, 0, [Buffer.from('a')]);
        await store.promote(promoted);
        await writeStaging(store, promoted, 0, [Buffer.from('leftover')]);
        await writeStaging(store, staged, 0, [Buffer.from('b')]);
        await store.delete(promoted);
        await store.delete(staged);
        await store.delete(staged);
        await store.delete(newId('blob'));
        expect(await store.size(promoted)).toBeUndefined();
        expect(await store.stagingSize(promoted)).toBeUndefined();
        expect(await store.stagingSize(staged)).toBeUndefined();
      });

      it('list reports final blobs only; listStaging reports staging objects with their modification time', async () => {
        const store = await open();
        const finals = [newId('blob'), newId('blob'), newId('blob')];
        const stagings = [newId('blob'), newId('blob')];
        const before = Date.now() - 60_000;
        for (const id of [...finals, ...stagings]) await writeStaging(store, id, 0, [Buffer.from(id)]);
        for (const id of finals) await store.promote(id);
        expect(new Set(await collect(store.list()))).toEqual(new Set(finals));
        const staged = await collect(store.listStaging());
        expect(new Set(staged.map((s) => s.id))).toEqual(new Set(stagings));
        for (const s of staged) {
          expect(s.modifiedAt).toBeInstanceOf(Date);
          expect(s.modifiedAt.getTime()).toBeGreaterThan(before);
        }
        await store.delete(finals[0]!);
        expect(new Set(await collect(store.list()))).toEqual(new Set(finals.slice(1)));
      });

      it('an empty store lists nothing', async () => {
        const store = await open();
        expect(await collect(store.list())).toEqual([]);
        expect(await collect(store.listStaging())).toEqual([]);
      });
    });

    describe('ids are the only names (C2)', () => {
      const invalid = [
        '../x',
        '../../etc/passwd',
        '/etc/passwd',
        '',
        'blb_',
        `blb_${'a'.repeat(31)}`,
        `blb_${'a'.repeat(33)}`,
        `blb_${'A'.repeat(32)}`,
        `blb_${'a'.repeat(30)}/.`,
        `blb_../${'a'.repeat(26)}`,
        `prj_${'a'.repeat(32)}`,
        `blb_${'a'.repeat(32)}\u0000`,
      ];

      it.each(invalid)('refuses %j in every method', async (raw) => {
        const store = await open();
        const id = raw as BlobId;
        await expectCode(store.openStaging(id, 0), 'invalid_request');
        await expectCode(store.stagingSize(id), 'invalid_request');
        await expectCode(store.readStaging(id, 0, 0), 'invalid_request');
        await expectCode(store.promote(id), 'invalid_request');
        await expectCode(store.read(id, 0, 0), 'invalid_request');
        await expectCode(store.open(id), 'invalid_request');
        await expectCode(store.size(id), 'invalid_request');
        await expectCode(store.delete(id), 'invalid_request');
        expect(await collect(store.listStaging())).toEqual([]);
      });
    });

    it('checkWritable resolves on a healthy store and leaves nothing behind', async () => {
      const store = await open();
      await store.checkWritable();
      expect(await collect(store.list())).toEqual([]);
      expect(await collect(store.listStaging())).toEqual([]);
    });
  });
}

export async function writeStaging(
  store: BlobStore,
  id: BlobId,
  offset: number,
  chunks: readonly Buffer[],
): Promise<number> {
  const writer = await store.openStaging(id, offset);
  try {
    for (const chunk of chunks) await writer.write(chunk);
    return await writer.commit();
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
