import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';

import { gcmOpen } from '../../src/crypto/aes-gcm.js';
import { hkdfSha256 } from '../../src/crypto/hkdf-sha256.js';
import { Keyring, parseMasterKey } from '../../src/crypto/keyring.js';
import {
  HEADER_SIZE,
  SegmentCipher,
  createEncryptStream,
  decodeHeader,
  openValue,
  sealValue,
} from '../../src/crypto/stream-aead.js';
import { flipBit, newKey, openBlob, sealBlob } from './stream-harness.js';

// SECURITY-TESTS G5: key material never appears in errors (message, details, cause, stack) or in what a logger
// would print for the objects that hold keys.

/** Every spelling of a key, and of each 8-byte slice of it, that could plausibly end up in text. */
function spellings(key: Buffer): string[] {
  const out = [
    key.toString('hex'),
    key.toString('base64'),
    key.toString('base64url'),
    key.toString('latin1'),
  ];
  for (let i = 0; i + 8 <= key.length; i += 8) out.push(key.subarray(i, i + 8).toString('hex'));
  return out;
}

function expectNoKeyMaterial(text: string, secrets: readonly Buffer[]): void {
  const haystack = text.toLowerCase();
  for (const secret of secrets) {
    for (const spelling of spellings(secret)) {
      expect(haystack.includes(spelling.toLowerCase()), 'key material found in text').toBe(false);
    }
  }
}

async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

/** What a structured logger might emit for an error: inspect output plus JSON of its details. */
function render(err: unknown): string {
  const details = (err as { details?: unknown }).details;
  return `${inspect(err, { depth: 10, showHidden: true })}\n${String((err as Error).stack)}\n${JSON.stringify(details ?? null)}`;
}

describe('key material stays out of errors and logs (G5)', () => {
  it('the leak detector itself finds a key spelled in hex, base64 or as an 8-byte slice', () => {
    const key = newKey();
    for (const text of [
      key.toString('hex').toUpperCase(),
      key.toString('base64'),
      `x${key.subarray(8, 16).toString('hex')}y`,
    ]) {
      expect(() => expectNoKeyMaterial(text, [key])).toThrow();
    }
  });

  it('errors from blobs, sealed values, wrapped keys and master keys never contain key bytes', async () => {
    const master = newKey();
    const record = Keyring.newKekRecord(master, 1, '2026-01-01T00:00:00.000Z');
    const kek = gcmOpen(
      master,
      record.wrappedKey.subarray(5, 17),
      Buffer.from('strongroom-kek-v1\u00001'),
      record.wrappedKey.subarray(17),
      'test',
    );
    const keyring = Keyring.create(master, [record]);
    const { dek, wrapped } = keyring.newDataKey('blob-1');
    const plaintext = randomBytes(10_000);
    const blob = await sealBlob(dek, 'blob-1', plaintext, 4096);
    const segmentKey = hkdfSha256(dek, decodeHeader(blob).salt, 'strongroom-blob-v1', 32);
    const secrets = [master, kek, dek, segmentKey];

    const errors = await Promise.all([
      caught(() => openBlob(dek, 'blob-1', plaintext.length, flipBit(blob, HEADER_SIZE + 5))),
      caught(() => openBlob(dek, 'blob-2', plaintext.length, blob)),
      caught(() => openBlob(dek, 'blob-1', plaintext.length, blob.subarray(0, blob.length - 20))),
      caught(() => openBlob(dek, 'blob-1', plaintext.length, flipBit(blob, 0))),
      caught(() => openValue(dek, 'other', sealValue(dek, 'blob-1', Buffer.from('{}')))),
      caught(() => keyring.unwrapDataKey('blob-2', wrapped)),
      caught(() => keyring.unwrapDataKey('blob-1', flipBit(wrapped, 40))),
      caught(() => Keyring.create(newKey(), [record])),
      caught(() => Keyring.create(master, [{ ...record, wrappedKey: flipBit(record.wrappedKey, 30) }])),
      caught(() => parseMasterKey(master.toString('hex').slice(0, 63))),
      caught(() => parseMasterKey(`${master.toString('base64')}x`)),
      caught(() => new SegmentCipher(dek.subarray(0, 31), decodeHeader(blob), 'blob-1', 1)),
      caught(() => sealValue(Buffer.concat([master, Buffer.of(1)]), 'x', Buffer.alloc(1))),
    ]);
    for (const err of errors) {
      expect(err).toHaveProperty('name', 'StrongroomError');
      expectNoKeyMaterial(render(err), [...secrets, master.subarray(0, 31)]);
    }
  });

  it('logging a keyring, a segment cipher or an encrypt stream shows no key bytes', () => {
    const master = newKey();
    const keyring = Keyring.create(master, [Keyring.newKekRecord(master, 1, '2026-01-01T00:00:00.000Z')]);
    const { dek } = keyring.newDataKey('blob-1');
    const header = decodeHeader(
      Buffer.concat([Buffer.from('SRB1'), Buffer.of(1, 0, 0, 16, 0), randomBytes(23)]),
    );
    const cipher = new SegmentCipher(dek, header, 'blob-1', 100);
    const stream = createEncryptStream({ dek, header, identity: 'blob-1', plaintextSize: 100 });
    const segmentKey = hkdfSha256(dek, header.salt, 'strongroom-blob-v1', 32);
    for (const holder of [keyring, cipher, stream]) {
      const text = `${inspect(holder, { depth: 10, showHidden: true })}\n${JSON.stringify(holder)}`;
      expectNoKeyMaterial(text, [master, dek, segmentKey]);
    }
    stream.destroy();
  });
});
