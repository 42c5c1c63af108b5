import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { HEADER_SIZE, TAG_SIZE } from '../../src/crypto/stream-aead.js';
import { expectCode, flipBit, newKey, openBlob, sealBlob } from './stream-harness.js';

// SECURITY-TESTS G1 (flipped bits), G2 (swapped objects) and the STREAM truncation/reordering guarantees.

const SEG = 4096;
const SEALED_SEG = SEG + TAG_SIZE;

/** Byte range [start, end) of sealed segment `index` within a whole blob. */
function segmentBytes(blob: Buffer, index: number): Buffer {
  const start = HEADER_SIZE + index * SEALED_SEG;
  return blob.subarray(start, Math.min(start + SEALED_SEG, blob.length));
}

/**
 * Every header byte, every tag byte, the first and last bytes of each segment's ciphertext and a stride through
 * the rest: every field of the format, at a fraction of the cost of all ~8000 offsets.
 */
function probeOffsets(blobLength: number): number[] {
  const offsets = new Set<number>();
  for (let i = 0; i < HEADER_SIZE; i++) offsets.add(i);
  for (let start = HEADER_SIZE; start < blobLength; start += SEALED_SEG) {
    const tagStart = Math.min(start + SEALED_SEG, blobLength) - TAG_SIZE;
    for (let i = start; i < tagStart; i += 97) offsets.add(i);
    for (let i = 0; i < 4; i++) offsets.add(start + i).add(tagStart - 1 - i);
    for (let i = tagStart; i < tagStart + TAG_SIZE; i++) offsets.add(i);
  }
  return [...offsets].filter((offset) => offset < blobLength);
}

async function threeAndAHalfSegments(identity = 'object-a', dek = newKey()) {
  const plaintext = randomBytes(3 * SEG + SEG / 2);
  const blob = await sealBlob(dek, identity, plaintext, SEG);
  return { dek, identity, plaintext, blob };
}

describe('tampering with one blob (G1)', () => {
  it('one flipped bit anywhere in the header, any segment or any tag fails with integrity_error', async () => {
    const dek = newKey();
    const plaintext = randomBytes(2 * SEG + 100);
    const blob = await sealBlob(dek, 'object-a', plaintext, SEG);
    expect((await openBlob(dek, 'object-a', plaintext.length, blob)).equals(plaintext)).toBe(true);
    for (const offset of probeOffsets(blob.length)) {
      const tampered = flipBit(blob, offset, offset % 8);
      await expectCode(
        openBlob(dek, 'object-a', plaintext.length, tampered, [blob.length]),
        'integrity_error',
      );
    }
  });

  it('truncation at a segment boundary fails while the declared size is unchanged', async () => {
    const { dek, identity, plaintext, blob } = await threeAndAHalfSegments();
    for (let keep = 0; keep < 4; keep++) {
      const cut = blob.subarray(0, HEADER_SIZE + keep * SEALED_SEG);
      await expectCode(openBlob(dek, identity, plaintext.length, cut), 'integrity_error');
    }
  });

  it('truncation at a segment boundary fails even when the declared size is cut to match (last-segment flag)', async () => {
    const { dek, identity, blob } = await threeAndAHalfSegments();
    for (let keep = 1; keep < 4; keep++) {
      const cut = blob.subarray(0, HEADER_SIZE + keep * SEALED_SEG);
      await expectCode(openBlob(dek, identity, keep * SEG, cut), 'integrity_error');
    }
  });

  it('dropping the last segment fails', async () => {
    const { dek, identity, plaintext, blob } = await threeAndAHalfSegments();
    const withoutLast = blob.subarray(0, HEADER_SIZE + 3 * SEALED_SEG);
    await expectCode(openBlob(dek, identity, plaintext.length, withoutLast), 'integrity_error');
    await expectCode(openBlob(dek, identity, 3 * SEG, withoutLast), 'integrity_error');
  });

  it('cutting bytes inside a segment fails', async () => {
    const { dek, identity, plaintext, blob } = await threeAndAHalfSegments();
    await expectCode(
      openBlob(dek, identity, plaintext.length, blob.subarray(0, blob.length - 1)),
      'integrity_error',
    );
    await expectCode(
      openBlob(dek, identity, plaintext.length, blob.subarray(0, HEADER_SIZE + 10)),
      'integrity_error',
    );
  });

  it('an appended byte or an appended copy of a segment fails', async () => {
    const { dek, identity, plaintext, blob } = await threeAndAHalfSegments();
    await expectCode(
      openBlob(dek, identity, plaintext.length, Buffer.concat([blob, Buffer.of(0)])),
      'integrity_error',
    );
    const extra = Buffer.concat([blob, segmentBytes(blob, 3)]);
    await expectCode(openBlob(dek, identity, plaintext.length, extra), 'integrity_error');
  });

  it('reordering two segments fails', async () => {
    const { dek, identity, plaintext, blob } = await threeAndAHalfSegments();
    const swapped = Buffer.concat([
      blob.subarray(0, HEADER_SIZE),
      segmentBytes(blob, 1),
      segmentBytes(blob, 0),
      segmentBytes(blob, 2),
      segmentBytes(blob, 3),
    ]);
    expect(swapped).toHaveLength(blob.length);
    await expectCode(openBlob(dek, identity, plaintext.length, swapped), 'integrity_error');
  });

  it('an empty object without its final (empty) segment fails', async () => {
    const dek = newKey();
    const blob = await sealBlob(dek, 'empty', Buffer.alloc(0), SEG);
    expect(blob).toHaveLength(HEADER_SIZE + TAG_SIZE);
    expect(await openBlob(dek, 'empty', 0, blob)).toHaveLength(0);
    await expectCode(openBlob(dek, 'empty', 0, blob.subarray(0, HEADER_SIZE)), 'integrity_error');
  });
});

describe('swapping objects (G2)', () => {
  it("swapping two objects' ciphertexts under the same data key fails for both (identity is bound)", async () => {
    const dek = newKey();
    const a = await threeAndAHalfSegments('object-a', dek);
    const b = await threeAndAHalfSegments('object-b', dek);
    await expectCode(openBlob(dek, 'object-b', b.plaintext.length, a.blob), 'integrity_error');
    await expectCode(openBlob(dek, 'object-a', a.plaintext.length, b.blob), 'integrity_error');
  });

  it("swapping two objects' ciphertexts with different data keys fails for both", async () => {
    const a = await threeAndAHalfSegments('object-a');
    const b = await threeAndAHalfSegments('object-b');
    await expectCode(openBlob(b.dek, 'object-b', b.plaintext.length, a.blob), 'integrity_error');
    await expectCode(openBlob(a.dek, 'object-a', a.plaintext.length, b.blob), 'integrity_error');
  });

  it('reading an object with its own key but under another identity fails', async () => {
    const a = await threeAndAHalfSegments('object-a');
    await expectCode(openBlob(a.dek, 'object-a ', a.plaintext.length, a.blob), 'integrity_error');
  });

  it('a segment spliced in from another object under the same data key fails', async () => {
    const dek = newKey();
    const a = await threeAndAHalfSegments('object-a', dek);
    const b = await threeAndAHalfSegments('object-a', dek);
    const spliced = Buffer.concat([
      a.blob.subarray(0, HEADER_SIZE),
      segmentBytes(a.blob, 0),
      segmentBytes(b.blob, 1),
      segmentBytes(a.blob, 2),
      segmentBytes(a.blob, 3),
    ]);
    await expectCode(openBlob(dek, 'object-a', a.plaintext.length, spliced), 'integrity_error');
  });

  it("another object's header in front of this object's segments fails", async () => {
    const dek = newKey();
    const a = await threeAndAHalfSegments('object-a', dek);
    const b = await threeAndAHalfSegments('object-a', dek);
    const mixed = Buffer.concat([b.blob.subarray(0, HEADER_SIZE), a.blob.subarray(HEADER_SIZE)]);
    await expectCode(openBlob(dek, 'object-a', a.plaintext.length, mixed), 'integrity_error');
  });
});
