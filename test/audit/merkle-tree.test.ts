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

describe('proof edge cases (the corrupted-proof matrix is in proof-adversarial.test.ts)', () => {
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
    expect(() => tree.leaf(4)).toThrow(RangeError);
  });

  it('gives back the leaf hashes it was built from', () => {
    const tree = treeOf(3);
    expect(tree.leaf(2).equals(leafHash(Buffer.from('event 2')))).toBe(true);
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
