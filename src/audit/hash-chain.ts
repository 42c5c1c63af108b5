import { hash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { leafHash } from './merkle-tree.js';

/** The `prevHash` of the first event of a log. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * What every chained record carries; the rest of the record is free-form JSON, all of it hashed. (No index
 * signature, so an `AuditEvent` interface is a `ChainedRecord` as it is.)
 */
export interface ChainedRecord {
  readonly seq: number;
  readonly prevHash: string;
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** DESIGN.md section 5: hashes travel as lowercase hex SHA-256; any other spelling is refused, never normalised. */
export function isHexHash(value: unknown): value is string {
  return typeof value === 'string' && HEX_HASH.test(value);
}

/** The hash of a record: SHA-256 over its RFC 8785 canonical JSON, prevHash included (DESIGN.md section 5). */
export function recordHash(record: ChainedRecord): string {
  // One-shot `hash` costs less than half of createHash().update().digest() for an event-sized input.
  return hash('sha256', canonicalJson(record), 'hex');
}

export interface RecordHashes {
  /** Hex SHA-256 of the canonical JSON: what the next record names as its `prevHash`. */
  readonly hash: string;
  /** RFC 6962 leaf hash SHA-256(0x00 || canonical JSON): the record's leaf in the Merkle tree. */
  readonly leaf: Buffer;
}

/**
 * DESIGN.md section 5 and RFC 6962 2.1: the chain hash and the Merkle leaf hash of a record from one
 * canonicalisation, so the two can never be computed over different serialisations of the same event.
 */
export function recordHashes(record: ChainedRecord): RecordHashes {
  return canonicalHashes(canonicalJson(record));
}

/**
 * DESIGN.md section 5 and RFC 6962 2.1: the chain hash and the leaf hash of a record given as its canonical JSON
 * text, which must be `canonicalJson(record)` (the audit log passes the text it is about to store, the export
 * verifier the exact text it found equal to it): the record is not canonicalised a second time.
 */
export function canonicalHashes(canonical: string): RecordHashes {
  const bytes = Buffer.from(canonical, 'utf8');
  return { hash: hash('sha256', bytes, 'hex'), leaf: leafHash(bytes) };
}

export interface ChainBreak {
  readonly ok: false;
  /** The seq of the first record the evidence shows to be wrong (see `ChainVerifier.next`). */
  readonly position: number;
  readonly reason: string;
}

export type ChainVerdict =
  { readonly ok: true; readonly count: number; readonly lastHash: string } | ChainBreak;

export type ChainStep = ({ readonly ok: true } & RecordHashes) | ChainBreak;

/**
 * Streaming chain verification (threat H1), one record at a time in O(1) memory: the one implementation behind
 * `verifyChain` and the export verifier. A chain can start after an archive boundary (`first`).
 */
export class ChainVerifier {
  private expectedSeq: number;
  private prev: string;
  private checked = 0;

  constructor(
    first: { readonly seq: number; readonly prevHash: string } = { seq: 1, prevHash: GENESIS_HASH },
  ) {
    this.expectedSeq = first.seq;
    this.prev = first.prevHash;
  }

  /** The seq the next record must carry. */
  get nextSeq(): number {
    return this.expectedSeq;
  }

  /** The hash of the last record accepted (the boundary's hash before any). */
  get lastHash(): string {
    return this.prev;
  }

  get count(): number {
    return this.checked;
  }

  /**
   * Threat H1. A record whose seq is not the next one reports that expected position: the first place where an
   * event is missing, moved or inserted. A record whose `prevHash` is not the hash of the record before it
   * reports that earlier record, because the typical attack edits an event's content, which changes its hash
   * and leaves the successor's `prevHash` pointing at the original. (An edit of the successor's `prevHash`
   * field itself looks the same; the chain alone cannot tell the two apart.)
   *
   * `canonical` is the record's canonical JSON when the caller has it already; it must be
   * `canonicalJson(record)`, and the export verifier checks that of the text it read before accepting the step.
   */
  next(record: ChainedRecord, canonical?: string): ChainStep {
    const seq = this.expectedSeq;
    if (record.seq !== seq) {
      return { ok: false, position: seq, reason: `expected event ${seq}, found seq ${String(record.seq)}` };
    }
    if (record.prevHash !== this.prev) return { ok: false, ...this.brokenLink(seq) };
    const hashes = canonical === undefined ? recordHashes(record) : canonicalHashes(canonical);
    this.prev = hashes.hash;
    this.expectedSeq++;
    this.checked++;
    return { ok: true, ...hashes };
  }

  private brokenLink(seq: number): { position: number; reason: string } {
    if (this.checked > 0) {
      return {
        position: seq - 1,
        reason: `event ${seq - 1} does not hash to the prevHash recorded by event ${seq}`,
      };
    }
    if (seq === 1 && this.prev === GENESIS_HASH) {
      return { position: seq, reason: 'event 1 does not start the log: its prevHash is not 64 zeros' };
    }
    return {
      position: seq,
      reason: `event ${seq} does not continue the log: its prevHash is not the hash of event ${seq - 1}`,
    };
  }
}

/**
 * Offline verification of a chain (threat H1): sequence numbers follow each other, and each record names the
 * hash of the one before it. Editing, deleting, reordering or inserting a record breaks the chain; the first
 * bad position is reported as `ChainVerifier.next` describes. An edit of the very last record leaves no
 * successor to expose it: only a signed checkpoint over the Merkle tree catches that (threat H2).
 */
export function verifyChain(
  records: Iterable<ChainedRecord>,
  first: { readonly seq: number; readonly prevHash: string } = { seq: 1, prevHash: GENESIS_HASH },
): ChainVerdict {
  const chain = new ChainVerifier(first);
  for (const record of records) {
    const step = chain.next(record);
    if (!step.ok) return step;
  }
  return { ok: true, count: chain.count, lastHash: chain.lastHash };
}
