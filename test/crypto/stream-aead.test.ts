import { randomBytes, randomInt } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';

import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  SegmentCipher,
  TAG_SIZE,
  ciphertextOffsetOfSegment,
  ciphertextSize,
  createDecryptStream,
  createEncryptStream,
  decodeHeader,
  encodeHeader,
  newBlobHeader,
  openValue,
  planRange,
  sealValue,
  segmentCount,
} from '../../src/crypto/stream-aead.js';
import {
  ODD_CHUNKS,
  expectCode,
  expectThrowsCode,
  flipBit,
  newKey,
  openBlob,
  readRange,
  run,
  sealBlob,
} from './stream-harness.js';

const SMALL = 4096;

afterEach(() => {
  vi.restoreAllMocks();
});

describe('blob header', () => {
  it('is 32 bytes: SRB1, version 1, segment size, salt, nonce prefix', () => {
    const header = newBlobHeader();
    const bytes = encodeHeader(header);
    expect(HEADER_SIZE).toBe(32);
    expect(bytes).toHaveLength(HEADER_SIZE);
    expect(bytes.subarray(0, 4).toString('ascii')).toBe('SRB1');
    expect(bytes.readUInt8(4)).toBe(1);
    expect(bytes.readUInt32BE(5)).toBe(SEGMENT_SIZE);
    expect(bytes.subarray(9, 25).equals(header.salt)).toBe(true);
    expect(bytes.subarray(25, 32).equals(header.noncePrefix)).toBe(true);
  });

  it('decodes back to the same header, reading only the first 32 bytes', () => {
    const header = newBlobHeader(SMALL);
    const decoded = decodeHeader(Buffer.concat([encodeHeader(header), randomBytes(10)]));
    expect(decoded.segmentSize).toBe(SMALL);
    expect(encodeHeader(decoded).equals(encodeHeader(header))).toBe(true);
  });

  it('gets a fresh salt and nonce prefix every time', () => {
    const salts = new Set<string>();
    const prefixes = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const header = newBlobHeader();
      salts.add(header.salt.toString('hex'));
      prefixes.add(header.noncePrefix.toString('hex'));
    }
    expect(salts.size).toBe(1000);
    expect(prefixes.size).toBe(1000);
  });

  it('rejects a truncated header, wrong magic, an unknown version and bad segment sizes as integrity errors', () => {
    const good = encodeHeader(newBlobHeader());
    expectThrowsCode(() => decodeHeader(good.subarray(0, 31)), 'integrity_error');
    expectThrowsCode(() => decodeHeader(flipBit(good, 0)), 'integrity_error');
    expectThrowsCode(() => decodeHeader(flipBit(good, 4, 1)), 'integrity_error');
    for (const size of [0, 2048, 4097, 3 * 4096, 32 * 1024 * 1024, 0xffffffff]) {
      const bad = Buffer.from(good);
      bad.writeUInt32BE(size, 5);
      expectThrowsCode(() => decodeHeader(bad), 'integrity_error');
    }
  });

  it('accepts every power-of-two segment size from 4 KiB to 16 MiB and nothing else', () => {
    for (let size = 4096; size <= 16 * 1024 * 1024; size *= 2) {
      expect(newBlobHeader(size).segmentSize).toBe(size);
    }
    for (const size of [2048, 8 * 1024 * 1024 + 1, 32 * 1024 * 1024, 65536.5, -65536]) {
      expectThrowsCode(() => newBlobHeader(size), 'invalid_request');
    }
  });
});

describe('blob sizes', () => {
  it('an object has max(1, ceil(size / segment size)) segments', () => {
    expect(segmentCount(0, SEGMENT_SIZE)).toBe(1);
    expect(segmentCount(1, SEGMENT_SIZE)).toBe(1);
    expect(segmentCount(SEGMENT_SIZE, SEGMENT_SIZE)).toBe(1);
    expect(segmentCount(SEGMENT_SIZE + 1, SEGMENT_SIZE)).toBe(2);
    expect(segmentCount(3 * SEGMENT_SIZE, SEGMENT_SIZE)).toBe(3);
  });

  it('refuses objects of more than 2^32 segments, whose index would wrap the nonce', () => {
    expect(segmentCount(2 ** 32 * SMALL, SMALL)).toBe(2 ** 32);
    expectThrowsCode(() => segmentCount(2 ** 32 * SMALL + 1, SMALL), 'invalid_request');
    expectThrowsCode(() => segmentCount(-1, SMALL), 'invalid_request');
    expectThrowsCode(() => segmentCount(1.5, SMALL), 'invalid_request');
  });

  it('ciphertext size is header + plaintext + one tag per segment, and segment offsets follow', () => {
    expect(ciphertextSize(0, SEGMENT_SIZE)).toBe(HEADER_SIZE + TAG_SIZE);
    expect(ciphertextSize(SEGMENT_SIZE + 1, SEGMENT_SIZE)).toBe(
      HEADER_SIZE + SEGMENT_SIZE + 1 + 2 * TAG_SIZE,
    );
    expect(ciphertextOffsetOfSegment(0, SEGMENT_SIZE)).toBe(HEADER_SIZE);
    expect(ciphertextOffsetOfSegment(2, SEGMENT_SIZE)).toBe(HEADER_SIZE + 2 * (SEGMENT_SIZE + TAG_SIZE));
  });
});

describe('streaming round trips', () => {
  const sizes = [
    0,
    1,
    65535,
    65536,
    65537,
    3 * 65536,
    randomInt(2, 65535),
    randomInt(65538, 4 * 65536),
    randomInt(4 * 65536, 6 * 65536),
  ];

  for (const size of sizes) {
    it(`a ${size}-byte object streamed in odd chunks decrypts to itself`, async () => {
      const dek = newKey();
      const plaintext = randomBytes(size);
      const blob = await sealBlob(dek, 'blob-1', plaintext);
      expect(blob).toHaveLength(ciphertextSize(size, SEGMENT_SIZE));
      const opened = await openBlob(dek, 'blob-1', size, blob);
      expect(opened.equals(plaintext)).toBe(true);
    });
  }

  it('round-trips with a non-default segment size', async () => {
    const dek = newKey();
    const plaintext = randomBytes(5 * SMALL + 17);
    const blob = await sealBlob(dek, 'blob-small', plaintext, SMALL, [1, 4095, 4097, 3]);
    expect(blob).toHaveLength(ciphertextSize(plaintext.length, SMALL));
    expect((await openBlob(dek, 'blob-small', plaintext.length, blob, [5, 4111])).equals(plaintext)).toBe(
      true,
    );
  });

  it('the encrypt stream emits only sealed segments, byte-identical to sealing each segment directly', async () => {
    const dek = newKey();
    const header = newBlobHeader(SMALL);
    const plaintext = randomBytes(2 * SMALL + 5);
    const stream = createEncryptStream({ dek, header, identity: 'blob-2', plaintextSize: plaintext.length });
    const out = await run(stream, plaintext);
    const cipher = new SegmentCipher(dek, header, 'blob-2', plaintext.length);
    const expected = Buffer.concat([
      cipher.encryptSegment(0, plaintext.subarray(0, SMALL)),
      cipher.encryptSegment(1, plaintext.subarray(SMALL, 2 * SMALL)),
      cipher.encryptSegment(2, plaintext.subarray(2 * SMALL)),
    ]);
    expect(out.equals(expected)).toBe(true);
    expect(stream.complete).toBe(true);
    expect(stream.sealedPlaintextBytes).toBe(plaintext.length);
    expect(stream.nextSegment).toBe(3);
  });

  it('input longer than the declared size is refused', async () => {
    const header = newBlobHeader(SMALL);
    const stream = createEncryptStream({ dek: newKey(), header, identity: 'b', plaintextSize: 100 });
    await expectCode(run(stream, randomBytes(101)), 'invalid_request');
  });

  it('input shorter than the declared size is refused', async () => {
    const header = newBlobHeader(SMALL);
    const stream = createEncryptStream({ dek: newKey(), header, identity: 'b', plaintextSize: 3 * SMALL });
    await expectCode(run(stream, randomBytes(2 * SMALL)), 'invalid_request');
  });

  it('with allowPartial, an early end keeps whole segments, drops the tail, and the upload resumes from nextSegment', async () => {
    const dek = newKey();
    const header = newBlobHeader(SMALL);
    const plaintext = randomBytes(4 * SMALL - 9);
    const options = {
      dek,
      header,
      identity: 'upload-1',
      plaintextSize: plaintext.length,
      allowPartial: true,
    };

    const first = createEncryptStream(options);
    const part1 = await run(first, plaintext.subarray(0, 2 * SMALL + 1000));
    expect(part1).toHaveLength(2 * (SMALL + TAG_SIZE));
    expect(first.complete).toBe(false);
    expect(first.nextSegment).toBe(2);
    expect(first.sealedPlaintextBytes).toBe(2 * SMALL);

    const second = createEncryptStream({ ...options, startSegment: first.nextSegment });
    const part2 = await run(second, plaintext.subarray(first.nextSegment * SMALL));
    expect(second.complete).toBe(true);
    expect(second.sealedPlaintextBytes).toBe(plaintext.length - 2 * SMALL);

    const blob = Buffer.concat([encodeHeader(header), part1, part2]);
    expect((await openBlob(dek, 'upload-1', plaintext.length, blob)).equals(plaintext)).toBe(true);
  });

  it('a start segment outside the object is refused', () => {
    const header = newBlobHeader(SMALL);
    for (const startSegment of [-1, 3, 1.5]) {
      expectThrowsCode(
        () =>
          createEncryptStream({
            dek: newKey(),
            header,
            identity: 'b',
            plaintextSize: 2 * SMALL + 1,
            startSegment,
          }),
        'invalid_request',
      );
    }
  });

  it('segments of the wrong length are refused by the segment cipher', () => {
    const cipher = new SegmentCipher(newKey(), newBlobHeader(SMALL), 'b', SMALL + 10);
    expectThrowsCode(() => cipher.encryptSegment(0, Buffer.alloc(SMALL - 1)), 'invalid_request');
    expectThrowsCode(() => cipher.encryptSegment(1, Buffer.alloc(11)), 'invalid_request');
    expectThrowsCode(() => cipher.encryptSegment(2, Buffer.alloc(0)), 'invalid_request');
    expectThrowsCode(() => cipher.decryptSegment(1, Buffer.alloc(10 + TAG_SIZE + 1)), 'integrity_error');
  });

  it('a data key that is not 32 bytes and an empty identity are refused', () => {
    expectThrowsCode(() => new SegmentCipher(randomBytes(16), newBlobHeader(), 'b', 1), 'invalid_request');
    expectThrowsCode(() => new SegmentCipher(newKey(), newBlobHeader(), '', 1), 'invalid_request');
  });
});

describe('range reads', () => {
  const size = 3 * SMALL + 123;

  it('every range between interesting offsets equals the matching slice of the plaintext', async () => {
    const dek = newKey();
    const plaintext = randomBytes(size);
    const blob = await sealBlob(dek, 'ranged', plaintext, SMALL);
    const points = [
      0,
      1,
      SMALL - 1,
      SMALL,
      SMALL + 1,
      2 * SMALL - 1,
      2 * SMALL,
      3 * SMALL - 1,
      3 * SMALL,
      size - 2,
      size - 1,
    ];
    const pairs: [number, number][] = [];
    for (const start of points) for (const end of points) if (start <= end) pairs.push([start, end]);
    for (let i = 0; i < 40; i++) {
      const a = randomInt(size);
      const b = randomInt(size);
      pairs.push([Math.min(a, b), Math.max(a, b)]);
    }
    for (const [start, end] of pairs) {
      const { plaintext: got } = await readRange(dek, 'ranged', size, blob, start, end);
      expect(got.equals(plaintext.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
    }
  });

  it('a range inside one segment reads and decrypts only that segment', async () => {
    const dek = newKey();
    const plaintext = randomBytes(size);
    const blob = await sealBlob(dek, 'ranged', plaintext, SMALL);
    const decrypt = vi.spyOn(SegmentCipher.prototype, 'decryptSegment');
    const { plaintext: got, fed } = await readRange(dek, 'ranged', size, blob, SMALL + 10, 2 * SMALL - 10);
    expect(got.equals(plaintext.subarray(SMALL + 10, 2 * SMALL - 9))).toBe(true);
    expect(fed).toBe(SMALL + TAG_SIZE);
    expect(decrypt.mock.calls.map((call) => call[0])).toEqual([1]);
  });

  it('a range across a boundary reads exactly the two segments it touches', async () => {
    const dek = newKey();
    const blob = await sealBlob(dek, 'ranged', randomBytes(size), SMALL);
    const decrypt = vi.spyOn(SegmentCipher.prototype, 'decryptSegment');
    const { fed } = await readRange(dek, 'ranged', size, blob, 3 * SMALL - 1, 3 * SMALL);
    expect(fed).toBe(SMALL + TAG_SIZE + 123 + TAG_SIZE);
    expect(decrypt.mock.calls.map((call) => call[0])).toEqual([2, 3]);
  });

  it('planRange names the segments, inclusive file offsets and skip for a range', () => {
    expect(planRange(size, SMALL, SMALL + 10, 2 * SMALL + 5)).toEqual({
      firstSegment: 1,
      lastSegment: 2,
      cipherStart: HEADER_SIZE + (SMALL + TAG_SIZE),
      cipherEnd: HEADER_SIZE + 3 * (SMALL + TAG_SIZE) - 1,
      skip: 10,
    });
    expect(planRange(size, SMALL, size - 1, size - 1)).toEqual({
      firstSegment: 3,
      lastSegment: 3,
      cipherStart: HEADER_SIZE + 3 * (SMALL + TAG_SIZE),
      cipherEnd: ciphertextSize(size, SMALL) - 1,
      skip: 122,
    });
    expect(planRange(0, SMALL, 0, -1)).toEqual({
      firstSegment: 0,
      lastSegment: 0,
      cipherStart: HEADER_SIZE,
      cipherEnd: HEADER_SIZE + TAG_SIZE - 1,
      skip: 0,
    });
  });

  it('ranges outside the object, reversed or fractional are refused', () => {
    for (const [start, end] of [
      [-1, 5],
      [5, 4],
      [0, size],
      [size, size],
      [0.5, 3],
    ] as const) {
      expectThrowsCode(() => planRange(size, SMALL, start, end), 'invalid_request');
    }
    expectThrowsCode(() => planRange(0, SMALL, 0, 0), 'invalid_request');
  });

  it('a range read fed more ciphertext than its plan fails', async () => {
    const dek = newKey();
    const blob = await sealBlob(dek, 'ranged', randomBytes(size), SMALL);
    const header = decodeHeader(blob);
    const plan = planRange(size, SMALL, 0, 10);
    const stream = createDecryptStream({
      dek,
      header,
      identity: 'ranged',
      plaintextSize: size,
      start: 0,
      end: 10,
    });
    await expectCode(
      run(stream, blob.subarray(plan.cipherStart, plan.cipherEnd + 2), ODD_CHUNKS),
      'integrity_error',
    );
  });
});

describe('sealed values', () => {
  it('round-trip, including the empty value', () => {
    const key = newKey();
    for (const value of [Buffer.alloc(0), Buffer.from('{"a":1}'), randomBytes(5000)]) {
      const sealed = sealValue(key, 'version-1', value);
      expect(sealed).toHaveLength(1 + 12 + value.length + 16);
      expect(sealed.readUInt8(0)).toBe(1);
      expect(openValue(key, 'version-1', sealed).equals(value)).toBe(true);
    }
  });

  it('use a fresh nonce each time', () => {
    const key = newKey();
    const nonces = new Set<string>();
    for (let i = 0; i < 1000; i++)
      nonces.add(sealValue(key, 'v', Buffer.from('x')).subarray(1, 13).toString('hex'));
    expect(nonces.size).toBe(1000);
  });

  it('fail under another identity, another key, a flipped bit, truncation or an unknown format', () => {
    const key = newKey();
    const sealed = sealValue(key, 'version-1', Buffer.from('metadata'));
    expectThrowsCode(() => openValue(key, 'version-2', sealed), 'integrity_error');
    expectThrowsCode(() => openValue(newKey(), 'version-1', sealed), 'integrity_error');
    for (let i = 0; i < sealed.length; i++) {
      expectThrowsCode(() => openValue(key, 'version-1', flipBit(sealed, i, i % 8)), 'integrity_error');
    }
    expectThrowsCode(() => openValue(key, 'version-1', sealed.subarray(0, 28)), 'integrity_error');
    expectThrowsCode(
      () => openValue(key, 'version-1', sealed.subarray(0, sealed.length - 1)),
      'integrity_error',
    );
  });
});
