import { createCipheriv, createDecipheriv } from 'node:crypto';

import { StrongroomError } from '../core/errors.js';

export const AES256_KEY_SIZE = 32;
export const GCM_NONCE_SIZE = 12;
export const GCM_TAG_SIZE = 16;

const ALGORITHM = 'aes-256-gcm';

/**
 * AES-256-GCM encryption (NIST SP 800-38D) returning `ciphertext || tag`; every AEAD in Strongroom goes through
 * here. The caller owns nonce uniqueness: a repeated (key, nonce) pair reveals the XOR of plaintexts and the
 * GHASH key.
 */
export function gcmSeal(key: Buffer, nonce: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
  checkSizes(key, nonce);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: GCM_TAG_SIZE });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([head, tail, cipher.getAuthTag()], plaintext.length + GCM_TAG_SIZE);
}

/**
 * The same AES-256-GCM encryption over plaintext given in pieces, returning the ciphertext pieces followed by
 * the tag, so a hot path can hand them to a vectored write without copying them into one buffer.
 */
export function gcmSealParts(key: Buffer, nonce: Buffer, aad: Buffer, pieces: readonly Buffer[]): Buffer[] {
  checkSizes(key, nonce);
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: GCM_TAG_SIZE });
  cipher.setAAD(aad);
  const out: Buffer[] = [];
  for (const piece of pieces) out.push(cipher.update(piece));
  const tail = cipher.final();
  if (tail.length > 0) out.push(tail);
  out.push(cipher.getAuthTag());
  return out;
}

/**
 * AES-256-GCM decryption (NIST SP 800-38D) of `ciphertext || tag`; throws `integrity_error` naming `subject` on
 * any authentication failure, and returns plaintext only after the tag has verified (no release of unverified
 * plaintext).
 */
export function gcmOpen(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer, subject: string): Buffer {
  checkSizes(key, nonce);
  if (sealed.length < GCM_TAG_SIZE) {
    throw new StrongroomError('integrity_error', `${subject} is shorter than its authentication tag`);
  }
  const split = sealed.length - GCM_TAG_SIZE;
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: GCM_TAG_SIZE });
  decipher.setAAD(aad);
  // Pinning the tag length to 16 bytes stops truncated-tag forgeries (a 4-byte tag is 2^32 guesses).
  decipher.setAuthTag(sealed.subarray(split));
  const head = decipher.update(sealed.subarray(0, split));
  try {
    const tail = decipher.final();
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch (cause) {
    throw new StrongroomError('integrity_error', `${subject} failed authentication`, { cause });
  }
}

function checkSizes(key: Buffer, nonce: Buffer): void {
  // Node would throw a RangeError here too, but a StrongroomError keeps callers' `switch (err.code)` total.
  if (key.length !== AES256_KEY_SIZE) {
    throw new StrongroomError('invalid_request', `an AES-256-GCM key must be ${AES256_KEY_SIZE} bytes`);
  }
  if (nonce.length !== GCM_NONCE_SIZE) {
    throw new StrongroomError('invalid_request', `an AES-256-GCM nonce must be ${GCM_NONCE_SIZE} bytes`);
  }
}
