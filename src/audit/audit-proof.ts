import { StrongroomError, isStrongroomError } from '../core/errors.js';
import type { AuditEvent } from './audit-event.js';
import { isHexHash, recordHashes, type ChainedRecord } from './hash-chain.js';
import { EMPTY_ROOT, verifyConsistency, verifyInclusion, type MerkleTree } from './merkle-tree.js';
import {
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  type Checkpoint,
  type NoteVerifier,
} from './signed-note.js';

/**
 * Inclusion and consistency proofs as the server returns them and `strongroom audit` checks them (DESIGN.md
 * section 5, threats H2 and H4). Each proof carries the C2SP checkpoint it is against, so a verifier needs the
 * log's verifier key and nothing else: the signature binds origin, size and root, and RFC 9162 binds the path
 * to that root. Hashes are lowercase hex SHA-256; paths are in RFC 9162 order (from the leaf or the old tree
 * upward), exactly as `MerkleTree` produces them.
 */

/** A signed checkpoint note together with the tree size it signs, as the server stores it. */
export interface SignedCheckpoint {
  readonly size: number;
  readonly note: string;
}

/** RFC 9162 2.1.3: event `seq` is leaf `seq - 1` of the tree of `treeSize` leaves that `checkpoint` signs. */
export interface InclusionProof {
  readonly seq: number;
  /** Equals the size in `checkpoint`. */
  readonly treeSize: number;
  /** RFC 6962 leaf hash of the event: SHA-256(0x00 || RFC 8785 canonical JSON of the event). */
  readonly leafHash: string;
  /** The audit path PATH(seq - 1, D[0:treeSize]), from the leaf's sibling upward. */
  readonly path: readonly string[];
  /** C2SP tlog-checkpoint signed note for `treeSize`. */
  readonly checkpoint: string;
  /** The event itself, when the server sends it: the verifier then recomputes the leaf from its content. */
  readonly event?: AuditEvent;
}

/** RFC 9162 2.1.4: the tree of `oldSize` leaves is a prefix of the tree of `newSize` leaves. */
export interface ConsistencyProof {
  readonly oldSize: number;
  readonly newSize: number;
  /** PROOF(oldSize, D[0:newSize]); empty when oldSize is 0 or equals newSize. */
  readonly path: readonly string[];
  /**
   * The server's checkpoint for `oldSize`, optional. A checkpoint the caller kept can be placed here too; one
   * the server supplies proves only what the key holder asserts (H2), so callers anchor on their own copy.
   */
  readonly oldCheckpoint?: string;
  /** C2SP tlog-checkpoint signed note for `newSize`. */
  readonly newCheckpoint: string;
}

export interface ProofRejected {
  readonly ok: false;
  readonly reason: string;
}

export type InclusionVerdict =
  | {
      readonly ok: true;
      readonly origin: string;
      readonly seq: number;
      readonly treeSize: number;
      /** Hex root of the signed checkpoint. */
      readonly root: string;
      /** Whether an event's content was hashed and matched, rather than a bare leaf hash. */
      readonly eventChecked: boolean;
    }
  | ProofRejected;

export type ConsistencyVerdict =
  | {
      readonly ok: true;
      readonly origin: string;
      readonly oldSize: number;
      readonly newSize: number;
      readonly oldRoot: string;
      readonly newRoot: string;
      /** Where the old root came from: the caller's argument, the proof's signed old checkpoint, or size 0. */
      readonly oldRootFrom: 'argument' | 'checkpoint' | 'empty tree';
    }
  | ProofRejected;

export type CheckpointVerdict = { readonly ok: true; readonly checkpoint: Checkpoint } | ProofRejected;

const hex = (b: Buffer): string => b.toString('hex');
const MAX_PATH = 64;

/**
 * C2SP signed-note and tlog-checkpoint (threat H2): the checkpoint a note carries, once a signature by
 * `verifier` checks out. Never throws on hostile input: every failure becomes a reason.
 */
export function openCheckpoint(note: string, verifier: NoteVerifier): CheckpointVerdict {
  if (typeof note !== 'string') return { ok: false, reason: 'the checkpoint is not a signed note' };
  try {
    return { ok: true, checkpoint: parseCheckpoint(openNote(note, [verifier]).text) };
  } catch (err) {
    return { ok: false, reason: isStrongroomError(err) ? err.message : 'the checkpoint cannot be opened' };
  }
}

/**
 * Parse-don't-validate edge for an inclusion proof received as JSON (threat H4): exact keys, integer sizes,
 * lowercase hex hashes, a path no longer than a 2^64 tree allows. Throws `invalid_request`.
 */
export function parseInclusionProof(value: unknown): InclusionProof {
  const p = exact(value, 'inclusion proof', ['seq', 'treeSize', 'leafHash', 'path', 'checkpoint'], ['event']);
  const seq = count(p.seq, 1, 'inclusion proof seq');
  const treeSize = count(p.treeSize, seq, 'inclusion proof tree size');
  if (!isHexHash(p.leafHash)) throw malformed('inclusion proof leaf hash');
  const path = hashes(p.path, 'inclusion proof path');
  const checkpoint = text(p.checkpoint, 'inclusion proof checkpoint');
  const proof: InclusionProof = { seq, treeSize, leafHash: p.leafHash, path, checkpoint };
  if (p.event === undefined) return proof;
  return { ...proof, event: record(p.event, 'inclusion proof event') as unknown as AuditEvent };
}

/** Parse-don't-validate edge for a consistency proof received as JSON (threat H4). Throws `invalid_request`. */
export function parseConsistencyProof(value: unknown): ConsistencyProof {
  const p = exact(
    value,
    'consistency proof',
    ['oldSize', 'newSize', 'path', 'newCheckpoint'],
    ['oldCheckpoint'],
  );
  const oldSize = count(p.oldSize, 0, 'consistency proof old size');
  const newSize = count(p.newSize, oldSize, 'consistency proof new size');
  const path = hashes(p.path, 'consistency proof path');
  const newCheckpoint = text(p.newCheckpoint, 'consistency proof new checkpoint');
  const proof: ConsistencyProof = { oldSize, newSize, path, newCheckpoint };
  if (p.oldCheckpoint === undefined) return proof;
  return { ...proof, oldCheckpoint: text(p.oldCheckpoint, 'consistency proof old checkpoint') };
}

/**
 * RFC 9162 2.1.3.2 under a C2SP checkpoint (threats H1 and H4): the checkpoint is signed by `verifierKey`, its
 * size is the proof's tree size, the leaf is the event's (recomputed from `event` and from the proof's own
 * event when present), and the audit path leads from that leaf to the signed root. A malformed
 * `verifierKey` throws `invalid_request`; everything about the proof becomes a verdict.
 */
export function verifyInclusionProof(
  proof: InclusionProof,
  verifierKey: string,
  event?: AuditEvent,
): InclusionVerdict {
  const verifier = parseVerifierKey(verifierKey);
  const parsed = attempt(() => parseInclusionProof(proof));
  if (!parsed.ok) return parsed;
  const p = parsed.value;
  const opened = openCheckpoint(p.checkpoint, verifier);
  if (!opened.ok) return reject(`checkpoint: ${opened.reason}`);
  const cp = opened.checkpoint;
  if (cp.size !== p.treeSize) {
    return reject(`the proof is for a tree of ${p.treeSize} events, its checkpoint signs ${cp.size}`);
  }
  const leaf = Buffer.from(p.leafHash, 'hex');
  for (const candidate of [p.event, event]) {
    const mismatch = candidate === undefined ? undefined : eventMismatch(candidate, p.seq, leaf);
    if (mismatch !== undefined) return reject(mismatch);
  }
  const path = p.path.map((h) => Buffer.from(h, 'hex'));
  if (!verifyInclusion(leaf, p.seq - 1, p.treeSize, path, cp.root)) {
    return reject(`the audit path does not lead from event ${p.seq} to the root of checkpoint ${cp.size}`);
  }
  return {
    ok: true,
    origin: cp.origin,
    seq: p.seq,
    treeSize: p.treeSize,
    root: hex(cp.root),
    eventChecked: p.event !== undefined || event !== undefined,
  };
}

/**
 * RFC 9162 2.1.4.2 under C2SP checkpoints (threats H2 and H4): the new checkpoint is signed by `verifierKey`
 * and signs `newSize`; the old root is `oldRoot` (hex or bytes, from a checkpoint the caller kept) and/or the
 * proof's signed old checkpoint for `oldSize` of the same origin (the two must agree); and the path proves the
 * old tree a prefix of the new. Without either, only an old size of 0 can be checked. A malformed
 * `verifierKey` throws `invalid_request`; everything about the proof becomes a verdict.
 */
export function verifyConsistencyProof(
  proof: ConsistencyProof,
  verifierKey: string,
  oldRoot?: string | Buffer,
): ConsistencyVerdict {
  const verifier = parseVerifierKey(verifierKey);
  const parsed = attempt(() => parseConsistencyProof(proof));
  if (!parsed.ok) return parsed;
  const p = parsed.value;
  const opened = openCheckpoint(p.newCheckpoint, verifier);
  if (!opened.ok) return reject(`new checkpoint: ${opened.reason}`);
  const cp = opened.checkpoint;
  if (cp.size !== p.newSize) {
    return reject(`the proof is for a new tree of ${p.newSize} events, its checkpoint signs ${cp.size}`);
  }
  const old = oldTreeRoot(p, verifier, cp.origin, oldRoot);
  if (!old.ok) return old;
  const path = p.path.map((h) => Buffer.from(h, 'hex'));
  if (!verifyConsistency(p.oldSize, p.newSize, path, old.root, cp.root)) {
    return reject(`the tree of ${p.oldSize} events is not proven a prefix of the tree of ${p.newSize}`);
  }
  return {
    ok: true,
    origin: cp.origin,
    oldSize: p.oldSize,
    newSize: p.newSize,
    oldRoot: hex(old.root),
    newRoot: hex(cp.root),
    oldRootFrom: old.from,
  };
}

/**
 * RFC 9162 2.1.3.1 for the server: the proof that event `seq` is in the tree `checkpoint` signs. With `event`,
 * the stored event is checked against the stored leaf first (an `integrity_error` if they differ) and sent
 * along, so the client recomputes the leaf itself.
 */
export function buildInclusionProof(
  tree: MerkleTree,
  seq: number,
  checkpoint: SignedCheckpoint,
  event?: AuditEvent,
): InclusionProof {
  const leaf = tree.leaf(seq - 1);
  const path = tree.inclusionProof(seq - 1, checkpoint.size).map(hex);
  const proof: InclusionProof = {
    seq,
    treeSize: checkpoint.size,
    leafHash: hex(leaf),
    path,
    checkpoint: checkpoint.note,
  };
  if (event === undefined) return proof;
  if (eventMismatch(event, seq, leaf) !== undefined) {
    throw new StrongroomError('integrity_error', `stored event ${seq} does not hash to its stored leaf`);
  }
  return { ...proof, event };
}

/**
 * RFC 9162 2.1.4.1 for the server: the proof that the tree of `old` leaves (a size, or a stored checkpoint to
 * send along) is a prefix of the tree `newCheckpoint` signs.
 */
export function buildConsistencyProof(
  tree: MerkleTree,
  old: number | SignedCheckpoint,
  newCheckpoint: SignedCheckpoint,
): ConsistencyProof {
  const oldSize = typeof old === 'number' ? old : old.size;
  const proof: ConsistencyProof = {
    oldSize,
    newSize: newCheckpoint.size,
    path: tree.consistencyProof(oldSize, newCheckpoint.size).map(hex),
    newCheckpoint: newCheckpoint.note,
  };
  return typeof old === 'number' ? proof : { ...proof, oldCheckpoint: old.note };
}

type OldRoot = {
  readonly ok: true;
  readonly root: Buffer;
  readonly from: 'argument' | 'checkpoint' | 'empty tree';
};

function oldTreeRoot(
  p: ConsistencyProof,
  verifier: NoteVerifier,
  origin: string,
  given: string | Buffer | undefined,
): OldRoot | ProofRejected {
  const argument = given === undefined ? undefined : rootBytes(given);
  if (argument === null) return reject('the old root given is not a 32-byte hash');
  if (p.oldCheckpoint === undefined) {
    if (argument !== undefined) return { ok: true, root: argument, from: 'argument' };
    if (p.oldSize === 0) return { ok: true, root: EMPTY_ROOT, from: 'empty tree' };
    return reject('no old root to check against: pass the root of a checkpoint you kept');
  }
  const opened = openCheckpoint(p.oldCheckpoint, verifier);
  if (!opened.ok) return reject(`old checkpoint: ${opened.reason}`);
  const cp = opened.checkpoint;
  if (cp.size !== p.oldSize) {
    return reject(`the proof is for an old tree of ${p.oldSize} events, its checkpoint signs ${cp.size}`);
  }
  if (cp.origin !== origin) return reject('the old and new checkpoints are of different logs');
  if (argument !== undefined && !argument.equals(cp.root)) {
    return reject('the old root given differs from the old checkpoint');
  }
  return { ok: true, root: cp.root, from: argument === undefined ? 'checkpoint' : 'argument' };
}

function rootBytes(root: string | Buffer): Buffer | null {
  if (Buffer.isBuffer(root)) return root.length === 32 ? root : null;
  return isHexHash(root) ? Buffer.from(root, 'hex') : null;
}

function eventMismatch(event: unknown, seq: number, leaf: Buffer): string | undefined {
  if (typeof event !== 'object' || event === null || Array.isArray(event))
    return 'the event is not a JSON object';
  const claimed = (event as { seq?: unknown }).seq;
  if (claimed !== seq) return `the event has seq ${String(claimed)}, the proof is for ${seq}`;
  const computed = attempt(() => recordHashes(event as ChainedRecord).leaf);
  if (!computed.ok || !computed.value.equals(leaf))
    return `event ${seq} does not hash to the proof's leaf hash`;
  return undefined;
}

function reject(reason: string): ProofRejected {
  return { ok: false, reason };
}

function attempt<T>(f: () => T): { readonly ok: true; readonly value: T } | ProofRejected {
  try {
    return { ok: true, value: f() };
  } catch (err) {
    if (isStrongroomError(err)) return reject(err.message);
    throw err;
  }
}

function malformed(what: string): StrongroomError {
  return new StrongroomError('invalid_request', `malformed ${what}`);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(what);
  return value as Record<string, unknown>;
}

/** Exact keys: an unknown field could carry content nobody verified. */
function exact(
  value: unknown,
  what: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Record<string, unknown> {
  const r = record(value, what);
  const keys = Object.keys(r);
  const known = [...required, ...optional];
  if (!required.every((k) => keys.includes(k)) || !keys.every((k) => known.includes(k)))
    throw malformed(what);
  return r;
}

function count(value: unknown, min: number, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw malformed(what);
  return value;
}

function hashes(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length > MAX_PATH || !value.every(isHexHash)) throw malformed(what);
  return [...value];
}

function text(value: unknown, what: string): string {
  if (typeof value !== 'string') throw malformed(what);
  return value;
}
