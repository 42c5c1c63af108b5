import { hkdfSync } from 'node:crypto';

/** HKDF-SHA256 extract-and-expand (RFC 5869) to `length` bytes; the one key-derivation call in the codebase. */
export function hkdfSha256(ikm: Buffer, salt: Buffer, info: Buffer | string, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}
