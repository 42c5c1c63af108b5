import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto';
import type { TokenKind } from '../core/domain.js';

/**
 * Token formats: a recognisable prefix per kind, so secret scanners can find leaked ones
 * (`sr[arkfi]_` + 43 base64url characters of 256 random bits), stored only as SHA-256 (A6).
 */
export const TOKEN_PREFIX: Readonly<Record<TokenKind, string>> = {
  access: 'sra_',
  refresh: 'srr_',
  api: 'srk_',
  federated: 'srf_',
  invite: 'sri_',
};

/** What a secret scanner should look for (documented in docs/identity.md). */
export const TOKEN_PATTERN = /^sr[arkfi]_[A-Za-z0-9_-]{43}$/;

export function newToken(kind: TokenKind): string {
  return `${TOKEN_PREFIX[kind]}${randomBytes(32).toString('base64url')}`;
}

export function kindOfToken(token: string): TokenKind | undefined {
  if (!TOKEN_PATTERN.test(token)) return undefined;
  const prefix = token.slice(0, 4);
  return (Object.keys(TOKEN_PREFIX) as TokenKind[]).find((k) => TOKEN_PREFIX[k] === prefix);
}

/** SHA-256 is right for 256-bit random tokens: nothing to brute-force, and it keeps lookups on the hot path cheap. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** Ten single-use recovery codes of 12 characters (~59 bits each), grouped for reading: `abcd-efgh-jkmn`. */
export function newRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () => {
    // randomInt draws without modulo bias.
    const chars = Array.from(
      { length: 12 },
      () => RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)],
    ).join('');
    return `${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
  });
}

/**
 * Recovery codes are stored as HMAC-SHA256 under a per-user key: random enough that a slow hash buys nothing,
 * and a stolen database does not reveal them. Input is normalised (case, dashes, spaces).
 */
export function recoveryCodeHash(userId: string, code: string): string {
  const normalised = code.toLowerCase().replace(/[\s-]/g, '');
  return createHmac('sha256', `strongroom-recovery:${userId}`).update(normalised).digest('hex');
}
