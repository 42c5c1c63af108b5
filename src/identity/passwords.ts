import { hash, verify } from '@node-rs/argon2';
import { StrongroomError } from '../core/errors.js';

/**
 * argon2id parameters: above the OWASP Password Storage Cheat Sheet minimum (m = 19 MiB, t = 2, p = 1), with
 * 64 MiB of memory. Hashes record their parameters, so raising these later still verifies old hashes and
 * `needsRehash` upgrades them at the next login.
 */
export const ARGON2_PARAMS = {
  // Algorithm.Argon2id (a const enum, which isolated modules cannot import).
  algorithm: 2,
  memoryCost: 65_536,
  timeCost: 2,
  parallelism: 1,
} as const;

export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/** A few of the most common passwords long enough to pass the length rule (NIST SP 800-63B 5.1.1.2 blocklist). */
const COMMON = new Set([
  'password1234',
  'passwordpassword',
  '123456789012',
  'qwertyuiopas',
  'iloveyou1234',
  'administrator',
  'changeme1234',
  'letmein12345',
  'welcome12345',
  'strongroom123',
]);

/**
 * NIST SP 800-63B 5.1.1.2: length (12 to 256 characters), no composition rules, not a known-common password,
 * not the username. Throws `invalid_password` with the reason.
 */
export function checkPasswordPolicy(password: string, username: string): void {
  const length = [...password].length;
  const fail = (why: string) => new StrongroomError('invalid_password', `the password ${why}`);
  if (length < MIN_PASSWORD_LENGTH) throw fail(`must have at least ${MIN_PASSWORD_LENGTH} characters`);
  if (length > MAX_PASSWORD_LENGTH) throw fail(`must have at most ${MAX_PASSWORD_LENGTH} characters`);
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) throw fail('is too common');
  if (lower.includes(username.toLowerCase())) throw fail('must not contain the username');
}

/** argon2id PHC string of a password (never logged, never returned). */
export function hashPassword(password: string): Promise<string> {
  return hash(password.normalize('NFKC'), ARGON2_PARAMS);
}

/** Constant-time verification inside argon2; a malformed stored hash is a failure, not an exception. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  try {
    return await verify(stored, password.normalize('NFKC'));
  } catch {
    return false;
  }
}

/** Whether a stored hash uses weaker parameters than today's (then it is replaced at the next login). */
export function needsRehash(stored: string): boolean {
  const match = /^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$/.exec(stored);
  if (!match) return true;
  return Number(match[1]) < ARGON2_PARAMS.memoryCost || Number(match[2]) < ARGON2_PARAMS.timeCost;
}

let dummy: Promise<string> | undefined;

/**
 * Verifies against a fixed hash so that an unknown username costs the same time as a wrong password (no user
 * enumeration by timing).
 */
export async function burnVerification(password: string): Promise<false> {
  dummy ??= hashPassword('strongroom-dummy-password');
  await verifyPassword(await dummy, password);
  return false;
}
