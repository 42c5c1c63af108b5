import { describe, expect, it } from 'vitest';
import {
  buildConsistencyProof,
  buildInclusionProof,
  parseInclusionProof,
  verifyConsistencyProof,
  verifyInclusionProof,
  type ConsistencyProof,
  type InclusionProof,
  type SignedCheckpoint,
} from '../../src/audit/audit-proof.js';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { recordHashes } from '../../src/audit/hash-chain.js';
import {
  EMPTY_ROOT,
  MerkleTree,
  nodeHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle-tree.js';
import { LOG_KEY, chainEvents, logKey, signCheckpoint } from '../support/audit-fixtures.js';

/**
 * Threat H4: corrupted inclusion and consistency proofs are never accepted. One tree of 1024 real events
 * serves every size below (each is a prefix of it). A corrupted proof counts as a false accept only when the
 * verifier accepts a statement that is not the genuine one for the sizes, leaf and roots it names, so a
 * "corruption" that happens to produce another true statement is not miscounted.
 *
 * At this level a size is always paired with its own root: RFC 9162 verification alone does not bind a size to
 * a root (leaf 0's path in a tree of 5 also checks out as "size 6 with the root of 5"). The signed checkpoint
 * binds the two, and the wire-format tests below show a size that disagrees with its checkpoint is refused.
 */

const events = [...chainEvents(1024)];
const leaves = events.map((e) => recordHashes(e).leaf);
const tree = new MerkleTree(leaves);
const roots = new Map<number, Buffer>();
const rootOf = (n: number): Buffer => {
  let r = roots.get(n);
  if (r === undefined) {
    r = tree.root(n);
    roots.set(n, r);
  }
  return r;
};

const INCLUSION_SIZES = [...Array.from({ length: 70 }, (_, i) => i + 1), 1024];
const MAX_CONSISTENCY = 130;

function flip(b: Buffer, bit: number): Buffer {
  const copy = Buffer.from(b);
  copy[(bit >> 3) % copy.length]! ^= 1 << (bit & 7);
  return copy;
}

const flippedAt = (path: readonly Buffer[], e: number, bit: number) =>
  path.map((p, i) => (i === e ? flip(p, bit) : p));
const samePath = (a: readonly Buffer[], b: readonly Buffer[]) =>
  a.length === b.length && a.every((x, i) => x.equals(b[i]!));

interface InclusionCase {
  readonly label: string;
  readonly leaf: Buffer;
  readonly index: number;
  readonly size: number;
  readonly path: readonly Buffer[];
  readonly root: Buffer;
}

/** Every corruption of the genuine proof of leaf `i` in the tree of `n` leaves. */
function* inclusionCorruptions(i: number, n: number, path: readonly Buffer[]): Generator<InclusionCase> {
  const leaf = leaves[i]!;
  const root = rootOf(n);
  const base = { leaf, index: i, size: n, path, root };
  for (const index of [i - 1, i + 1, i ^ 1, i + n, n, -1]) yield { ...base, label: `index ${index}`, index };
  for (const size of [n - 1, n + 1, 2 * n, i]) {
    if (size < 0 || size > 1024) continue;
    yield { ...base, label: `size ${size} with its root`, size, root: rootOf(size) };
  }
  // One flipped bit in every element (at a position that moves with the leaf), both end bits of the first.
  for (let e = 0; e < path.length; e++) {
    const bit = (e * 37 + i) % 256;
    yield { ...base, label: `element ${e} bit ${bit}`, path: flippedAt(path, e, bit) };
  }
  if (path.length > 0) {
    yield { ...base, label: 'element 0 bit 0', path: flippedAt(path, 0, 0) };
    yield { ...base, label: 'element 0 bit 255', path: flippedAt(path, 0, 255) };
    yield { ...base, label: 'first element missing', path: path.slice(1) };
    yield { ...base, label: 'last element missing', path: path.slice(0, -1) };
  }
  if (path.length > 1)
    yield { ...base, label: 'first two elements swapped', path: [path[1]!, path[0]!, ...path.slice(2)] };
  for (const extra of [root, leaf]) {
    yield { ...base, label: 'node appended', path: [...path, extra] };
    yield { ...base, label: 'node prepended', path: [extra, ...path] };
  }
  yield { ...base, label: 'a 31-byte element', path: [...path.slice(0, -1), Buffer.alloc(31)] };
  yield { ...base, label: 'another leaf', leaf: leaves[(i + 1) % 1024]! };
  yield { ...base, label: 'a flipped leaf', leaf: flip(leaf, 9) };
  yield { ...base, label: 'the root as the leaf', leaf: root };
  if (path.length > 0) {
    // RFC 6962's 0x00/0x01 prefixes: an inner node cannot pass for a leaf one level up.
    const inner = i % 2 === 0 ? nodeHash(leaf, path[0]!) : nodeHash(path[0]!, leaf);
    yield { ...base, label: 'an inner node as a leaf', leaf: inner, index: i >> 1, path: path.slice(1) };
  }
  yield { ...base, label: 'a flipped root', root: flip(root, 200) };
  yield { ...base, label: 'the empty root', root: EMPTY_ROOT };
  if (n > 1) yield { ...base, label: 'the previous root', root: rootOf(n - 1) };
}

function genuineInclusion(c: InclusionCase): boolean {
  if (c.index < 0 || c.index >= c.size || c.size > 1024 || c.path.some((p) => p.length !== 32)) return false;
  return (
    c.leaf.equals(leaves[c.index]!) &&
    c.root.equals(rootOf(c.size)) &&
    samePath(c.path, tree.inclusionProof(c.index, c.size))
  );
}

interface ConsistencyCase {
  readonly label: string;
  readonly m: number;
  readonly n: number;
  readonly path: readonly Buffer[];
  readonly oldRoot: Buffer;
  readonly newRoot: Buffer;
}

/** Every corruption of the genuine consistency proof from `m` to `n` leaves. */
function* consistencyCorruptions(m: number, n: number, path: readonly Buffer[]): Generator<ConsistencyCase> {
  const base = { m, n, path, oldRoot: rootOf(m), newRoot: rootOf(n) };
  for (const [m2, n2] of [
    [m - 1, n],
    [m + 1, n],
    [m, n - 1],
    [m, n + 1],
  ] as const) {
    if (m2 < 0 || n2 < 0) continue;
    const label = `sizes ${m2}, ${n2} with their roots`;
    yield { ...base, label, m: m2, n: n2, oldRoot: rootOf(m2), newRoot: rootOf(n2) };
  }
  // One flipped bit in every element, at a position that moves with the pair.
  for (let e = 0; e < path.length; e++) {
    yield { ...base, label: `element ${e} bit`, path: flippedAt(path, e, (e * 53 + m + n) % 256) };
  }
  if (path.length > 0) {
    yield { ...base, label: 'first element missing', path: path.slice(1) };
    yield { ...base, label: 'last element missing', path: path.slice(0, -1) };
  }
  yield { ...base, label: 'old root appended', path: [...path, base.oldRoot] };
  yield { ...base, label: 'old root prepended', path: [base.oldRoot, ...path] };
  yield { ...base, label: 'roots swapped', oldRoot: base.newRoot, newRoot: base.oldRoot };
  yield { ...base, label: 'a flipped old root', oldRoot: flip(base.oldRoot, 77) };
  yield { ...base, label: 'a flipped new root', newRoot: flip(base.newRoot, 78) };
}

function genuineConsistency(c: ConsistencyCase): boolean {
  if (c.m < 0 || c.m > c.n || c.n > 1024 || c.path.some((p) => p.length !== 32)) return false;
  // The empty tree is a prefix of every tree: from size 0 the statement holds whatever the new root.
  return (
    c.oldRoot.equals(rootOf(c.m)) &&
    (c.m === 0 || c.newRoot.equals(rootOf(c.n))) &&
    samePath(c.path, tree.consistencyProof(c.m, c.n))
  );
}

describe('inclusion proofs, RFC 9162 2.1.3.2 (H4)', () => {
  for (const n of INCLUSION_SIZES) {
    it(`every leaf of a tree of ${n} verifies, and none of its corrupted proofs does`, () => {
      const rejected: string[] = [];
      const falseAccepts: string[] = [];
      let corruptions = 0;
      for (let i = 0; i < n; i++) {
        const path = tree.inclusionProof(i, n);
        if (!verifyInclusion(leaves[i]!, i, n, path, rootOf(n))) rejected.push(`leaf ${i}`);
        for (const c of inclusionCorruptions(i, n, path)) {
          corruptions++;
          if (verifyInclusion(c.leaf, c.index, c.size, c.path, c.root) && !genuineInclusion(c)) {
            falseAccepts.push(`leaf ${i}: ${c.label}`);
          }
        }
      }
      expect(rejected).toEqual([]);
      expect(falseAccepts).toEqual([]);
      expect(corruptions).toBeGreaterThan(n * 15);
    });
  }
});

describe('consistency proofs, RFC 9162 2.1.4.2 (H2, H4)', () => {
  it(`every pair of sizes 0 <= m <= n <= ${MAX_CONSISTENCY} verifies, and none of its corrupted proofs does`, () => {
    const rejected: string[] = [];
    const falseAccepts: string[] = [];
    let pairs = 0;
    let corruptions = 0;
    for (let n = 0; n <= MAX_CONSISTENCY; n++) {
      for (let m = 0; m <= n; m++) {
        pairs++;
        const path = tree.consistencyProof(m, n);
        if (!verifyConsistency(m, n, path, rootOf(m), rootOf(n))) rejected.push(`${m} -> ${n}`);
        for (const c of consistencyCorruptions(m, n, path)) {
          corruptions++;
          if (verifyConsistency(c.m, c.n, c.path, c.oldRoot, c.newRoot) && !genuineConsistency(c)) {
            falseAccepts.push(`${m} -> ${n}: ${c.label}`);
          }
        }
      }
    }
    expect(pairs).toBe(((MAX_CONSISTENCY + 1) * (MAX_CONSISTENCY + 2)) / 2);
    expect(corruptions).toBeGreaterThan(pairs * 10);
    expect(rejected).toEqual([]);
    expect(falseAccepts).toEqual([]);
  });
});

// Checkpoints signed once per size the proofs below are against.
const checkpoints = new Map<number, SignedCheckpoint>();
const checkpointOf = (size: number, key = LOG_KEY, origin?: string): SignedCheckpoint => {
  if (key !== LOG_KEY || origin !== undefined)
    return { size, note: signCheckpoint(key.signer, size, rootOf(size), origin) };
  let cp = checkpoints.get(size);
  if (cp === undefined) {
    cp = { size, note: signCheckpoint(key.signer, size, rootOf(size)) };
    checkpoints.set(size, cp);
  }
  return cp;
};
const key = LOG_KEY.verifierKey;
const hex = (b: Buffer) => b.toString('hex');

describe('inclusion proofs as the server sends them (H1, H4)', () => {
  // The RFC 9162 walk is covered leaf by leaf above; here the first, middle and last event of every size and a
  // stride through 1024 go through the wire format and a signature check each.
  it('events of trees of 1..70 and 1024 events are proven in their signed checkpoint, from their own content', () => {
    const rejected: string[] = [];
    for (const n of INCLUSION_SIZES) {
      const seqs =
        n > 100 ? Array.from({ length: 34 }, (_, k) => Math.min(1 + k * 31, n)) : [1, (n + 1) >> 1, n];
      for (const seq of new Set(seqs)) {
        const proof = buildInclusionProof(tree, seq, checkpointOf(n), events[seq - 1]);
        const verdict = verifyInclusionProof(JSON.parse(JSON.stringify(proof)) as InclusionProof, key);
        if (!verdict.ok || !verdict.eventChecked || verdict.root !== hex(rootOf(n)))
          rejected.push(`${seq}/${n}`);
      }
    }
    expect(rejected).toEqual([]);
  });

  it('refuses every tampered field of a proof: seq, sizes, leaf, path, checkpoint, key and event', () => {
    const other = logKey();
    const falseAccepts: string[] = [];
    for (const n of [1, 2, 3, 5, 8, 13, 21, 64, 1024]) {
      for (const seq of new Set([1, 2, Math.ceil(n / 2), n - 1, n].filter((s) => s >= 1 && s <= n))) {
        const event = events[seq - 1]!;
        const proof = buildInclusionProof(tree, seq, checkpointOf(n));
        const path = proof.path;
        const cases: [string, InclusionProof, AuditEvent?][] = [
          ['seq + 1', { ...proof, seq: seq + 1 }],
          ['seq - 1', { ...proof, seq: seq - 1 }],
          ['tree size + 1', { ...proof, treeSize: n + 1 }],
          [
            'checkpoint of another size',
            { ...proof, checkpoint: checkpointOf(n === 1024 ? 1023 : n + 1).note },
          ],
          ['path of another tree size or leaf', { ...proof, path: otherPath(seq, n) }],
          ['flipped leaf hash', { ...proof, leafHash: hex(flip(leaves[seq - 1]!, 3)) }],
          ['another leaf hash', { ...proof, leafHash: hex(leaves[seq % 1024]!) }],
          ...path.map((_, e): [string, InclusionProof] => [
            `path ${e} flipped`,
            { ...proof, path: path.map((p, i) => (i === e ? hex(flip(Buffer.from(p, 'hex'), e)) : p)) },
          ]),
          ['node appended', { ...proof, path: [...path, hex(rootOf(n))] }],
          ['node prepended', { ...proof, path: [hex(leaves[seq - 1]!), ...path] }],
          ['node missing', { ...proof, path: path.slice(0, -1) }],
          ['checkpoint signed by another key', { ...proof, checkpoint: checkpointOf(n, other).note }],
          [
            'checkpoint text edited',
            { ...proof, checkpoint: proof.checkpoint.replace(`\n${n}\n`, `\n${n + 1}\n`) },
          ],
          ['event edited', proof, { ...event, action: 'forged' }],
          ['event of another seq', proof, events[seq % 1024]!],
          ['event carried edited', { ...proof, event: { ...event, resource: 'forged' } }],
          ['event carried of another seq', { ...proof, event: { ...events[seq % 1024]!, seq } }],
        ];
        for (const [label, corrupted, claimed] of cases) {
          if (label === 'node missing' && path.length === 0) continue;
          const verdict = verifyInclusionProof(corrupted, key, claimed);
          if (verdict.ok) falseAccepts.push(`${seq}/${n}: ${label}`);
        }
      }
    }
    expect(falseAccepts).toEqual([]);
  });

  it('explains a refusal in one lowercase line', () => {
    const proof = buildInclusionProof(tree, 5, checkpointOf(8));
    expect(verifyInclusionProof({ ...proof, treeSize: 9 }, key)).toEqual({
      ok: false,
      reason: 'the proof is for a tree of 9 events, its checkpoint signs 8',
    });
    expect(verifyInclusionProof(proof, key, { ...events[4]!, action: 'forged' })).toEqual({
      ok: false,
      reason: "event 5 does not hash to the proof's leaf hash",
    });
    expect(verifyInclusionProof(proof, logKey().verifierKey)).toEqual({
      ok: false,
      reason: 'checkpoint: the note has no signature by a known key',
    });
  });

  it('refuses malformed proofs: uppercase or short hashes, unknown fields, a path longer than 64', () => {
    const proof = buildInclusionProof(tree, 5, checkpointOf(8));
    const malformed: unknown[] = [
      { ...proof, leafHash: proof.leafHash.toUpperCase() },
      { ...proof, path: [...proof.path.slice(1), proof.path[0]!.slice(2)] },
      { ...proof, signedBy: 'the server' },
      { ...proof, path: Array.from({ length: 65 }, () => proof.path[0]) },
      { ...proof, seq: 0 },
      { ...proof, seq: 9 },
      { ...proof, seq: '5' },
      { ...proof, checkpoint: 42 },
      { ...proof, event: [] },
      null,
    ];
    for (const p of malformed) {
      expect(verifyInclusionProof(p as InclusionProof, key), JSON.stringify(p)).toMatchObject({ ok: false });
    }
    expect(() => parseInclusionProof({ ...proof, extra: 1 })).toThrow('malformed inclusion proof');
    expect(() => verifyInclusionProof(proof, 'not a key')).toThrow('malformed verifier key');
  });

  it('refuses to build a proof from a stored event that does not match its stored leaf', () => {
    expect(() => buildInclusionProof(tree, 5, checkpointOf(8), events[5])).toThrow(
      'stored event 5 does not hash to its stored leaf',
    );
  });
});

describe('consistency proofs as the server sends them (H2, H4)', () => {
  it('every pair of sizes up to 24 is proven consistent, anchored on the old checkpoint or a root kept by the caller', () => {
    const rejected: string[] = [];
    for (let n = 0; n <= 24; n++) {
      for (let m = 0; m <= n; m++) {
        const proof = buildConsistencyProof(tree, checkpointOf(m), checkpointOf(n));
        const wire = JSON.parse(JSON.stringify(proof)) as ConsistencyProof;
        const fromCheckpoint = verifyConsistencyProof(wire, key);
        const bare = buildConsistencyProof(tree, m, checkpointOf(n));
        const fromArgument = verifyConsistencyProof(bare, key, hex(rootOf(m)));
        if (!fromCheckpoint.ok || fromCheckpoint.oldRootFrom !== 'checkpoint')
          rejected.push(`${m}->${n} checkpoint`);
        if (!fromArgument.ok || fromArgument.oldRootFrom !== 'argument') rejected.push(`${m}->${n} argument`);
      }
    }
    expect(rejected).toEqual([]);
  });

  it('refuses every tampered field: sizes, path, checkpoints swapped or of another log or key, a foreign old root', () => {
    const other = logKey();
    const falseAccepts: string[] = [];
    for (const [m, n] of [
      [1, 2],
      [2, 3],
      [3, 7],
      [4, 8],
      [6, 8],
      [7, 13],
      [8, 16],
      [13, 130],
      [64, 1024],
      [100, 1024],
    ] as const) {
      const proof = buildConsistencyProof(tree, checkpointOf(m), checkpointOf(n));
      const path = proof.path;
      const cases: [string, ConsistencyProof, (string | Buffer)?][] = [
        ['old size + 1', { ...proof, oldSize: m + 1 }],
        ['new size + 1', { ...proof, newSize: n + 1 }],
        [
          'old size - 1 with its checkpoint',
          { ...proof, oldSize: m - 1, oldCheckpoint: checkpointOf(m - 1).note },
        ],
        ['new checkpoint of another size', { ...proof, newCheckpoint: checkpointOf(n - 1).note }],
        [
          'checkpoints swapped',
          { ...proof, oldCheckpoint: proof.newCheckpoint, newCheckpoint: proof.oldCheckpoint! },
        ],
        [
          'sizes and checkpoints swapped',
          {
            ...proof,
            oldSize: n,
            newSize: m,
            oldCheckpoint: proof.newCheckpoint,
            newCheckpoint: proof.oldCheckpoint!,
          },
        ],
        ...path.map((_, e): [string, ConsistencyProof] => [
          `path ${e} flipped`,
          { ...proof, path: path.map((p, i) => (i === e ? hex(flip(Buffer.from(p, 'hex'), e * 3)) : p)) },
        ]),
        ['node appended', { ...proof, path: [...path, hex(rootOf(m))] }],
        ['node prepended', { ...proof, path: [hex(rootOf(m)), ...path] }],
        ['node missing', { ...proof, path: path.slice(1) }],
        ['new checkpoint by another key', { ...proof, newCheckpoint: checkpointOf(n, other).note }],
        ['old checkpoint by another key', { ...proof, oldCheckpoint: checkpointOf(m, other).note }],
        [
          'old checkpoint of another log',
          { ...proof, oldCheckpoint: checkpointOf(m, LOG_KEY, 'other.strongroom.test/log').note },
        ],
        ['a foreign old root', { ...proof }, hex(rootOf(m - 1))],
        ['a foreign old root, no old checkpoint', stripOld(proof), rootOf(m + 1)],
        ['no old root at all', stripOld(proof)],
        ['an old root of 31 bytes', stripOld(proof), Buffer.alloc(31)],
      ];
      for (const [label, corrupted, oldRoot] of cases) {
        const verdict = verifyConsistencyProof(corrupted, key, oldRoot);
        if (verdict.ok) falseAccepts.push(`${m}->${n}: ${label}`);
      }
    }
    expect(falseAccepts).toEqual([]);
  });

  it('explains a refusal in one lowercase line', () => {
    const proof = buildConsistencyProof(tree, 5, checkpointOf(8));
    expect(verifyConsistencyProof(proof, key)).toEqual({
      ok: false,
      reason: 'no old root to check against: pass the root of a checkpoint you kept',
    });
    expect(verifyConsistencyProof(proof, key, rootOf(4))).toEqual({
      ok: false,
      reason: 'the tree of 5 events is not proven a prefix of the tree of 8',
    });
  });
});

/** The audit path of `seq` in a tree of another size than `n`, or of another leaf when no other tree holds it. */
function otherPath(seq: number, n: number): string[] {
  if (n < 1024) return tree.inclusionProof(seq - 1, n + 1).map(hex);
  return seq <= 1000 ? tree.inclusionProof(seq - 1, 1000).map(hex) : tree.inclusionProof(seq - 2, n).map(hex);
}

function stripOld(proof: ConsistencyProof): ConsistencyProof {
  const { oldCheckpoint: _, ...rest } = proof;
  return rest;
}
