import { createHash, hash } from 'node:crypto';

/**
 * RFC 6962 (section 2.1) Merkle tree hashing over audit events, with inclusion and consistency proofs and their
 * verification as RFC 9162 (sections 2.1.3.2 and 2.1.4.2) specifies it. Verification needs nothing but hashes,
 * so a third party can check a proof without trusting the server (DESIGN.md section 5, threat H4).
 */

const LEAF_PREFIX = Buffer.of(0x00);
const NODE_PREFIX = Buffer.of(0x01);

/** One-shot SHA-256 (no Hash object per call: this is the audit log's hot path). */
function sha256(data: Buffer): Buffer {
  return hash('sha256', data, 'buffer');
}

/** RFC 6962 2.1: the hash of a leaf is SHA-256(0x00 || data), so a leaf can never pass for an inner node. */
export function leafHash(data: Buffer): Buffer {
  return sha256(Buffer.concat([LEAF_PREFIX, data]));
}

const scratch = Buffer.alloc(65);
scratch[0] = 0x01;

/** RFC 6962 2.1: an inner node is SHA-256(0x01 || left || right). */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  if (left.length !== 32 || right.length !== 32)
    return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
  left.copy(scratch, 1);
  right.copy(scratch, 33);
  return sha256(scratch);
}

/** RFC 6962 2.1: the root of the empty tree is SHA-256 of the empty string. */
export const EMPTY_ROOT = createHash('sha256').digest();

/** The largest power of two strictly below `n` (n >= 2): where RFC 6962 splits a tree. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * A tree over a list of leaf hashes that can answer roots and proofs for any prefix of the list. Subtree hashes
 * are memoised, so all the proofs of a tree cost little more than building it.
 */
export class MerkleTree {
  private readonly memo = new Map<string, Buffer>();

  constructor(private readonly leaves: readonly Buffer[]) {}

  get size(): number {
    return this.leaves.length;
  }

  /** The leaf hash at `index` (RFC 6962 2.1: SHA-256(0x00 || entry)), as an inclusion proof starts from it. */
  leaf(index: number): Buffer {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.leaves.length) {
      throw new RangeError(`leaf ${index} is not in a tree of ${this.leaves.length} leaves`);
    }
    return this.leaves[index] as Buffer;
  }

  /** RFC 6962 2.1 MTH(D[0:size]). */
  root(size = this.leaves.length): Buffer {
    checkSize(size, this.leaves.length);
    return size === 0 ? EMPTY_ROOT : this.range(0, size);
  }

  /** RFC 6962 2.1.1 PATH(index, D[0:size]): the audit path of one leaf. */
  inclusionProof(index: number, size = this.leaves.length): Buffer[] {
    checkSize(size, this.leaves.length);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
    }
    const path: Buffer[] = [];
    let lo = 0;
    let hi = size;
    let m = index;
    const stack: Buffer[] = [];
    while (hi - lo > 1) {
      const k = split(hi - lo);
      if (m < k) {
        stack.push(this.range(lo + k, hi));
        hi = lo + k;
      } else {
        stack.push(this.range(lo, lo + k));
        lo += k;
        m -= k;
      }
    }
    // The recursion appends from the leaf upward; the descent above collected from the root downward.
    for (let i = stack.length - 1; i >= 0; i--) path.push(stack[i] as Buffer);
    return path;
  }

  /** RFC 6962 2.1.2 PROOF(oldSize, D[0:newSize]): proof that the older tree is a prefix of the newer. */
  consistencyProof(oldSize: number, newSize = this.leaves.length): Buffer[] {
    checkSize(newSize, this.leaves.length);
    if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > newSize) {
      throw new RangeError(`no consistency proof from ${oldSize} to ${newSize} leaves`);
    }
    if (oldSize === 0 || oldSize === newSize) return [];
    const proof: Buffer[] = [];
    let lo = 0;
    let hi = newSize;
    let m = oldSize;
    let complete = true;
    const stack: Buffer[] = [];
    while (m !== hi - lo) {
      const k = split(hi - lo);
      if (m <= k) {
        stack.push(this.range(lo + k, hi));
        hi = lo + k;
      } else {
        stack.push(this.range(lo, lo + k));
        lo += k;
        m -= k;
        complete = false;
      }
    }
    // SUBPROOF(m, D[m], b): nothing when the old tree is this whole subtree and b is true, else its hash.
    if (!complete) proof.push(this.range(lo, hi));
    for (let i = stack.length - 1; i >= 0; i--) proof.push(stack[i] as Buffer);
    return proof;
  }

  private range(lo: number, hi: number): Buffer {
    if (hi - lo === 1) return this.leaves[lo] as Buffer;
    const key = `${lo}:${hi}`;
    const known = this.memo.get(key);
    if (known) return known;
    const k = split(hi - lo);
    const hash = nodeHash(this.range(lo, lo + k), this.range(lo + k, hi));
    this.memo.set(key, hash);
    return hash;
  }
}

function checkSize(size: number, available: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > available) {
    throw new RangeError(`tree size ${size} is outside 0..${available}`);
  }
}

/**
 * RFC 6962 tree state as its compact range: the roots of the perfect subtrees that make up the first `size`
 * leaves, largest first (at most 64). Appending a leaf and computing the root cost O(log n), so the audit log
 * can sign checkpoints and a verifier can check them while streaming, without holding every leaf.
 */
export class CompactRange {
  private readonly nodes: Buffer[];

  constructor(
    private count = 0,
    nodes: readonly Buffer[] = [],
  ) {
    if (!Number.isSafeInteger(count) || count < 0 || popcount(count) !== nodes.length) {
      throw new RangeError(
        `a compact range of ${count} leaves has ${popcount(count)} nodes, not ${nodes.length}`,
      );
    }
    if (!nodes.every((n) => n.length === 32)) throw new RangeError('compact range nodes are 32-byte hashes');
    this.nodes = [...nodes];
  }

  get size(): number {
    return this.count;
  }

  /** The subtree roots, largest (leftmost) first. */
  get hashes(): readonly Buffer[] {
    return this.nodes;
  }

  /** RFC 6962 2.1: adding leaf hash `leaf` merges every completed pair of equal subtrees. */
  append(leaf: Buffer): void {
    let node = leaf;
    for (let n = this.count; isOdd(n); n = half(n)) node = nodeHash(this.nodes.pop() as Buffer, node);
    this.nodes.push(node);
    this.count++;
  }

  /** MTH of the leaves so far: the subtree roots folded right to left. */
  root(): Buffer {
    if (this.nodes.length === 0) return EMPTY_ROOT;
    let r = this.nodes[this.nodes.length - 1] as Buffer;
    for (let i = this.nodes.length - 2; i >= 0; i--) r = nodeHash(this.nodes[i] as Buffer, r);
    return r;
  }

  clone(): CompactRange {
    return new CompactRange(this.count, this.nodes);
  }
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) c += x % 2;
  return c;
}

const isOdd = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

/** RFC 9162 2.1.3.2: does `proof` show that `leaf` is entry `index` of the tree of `treeSize` with `root`? */
export function verifyInclusion(
  leaf: Buffer,
  index: number,
  treeSize: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize)
    return false;
  if (!wellFormed(proof) || leaf.length !== 32 || root.length !== 32) return false;
  let r = leaf;
  const sn = climb(index, treeSize - 1, proof, (p, onLeft) => {
    r = onLeft ? nodeHash(p, r) : nodeHash(r, p);
  });
  return sn === 0 && r.equals(root);
}

/** RFC 9162 2.1.4.2: does `proof` show that the tree of `oldSize` (`oldRoot`) is a prefix of `newSize` (`newRoot`)? */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: readonly Buffer[],
  oldRoot: Buffer,
  newRoot: Buffer,
): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize)
    return false;
  if (!wellFormed(proof) || oldRoot.length !== 32 || newRoot.length !== 32) return false;
  if (oldSize === newSize) return proof.length === 0 && oldRoot.equals(newRoot);
  if (oldSize === 0) return proof.length === 0 && oldRoot.equals(EMPTY_ROOT);
  if (proof.length === 0) return false;
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Buffer;
  let sr = path[0] as Buffer;
  const end = climb(fn, sn, path.slice(1), (c, onLeft) => {
    if (onLeft) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
    } else {
      sr = nodeHash(sr, c);
    }
  });
  return end === 0 && fr.equals(oldRoot) && sr.equals(newRoot);
}

/**
 * The walk both RFC 9162 verifications share: for each path element, whether it is the left sibling
 * (`onLeft`) of what has been computed so far, with `fn` and `sn` shifted as the RFC prescribes. Returns the
 * final `sn` (0 for a well-formed proof), or -1 when the path is longer than the tree allows.
 */
function climb(
  fn: number,
  sn: number,
  path: readonly Buffer[],
  step: (c: Buffer, onLeft: boolean) => void,
): number {
  for (const c of path) {
    if (sn === 0) return -1;
    if (isOdd(fn) || fn === sn) {
      step(c, true);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      step(c, false);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n));
}

function wellFormed(proof: readonly Buffer[]): boolean {
  return proof.length <= 64 && proof.every((p) => Buffer.isBuffer(p) && p.length === 32);
}
