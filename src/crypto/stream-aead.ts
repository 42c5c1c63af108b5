import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

import { StrongroomError } from '../core/errors.js';
import { AES256_KEY_SIZE, GCM_NONCE_SIZE, GCM_TAG_SIZE, gcmOpen, gcmSeal, gcmSealParts } from './aes-gcm.js';
import { hkdfSha256 } from './hkdf-sha256.js';

/*
 * Blob format "SRB1" (DESIGN.md section 4), the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizar,
 * "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance" (CRYPTO 2015), as used by age and Tink:
 *
 *   header  = "SRB1" | version u8 = 1 | segment size u32 BE | salt (16) | nonce prefix (7)          (32 bytes)
 *   segment = AES-256-GCM(key, nonce, aad, plaintext) = ciphertext | tag (16)
 *   key     = HKDF-SHA256(ikm = DEK, salt = header salt, info = "strongroom-blob-v1", 32)
 *   nonce   = nonce prefix (7) | segment index u32 BE | last-segment flag u8
 *   aad     = header bytes | UTF-8 object identity
 *
 * The index in the nonce stops reordering, the last flag stops truncation at a segment boundary, and the header
 * and identity in the AAD stop swapping headers or whole objects.
 */

export const SEGMENT_SIZE = 65536;
export const TAG_SIZE = GCM_TAG_SIZE;
export const HEADER_SIZE = 32;
export const MIN_SEGMENT_SIZE = 4096;
export const MAX_SEGMENT_SIZE = 16 * 1024 * 1024;

const MAGIC = Buffer.from('SRB1', 'ascii');
const FORMAT_VERSION = 1;
const SALT_SIZE = 16;
const NONCE_PREFIX_SIZE = 7;
const VERSION_OFFSET = 4;
const SEGMENT_SIZE_OFFSET = 5;
const SALT_OFFSET = 9;
const NONCE_PREFIX_OFFSET = SALT_OFFSET + SALT_SIZE;
// The segment index is a u32 in the nonce; one more segment would wrap it and reuse a nonce.
const MAX_SEGMENTS = 2 ** 32;
const SEGMENT_KEY_INFO = 'strongroom-blob-v1';
const VALUE_FORMAT = 1;
const VALUE_OVERHEAD = 1 + GCM_NONCE_SIZE + GCM_TAG_SIZE;
const EMPTY = Buffer.alloc(0);

export interface BlobHeader {
  readonly segmentSize: number;
  readonly salt: Buffer;
  readonly noncePrefix: Buffer;
}

/** Where a range read starts and stops in a blob; `cipherStart`/`cipherEnd` are inclusive absolute file offsets. */
export interface RangePlan {
  readonly firstSegment: number;
  readonly lastSegment: number;
  readonly cipherStart: number;
  readonly cipherEnd: number;
  /** Plaintext bytes of `firstSegment` before the requested start. */
  readonly skip: number;
}

/** A fresh random header (STREAM, DESIGN.md section 4): new salt and nonce prefix per object, so no key is reused. */
export function newBlobHeader(segmentSize = SEGMENT_SIZE): BlobHeader {
  requireSegmentSize(segmentSize, 'invalid_request');
  return Object.freeze({
    segmentSize,
    salt: randomBytes(SALT_SIZE),
    noncePrefix: randomBytes(NONCE_PREFIX_SIZE),
  });
}

/** Serialises a header in the SRB1 layout (DESIGN.md section 4); these exact bytes are authenticated as AAD. */
export function encodeHeader(header: BlobHeader): Buffer {
  requireSegmentSize(header.segmentSize, 'invalid_request');
  if (header.salt.length !== SALT_SIZE || header.noncePrefix.length !== NONCE_PREFIX_SIZE) {
    throw new StrongroomError(
      'invalid_request',
      `a blob header needs a ${SALT_SIZE}-byte salt and a ${NONCE_PREFIX_SIZE}-byte nonce prefix`,
    );
  }
  const out = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(out, 0);
  out.writeUInt8(FORMAT_VERSION, VERSION_OFFSET);
  out.writeUInt32BE(header.segmentSize, SEGMENT_SIZE_OFFSET);
  header.salt.copy(out, SALT_OFFSET);
  header.noncePrefix.copy(out, NONCE_PREFIX_OFFSET);
  return out;
}

/**
 * Parses the first `HEADER_SIZE` bytes of a stored blob (DESIGN.md section 4); anything but a well-formed SRB1 v1
 * header is an `integrity_error`, so tampered headers fail before any key is derived.
 */
export function decodeHeader(buf: Buffer): BlobHeader {
  if (buf.length < HEADER_SIZE) {
    throw new StrongroomError('integrity_error', 'blob header is truncated');
  }
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new StrongroomError('integrity_error', 'blob header has the wrong magic bytes');
  }
  const version = buf.readUInt8(VERSION_OFFSET);
  if (version !== FORMAT_VERSION) {
    throw new StrongroomError('integrity_error', `blob header has unsupported format version ${version}`);
  }
  const segmentSize = buf.readUInt32BE(SEGMENT_SIZE_OFFSET);
  requireSegmentSize(segmentSize, 'integrity_error');
  // Copies, so a header never pins (or aliases) the caller's read buffer.
  return Object.freeze({
    segmentSize,
    salt: Buffer.from(buf.subarray(SALT_OFFSET, SALT_OFFSET + SALT_SIZE)),
    noncePrefix: Buffer.from(buf.subarray(NONCE_PREFIX_OFFSET, HEADER_SIZE)),
  });
}

/** Number of STREAM segments for an object: at least one, so even an empty object carries a final-flagged tag. */
export function segmentCount(plaintextSize: number, segmentSize: number): number {
  requirePlaintextSize(plaintextSize);
  requireSegmentSize(segmentSize, 'invalid_request');
  const count = Math.max(1, Math.ceil(plaintextSize / segmentSize));
  if (count > MAX_SEGMENTS) {
    throw new StrongroomError('invalid_request', `an object may have at most ${MAX_SEGMENTS} segments`);
  }
  return count;
}

/** Total stored size of a blob (DESIGN.md section 4): header, plaintext, and one tag per segment. */
export function ciphertextSize(plaintextSize: number, segmentSize: number): number {
  return HEADER_SIZE + plaintextSize + segmentCount(plaintextSize, segmentSize) * TAG_SIZE;
}

/** Absolute file offset where sealed segment `index` starts (DESIGN.md section 4, range reads). */
export function ciphertextOffsetOfSegment(index: number, segmentSize: number): number {
  requireSegmentSize(segmentSize, 'invalid_request');
  if (!Number.isInteger(index) || index < 0 || index >= MAX_SEGMENTS) {
    throw new StrongroomError('invalid_request', `segment index ${index} is out of range`);
  }
  return HEADER_SIZE + index * (segmentSize + TAG_SIZE);
}

/**
 * Which sealed segments, and which file bytes, serve the inclusive plaintext range [start, end] (DESIGN.md
 * section 4: range reads decrypt only the segments they need). An empty object has one range, [0, -1].
 */
export function planRange(plaintextSize: number, segmentSize: number, start: number, end: number): RangePlan {
  const count = segmentCount(plaintextSize, segmentSize);
  requireRange(plaintextSize, start, end);
  const firstSegment = Math.floor(start / segmentSize);
  const lastSegment = plaintextSize === 0 ? 0 : Math.floor(end / segmentSize);
  const lastSealedSize = plaintextLengthOf(lastSegment, count, plaintextSize, segmentSize) + TAG_SIZE;
  return {
    firstSegment,
    lastSegment,
    cipherStart: ciphertextOffsetOfSegment(firstSegment, segmentSize),
    cipherEnd: ciphertextOffsetOfSegment(lastSegment, segmentSize) + lastSealedSize - 1,
    skip: start - firstSegment * segmentSize,
  };
}

/**
 * Seals and opens single STREAM segments of one object (DESIGN.md section 4). The segment key is derived once
 * per object; the plaintext size fixes which index is last, so a stream cut at a segment boundary fails on the
 * last-segment flag.
 */
export class SegmentCipher {
  readonly segmentSize: number;
  readonly plaintextSize: number;
  readonly segmentCount: number;
  // Private fields stay out of util.inspect and JSON.stringify, so logging a cipher cannot leak its key (G5).
  readonly #key: Buffer;
  readonly #aad: Buffer;
  readonly #noncePrefix: Buffer;

  constructor(dek: Buffer, header: BlobHeader, identity: string, plaintextSize: number) {
    if (dek.length !== AES256_KEY_SIZE) {
      throw new StrongroomError('invalid_request', `a data key must be ${AES256_KEY_SIZE} bytes`);
    }
    const encoded = encodeHeader(header);
    this.segmentSize = header.segmentSize;
    this.plaintextSize = plaintextSize;
    this.segmentCount = segmentCount(plaintextSize, header.segmentSize);
    this.#key = hkdfSha256(
      dek,
      encoded.subarray(SALT_OFFSET, SALT_OFFSET + SALT_SIZE),
      SEGMENT_KEY_INFO,
      AES256_KEY_SIZE,
    );
    this.#aad = Buffer.concat([encoded, identityBytes(identity)]);
    // Taken from our own copy of the header, so a caller mutating its buffers later cannot cause nonce reuse.
    this.#noncePrefix = encoded.subarray(NONCE_PREFIX_OFFSET, HEADER_SIZE);
  }

  /** Plaintext length of segment `index`: a full segment, or for the last one the exact remainder. */
  plaintextLengthOf(index: number): number {
    this.#requireIndex(index);
    return plaintextLengthOf(index, this.segmentCount, this.plaintextSize, this.segmentSize);
  }

  /** Seals one segment (STREAM encryption): `ciphertext || tag`, with the index and last flag in the nonce. */
  encryptSegment(index: number, plaintext: Buffer): Buffer {
    const expected = this.plaintextLengthOf(index);
    if (plaintext.length !== expected) {
      throw new StrongroomError(
        'invalid_request',
        `segment ${index} must hold ${expected} plaintext bytes, got ${plaintext.length}`,
      );
    }
    return gcmSeal(this.#key, this.#nonce(index), this.#aad, plaintext);
  }

  /**
   * Seals one segment whose plaintext arrives in pieces (STREAM encryption, as `encryptSegment`): returns the
   * ciphertext pieces then the tag, to be written in that order, with no copy of the plaintext into one buffer.
   */
  encryptSegmentParts(index: number, pieces: readonly Buffer[]): Buffer[] {
    const expected = this.plaintextLengthOf(index);
    const length = pieces.reduce((sum, p) => sum + p.length, 0);
    if (length !== expected) {
      throw new StrongroomError(
        'invalid_request',
        `segment ${index} must hold ${expected} plaintext bytes, got ${length}`,
      );
    }
    return gcmSealParts(this.#key, this.#nonce(index), this.#aad, pieces);
  }

  /** Opens one segment (STREAM decryption, threats G1-G2); wrong length or failed tag is an `integrity_error`. */
  decryptSegment(index: number, sealed: Buffer): Buffer {
    const expected = this.plaintextLengthOf(index) + TAG_SIZE;
    if (sealed.length !== expected) {
      throw new StrongroomError(
        'integrity_error',
        `blob segment ${index} is ${sealed.length} bytes, expected ${expected}`,
      );
    }
    return gcmOpen(this.#key, this.#nonce(index), this.#aad, sealed, `blob segment ${index}`);
  }

  #nonce(index: number): Buffer {
    const nonce = Buffer.alloc(GCM_NONCE_SIZE);
    this.#noncePrefix.copy(nonce, 0);
    nonce.writeUInt32BE(index, NONCE_PREFIX_SIZE);
    nonce.writeUInt8(index === this.segmentCount - 1 ? 1 : 0, NONCE_PREFIX_SIZE + 4);
    return nonce;
  }

  #requireIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.segmentCount) {
      throw new StrongroomError(
        'invalid_request',
        `segment index ${index} is outside 0..${this.segmentCount - 1}`,
      );
    }
  }
}

export interface EncryptStreamOptions {
  readonly dek: Buffer;
  readonly header: BlobHeader;
  readonly identity: string;
  readonly plaintextSize: number;
  /** First segment to seal; the input starts at plaintext byte `startSegment * segmentSize`. Default 0. */
  readonly startSegment?: number;
  /**
   * Resumable uploads: when the input ends early, drop the incomplete tail instead of failing, so only whole
   * sealed segments are ever persisted. `nextSegment` then says where to resume.
   */
  readonly allowPartial?: boolean;
}

/**
 * Plaintext in, sealed segments out (not the header, which the caller writes first). A segment is pushed as soon
 * as it is complete; the progress getters count pushed segments, which are durable only once the caller's sink
 * has flushed them.
 */
export class EncryptStream extends Transform {
  readonly #cipher: SegmentCipher;
  readonly #queue = new ChunkQueue();
  readonly #allowPartial: boolean;
  readonly #startOffset: number;
  #nextSegment: number;
  #sealedPlaintextBytes = 0;

  constructor(options: EncryptStreamOptions) {
    super();
    this.#cipher = new SegmentCipher(options.dek, options.header, options.identity, options.plaintextSize);
    const start = options.startSegment ?? 0;
    if (!Number.isInteger(start) || start < 0 || start >= this.#cipher.segmentCount) {
      throw new StrongroomError(
        'invalid_request',
        `start segment ${start} is outside 0..${this.#cipher.segmentCount - 1}`,
      );
    }
    this.#nextSegment = start;
    this.#startOffset = start * this.#cipher.segmentSize;
    this.#allowPartial = options.allowPartial ?? false;
  }

  /** Index of the next segment to seal: where a resumed upload restarts (plaintext byte `nextSegment * segmentSize`). */
  get nextSegment(): number {
    return this.#nextSegment;
  }

  /** Plaintext bytes this stream has sealed and pushed (whole segments only). */
  get sealedPlaintextBytes(): number {
    return this.#sealedPlaintextBytes;
  }

  /** True once the final segment has been sealed. */
  get complete(): boolean {
    return this.#nextSegment === this.#cipher.segmentCount;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.#receivedThrough() + chunk.length > this.#cipher.plaintextSize) {
        throw new StrongroomError('invalid_request', 'the input is longer than the declared plaintext size', {
          details: { plaintextSize: this.#cipher.plaintextSize },
        });
      }
      this.#queue.push(chunk);
      this.#sealReady();
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      // An empty final segment (the empty object) has no input byte to trigger it, so it is sealed here.
      this.#sealReady();
      if (!this.complete && !this.#allowPartial) {
        throw new StrongroomError('invalid_request', 'the input ended before the declared plaintext size', {
          details: {
            plaintextSize: this.#cipher.plaintextSize,
            received: this.#receivedThrough(),
          },
        });
      }
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  /** Absolute plaintext offset just past the last byte received. */
  #receivedThrough(): number {
    return this.#startOffset + this.#sealedPlaintextBytes + this.#queue.length;
  }

  #sealReady(): void {
    while (!this.complete) {
      const need = this.#cipher.plaintextLengthOf(this.#nextSegment);
      if (this.#queue.length < need) return;
      this.push(this.#cipher.encryptSegment(this.#nextSegment, this.#queue.take(need)));
      this.#sealedPlaintextBytes += need;
      this.#nextSegment += 1;
    }
  }
}

export interface DecryptStreamOptions {
  readonly dek: Buffer;
  readonly header: BlobHeader;
  readonly identity: string;
  readonly plaintextSize: number;
  /** First plaintext byte wanted. Default 0. */
  readonly start?: number;
  /** Last plaintext byte wanted, inclusive. Default `plaintextSize - 1`. */
  readonly end?: number;
}

/**
 * Opens the sealed segments of one plaintext range in order (STREAM decryption, threats G1-G2) and trims each
 * segment's plaintext to the range. It holds no bytes itself: the caller hands it each segment's exact sealed
 * bytes, so a reader with whole segments in a buffer opens them without copying, and `DecryptStream` is this
 * plus a queue. Nothing of a segment is returned before its tag verifies.
 */
export class RangeOpener {
  readonly plan: RangePlan;
  readonly #cipher: SegmentCipher;
  readonly #end: number;
  #nextSegment: number;

  constructor(options: DecryptStreamOptions) {
    const start = options.start ?? 0;
    const end = options.end ?? options.plaintextSize - 1;
    this.plan = planRange(options.plaintextSize, options.header.segmentSize, start, end);
    this.#cipher = new SegmentCipher(options.dek, options.header, options.identity, options.plaintextSize);
    this.#end = end;
    this.#nextSegment = this.plan.firstSegment;
  }

  /** True once the range's last segment has been opened. */
  get done(): boolean {
    return this.#nextSegment > this.plan.lastSegment;
  }

  /** Sealed length (ciphertext and tag) of the next segment to open; 0 once done. */
  get nextSealedLength(): number {
    return this.done ? 0 : this.#cipher.plaintextLengthOf(this.#nextSegment) + TAG_SIZE;
  }

  /**
   * Opens the next segment from exactly its sealed bytes and returns the part of its plaintext inside the
   * range (empty for the empty object); a failed tag or a wrong length is an `integrity_error`.
   */
  openNext(sealed: Buffer): Buffer {
    if (this.done) throw new StrongroomError('integrity_error', 'blob has bytes after its last segment');
    const index = this.#nextSegment;
    const plaintext = this.#cipher.decryptSegment(index, sealed);
    this.#nextSegment += 1;
    const from = index === this.plan.firstSegment ? this.plan.skip : 0;
    const to =
      index === this.plan.lastSegment ? this.#end - index * this.#cipher.segmentSize + 1 : plaintext.length;
    if (from === 0 && to === plaintext.length) return plaintext;
    return to > from ? plaintext.subarray(from, to) : EMPTY;
  }
}

/**
 * Sealed segments in (from `plan.cipherStart`), exactly plaintext bytes [start, end] out. Each segment's bytes
 * are pushed only after its tag verifies, but truncation and trailing bytes can only be detected at the end:
 * a consumer must not treat the output as complete until the stream finishes without error.
 */
export class DecryptStream extends Transform {
  readonly plan: RangePlan;
  readonly #opener: RangeOpener;
  readonly #queue = new ChunkQueue();

  constructor(options: DecryptStreamOptions) {
    // Room for a few verified segments, so decryption runs ahead while the consumer (a socket) drains.
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: 1024 * 1024 });
    this.#opener = new RangeOpener(options);
    this.plan = this.#opener.plan;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#queue.push(chunk);
      this.#openReady();
      if (this.#opener.done && this.#queue.length > 0) {
        throw new StrongroomError('integrity_error', 'blob has bytes after its last segment');
      }
      callback();
    } catch (err) {
      callback(toError(err));
    }
  }

  override _flush(callback: TransformCallback): void {
    if (!this.#opener.done) {
      callback(new StrongroomError('integrity_error', 'blob ends before its last segment (truncated)'));
      return;
    }
    callback();
  }

  #openReady(): void {
    while (!this.#opener.done) {
      const need = this.#opener.nextSealedLength;
      if (this.#queue.length < need) return;
      const plaintext = this.#opener.openNext(this.#queue.take(need));
      if (plaintext.length > 0) this.push(plaintext);
    }
  }
}

/** Builds the STREAM encryption transform (DESIGN.md section 4; threats G1-G3). */
export function createEncryptStream(options: EncryptStreamOptions): EncryptStream {
  return new EncryptStream(options);
}

/** Builds the STREAM decryption transform for a whole object or a range (DESIGN.md section 4; threats G1-G2). */
export function createDecryptStream(options: DecryptStreamOptions): DecryptStream {
  return new DecryptStream(options);
}

/**
 * One-shot AES-256-GCM for small values such as encrypted metadata columns: `1 | nonce (12) | ciphertext | tag`,
 * with `identity` as AAD (threat G2). The nonce is random, so stay well below 2^32 values per key (SP 800-38D 8.3).
 */
export function sealValue(key: Buffer, identity: string, plaintext: Buffer): Buffer {
  const nonce = randomBytes(GCM_NONCE_SIZE);
  const sealed = gcmSeal(key, nonce, identityBytes(identity), plaintext);
  return Buffer.concat([Buffer.of(VALUE_FORMAT), nonce, sealed], 1 + GCM_NONCE_SIZE + sealed.length);
}

/** Opens a value from `sealValue` (threats G1-G2); any tampering or a different identity is an `integrity_error`. */
export function openValue(key: Buffer, identity: string, sealed: Buffer): Buffer {
  if (sealed.length < VALUE_OVERHEAD) {
    throw new StrongroomError('integrity_error', 'sealed value is truncated');
  }
  if (sealed.readUInt8(0) !== VALUE_FORMAT) {
    throw new StrongroomError(
      'integrity_error',
      `sealed value has unsupported format ${sealed.readUInt8(0)}`,
    );
  }
  const nonce = sealed.subarray(1, 1 + GCM_NONCE_SIZE);
  return gcmOpen(key, nonce, identityBytes(identity), sealed.subarray(1 + GCM_NONCE_SIZE), 'sealed value');
}

/**
 * FIFO of input chunks that hands out exact-length pieces: zero-copy when one chunk covers the piece, else one
 * copy per piece, so tiny writes never make a segment cost a `Buffer.concat` per chunk.
 */
class ChunkQueue {
  #chunks: Buffer[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#length += chunk.length;
  }

  /** Removes and returns exactly `n` bytes; callers check `length` first. */
  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.#chunks[0];
    if (first !== undefined && first.length >= n) {
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      this.#length -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let used = 0;
    while (filled < n) {
      const chunk = this.#chunks[used];
      if (chunk === undefined) throw new RangeError('chunk queue underflow');
      const piece = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, piece);
      filled += piece;
      if (piece === chunk.length) used += 1;
      else this.#chunks[used] = chunk.subarray(piece);
    }
    this.#chunks.splice(0, used);
    this.#length -= n;
    return out;
  }
}

function plaintextLengthOf(index: number, count: number, plaintextSize: number, segmentSize: number): number {
  return index < count - 1 ? segmentSize : plaintextSize - (count - 1) * segmentSize;
}

function identityBytes(identity: string): Buffer {
  // An empty identity would bind nothing, letting any two such objects be swapped.
  if (identity.length === 0) {
    throw new StrongroomError(
      'invalid_request',
      'an object identity is required to bind ciphertext to its object',
    );
  }
  return Buffer.from(identity, 'utf8');
}

function requireSegmentSize(segmentSize: number, code: 'invalid_request' | 'integrity_error'): void {
  const ok =
    Number.isInteger(segmentSize) &&
    segmentSize >= MIN_SEGMENT_SIZE &&
    segmentSize <= MAX_SEGMENT_SIZE &&
    (segmentSize & (segmentSize - 1)) === 0;
  if (!ok) {
    throw new StrongroomError(
      code,
      `segment size ${segmentSize} is not a power of two between ${MIN_SEGMENT_SIZE} and ${MAX_SEGMENT_SIZE}`,
    );
  }
}

function requirePlaintextSize(plaintextSize: number): void {
  if (!Number.isSafeInteger(plaintextSize) || plaintextSize < 0) {
    throw new StrongroomError(
      'invalid_request',
      `plaintext size ${plaintextSize} is not a non-negative integer`,
    );
  }
}

function requireRange(plaintextSize: number, start: number, end: number): void {
  const ok =
    plaintextSize === 0
      ? start === 0 && end === -1
      : Number.isSafeInteger(start) &&
        Number.isSafeInteger(end) &&
        start >= 0 &&
        start <= end &&
        end < plaintextSize;
  if (!ok) {
    throw new StrongroomError(
      'invalid_request',
      `byte range ${start}-${end} is not within an object of ${plaintextSize} bytes`,
    );
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
