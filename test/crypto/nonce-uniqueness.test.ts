import { randomBytes } from 'node:crypto';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { Keyring } from '../../src/crypto/keyring.js';
import { sealValue } from '../../src/crypto/stream-aead.js';
import { newKey, sealBlob } from './stream-harness.js';

// SECURITY-TESTS G3: no (key, nonce) pair is ever used twice. Rather than recomputing nonces from the format,
// this file wraps node:crypto's createCipheriv and records the key and IV of every encryption actually performed.

const recorder = vi.hoisted(() => ({
  calls: 0,
  pairs: new Set<string>(),
  keys: new Set<string>(),
  reset(): void {
    this.calls = 0;
    this.pairs.clear();
    this.keys.clear();
  },
}));

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>();
  const realCreateCipheriv = actual.createCipheriv as (
    algorithm: string,
    key: Buffer,
    iv: Buffer,
    options?: object,
  ) => unknown;
  return {
    ...actual,
    createCipheriv(algorithm: string, key: Buffer, iv: Buffer, options?: object): unknown {
      const keyText = key.toString('latin1');
      recorder.calls += 1;
      recorder.keys.add(keyText);
      recorder.pairs.add(keyText + iv.toString('latin1'));
      return realCreateCipheriv(algorithm, key, iv, options);
    },
  };
});

beforeEach(() => {
  recorder.reset();
});

describe('nonce uniqueness (G3)', () => {
  it('a million data-key wraps under one KEK never repeat a (key, nonce) pair', () => {
    const master = newKey();
    const keyring = Keyring.create(master, [Keyring.newKekRecord(master, 1, '2026-01-01T00:00:00.000Z')]);
    recorder.reset();
    const wraps = 1_000_000;
    for (let i = 0; i < wraps; i++) keyring.newDataKey('blob');
    expect(recorder.calls).toBe(wraps);
    expect(recorder.keys.size).toBe(1);
    expect(recorder.pairs.size).toBe(wraps);
  });

  it('segment nonces never repeat within or across objects, even when objects share a data key', async () => {
    const shared = newKey();
    let segments = 0;
    for (let i = 0; i < 100; i++) {
      await sealBlob(shared, `shared-${i}`, randomBytes(20 * 4096 + 1), 4096, [4096 * 20 + 1]);
      await sealBlob(newKey(), `own-${i}`, randomBytes(20 * 4096), 4096, [4096 * 20]);
      segments += 21 + 20;
    }
    // The same object content and identity sealed twice still gets a new salt, so a new segment key.
    const plaintext = randomBytes(3 * 4096);
    await sealBlob(shared, 'again', plaintext, 4096, [plaintext.length]);
    await sealBlob(shared, 'again', plaintext, 4096, [plaintext.length]);
    segments += 6;
    expect(recorder.calls).toBe(segments);
    expect(recorder.pairs.size).toBe(segments);
    expect(recorder.keys.size).toBe(202);
  });

  it('sealed values draw a fresh nonce for every seal under one key', () => {
    const key = newKey();
    for (let i = 0; i < 10_000; i++) sealValue(key, 'metadata', Buffer.from('{}'));
    expect(recorder.keys.size).toBe(1);
    expect(recorder.pairs.size).toBe(10_000);
  });
});
