import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MerkleTree, leafHash } from '../../src/audit/merkle-tree.js';
import {
  formatCheckpoint,
  formatVerifierKey,
  generateNoteKey,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from '../../src/audit/signed-note.js';

const go = JSON.parse(
  readFileSync(new URL('../fixtures/audit/signed-note-vectors.json', import.meta.url), 'utf8'),
) as {
  signerKey: string;
  verifierKey: string;
  text: string;
  note: string;
};

describe('signed-note (C2SP) against the Go reference vector', () => {
  it('signs the reference text to the published note byte for byte (Ed25519 is deterministic)', () => {
    expect(signNote(go.text, parseSignerKey(go.signerKey))).toBe(go.note);
  });

  it('opens the published note with the published verifier key', () => {
    expect(openNote(go.note, [parseVerifierKey(go.verifierKey)])).toEqual({
      text: go.text,
      signedBy: ['PeterNeumann'],
    });
  });

  it('rejects an edited text, an edited signature, and a note with no known signer', () => {
    const verifier = parseVerifierKey(go.verifierKey);
    expect(() => openNote(go.note.replace('cryptography', 'cryptographY'), [verifier])).toThrow(
      /does not verify/,
    );
    expect(() => openNote(go.note.replace('x08go', 'x08gp'), [verifier])).toThrow();
    const other = parseVerifierKey(generateNoteKey('Mallory').verifierKey);
    expect(() => openNote(go.note, [other])).toThrow(/no signature by a known key/);
  });

  it('refuses mangled keys: a wrong key id, a truncated key, a wrong algorithm', () => {
    expect(() => parseVerifierKey(go.verifierKey.replace('c74f20a3', 'c74f20a4'))).toThrow();
    expect(() => parseVerifierKey(go.verifierKey.slice(0, -2))).toThrow();
    expect(() => parseVerifierKey(go.verifierKey.replace('+AR', '+Ar'))).toThrow();
    expect(() =>
      parseVerifierKey(`Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW`),
    ).toThrow();
    expect(() => parseSignerKey(go.signerKey.replace('PRIVATE+KEY', 'PUBLIC+KEY'))).toThrow();
  });

  it('a signature line cannot be moved to another key name', () => {
    const moved = go.note.replace('— PeterNeumann', '— PeterNeumann2');
    expect(() => openNote(moved, [parseVerifierKey(go.verifierKey)])).toThrow(/no signature by a known key/);
  });
});

describe('tlog-checkpoint bodies', () => {
  it('round-trips a signed checkpoint over a Merkle root', () => {
    const tree = new MerkleTree(['a', 'b', 'c'].map((s) => leafHash(Buffer.from(s))));
    const key = generateNoteKey('strongroom.example/audit');
    const body = formatCheckpoint({
      origin: 'strongroom.example/audit',
      size: 3,
      root: tree.root(),
      extensions: [],
    });
    expect(body).toBe(`strongroom.example/audit\n3\n${tree.root().toString('base64')}\n`);
    const note = signNote(body, parseSignerKey(key.signerKey));
    const opened = openNote(note, [parseVerifierKey(key.verifierKey)]);
    const checkpoint = parseCheckpoint(opened.text);
    expect(checkpoint.size).toBe(3);
    expect(checkpoint.root.equals(tree.root())).toBe(true);
  });

  it('refuses malformed checkpoints', () => {
    const root = Buffer.alloc(32, 7).toString('base64');
    for (const bad of [
      `o\n01\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1\n${root}`,
      `o\n1\nAAAA\n`,
      `\n1\n${root}\n`,
      `o\n1\n`,
    ]) {
      expect(() => parseCheckpoint(bad), JSON.stringify(bad)).toThrow();
    }
  });
});

describe('verifier key formatting', () => {
  it('formats the verifier key that generateNoteKey printed, from the parsed signer key', () => {
    const { signerKey, verifierKey } = generateNoteKey('example.com/log');
    expect(formatVerifierKey(parseSignerKey(signerKey))).toBe(verifierKey);
    expect(formatVerifierKey(parseVerifierKey(verifierKey))).toBe(verifierKey);
  });
});
