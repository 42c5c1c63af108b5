import { describe, expect, it } from 'vitest';

import { constantTimeEqual, randomToken, sha256Hex } from '../../src/crypto/digest.js';
import { expectThrowsCode } from './stream-harness.js';

describe('sha256Hex', () => {
  it('matches the FIPS 180-4 examples for "abc" and the empty string', () => {
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(Buffer.alloc(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('hashes strings as UTF-8', () => {
    expect(sha256Hex('é')).toBe(sha256Hex(Buffer.from([0xc3, 0xa9])));
  });
});

describe('constantTimeEqual', () => {
  it('is true for equal strings and buffers, in any mix', () => {
    expect(constantTimeEqual('secret', 'secret')).toBe(true);
    expect(constantTimeEqual(Buffer.from('secret'), 'secret')).toBe(true);
    expect(constantTimeEqual('', '')).toBe(true);
  });

  it('is false for different values, including different lengths, without throwing', () => {
    expect(constantTimeEqual('secret', 'secreT')).toBe(false);
    expect(constantTimeEqual('secret', 'secret-but-longer')).toBe(false);
    expect(constantTimeEqual('', 'x')).toBe(false);
  });
});

describe('randomToken', () => {
  it('is the prefix followed by base64url of the requested bytes', () => {
    const token = randomToken('sr_pat_');
    expect(token).toMatch(/^sr_pat_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice('sr_pat_'.length), 'base64url')).toHaveLength(32);
    expect(randomToken('x', 16)).toMatch(/^x[A-Za-z0-9_-]{22}$/);
  });

  it('never repeats', () => {
    const tokens = new Set(Array.from({ length: 1000 }, () => randomToken('t')));
    expect(tokens.size).toBe(1000);
  });

  it('refuses fewer than 128 bits of entropy', () => {
    expectThrowsCode(() => randomToken('t', 15), 'invalid_request');
    expectThrowsCode(() => randomToken('t', 1.5), 'invalid_request');
  });
});
