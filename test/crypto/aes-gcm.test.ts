import { describe, expect, it } from 'vitest';

import { gcmOpen, gcmSeal } from '../../src/crypto/aes-gcm.js';
import { expectThrowsCode, flipBit } from './stream-harness.js';
import { hex, loadVectors } from './vectors.js';

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13-16 (AES-256, 96-bit IV).
const vectors = loadVectors('gcm-vectors.json');

describe('AES-256-GCM primitive against the GCM specification test cases', () => {
  it('has all four 256-bit test cases', () => {
    expect(vectors.map((v) => v.name)).toEqual([
      'Test Case 13',
      'Test Case 14',
      'Test Case 15',
      'Test Case 16',
    ]);
  });

  for (const v of vectors) {
    it(`${String(v.name)}: sealing yields the published ciphertext and tag`, () => {
      const sealed = gcmSeal(hex(v, 'key'), hex(v, 'iv'), hex(v, 'aad'), hex(v, 'plaintext'));
      expect(sealed.toString('hex')).toBe(`${String(v.ciphertext)}${String(v.tag)}`);
    });

    it(`${String(v.name)}: opening the published ciphertext and tag yields the plaintext`, () => {
      const sealed = Buffer.concat([hex(v, 'ciphertext'), hex(v, 'tag')]);
      expect(gcmOpen(hex(v, 'key'), hex(v, 'iv'), hex(v, 'aad'), sealed, 'vector').toString('hex')).toBe(
        v.plaintext,
      );
    });

    it(`${String(v.name)}: a flipped tag bit fails authentication`, () => {
      const sealed = Buffer.concat([hex(v, 'ciphertext'), hex(v, 'tag')]);
      const tampered = flipBit(sealed, sealed.length - 1, 7);
      expectThrowsCode(
        () => gcmOpen(hex(v, 'key'), hex(v, 'iv'), hex(v, 'aad'), tampered, 'vector'),
        'integrity_error',
      );
    });
  }

  it('a truncated tag is rejected rather than checked as a shorter tag', () => {
    const v = vectors[3]!;
    const sealed = Buffer.concat([hex(v, 'ciphertext'), hex(v, 'tag')]);
    expectThrowsCode(
      () =>
        gcmOpen(hex(v, 'key'), hex(v, 'iv'), hex(v, 'aad'), sealed.subarray(0, sealed.length - 4), 'vector'),
      'integrity_error',
    );
    expectThrowsCode(
      () => gcmOpen(hex(v, 'key'), hex(v, 'iv'), hex(v, 'aad'), Buffer.alloc(8), 'vector'),
      'integrity_error',
    );
  });

  it('keys and nonces of the wrong size are refused', () => {
    expectThrowsCode(
      () => gcmSeal(Buffer.alloc(16), Buffer.alloc(12), Buffer.alloc(0), Buffer.alloc(1)),
      'invalid_request',
    );
    expectThrowsCode(
      () => gcmSeal(Buffer.alloc(32), Buffer.alloc(8), Buffer.alloc(0), Buffer.alloc(1)),
      'invalid_request',
    );
  });
});
