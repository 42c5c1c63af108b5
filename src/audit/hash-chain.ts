import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';

/** The `prevHash` of the first event of a log. */
export const GENESIS_HASH = '0'.repeat(64);

/** What every chained record carries; the rest of the event is free-form JSON. */
export interface ChainedRecord {
  readonly seq: number;
  readonly prevHash: string;
  readonly [field: string]: unknown;
}

/** The hash of a record: SHA-256 over its RFC 8785 canonical JSON, prevHash included (DESIGN.md section 5). */
export function recordHash(record: ChainedRecord): string {
  return createHash('sha256').update(canonicalJson(record), 'utf8').digest('hex');
}

export type ChainVerdict =
  | { readonly ok: true; readonly count: number; readonly lastHash: string }
  | { readonly ok: false; readonly position: number; readonly reason: string };

/**
 * Offline verification of a chain (threat H1): sequence numbers follow each other, and each record names the
 * hash of the one before it. Editing, deleting, reordering or inserting a record breaks the chain at that
 * record, whose position is reported. A chain can start after an archive boundary (`first`).
 */
export function verifyChain(
  records: Iterable<ChainedRecord>,
  first: { readonly seq: number; readonly prevHash: string } = { seq: 1, prevHash: GENESIS_HASH },
): ChainVerdict {
  let expectedSeq = first.seq;
  let prev = first.prevHash;
  let count = 0;
  for (const record of records) {
    if (record.seq !== expectedSeq) {
      return {
        ok: false,
        position: expectedSeq,
        reason: `expected sequence ${expectedSeq}, found ${String(record.seq)}`,
      };
    }
    if (record.prevHash !== prev) {
      return { ok: false, position: record.seq, reason: 'the record does not follow the one before it' };
    }
    prev = recordHash(record);
    expectedSeq++;
    count++;
  }
  return { ok: true, count, lastHash: prev };
}
