import { Readable, pipeline } from 'node:stream';
import type { StoredFile } from '../core/domain.js';
import { StrongroomError } from '../core/errors.js';
import { HEADER_SIZE, createDecryptStream, decodeHeader, planRange } from '../crypto/stream-aead.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { MetadataReader } from '../storage/metadata-store.js';
import type { KeyService } from './key-service.js';
import { readAll } from './read-all.js';

/** An inclusive byte range within a file. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Reads a file's plaintext out of its (possibly shared) encrypted blob, decrypting only the segments the range
 * touches. Every segment is authenticated before a byte of it is released (G1, G2).
 */
export class BlobReader {
  constructor(
    private readonly store: MetadataReader,
    private readonly blobs: BlobStore,
    private readonly keys: KeyService,
  ) {}

  async open(file: StoredFile, range: ByteRange | null): Promise<Readable> {
    if (file.size === 0) return Readable.from([]);
    const blob = await this.store.getBlob(file.blobId);
    if (!blob || blob.state !== 'committed')
      throw new StrongroomError('integrity_error', 'the object behind this file is missing');
    const dek = await this.keys.unwrap(blob.dataKeyId);
    const header = decodeHeader(await readAll(await this.blobs.read(blob.id, 0, HEADER_SIZE - 1)));
    const start = file.offset + (range?.start ?? 0);
    const end = file.offset + (range?.end ?? file.size - 1);
    const plan = planRange(blob.size, header.segmentSize, start, end);
    const source = await this.blobs.read(blob.id, plan.cipherStart, plan.cipherEnd);
    const plain = createDecryptStream({
      dek,
      header,
      identity: blob.id,
      plaintextSize: blob.size,
      start,
      end,
    });
    pipeline(source, plain, () => undefined);
    return plain;
  }
}
