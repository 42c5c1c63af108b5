import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { Keyring, WRAPPED_KEY_SIZE, parseMasterKey } from '../../src/crypto/keyring.js';
import type { KekRecord } from '../../src/crypto/keyring.js';
import { expectThrowsCode, flipBit, newKey, openBlob, sealBlob } from './stream-harness.js';

const T0 = '2026-01-01T00:00:00.000Z';
const T1 = '2026-02-01T00:00:00.000Z';

function freshKeyring(master = newKey()): { master: Buffer; keyring: Keyring; records: KekRecord[] } {
  const records = [Keyring.newKekRecord(master, 1, T0)];
  return { master, keyring: Keyring.create(master, records), records };
}

function destroyed(record: KekRecord): KekRecord {
  return { ...record, destroyedAt: T1 };
}

describe('parseMasterKey', () => {
  const key = randomBytes(32);

  it('accepts 64 hex characters in either case, and base64 or base64url of 32 bytes, with whitespace trimmed', () => {
    for (const text of [
      key.toString('hex'),
      key.toString('hex').toUpperCase(),
      key.toString('base64'),
      key.toString('base64').replace(/=$/, ''),
      key.toString('base64url'),
      `  ${key.toString('hex')}\n`,
      `\t${key.toString('base64')}\r\n`,
    ]) {
      expect(parseMasterKey(text).equals(key), text.length.toString()).toBe(true);
    }
  });

  it('rejects other lengths, other alphabets and non-canonical base64 without echoing the input', () => {
    const hex = key.toString('hex');
    const b64 = key.toString('base64url');
    // The last of 43 symbols carries 4 key bits and 2 spare zero bits; setting a spare bit decodes to the same
    // bytes, so it would be a second spelling of the key.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const lastIndex = alphabet.indexOf(b64.at(-1) ?? '');
    expect(lastIndex % 4).toBe(0);
    const nonCanonical = b64.slice(0, -1) + alphabet.charAt(lastIndex | 1);
    expect(Buffer.from(nonCanonical, 'base64url').equals(key)).toBe(true);
    for (const text of [
      '',
      hex.slice(0, 63),
      `${hex}0`,
      `${hex}00`,
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      `${hex.slice(0, 63)}g`,
      `${b64.slice(0, 42)}*`,
      `${b64}==`,
      nonCanonical,
      'correct horse battery staple',
    ]) {
      const err = expectThrowsCode(() => parseMasterKey(text), 'master_key_invalid');
      expect(err.details).toBeUndefined();
      if (text.length > 0) expect(err.message).not.toContain(text.slice(0, 16));
    }
  });
});

describe('Keyring', () => {
  it('wraps a fresh 32-byte data key into 65 bytes under the current KEK, and unwraps it', () => {
    const { keyring } = freshKeyring();
    const { dek, wrapped, kekVersion } = keyring.newDataKey('blob-1');
    expect(dek).toHaveLength(32);
    expect(wrapped).toHaveLength(WRAPPED_KEY_SIZE);
    expect(kekVersion).toBe(1);
    expect(Keyring.kekVersionOf(wrapped)).toBe(1);
    expect(keyring.unwrapDataKey('blob-1', wrapped).equals(dek)).toBe(true);
  });

  it('two data keys are never equal', () => {
    const { keyring } = freshKeyring();
    expect(keyring.newDataKey('a').dek.equals(keyring.newDataKey('a').dek)).toBe(false);
  });

  it('reloading from the persisted KEK records with the same master key reads existing data keys', () => {
    const { master, keyring, records } = freshKeyring();
    const { dek, wrapped } = keyring.newDataKey('blob-1');
    expect(Keyring.create(master, records).unwrapDataKey('blob-1', wrapped).equals(dek)).toBe(true);
  });

  it('a wrong master key fails with master_key_invalid', () => {
    const { records } = freshKeyring();
    const err = expectThrowsCode(() => Keyring.create(newKey(), records), 'master_key_invalid');
    expect(err.message).toBe('the master key does not match this data directory');
  });

  it('a master key that is not 32 bytes fails with master_key_invalid', () => {
    expectThrowsCode(() => Keyring.create(randomBytes(16), []), 'master_key_invalid');
    expectThrowsCode(() => Keyring.newKekRecord(randomBytes(31), 1, T0), 'master_key_invalid');
  });

  it('one tampered KEK record among good ones fails with integrity_error', () => {
    const master = newKey();
    const good = Keyring.newKekRecord(master, 1, T0);
    const other = Keyring.newKekRecord(master, 2, T1);
    const tampered = { ...other, wrappedKey: flipBit(other.wrappedKey, 30) };
    expectThrowsCode(() => Keyring.create(master, [good, tampered]), 'integrity_error');
  });

  it('a KEK record relabelled with another version fails', () => {
    const master = newKey();
    const v1 = Keyring.newKekRecord(master, 1, T0);
    const v2 = Keyring.newKekRecord(master, 2, T1);
    expectThrowsCode(() => Keyring.create(master, [v1, { ...v2, version: 3 }]), 'integrity_error');
    expectThrowsCode(() => Keyring.create(master, [{ ...v1, version: 2 }]), 'master_key_invalid');
  });

  it('duplicate or out-of-range KEK versions are refused', () => {
    const master = newKey();
    const v1 = Keyring.newKekRecord(master, 1, T0);
    expectThrowsCode(() => Keyring.create(master, [v1, v1]), 'integrity_error');
    expectThrowsCode(() => Keyring.create(master, [destroyed(v1), v1]), 'integrity_error');
    expectThrowsCode(() => Keyring.newKekRecord(master, 0, T0), 'invalid_request');
    expectThrowsCode(() => Keyring.newKekRecord(master, 2 ** 32, T0), 'invalid_request');
  });

  it('an empty keyring has no current version until it rotates', () => {
    const keyring = Keyring.create(newKey(), []);
    expectThrowsCode(() => keyring.currentVersion, 'key_unavailable');
    expectThrowsCode(() => keyring.newDataKey('a'), 'key_unavailable');
    expect(keyring.rotate(T0).version).toBe(1);
    expect(keyring.currentVersion).toBe(1);
  });

  it('rotate then rewrap keeps data readable, also after reloading and destroying the old KEK', async () => {
    const { master, keyring, records } = freshKeyring();
    const { dek, wrapped } = keyring.newDataKey('blob-1');
    const plaintext = randomBytes(70_000);
    const blob = await sealBlob(dek, 'blob-1', plaintext);

    const v2 = keyring.rotate(T1);
    expect(v2.version).toBe(2);
    expect(v2.destroyedAt).toBeNull();
    expect(keyring.currentVersion).toBe(2);
    expect(keyring.newDataKey('blob-2').kekVersion).toBe(2);

    const rewrapped = keyring.rewrapDataKey('blob-1', wrapped);
    expect(Keyring.kekVersionOf(rewrapped)).toBe(2);
    expect(keyring.rewrapDataKey('blob-1', rewrapped)).toBe(rewrapped);

    const reloaded = Keyring.create(master, [destroyed(records[0]!), v2]);
    expect(reloaded.has(1)).toBe(false);
    const readBack = reloaded.unwrapDataKey('blob-1', rewrapped);
    expect((await openBlob(readBack, 'blob-1', plaintext.length, blob)).equals(plaintext)).toBe(true);
  });

  it('rotation never reuses a version, even a destroyed one', () => {
    const master = newKey();
    const v1 = Keyring.newKekRecord(master, 1, T0);
    const v2 = Keyring.newKekRecord(master, 2, T0);
    const keyring = Keyring.create(master, [v1, destroyed(v2)]);
    expect(keyring.currentVersion).toBe(1);
    expect(keyring.rotate(T1).version).toBe(3);
  });

  it('a destroyed KEK makes the data keys it alone wrapped key_unavailable, in memory and after reload', () => {
    const { master, keyring, records } = freshKeyring();
    const kept = keyring.newDataKey('kept');
    const shredded = keyring.newDataKey('shredded');
    const v2 = keyring.rotate(T1);
    const keptWrapped = keyring.rewrapDataKey('kept', kept.wrapped);

    keyring.forget(1);
    expect(keyring.has(1)).toBe(false);
    expect(keyring.unwrapDataKey('kept', keptWrapped).equals(kept.dek)).toBe(true);
    const err = expectThrowsCode(
      () => keyring.unwrapDataKey('shredded', shredded.wrapped),
      'key_unavailable',
    );
    expect(err.details).toEqual({ kekVersion: 1 });
    expectThrowsCode(() => keyring.rewrapDataKey('shredded', shredded.wrapped), 'key_unavailable');

    const reloaded = Keyring.create(master, [destroyed(records[0]!), v2]);
    expect(reloaded.unwrapDataKey('kept', keptWrapped).equals(kept.dek)).toBe(true);
    expectThrowsCode(() => reloaded.unwrapDataKey('shredded', shredded.wrapped), 'key_unavailable');
  });

  it('a data key wrapped under a KEK version this keyring never saw is key_unavailable', () => {
    const { keyring } = freshKeyring();
    const relabelled = Buffer.from(keyring.newDataKey('a').wrapped);
    relabelled.writeUInt32BE(7, 1);
    expectThrowsCode(() => keyring.unwrapDataKey('a', relabelled), 'key_unavailable');
  });
});

describe('wrapped data keys under attack (G1, G2)', () => {
  it('a wrapped data key used under another identity fails with integrity_error', () => {
    const { keyring } = freshKeyring();
    const { wrapped } = keyring.newDataKey('blob-1');
    expectThrowsCode(() => keyring.unwrapDataKey('blob-2', wrapped), 'integrity_error');
    expectThrowsCode(() => keyring.unwrapDataKey('blob-1\u0000', wrapped), 'integrity_error');
  });

  it('a wrapped data key relabelled with another live KEK version fails with integrity_error', () => {
    const { keyring } = freshKeyring();
    keyring.rotate(T1);
    const { wrapped } = keyring.newDataKey('blob-1');
    const relabelled = Buffer.from(wrapped);
    relabelled.writeUInt32BE(1, 1);
    expectThrowsCode(() => keyring.unwrapDataKey('blob-1', relabelled), 'integrity_error');
  });

  it('every single-bit flip of a wrapped data key fails; only flips of the version field can read as key_unavailable', () => {
    const { keyring } = freshKeyring();
    keyring.rotate(T1);
    const { wrapped } = keyring.newDataKey('blob-1');
    keyring.rotate(T1);
    expect(Keyring.kekVersionOf(wrapped)).toBe(2);
    for (let offset = 0; offset < wrapped.length; offset++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = flipBit(wrapped, offset, bit);
        let code: string | undefined;
        try {
          keyring.unwrapDataKey('blob-1', tampered);
        } catch (err) {
          code = (err as { code?: string }).code;
        }
        const inVersionField = offset >= 1 && offset <= 4;
        expect(code, `byte ${offset} bit ${bit}`).toBe(
          inVersionField && Keyring.kekVersionOf(tampered) > 3 ? 'key_unavailable' : 'integrity_error',
        );
      }
    }
  });

  it('a wrapped key of the wrong length or format fails with integrity_error', () => {
    const { keyring } = freshKeyring();
    const { wrapped } = keyring.newDataKey('blob-1');
    expectThrowsCode(() => keyring.unwrapDataKey('blob-1', wrapped.subarray(0, 64)), 'integrity_error');
    expectThrowsCode(
      () => keyring.unwrapDataKey('blob-1', Buffer.concat([wrapped, Buffer.of(0)])),
      'integrity_error',
    );
    expectThrowsCode(() => Keyring.kekVersionOf(Buffer.alloc(3)), 'integrity_error');
    const master = Buffer.from(wrapped);
    master.writeUInt32BE(0, 1);
    expectThrowsCode(() => keyring.unwrapDataKey('blob-1', master), 'integrity_error');
  });

  it('swapping two objects together with their wrapped data keys fails (G2)', async () => {
    const { keyring } = freshKeyring();
    const a = keyring.newDataKey('blob-a');
    const b = keyring.newDataKey('blob-b');
    const blobA = await sealBlob(a.dek, 'blob-a', randomBytes(100));
    await sealBlob(b.dek, 'blob-b', randomBytes(100));
    // An attacker moves object A's blob and wrapped key into object B's place.
    expectThrowsCode(() => keyring.unwrapDataKey('blob-b', a.wrapped), 'integrity_error');
    await expect(openBlob(b.dek, 'blob-b', 100, blobA)).rejects.toMatchObject({ code: 'integrity_error' });
  });
});
