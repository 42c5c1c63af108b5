import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, recordHash, verifyChain, type ChainedRecord } from '../../src/audit/hash-chain.js';

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

  it('names the first bad position after an edit, a deletion, a reordering or an insertion', () => {
    const base = chain(20);
    const edited = base.map((r) => (r.seq === 7 ? { ...r, actor: 'mallory' } : r));
    expect(verifyChain(edited)).toMatchObject({ ok: false, position: 8 });
    const deleted = base.filter((r) => r.seq !== 5);
    expect(verifyChain(deleted)).toMatchObject({ ok: false, position: 5 });
    const reordered = [...base];
    [reordered[9], reordered[10]] = [reordered[10]!, reordered[9]!];
    expect(verifyChain(reordered)).toMatchObject({ ok: false, position: 10 });
    const inserted = [
      ...base.slice(0, 12),
      { seq: 13, prevHash: recordHash(base[11]!), action: 'forged' },
      ...base.slice(12),
    ];
    expect(verifyChain(inserted)).toMatchObject({ ok: false, position: 14 });
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
  });
});
