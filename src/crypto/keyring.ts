import { randomBytes } from 'node:crypto';

import { StrongroomError } from '../core/errors.js';
import { AES256_KEY_SIZE, GCM_NONCE_SIZE, GCM_TAG_SIZE, gcmOpen, gcmSeal } from './aes-gcm.js';

/*
 * Envelope encryption (DESIGN.md section 4): master key -> versioned KEKs -> one DEK per stored object.
 *
 *   wrapped key = format 0x01 | wrapping key version u32 BE (0 = master) | nonce (12) | ciphertext (32) | tag (16)
 *   KEK aad     = "strongroom-kek-v1" NUL version
 *   DEK aad     = "strongroom-dek-v1" NUL identity NUL kekVersion
 *
 * Binding the identity stops a wrapped DEK from being moved to another object; binding the version stops a
 * wrapped key from being relabelled. The version is the last field and is digits only, so the AAD is unambiguous
 * even if an identity contains NUL.
 */

export const WRAPPED_KEY_SIZE = 1 + 4 + GCM_NONCE_SIZE + AES256_KEY_SIZE + GCM_TAG_SIZE;

const WRAP_FORMAT = 0x01;
const MASTER_VERSION = 0;
const MAX_KEK_VERSION = 0xffffffff;
const NONCE_OFFSET = 5;
const SEALED_OFFSET = NONCE_OFFSET + GCM_NONCE_SIZE;

export interface KekRecord {
  readonly version: number;
  readonly wrappedKey: Buffer;
  readonly createdAt: string;
  readonly destroyedAt: string | null;
}

export interface DataKey {
  readonly dek: Buffer;
  readonly wrapped: Buffer;
  readonly kekVersion: number;
}

/**
 * Parses a master key given as 64 hex characters or as base64/base64url of exactly 32 bytes (DESIGN.md section 4).
 * Errors never echo the input, which is a secret or a near miss of one (G5).
 */
export function parseMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  const key = decodeBase64Key(trimmed);
  if (key === null) {
    throw new StrongroomError(
      'master_key_invalid',
      `the master key must be ${AES256_KEY_SIZE} bytes written as 64 hex characters or as base64`,
    );
  }
  return key;
}

/**
 * The unwrapped KEKs of one data directory, and every wrap and unwrap of DEKs (DESIGN.md section 4; threats G1,
 * G2, G5). No I/O: callers persist `KekRecord`s and wrapped DEKs. Keys live in private fields so logging a
 * keyring shows none of them.
 */
export class Keyring {
  readonly #masterKey: Buffer;
  readonly #keks: Map<number, Buffer>;
  #highestVersion: number;

  private constructor(masterKey: Buffer, keks: Map<number, Buffer>, highestVersion: number) {
    this.#masterKey = masterKey;
    this.#keks = keks;
    this.#highestVersion = highestVersion;
  }

  /**
   * Unwraps every live KEK (DESIGN.md section 4). If none unwraps, the master key is wrong (`master_key_invalid`);
   * if only some do, those records were tampered with (`integrity_error`).
   */
  static create(masterKey: Buffer, kekRecords: readonly KekRecord[]): Keyring {
    requireMasterKey(masterKey);
    const keks = new Map<number, Buffer>();
    const failed: number[] = [];
    const seen = new Set<number>();
    for (const record of kekRecords) {
      requireKekVersion(record.version, 'integrity_error');
      if (seen.has(record.version)) {
        throw new StrongroomError(
          'integrity_error',
          `key-encryption key version ${record.version} appears twice`,
        );
      }
      seen.add(record.version);
      if (record.destroyedAt !== null) continue;
      try {
        keks.set(record.version, unwrapKek(masterKey, record));
      } catch (err) {
        if (!(err instanceof StrongroomError) || err.code !== 'integrity_error') throw err;
        failed.push(record.version);
      }
    }
    if (failed.length > 0 && keks.size === 0) {
      throw new StrongroomError('master_key_invalid', 'the master key does not match this data directory');
    }
    if (failed.length > 0) {
      throw new StrongroomError(
        'integrity_error',
        `key-encryption key version ${failed.join(', ')} failed authentication`,
        {
          details: { kekVersions: failed },
        },
      );
    }
    return new Keyring(Buffer.from(masterKey), keks, Math.max(0, ...seen));
  }

  /** A new random KEK wrapped under the master key (DESIGN.md section 4, rotation); the caller persists it. */
  static newKekRecord(masterKey: Buffer, version: number, createdAt: string): KekRecord {
    return generateKek(masterKey, version, createdAt).record;
  }

  /** The KEK version read from a wrapped key's header, without unwrapping it (rewrap sweeps, DESIGN.md section 4). */
  static kekVersionOf(wrapped: Buffer): number {
    return parseWrappedKey(wrapped).version;
  }

  /** Highest live KEK version: the one new DEKs are wrapped under. */
  get currentVersion(): number {
    let current = 0;
    for (const version of this.#keks.keys()) current = Math.max(current, version);
    if (current === 0) {
      throw new StrongroomError(
        'key_unavailable',
        'no key-encryption key is available; rotate to create one',
      );
    }
    return current;
  }

  /** Whether KEK `version` is live in this keyring; false after `forget` or if it was created elsewhere later. */
  has(version: number): boolean {
    return this.#keks.has(version);
  }

  /**
   * Creates the next KEK version and makes it current (DESIGN.md section 4, rotation). Versions are never reused,
   * even after destruction. Persist the returned record before wrapping anything under it; if persisting fails,
   * `forget` the version, or DEKs wrapped under it become unreadable after a restart.
   */
  rotate(createdAt: string): KekRecord {
    const { kek, record } = generateKek(this.#masterKey, this.#highestVersion + 1, createdAt);
    this.#keks.set(record.version, kek);
    this.#highestVersion = record.version;
    return record;
  }

  /** A fresh random 256-bit DEK for one object, wrapped under the current KEK and bound to `identity` (G2, G3). */
  newDataKey(identity: string): DataKey {
    const kekVersion = this.currentVersion;
    const dek = randomBytes(AES256_KEY_SIZE);
    return { dek, wrapped: this.#wrapDataKey(identity, kekVersion, dek), kekVersion };
  }

  /**
   * Unwraps an object's DEK (threats G1, G2): a destroyed or unknown KEK version is `key_unavailable`; a
   * tampered, relabelled or moved wrapped key is `integrity_error`.
   */
  unwrapDataKey(identity: string, wrapped: Buffer): Buffer {
    const { version, nonce, sealed } = parseWrappedKey(wrapped);
    if (version === MASTER_VERSION) {
      throw new StrongroomError('integrity_error', 'a wrapped data key cannot name the master key');
    }
    const kek = this.#keks.get(version);
    if (kek === undefined) {
      const why = version <= this.#highestVersion ? 'has been destroyed' : 'is not in this keyring';
      throw new StrongroomError('key_unavailable', `key-encryption key version ${version} ${why}`, {
        details: { kekVersion: version },
      });
    }
    return gcmOpen(kek, nonce, dekAad(identity, version), sealed, 'wrapped data key');
  }

  /**
   * Re-wraps a DEK under the current KEK without touching the data (DESIGN.md section 4, rewrap). Idempotent, so
   * an interrupted sweep can simply run again: an already-current key comes back as the same Buffer, unchecked.
   */
  rewrapDataKey(identity: string, wrapped: Buffer): Buffer {
    const current = this.currentVersion;
    if (Keyring.kekVersionOf(wrapped) === current) return wrapped;
    return this.#wrapDataKey(identity, current, this.unwrapDataKey(identity, wrapped));
  }

  /** Drops a destroyed KEK from memory (crypto-shredding, DESIGN.md section 4); DEKs only it wrapped are gone. */
  forget(version: number): void {
    const kek = this.#keks.get(version);
    if (kek === undefined) return;
    kek.fill(0);
    this.#keks.delete(version);
  }

  #wrapDataKey(identity: string, kekVersion: number, dek: Buffer): Buffer {
    const kek = this.#keks.get(kekVersion);
    if (kek === undefined) {
      throw new StrongroomError(
        'key_unavailable',
        `key-encryption key version ${kekVersion} is not in this keyring`,
      );
    }
    return wrapKey(kek, kekVersion, dekAad(identity, kekVersion), dek);
  }
}

function generateKek(
  masterKey: Buffer,
  version: number,
  createdAt: string,
): { kek: Buffer; record: KekRecord } {
  requireMasterKey(masterKey);
  requireKekVersion(version, 'invalid_request');
  const kek = randomBytes(AES256_KEY_SIZE);
  const wrappedKey = wrapKey(masterKey, MASTER_VERSION, kekAad(version), kek);
  return { kek, record: { version, wrappedKey, createdAt, destroyedAt: null } };
}

function unwrapKek(masterKey: Buffer, record: KekRecord): Buffer {
  const { version, nonce, sealed } = parseWrappedKey(record.wrappedKey);
  if (version !== MASTER_VERSION) {
    throw new StrongroomError(
      'integrity_error',
      `key-encryption key version ${record.version} is not wrapped by the master key`,
    );
  }
  return gcmOpen(
    masterKey,
    nonce,
    kekAad(record.version),
    sealed,
    `key-encryption key version ${record.version}`,
  );
}

function wrapKey(wrappingKey: Buffer, wrappingVersion: number, aad: Buffer, key: Buffer): Buffer {
  const head = Buffer.alloc(NONCE_OFFSET);
  head.writeUInt8(WRAP_FORMAT, 0);
  head.writeUInt32BE(wrappingVersion, 1);
  // Random 96-bit nonces: a collision is expected only after ~2^48 wraps under one KEK, far above any rotation period.
  const nonce = randomBytes(GCM_NONCE_SIZE);
  return Buffer.concat([head, nonce, gcmSeal(wrappingKey, nonce, aad, key)], WRAPPED_KEY_SIZE);
}

function parseWrappedKey(wrapped: Buffer): { version: number; nonce: Buffer; sealed: Buffer } {
  if (wrapped.length !== WRAPPED_KEY_SIZE) {
    throw new StrongroomError(
      'integrity_error',
      `a wrapped key must be ${WRAPPED_KEY_SIZE} bytes, got ${wrapped.length}`,
    );
  }
  if (wrapped.readUInt8(0) !== WRAP_FORMAT) {
    throw new StrongroomError(
      'integrity_error',
      `wrapped key has unsupported format ${wrapped.readUInt8(0)}`,
    );
  }
  return {
    version: wrapped.readUInt32BE(1),
    nonce: wrapped.subarray(NONCE_OFFSET, SEALED_OFFSET),
    sealed: wrapped.subarray(SEALED_OFFSET),
  };
}

function kekAad(version: number): Buffer {
  return Buffer.from(`strongroom-kek-v1\u0000${version}`, 'utf8');
}

function dekAad(identity: string, kekVersion: number): Buffer {
  if (identity.length === 0) {
    throw new StrongroomError(
      'invalid_request',
      'an object identity is required to bind a data key to its object',
    );
  }
  return Buffer.from(`strongroom-dek-v1\u0000${identity}\u0000${kekVersion}`, 'utf8');
}

function decodeBase64Key(text: string): Buffer | null {
  // 32 bytes are 43 base64 symbols plus one optional '=' of padding.
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return null;
  const urlSafe = text.replace(/=$/, '').replace(/\+/g, '-').replace(/\//g, '_');
  const key = Buffer.from(urlSafe, 'base64url');
  // The last symbol carries two spare bits; requiring them zero gives each key exactly one accepted spelling.
  return key.length === AES256_KEY_SIZE && key.toString('base64url') === urlSafe ? key : null;
}

function requireMasterKey(masterKey: Buffer): void {
  if (masterKey.length !== AES256_KEY_SIZE) {
    throw new StrongroomError('master_key_invalid', `the master key must be ${AES256_KEY_SIZE} bytes`);
  }
}

function requireKekVersion(version: number, code: 'invalid_request' | 'integrity_error'): void {
  if (!Number.isInteger(version) || version < 1 || version > MAX_KEK_VERSION) {
    throw new StrongroomError(
      code,
      `key-encryption key version ${version} is not between 1 and ${MAX_KEK_VERSION}`,
    );
  }
}
