import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CompactRange,
  EMPTY_ROOT,
  MerkleTree,
  leafHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle-tree.js';

interface Vectors {
  leaves: string[];
  roots: string[];
  inclusion: { index: number; size: number; path: string[] }[];
  consistency: { old: number; new: number; proof: string[] }[];
}
const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/audit/rfc6962-vectors.json', import.meta.url), 'utf8'),
) as Vectors;
const hex = (b: Buffer) => b.toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex');
const ctTree = new MerkleTree(vectors.leaves.map((l) => leafHash(unhex(l))));

function treeOf(n: number): MerkleTree {
  return new MerkleTree(Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`event ${i}`))));
}

function flipped(proof: readonly Buffer[], element: number, bit: number): Buffer[] {
  return proof.map((p, i) => {
    if (i !== element) return p;
    const copy = Buffer.from(p);
    copy[bit >> 3]! ^= 1 << (bit & 7);
    return copy;
  });
}

describe('RFC 6962 Merkle tree: reference vectors', () => {
  it('gives SHA-256 of nothing for the empty tree', () => {
    expect(hex(EMPTY_ROOT)).toBe(createHash('sha256').digest('hex'));
    expect(hex(ctTree.root(0))).toBe(hex(EMPTY_ROOT));
  });

  it('gives the published root for every tree of 1..8 leaves', () => {
    for (let n = 1; n <= 8; n++) expect(hex(ctTree.root(n)), `n=${n}`).toBe(vectors.roots[n - 1]);
  });

  it('gives the published audit paths, and they verify', () => {
    for (const v of vectors.inclusion) {
      const path = ctTree.inclusionProof(v.index, v.size);
      expect(path.map(hex), `${v.index}/${v.size}`).toEqual(v.path);
      const leaf = leafHash(unhex(vectors.leaves[v.index]!));
      expect(verifyInclusion(leaf, v.index, v.size, path, unhex(vectors.roots[v.size - 1]!))).toBe(true);
    }
  });

  it('gives the published consistency proofs, and they verify', () => {
    for (const v of vectors.consistency) {
      const proof = ctTree.consistencyProof(v.old, v.new);
      expect(proof.map(hex), `${v.old}->${v.new}`).toEqual(v.proof);
      expect(
        verifyConsistency(
          v.old,
          v.new,
          proof,
          unhex(vectors.roots[v.old - 1]!),
          unhex(vectors.roots[v.new - 1]!),
        ),
      ).toBe(true);
    }
  });
});

describe('inclusion proofs (H4)', () => {
  for (const n of [...Array.from({ length: 70 }, (_, i) => i + 1), 1024]) {
    it(`every leaf of a tree of ${n} verifies, and no corrupted proof does`, () => {
      // One more leaf than the tree under test, so roots of the neighbouring sizes exist too.
      const tree = treeOf(n + 1);
      const root = tree.root(n);
      const stride = n > 100 ? 37 : 1;
      for (let i = 0; i < n; i += stride) {
        const leaf = leafHash(Buffer.from(`event ${i}`));
        const proof = tree.inclusionProof(i, n);
        expect(verifyInclusion(leaf, i, n, proof, root)).toBe(true);
        for (let e = 0; e < proof.length; e++) {
          for (const bit of [0, 77, 255])
            expect(verifyInclusion(leaf, i, n, flipped(proof, e, bit), root)).toBe(false);
        }
        for (const index of [i - 1, i + 1, i + n]) {
          if (index >= 0) expect(verifyInclusion(leaf, index, n, proof, root)).toBe(false);
        }
        // The size comes with its root (a signed checkpoint binds the two): a proof for n fails for n - 1, n + 1.
        for (const size of [n - 1, n + 1]) {
          if (size > i) expect(verifyInclusion(leaf, i, size, proof, tree.root(size))).toBe(false);
        }
        expect(verifyInclusion(leaf, i, n, [...proof, root], root)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(leaf, i, n, proof.slice(1), root)).toBe(false);
        if (proof.length > 0) expect(verifyInclusion(leaf, i, n, proof.slice(0, -1), root)).toBe(false);
        expect(verifyInclusion(leafHash(Buffer.from('forged')), i, n, proof, root)).toBe(false);
        expect(verifyInclusion(leaf, i, n, proof, flipped([root], 0, 3)[0]!)).toBe(false);
      }
    });
  }
});

describe('consistency proofs (H2, H4)', () => {
  it('every pair of sizes up to 130 verifies, and no corrupted proof does', () => {
    const tree = treeOf(130);
    const roots = Array.from({ length: 131 }, (_, n) => tree.root(n));
    let checked = 0;
    for (let n = 1; n <= 130; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        expect(verifyConsistency(m, n, proof, roots[m]!, roots[n]!), `${m}->${n}`).toBe(true);
        checked++;
        if (m === n) {
          expect(verifyConsistency(m, n, [roots[m]!], roots[m]!, roots[n]!)).toBe(false);
          continue;
        }
        for (let e = 0; e < proof.length; e++) {
          expect(
            verifyConsistency(m, n, flipped(proof, e, e * 7), roots[m]!, roots[n]!),
            `${m}->${n} e=${e}`,
          ).toBe(false);
        }
        // A truncated or re-chained log: the new root is not an extension of the old one.
        if (m > 1) expect(verifyConsistency(m, n, proof, roots[m - 1]!, roots[n]!)).toBe(false);
        expect(verifyConsistency(m, n, proof, roots[m]!, flipped([roots[n]!], 0, 1)[0]!)).toBe(false);
        if (n < 130) expect(verifyConsistency(m, n + 1, proof, roots[m]!, roots[n + 1]!)).toBe(false);
        expect(verifyConsistency(m, n, [...proof, roots[0]!], roots[m]!, roots[n]!)).toBe(false);
        expect(verifyConsistency(m, n, proof.slice(0, -1), roots[m]!, roots[n]!)).toBe(false);
      }
    }
    expect(checked).toBe((130 * 131) / 2);
  });

  it('an empty old tree is consistent with anything only through an empty proof', () => {
    const tree = treeOf(5);
    expect(verifyConsistency(0, 5, [], EMPTY_ROOT, tree.root())).toBe(true);
    expect(verifyConsistency(0, 5, [tree.root()], EMPTY_ROOT, tree.root())).toBe(false);
    expect(verifyConsistency(3, 2, [], tree.root(3), tree.root(2))).toBe(false);
  });

  it('refuses to build proofs outside the tree', () => {
    const tree = treeOf(4);
    expect(() => tree.inclusionProof(4)).toThrow(RangeError);
    expect(() => tree.consistencyProof(5, 4)).toThrow(RangeError);
    expect(() => tree.root(5)).toThrow(RangeError);
  });
});

describe('compact range', () => {
  it('gives the same root as the full tree after every append, from the CT vectors up to 300 leaves', () => {
    const range = new CompactRange();
    expect(range.root().equals(EMPTY_ROOT)).toBe(true);
    vectors.leaves.forEach((l, i) => {
      range.append(leafHash(unhex(l)));
      expect(hex(range.root())).toBe(vectors.roots[i]);
    });
    const tree = treeOf(300);
    const other = new CompactRange();
    for (let n = 1; n <= 300; n++) {
      other.append(leafHash(Buffer.from(`event ${n - 1}`)));
      expect(other.root().equals(tree.root(n))).toBe(true);
      expect(other.hashes).toHaveLength(popcount(n));
    }
  });

  it('resumes from its saved nodes and refuses a node count that does not match the size', () => {
    const a = new CompactRange();
    for (let i = 0; i < 37; i++) a.append(leafHash(Buffer.from(`event ${i}`)));
    const b = new CompactRange(a.size, a.hashes);
    a.append(leafHash(Buffer.from('next')));
    b.append(leafHash(Buffer.from('next')));
    expect(b.root().equals(a.root())).toBe(true);
    expect(() => new CompactRange(37, a.hashes.slice(1))).toThrow(RangeError);
    expect(() => new CompactRange(1, [Buffer.alloc(31)])).toThrow(RangeError);
  });
});

function popcount(n: number): number {
  return n
    .toString(2)
    .split('')
    .filter((c) => c === '1').length;
}
