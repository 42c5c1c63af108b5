import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import {
  ChainVerifier,
  GENESIS_HASH,
  isHexHash,
  recordHash,
  recordHashes,
  verifyChain,
  type ChainedRecord,
} from '../../src/audit/hash-chain.js';
import { leafHash } from '../../src/audit/merkle-tree.js';

function chain(n: number): ChainedRecord[] {
  const out: ChainedRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const record = {
      seq,
      prevHash: prev,
      action: 'version:download',
      actor: `user-${seq % 3}`,
      note: `event ${seq}`,
    };
    out.push(record);
    prev = recordHash(record);
  }
  return out;
}

describe('hash chain (H1)', () => {
  it('an untouched chain verifies', () => {
    expect(verifyChain(chain(50))).toMatchObject({ ok: true, count: 50 });
  });

  it('an edited event is named itself: it no longer hashes to the prevHash its successor recorded', () => {
    const edited = chain(20).map((r) => (r.seq === 7 ? { ...r, actor: 'mallory' } : r));
    expect(verifyChain(edited)).toEqual({
      ok: false,
      position: 7,
      reason: 'event 7 does not hash to the prevHash recorded by event 8',
    });
  });

  it('a deleted, reordered or inserted event is named by the first position whose seq is not the expected one', () => {
    const base = chain(20);
    const deleted = base.filter((r) => r.seq !== 5);
    expect(verifyChain(deleted)).toEqual({ ok: false, position: 5, reason: 'expected event 5, found seq 6' });
    const reordered = [...base];
    [reordered[9], reordered[10]] = [reordered[10]!, reordered[9]!];
    expect(verifyChain(reordered)).toMatchObject({ ok: false, position: 10 });
    // The forged event chains onto event 12; the original event 13 after it is where the sequence breaks.
    const inserted = [
      ...base.slice(0, 12),
      { seq: 13, prevHash: recordHash(base[11]!), action: 'forged' },
      ...base.slice(12),
    ];
    expect(verifyChain(inserted)).toMatchObject({ ok: false, position: 14 });
  });

  it('a first event that does not start from the genesis hash is named itself', () => {
    const [first, ...rest] = chain(5);
    expect(verifyChain([{ ...first!, prevHash: 'f'.repeat(64) }, ...rest])).toEqual({
      ok: false,
      position: 1,
      reason: 'event 1 does not start the log: its prevHash is not 64 zeros',
    });
  });

  it('an edit of the last event is beyond the chain alone (a signed checkpoint catches it: H2)', () => {
    const edited = chain(10).map((r) => (r.seq === 10 ? { ...r, actor: 'mallory' } : r));
    expect(verifyChain(edited)).toMatchObject({ ok: true, count: 10 });
  });

  it('re-chaining without the key verifies on its own (only a signed checkpoint catches it: H2)', () => {
    const rechained = chain(10).map((r) => ({ ...r, actor: 'mallory' }));
    let prev = GENESIS_HASH;
    const fixed = rechained.map((r) => {
      const record = { ...r, prevHash: prev };
      prev = recordHash(record);
      return record;
    });
    expect(verifyChain(fixed)).toMatchObject({ ok: true });
    expect((verifyChain(fixed) as { lastHash: string }).lastHash).not.toBe(
      (verifyChain(chain(10)) as { lastHash: string }).lastHash,
    );
  });

  it('verifies from an archive boundary', () => {
    const all = chain(30);
    const tail = all.slice(10);
    expect(verifyChain(tail, { seq: 11, prevHash: recordHash(all[9]!) })).toMatchObject({
      ok: true,
      count: 20,
    });
    expect(verifyChain(tail)).toMatchObject({ ok: false, position: 1 });
    expect(verifyChain(tail, { seq: 11, prevHash: recordHash(all[8]!) })).toEqual({
      ok: false,
      position: 11,
      reason: 'event 11 does not continue the log: its prevHash is not the hash of event 10',
    });
  });

  it('gives the chain hash and the Merkle leaf from one canonical form', () => {
    const record = chain(1)[0]!;
    const canonical = Buffer.from(canonicalJson(record), 'utf8');
    expect(recordHashes(record)).toEqual({ hash: recordHash(record), leaf: leafHash(canonical) });
    const other: ChainedRecord = { ...record };
    expect(recordHashes({ ...other, seq: 2 }).leaf.equals(leafHash(canonical))).toBe(false);
  });

  it('streams: the cursor accepts records one at a time and reports where the next must start', () => {
    const records = chain(3);
    const cursor = new ChainVerifier();
    for (const r of records) expect(cursor.next(r)).toMatchObject({ ok: true, hash: recordHash(r) });
    expect(cursor.nextSeq).toBe(4);
    expect(cursor.lastHash).toBe(recordHash(records[2]!));
    expect(cursor.count).toBe(3);
  });

  it('accepts only lowercase hex SHA-256 as a hash', () => {
    expect(isHexHash(GENESIS_HASH)).toBe(true);
    expect(isHexHash('A'.repeat(64))).toBe(false);
    expect(isHexHash('0'.repeat(63))).toBe(false);
    expect(isHexHash(42)).toBe(false);
  });
});
