import type { FileDigest, UploadPart, UploadSession } from '../core/domain.js';
import type { VersionId } from '../core/ids.js';
import { StrongroomError } from '../core/errors.js';
import {
  HEADER_SIZE,
  SEGMENT_SIZE,
  SegmentCipher,
  TAG_SIZE,
  createDecryptStream,
  decodeHeader,
  encodeHeader,
  newBlobHeader,
  planRange,
  type BlobHeader,
} from '../crypto/stream-aead.js';
import type { BlobStore, StagingWriter } from '../storage/blob-store.js';
import type { MetadataStore } from '../storage/metadata-store.js';
import { FileHashCursor, type PartFile } from './file-hash-cursor.js';
import type { KeyService } from './key-service.js';
import { readAll } from './read-all.js';

export interface ChunkResult {
  readonly index: number;
  readonly size: number;
  readonly received: number;
  readonly complete: boolean;
}

/**
 * Turns an incoming chunk of a part into sealed 64 KiB segments in the staging object. Only whole segments are
 * ever kept, so an interrupted chunk leaves a durable prefix the client can resume from, and every file is
 * hashed from the bytes actually sealed (never from what the client says it sent).
 */
export class PartReceiver {
  private readonly inFlight = new Set<string>();
  /** Hash state at each part's durable offset, so the common path never re-reads what it just wrote. */
  private readonly cursors = new Map<string, FileHashCursor>();

  constructor(
    private readonly store: MetadataStore,
    private readonly blobs: BlobStore,
    private readonly keys: KeyService,
  ) {}

  async receive(
    session: UploadSession,
    part: UploadPart,
    offset: number,
    length: number,
    body: AsyncIterable<Buffer>,
  ): Promise<ChunkResult> {
    const key = `${session.id}:${part.index}`;
    if (this.inFlight.has(key)) {
      throw new StrongroomError('upload_offset_mismatch', 'another chunk of this part is being received', {
        details: { received: part.received },
      });
    }
    this.checkChunk(part, offset, length);
    if (part.size > 0 && offset === part.size)
      return { index: part.index, size: part.size, received: part.size, complete: true };
    this.inFlight.add(key);
    try {
      return await this.receiveLocked(key, session, part, offset, length, body);
    } finally {
      this.inFlight.delete(key);
    }
  }

  private checkChunk(part: UploadPart, offset: number, length: number): void {
    if (offset !== part.received) {
      throw new StrongroomError(
        'upload_offset_mismatch',
        `the chunk starts at ${offset} but the server holds ${part.received} bytes of part ${part.index}`,
        { details: { received: part.received } },
      );
    }
    if (offset + length > part.size) {
      throw new StrongroomError(
        'payload_too_large',
        `the chunk runs past the end of part ${part.index} (${part.size} bytes)`,
        {
          details: { received: part.received, size: part.size },
        },
      );
    }
    if (offset + length < part.size && length % SEGMENT_SIZE !== 0) {
      throw new StrongroomError(
        'chunk_misaligned',
        `a chunk that does not finish its part must be a multiple of ${SEGMENT_SIZE} bytes`,
      );
    }
  }

  private async receiveLocked(
    key: string,
    session: UploadSession,
    part: UploadPart,
    offset: number,
    length: number,
    body: AsyncIterable<Buffer>,
  ): Promise<ChunkResult> {
    if (offset > 0) await this.checkStagedLength(key, part, offset);
    const { cipher, header, identity, dek } = await this.cipherFor(part, offset);
    const files = await this.partFiles(part);
    const cached = this.cursors.get(key);
    const cursor =
      cached?.offset === offset
        ? cached.clone()
        : await this.rebuildCursor(part, files, offset, { dek, header, identity });
    const writer = await this.blobs.openStaging(
      part.blobId,
      offset === 0 ? 0 : segmentOffset(offset / SEGMENT_SIZE),
    );
    if (offset === 0) await writer.write(encodeHeader(header));

    const end = offset + length;
    const out = new BatchedWriter(writer, offset);
    let sealed = offset;
    const seal = async (pieces: readonly Buffer[], length: number) => {
      for (const piece of pieces) cursor.update(piece);
      const sealedParts = cipher.encryptSegmentParts(sealed / SEGMENT_SIZE, pieces);
      sealed += length;
      await out.add(sealedParts, length);
    };

    let bodyError: unknown;
    try {
      const pending = new PieceQueue();
      const iterator = body[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await iterator.next();
        } catch (err) {
          bodyError = err;
          break;
        }
        if (next.done) break;
        const chunk = next.value;
        if (sealed + pending.length + chunk.length > end) {
          throw new StrongroomError('size_mismatch', 'the body is longer than its Content-Length');
        }
        pending.push(chunk);
        while (pending.length >= SEGMENT_SIZE) await seal(pending.take(SEGMENT_SIZE), SEGMENT_SIZE);
      }
      if (bodyError === undefined) {
        if (sealed + pending.length !== end)
          bodyError = new Error('the body ended before its Content-Length');
        else if (end === part.size && (pending.length > 0 || part.size === 0)) {
          const rest = pending.length;
          await seal(pending.take(rest), rest);
        }
      }
      await out.drain();
    } catch (err) {
      await out.settle();
      await writer.abort();
      this.cursors.delete(key);
      throw err;
    }

    const received = await this.persist(writer, part, out.written, session.versionId, cursor.takeCompleted());
    if (received === part.size) this.cursors.delete(key);
    else this.cursors.set(key, cursor);
    if (bodyError !== undefined) {
      throw new StrongroomError(
        'upload_aborted',
        `the chunk was interrupted; ${received} bytes of part ${part.index} are durable`,
        {
          details: { received },
          cause: bodyError,
        },
      );
    }
    return { index: part.index, size: part.size, received, complete: received === part.size };
  }

  /** fsync, then record progress: never the other way round (N1, N6). */
  private async persist(
    writer: StagingWriter,
    part: UploadPart,
    received: number,
    versionId: VersionId,
    digests: readonly FileDigest[],
  ): Promise<number> {
    try {
      await writer.commit();
    } catch (err) {
      await writer.abort();
      this.cursors.delete(`${part.uploadId}:${part.index}`);
      throw err;
    }
    if (received > part.received || digests.length > 0) {
      await this.store.transaction(async (tx) => {
        await tx.setPartReceived(part.uploadId, part.index, received);
        // The digests of files whose last byte is now durable, for the comparison at commit.
        if (digests.length > 0) await tx.setComputedDigests(versionId, digests);
      });
    }
    return received;
  }

  /**
   * Resuming re-seals segments from the durable offset on, under the same key and nonces. If the staging object
   * holds anything beyond that offset (a crash or failed fsync between writing and recording), those nonces may
   * already have sealed other bytes; the part restarts from 0 under a fresh header (new salt, new key) instead,
   * so no (key, nonce) pair ever seals two different plaintexts (DESIGN.md section 4, G3).
   */
  private async checkStagedLength(key: string, part: UploadPart, offset: number): Promise<void> {
    const staged = await this.blobs.stagingSize(part.blobId);
    if (staged === segmentOffset(offset / SEGMENT_SIZE)) return;
    this.cursors.delete(key);
    await this.store.transaction((tx) => tx.restartPart(part.uploadId, part.index));
    throw new StrongroomError(
      'upload_offset_mismatch',
      `the stored bytes of part ${part.index} do not match its durable offset; send the part again from 0`,
      { details: { received: 0 } },
    );
  }

  private async cipherFor(part: UploadPart, offset: number) {
    const blob = await this.store.getBlob(part.blobId);
    if (!blob) throw new StrongroomError('upload_not_found', 'the upload no longer exists');
    const dek = await this.keys.unwrap(blob.dataKeyId);
    const header: BlobHeader = offset === 0 ? newBlobHeader(SEGMENT_SIZE) : await this.readStagedHeader(part);
    const identity = blob.id;
    return { cipher: new SegmentCipher(dek, header, identity, part.size), header, identity, dek };
  }

  private async readStagedHeader(part: UploadPart): Promise<BlobHeader> {
    const header = decodeHeader(await readAll(await this.blobs.readStaging(part.blobId, 0, HEADER_SIZE - 1)));
    if (header.segmentSize !== SEGMENT_SIZE)
      throw new StrongroomError('integrity_error', 'a staged object has an unexpected segment size');
    return header;
  }

  private async partFiles(part: UploadPart): Promise<PartFile[]> {
    const session = await this.store.getUpload(part.uploadId);
    if (!session) throw new StrongroomError('upload_not_found', 'the upload no longer exists');
    const files = await this.store.listFiles(session.versionId);
    return files
      .filter((f) => f.blobId === part.blobId)
      .sort((a, b) => a.offset - b.offset)
      .map((f) => ({ path: f.path, size: f.size, sha256: f.sha256, start: f.offset }));
  }

  /** After a restart or on another instance: re-read the current file's stored prefix to recover its hash. */
  private async rebuildCursor(
    part: UploadPart,
    files: readonly PartFile[],
    offset: number,
    crypto: { dek: Buffer; header: BlobHeader; identity: string },
  ): Promise<FileHashCursor> {
    if (offset === 0) return FileHashCursor.atStart(files);
    const { cursor, replayFrom } = FileHashCursor.resumeAt(files, offset);
    if (replayFrom < offset) {
      const plan = planRange(part.size, SEGMENT_SIZE, replayFrom, offset - 1);
      const source = await this.blobs.readStaging(part.blobId, plan.cipherStart, plan.cipherEnd);
      const plain = source.pipe(
        createDecryptStream({ ...crypto, plaintextSize: part.size, start: replayFrom, end: offset - 1 }),
      );
      source.on('error', (err) => plain.destroy(err));
      for await (const chunk of plain) cursor.update(chunk as Buffer);
    }
    return cursor;
  }

  /** An empty part still gets a sealed object (one empty final segment), so truncation stays detectable. */
  async sealEmpty(part: UploadPart): Promise<void> {
    if ((await this.blobs.size(part.blobId)) !== undefined) return;
    if ((await this.blobs.stagingSize(part.blobId)) === ciphertextBytes(0)) return;
    const { cipher, header } = await this.cipherFor(part, 0);
    const writer = await this.blobs.openStaging(part.blobId, 0);
    try {
      await writer.write(encodeHeader(header));
      await writer.write(cipher.encryptSegment(0, Buffer.alloc(0)));
    } catch (err) {
      await writer.abort();
      throw err;
    }
    await writer.commit();
  }

  forget(uploadId: string): void {
    for (const key of this.cursors.keys()) if (key.startsWith(`${uploadId}:`)) this.cursors.delete(key);
  }
}

const BATCH_BYTES = 1024 * 1024;
const WRITE_BACK_BYTES = 32 * 1024 * 1024;

/**
 * Groups sealed segments into ~1 MiB writes and keeps one write in flight while the next batch is encrypted,
 * so the disk and the cipher work at the same time. `written` counts only plaintext whose segments the store
 * has accepted, which is what may be recorded after the fsync.
 */
class BatchedWriter {
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private batchPlaintext = 0;
  private inFlight: Promise<void> = Promise.resolve();
  written: number;

  constructor(
    private readonly writer: StagingWriter,
    offset: number,
  ) {
    this.written = offset;
  }

  async add(segment: readonly Buffer[], plaintextBytes: number): Promise<void> {
    for (const piece of segment) {
      this.batch.push(piece);
      this.batchBytes += piece.length;
    }
    this.batchPlaintext += plaintextBytes;
    if (this.batchBytes >= BATCH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const data = this.batch;
    const plaintext = this.batchPlaintext;
    this.batch = [];
    this.batchBytes = 0;
    this.batchPlaintext = 0;
    await this.inFlight;
    const write = this.writer.write(data).then(() => {
      this.written += plaintext;
      // Every 32 MiB, let the disk start on what it has, so the final fsync finds little left to do.
      if (
        Math.floor(this.written / WRITE_BACK_BYTES) !==
        Math.floor((this.written - plaintext) / WRITE_BACK_BYTES)
      ) {
        this.writer.writeBackSoon?.();
      }
    });
    // Observed by the next flush or by drain(); never an unhandled rejection in between.
    write.catch(() => undefined);
    this.inFlight = write;
  }

  /** Writes what is batched and waits for it; throws the first write error. */
  async drain(): Promise<void> {
    await this.flush();
    await this.inFlight;
  }

  /** Waits for the write in flight without throwing (before an abort). */
  async settle(): Promise<void> {
    await this.inFlight.catch(() => undefined);
  }
}

/** Incoming chunks, handed out as exact-length lists of pieces without copying. */
class PieceQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  take(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const first = this.chunks[0] as Buffer;
      if (first.length <= need) {
        out.push(first);
        this.chunks.shift();
        need -= first.length;
      } else {
        out.push(first.subarray(0, need));
        this.chunks[0] = first.subarray(need);
        need = 0;
      }
    }
    this.length -= n;
    return out;
  }
}

function segmentOffset(index: number): number {
  return HEADER_SIZE + index * (SEGMENT_SIZE + TAG_SIZE);
}

function ciphertextBytes(plaintext: number): number {
  return HEADER_SIZE + plaintext + Math.max(1, Math.ceil(plaintext / SEGMENT_SIZE)) * TAG_SIZE;
}
