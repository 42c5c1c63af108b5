import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { StrongroomError, quote } from '../core/errors.js';

/**
 * C2SP signed-note (the format of Go's golang.org/x/mod/sumdb/note) with Ed25519 keys, and the C2SP
 * tlog-checkpoint body carried in it: the form in which the audit log's signed tree heads leave the server, so
 * truncation or re-chaining is caught against a copy kept elsewhere (DESIGN.md section 5, threat H2).
 */

const ALG_ED25519 = 0x01;
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const EM_DASH = '\u2014';
const NAME = /^[^\s+]+$/;

export interface NoteVerifier {
  readonly name: string;
  /** First 4 bytes of SHA-256(name || "\n" || 0x01 || public key). */
  readonly keyId: Buffer;
  readonly publicKey: KeyObject;
}

export interface NoteSigner extends NoteVerifier {
  readonly privateKey: KeyObject;
}

/** signed-note key hash: binds a key to its name, so a signature cannot be moved to another name (C2SP). */
export function noteKeyId(name: string, rawPublicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from(`${name}\n`, 'utf8'))
    .update(Buffer.of(ALG_ED25519))
    .update(rawPublicKey)
    .digest()
    .subarray(0, 4);
}

function invalid(what: string): StrongroomError {
  return new StrongroomError('invalid_request', `malformed ${what}`);
}

function fields(text: string, count: number, what: string): string[] {
  // The base64 key material may itself contain '+', so only the first count - 1 separators split.
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < count - 1; i++) {
    const at = rest.indexOf('+');
    if (at < 0) throw invalid(what);
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  parts.push(rest);
  return parts;
}

function keyMaterial(b64: string, what: string): Buffer {
  const raw = Buffer.from(b64, 'base64');
  if (raw.toString('base64') !== b64 || raw.length !== 33 || raw[0] !== ALG_ED25519) throw invalid(what);
  return raw.subarray(1);
}

/** Parses a verifier key `name+hexkeyid+base64(0x01 || Ed25519 public key)` (signed-note). */
export function parseVerifierKey(vkey: string): NoteVerifier {
  const [name = '', hash = '', b64 = ''] = fields(vkey, 3, 'verifier key');
  if (!NAME.test(name) || !/^[0-9a-f]{8}$/.test(hash)) throw invalid('verifier key');
  const raw = keyMaterial(b64, 'verifier key');
  const keyId = noteKeyId(name, raw);
  if (keyId.toString('hex') !== hash) throw invalid('verifier key (key id does not match)');
  return {
    name,
    keyId,
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' }),
  };
}

/** Parses a signer key `PRIVATE+KEY+name+hexkeyid+base64(0x01 || Ed25519 seed)` (signed-note). */
export function parseSignerKey(skey: string): NoteSigner {
  const [p, k, name = '', hash = '', b64 = ''] = fields(skey, 5, 'signer key');
  if (p !== 'PRIVATE' || k !== 'KEY' || !NAME.test(name) || !/^[0-9a-f]{8}$/.test(hash))
    throw invalid('signer key');
  const seed = keyMaterial(b64, 'signer key');
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const publicKey = createPublicKey(privateKey);
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const keyId = noteKeyId(name, raw);
  if (keyId.toString('hex') !== hash) throw invalid('signer key (key id does not match)');
  return { name, keyId, publicKey, privateKey };
}

/** A new Ed25519 note key for `name`, as the signer and verifier key strings of signed-note. */
export function generateNoteKey(name: string): { signerKey: string; verifierKey: string } {
  if (!NAME.test(name)) throw invalid('key name');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_ED25519.length);
  const hash = noteKeyId(name, raw).toString('hex');
  const material = (key: Buffer) => Buffer.concat([Buffer.of(ALG_ED25519), key]).toString('base64');
  return {
    signerKey: `PRIVATE+KEY+${name}+${hash}+${material(seed)}`,
    verifierKey: `${name}+${hash}+${material(raw)}`,
  };
}

/** The C2SP verifier key string (`name+hash+base64`) of a key, to publish beside its checkpoints. */
export function formatVerifierKey(key: NoteVerifier): string {
  const raw = key.publicKey.export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length);
  const material = Buffer.concat([Buffer.of(ALG_ED25519), raw]).toString('base64');
  return `${key.name}+${key.keyId.toString('hex')}+${material}`;
}

/** signed-note: the text (ending in a newline, without blank lines) followed by a blank line and a signature line. */
export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  const blob = Buffer.concat([signer.keyId, signature]).toString('base64');
  return `${text}\n${EM_DASH} ${signer.name} ${blob}\n`;
}

// Control characters other than newline have no place in a note's text (signed-note).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f]/;

function checkText(text: string): void {
  if (text === '' || !text.endsWith('\n') || text.includes('\n\n') || CONTROL.test(text)) {
    throw invalid('note text');
  }
}

/**
 * Opens a signed note: returns its text when at least one signature by a known verifier checks out. Unknown
 * signers are ignored (a note may carry witnesses' cosignatures); a known key with a bad signature fails.
 */
export function openNote(
  note: string,
  verifiers: readonly NoteVerifier[],
): { text: string; signedBy: string[] } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw invalid('signed note');
  const text = note.slice(0, split + 1);
  checkText(text);
  const lines = note.slice(split + 2, -1).split('\n');
  const signedBy: string[] = [];
  for (const line of lines) {
    const match = new RegExp(`^${EM_DASH} (\\S+) ([A-Za-z0-9+/]+=*)$`).exec(line);
    if (!match) throw invalid('signature line');
    const [, name = '', b64 = ''] = match;
    const blob = Buffer.from(b64, 'base64');
    if (blob.length < 5) throw invalid('signature line');
    const keyId = blob.subarray(0, 4);
    const known = verifiers.find((v) => v.name === name && v.keyId.equals(keyId));
    if (!known) continue;
    if (!verify(null, Buffer.from(text, 'utf8'), known.publicKey, blob.subarray(4))) {
      throw new StrongroomError('integrity_error', `the signature by ${quote(name)} does not verify`);
    }
    signedBy.push(name);
  }
  if (signedBy.length === 0)
    throw new StrongroomError('integrity_error', 'the note has no signature by a known key');
  return { text, signedBy };
}

export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
  /** Extension lines after the root, kept verbatim. */
  readonly extensions: readonly string[];
}

/** C2SP tlog-checkpoint body: origin, decimal tree size, base64 root hash, optional extension lines. */
export function formatCheckpoint(c: Checkpoint): string {
  if (!/^[^\s]+$/.test(c.origin) || !Number.isSafeInteger(c.size) || c.size < 0 || c.root.length !== 32) {
    throw invalid('checkpoint');
  }
  return [c.origin, String(c.size), c.root.toString('base64'), ...c.extensions].join('\n') + '\n';
}

/** Parses a tlog-checkpoint body (the text of an opened note). */
export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.length < 3) throw invalid('checkpoint');
  const [origin = '', sizeText = '', rootText = '', ...extensions] = lines;
  const root = Buffer.from(rootText, 'base64');
  if (
    origin === '' ||
    !/^(0|[1-9][0-9]*)$/.test(sizeText) ||
    root.length !== 32 ||
    root.toString('base64') !== rootText
  ) {
    throw invalid('checkpoint');
  }
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw invalid('checkpoint');
  return { origin, size, root, extensions };
}
