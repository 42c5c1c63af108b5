import { describe, expect, it } from 'vitest';

import { hkdfSha256 } from '../../src/crypto/hkdf-sha256.js';
import { hex, loadVectors } from './vectors.js';

// RFC 5869 Appendix A.1-A.3: the SHA-256 test cases.
const vectors = loadVectors('hkdf-vectors.json');

describe('HKDF-SHA256 against RFC 5869', () => {
  it('has test cases A.1 to A.3', () => {
    expect(vectors).toHaveLength(3);
  });

  for (const v of vectors) {
    it(`${String(v.name)}: derives the published output keying material`, () => {
      const okm = hkdfSha256(hex(v, 'ikm'), hex(v, 'salt'), hex(v, 'info'), Number(v.length));
      expect(okm.toString('hex')).toBe(v.okm);
    });
  }
});
