import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { StrongroomError } from '../core/errors.js';

// 128 bits is the floor for an unguessable bearer secret (OWASP session-id guidance); anything shorter is a bug.
const MIN_TOKEN_BYTES = 16;
const MAX_TOKEN_BYTES = 1024;

/** SHA-256 (FIPS 180-4) of bytes or of a string's UTF-8 encoding, as lowercase hex. */
export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Compares two secrets without a timing side channel (CWE-208); the one constant-time comparison in the codebase.
 * Both sides are hashed first so inputs of different lengths compare in constant time too, instead of
 * `timingSafeEqual` throwing and the length check itself leaking.
 */
export function constantTimeEqual(a: string | Buffer, b: string | Buffer): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** A random bearer token: `prefix` then base64url of `bytes` CSPRNG bytes (prefix lets secret scanners spot leaks). */
export function randomToken(prefix: string, bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < MIN_TOKEN_BYTES || bytes > MAX_TOKEN_BYTES) {
    throw new StrongroomError(
      'invalid_request',
      `a random token needs between ${MIN_TOKEN_BYTES} and ${MAX_TOKEN_BYTES} bytes of entropy`,
    );
  }
  return prefix + randomBytes(bytes).toString('base64url');
}
