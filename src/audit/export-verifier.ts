import { isStrongroomError, quote } from '../core/errors.js';
import { AUDIT_EVENT_VERSION } from './audit-event.js';
import { AUDIT_EXPORT_FORMAT, type AuditExportBase, type AuditExportHeader } from './audit-export.js';
import { openCheckpoint } from './audit-proof.js';
import { canonicalJson } from './canonical-json.js';
import { ChainVerifier, GENESIS_HASH, isHexHash, type ChainStep, type ChainedRecord } from './hash-chain.js';
import { CompactRange } from './merkle-tree.js';
import { parseVerifierKey, type NoteVerifier } from './signed-note.js';

/**
 * `strongroom audit verify`: offline verification of an export (audit-export.ts) while it streams, in memory
 * O(log n) plus the current line (DESIGN.md section 5, threats H1 and H2). Every failure names the first bad
 * position as precisely as the evidence allows; docs/audit-format.md explains each code.
 */

/** Why an export fails verification; docs/audit-format.md lists the same codes (a test keeps them in sync). */
export const EXPORT_FAILURES = {
  malformed_line:
    'a line is not JSON, not one of the line kinds, or lacks the fields of its kind (a torn or cut write)',
  bad_header: 'the first line is not a valid header: format, origin, verifier key or base',
  unknown_version: 'an event has a format version this verifier does not know',
  sequence_break: 'an event is missing, moved or inserted: its seq is not the next one',
  chain_break: 'an event does not hash to the prevHash recorded by the event after it: it was edited',
  bad_checkpoint: 'a checkpoint line is not signed by the key, is of another log, or is out of place',
  root_mismatch:
    'a validly signed checkpoint disagrees with the events before it: they were rewritten after it was signed',
  trusted_mismatch:
    'a trusted checkpoint disagrees with the export at its size: the log was rewritten with the key, or forked',
  truncated: 'a trusted checkpoint is larger than the export: events are missing from its end',
  previous_mismatch: 'the export does not start where the archive before it ends',
  bad_trusted_checkpoint: 'a trusted checkpoint is not signed by the key or is of another log',
} as const;

export type ExportFailure = keyof typeof EXPORT_FAILURES;

export interface VerifyExportOptions {
  /** The log's verifier key from a source other than the export; without it the header's key is used. */
  readonly verifierKey?: string | undefined;
  /** Signed checkpoint notes kept outside the server (threat H2). */
  readonly trustedCheckpoints?: readonly string[] | undefined;
  /** The end state of the archive that should precede this export (`end` of its verdict). */
  readonly previous?: AuditExportBase | undefined;
}

export interface ExportVerified {
  readonly ok: true;
  readonly origin: string;
  /** `export` when the key came from the export's own header: self-asserted, so the CLI warns. */
  readonly keySource: 'option' | 'export';
  /** The seq of the first event (base.size + 1); `first > last` when the export holds no event. */
  readonly first: number;
  readonly last: number;
  readonly events: number;
  /** Checkpoint lines verified. */
  readonly checkpoints: number;
  readonly lastCheckpoint: { readonly size: number; readonly root: string; readonly note: string } | null;
  /**
   * Events after the last signed checkpoint that matched (a checkpoint line or a trusted checkpoint). The server
   * signs every N events or T seconds, so a live export may end a little after its last checkpoint; those
   * events are chained but no signature covers them yet.
   */
  readonly uncheckpointedTail: number;
  /** Trusted checkpoints that matched the export. */
  readonly trusted: number;
  /** Trusted checkpoints below the export's base: this export cannot check them (they are not passing). */
  readonly unchecked: readonly { readonly index: number; readonly size: number }[];
  /** The state after the last event: pass it as `previous` when verifying the export that follows. */
  readonly end: AuditExportBase;
}

export interface ExportRejected {
  readonly ok: false;
  readonly code: ExportFailure;
  /**
   * The first bad seq the evidence shows; for a checkpoint line that fails on its own, its size; 0 for the
   * header itself.
   */
  readonly position: number;
  /** 1-based line of the event or checkpoint at fault (for a range, the line that exposed it). */
  readonly line: number;
  readonly reason: string;
  /** When only a range is known, (after, upTo]: some event in it is not what the checkpoint signed. */
  readonly range?: { readonly after: number; readonly upTo: number };
  /** The index in `trustedCheckpoints` of the trusted checkpoint involved. */
  readonly trustedIndex?: number;
}

export type ExportVerdict = ExportVerified | ExportRejected;

/**
 * Threats H1 and H2: verifies an export line by line (each line with or without its newline; a final empty
 * line is allowed). Checks the header, every event's version, seq and chain link, folds each event's leaf into a
 * compact range, checks each checkpoint line's signature, origin, place and root, compares trusted
 * checkpoints with the root at their size, and `previous` with the base. A malformed `options.verifierKey`
 * throws `invalid_request`; everything about the export becomes the verdict.
 */
export async function verifyExport(
  lines: AsyncIterable<string> | Iterable<string>,
  options: VerifyExportOptions = {},
): Promise<ExportVerdict> {
  const override = options.verifierKey === undefined ? undefined : parseVerifierKey(options.verifierKey);
  let reader: ExportReader | undefined;
  let lineNo = 0;
  let blankAt = 0;
  for await (const raw of lines) {
    lineNo++;
    // Lines may come with their newline (as the server's export generator yields them) or without.
    const line = raw.endsWith('\n') ? raw.slice(0, raw.endsWith('\r\n') ? -2 : -1) : raw;
    if (blankAt > 0) {
      // Only the last line may be empty.
      if (reader === undefined) return rejected('bad_header', 0, 1, 'the first line is empty');
      return reader.read('', blankAt) ?? rejected('malformed_line', reader.nextSeq, blankAt, 'an empty line');
    }
    if (line === '') {
      blankAt = lineNo;
    } else if (reader === undefined) {
      const started = ExportReader.start(line, override, options);
      if (!(started instanceof ExportReader)) return started;
      reader = started;
    } else {
      const failure = reader.read(line, lineNo);
      if (failure) return failure;
    }
  }
  if (reader === undefined) return rejected('bad_header', 0, 1, 'the export has no header');
  return reader.finish(blankAt > 0 ? blankAt : lineNo + 1);
}

interface Trusted {
  readonly index: number;
  readonly size: number;
  readonly root: Buffer;
}

type Line =
  | { readonly kind: 'header' }
  | {
      readonly kind: 'event';
      readonly event: Record<string, unknown>;
      /** The event's text when the line is exactly `{"kind":"event","event":TEXT}`; undefined otherwise. */
      readonly text: string | undefined;
    }
  | { readonly kind: 'checkpoint'; readonly note: string };

const hex = (b: Buffer): string => b.toString('hex');

/** The verifier's state between lines: a chain cursor, a compact range and what the verdict reports. */
class ExportReader {
  private readonly chain: ChainVerifier;
  private readonly range: CompactRange;
  private eventLine = 1;
  private checkpoints = 0;
  private lastCheckpoint: ExportVerified['lastCheckpoint'] = null;
  /** The largest size at which a trusted checkpoint matched (the base until one does). */
  private trustedThrough: number;
  private matched = 0;
  private nextTrusted = 0;
  /** A range failure held for one more event, which may name the exact event instead. */
  private pending: ExportRejected | undefined;

  private constructor(
    private readonly header: AuditExportHeader,
    private readonly verifier: NoteVerifier,
    private readonly keySource: 'option' | 'export',
    private readonly trusted: readonly Trusted[],
    private readonly unchecked: readonly { readonly index: number; readonly size: number }[],
  ) {
    const base = header.base;
    this.chain = new ChainVerifier({ seq: base.size + 1, prevHash: base.lastHash });
    this.range = new CompactRange(
      base.size,
      base.frontier.map((h) => Buffer.from(h, 'hex')),
    );
    this.trustedThrough = base.size;
  }

  /** Threat H2: the header, the key, `previous`, and the trusted checkpoints, before any event. */
  static start(
    line: string,
    override: NoteVerifier | undefined,
    options: VerifyExportOptions,
  ): ExportReader | ExportRejected {
    const header = parseHeader(line);
    if (typeof header === 'string') return rejected('bad_header', 0, 1, header);
    let verifier = override;
    if (verifier === undefined) {
      try {
        verifier = parseVerifierKey(header.verifierKey);
      } catch {
        return rejected('bad_header', 0, 1, "the header's verifier key is malformed");
      }
    }
    const previous = options.previous;
    if (previous !== undefined && !sameBase(previous, header.base)) {
      const reason = `the export does not continue the archive that ends at event ${previous.size}`;
      return rejected('previous_mismatch', previous.size + 1, 1, reason);
    }
    const trusted = openTrusted(options.trustedCheckpoints ?? [], verifier, header);
    if (!Array.isArray(trusted)) return trusted;
    const checkable = trusted.filter((t) => t.size >= header.base.size);
    const unchecked = trusted
      .filter((t) => t.size < header.base.size)
      .map(({ index, size }) => ({ index, size }));
    const reader = new ExportReader(header, verifier, override ? 'option' : 'export', checkable, unchecked);
    return reader.reached(1) ?? reader;
  }

  get nextSeq(): number {
    return this.chain.nextSeq;
  }

  read(text: string, lineNo: number): ExportRejected | undefined {
    const line = parseLine(text);
    if (this.pending) return this.settle(line, lineNo, this.pending);
    if (typeof line === 'string') return rejected('malformed_line', this.nextSeq, lineNo, line);
    if (line.kind === 'event') return this.event(line.event, line.text, lineNo);
    if (line.kind === 'checkpoint') return this.checkpoint(line.note, lineNo);
    return rejected('malformed_line', this.nextSeq, lineNo, 'a header may only be the first line');
  }

  finish(lineAfter: number): ExportVerdict {
    if (this.pending) return this.pending;
    const last = this.range.size;
    const beyond = this.trusted.at(-1);
    if (beyond !== undefined && beyond.size > last) {
      const reason = `the export ends at event ${last}, but a trusted checkpoint has ${beyond.size}: events ${last + 1} to ${beyond.size} are missing`;
      return rejected('truncated', last + 1, lineAfter, reason, {
        range: { after: last, upTo: beyond.size },
        trustedIndex: beyond.index,
      });
    }
    const base = this.header.base;
    return {
      ok: true,
      origin: this.header.origin,
      keySource: this.keySource,
      first: base.size + 1,
      last,
      events: this.chain.count,
      checkpoints: this.checkpoints,
      lastCheckpoint: this.lastCheckpoint,
      uncheckpointedTail: last - Math.max(this.lastCheckpoint?.size ?? base.size, this.trustedThrough),
      trusted: this.matched,
      unchecked: this.unchecked,
      end: { size: last, lastHash: this.chain.lastHash, frontier: this.range.hashes.map(hex) },
    };
  }

  /** Threat H1: version, seq, chain link and canonical form of one event, then its leaf joins the tree. */
  private event(
    event: Record<string, unknown>,
    text: string | undefined,
    lineNo: number,
  ): ExportRejected | undefined {
    const seq = this.nextSeq;
    if (event.v !== AUDIT_EVENT_VERSION) {
      const reason = `event ${seq} has format version ${quote(String(JSON.stringify(event.v)))}, not ${AUDIT_EVENT_VERSION}`;
      return rejected('unknown_version', seq, lineNo, reason);
    }
    if (!hasChainFields(event)) {
      return rejected('malformed_line', seq, lineNo, `event ${seq} lacks an integer seq or a hex prevHash`);
    }
    const step = canonicalStep(this.chain, event, text);
    if (typeof step === 'string') return rejected('malformed_line', seq, lineNo, `event ${seq} ${step}`);
    if (!step.ok) {
      const code = event.seq === seq ? 'chain_break' : 'sequence_break';
      return rejected(code, step.position, step.position < seq ? this.eventLine : lineNo, step.reason);
    }
    this.range.append(step.leaf);
    this.eventLine = lineNo;
    return this.reached(lineNo);
  }

  /** Threats H1 and H2: a checkpoint line is signed, of this log, in its place, and matches the events. */
  private checkpoint(note: string, lineNo: number): ExportRejected | undefined {
    const size = this.range.size;
    const opened = openCheckpoint(note, this.verifier);
    if (!opened.ok) {
      return rejected(
        'bad_checkpoint',
        size,
        lineNo,
        `the checkpoint after ${this.place()}: ${opened.reason}`,
      );
    }
    const cp = opened.checkpoint;
    if (cp.origin !== this.header.origin) {
      const reason = `the checkpoint at size ${cp.size} is of another log: ${quote(cp.origin)}`;
      return rejected('bad_checkpoint', cp.size, lineNo, reason);
    }
    if (cp.size !== size) {
      const reason = `the checkpoint for size ${cp.size} is out of place: it follows ${this.place()}`;
      return rejected('bad_checkpoint', cp.size, lineNo, reason);
    }
    if (this.lastCheckpoint !== null && this.lastCheckpoint.size >= size) {
      return rejected('bad_checkpoint', size, lineNo, `a second checkpoint for size ${size}`);
    }
    const root = this.range.root();
    if (!root.equals(cp.root)) {
      const after = Math.max(this.lastCheckpoint?.size ?? 0, this.trustedThrough);
      return this.mismatch('root_mismatch', after, lineNo, 'the checkpoint');
    }
    this.lastCheckpoint = { size, root: hex(root), note };
    this.checkpoints++;
    return undefined;
  }

  /** Threat H2: trusted checkpoints for the size just reached must match its root. */
  private reached(lineNo: number): ExportRejected | undefined {
    const size = this.range.size;
    for (let t = this.trusted[this.nextTrusted]; t?.size === size; t = this.trusted[++this.nextTrusted]) {
      if (!t.root.equals(this.range.root())) {
        return this.mismatch(
          'trusted_mismatch',
          this.trustedThrough,
          lineNo,
          'the trusted checkpoint',
          t.index,
        );
      }
      this.trustedThrough = size;
      this.matched++;
    }
    return undefined;
  }

  /**
   * A signed root differs from the events' root at the current size. At the base, the header's frontier is at
   * fault. Past it, some event in (after, size] differs; the failure waits for the next event, whose prevHash
   * names the exact event when only the last one in the range was edited.
   */
  private mismatch(
    code: 'root_mismatch' | 'trusted_mismatch',
    after: number,
    lineNo: number,
    what: string,
    trustedIndex?: number,
  ): ExportRejected | undefined {
    const size = this.range.size;
    const extra = trustedIndex === undefined ? {} : { trustedIndex };
    if (size === this.header.base.size) {
      const reason = `the header's base does not match ${what} at size ${size}`;
      return rejected(code, size, 1, reason, extra);
    }
    const reason =
      code === 'root_mismatch'
        ? `${what} at size ${size} does not match events ${after + 1} to ${size}: they were rewritten after it was signed`
        : `${what} at size ${size} does not match events ${after + 1} to ${size}: the log was rewritten with the key, or forked`;
    this.pending ??= rejected(code, after + 1, lineNo, reason, { ...extra, range: { after, upTo: size } });
    return undefined;
  }

  /** Resolves a held range failure: an exact chain break at its last event wins, anything else keeps it. */
  private settle(line: Line | string, lineNo: number, pending: ExportRejected): ExportRejected | undefined {
    if (typeof line === 'string' || line.kind === 'header') return pending;
    if (line.kind === 'checkpoint') return undefined;
    const failure = this.event(line.event, line.text, lineNo);
    return failure?.code === 'chain_break' ? failure : pending;
  }

  private place(): string {
    return this.range.size === this.header.base.size ? 'the header' : `event ${this.range.size}`;
  }
}

function rejected(
  code: ExportFailure,
  position: number,
  line: number,
  reason: string,
  extra: Pick<ExportRejected, 'range' | 'trustedIndex'> = {},
): ExportRejected {
  return { ok: false, code, position, line, reason, ...extra };
}

/**
 * The chain step over the event's bytes as written, which must be its canonical JSON: the hashes are of exactly
 * the text in the export, and a text that is not canonical (white space, another member order, a duplicate
 * member, another escape or number spelling) is refused even when it parses to the same event, so no two
 * readers can take one line for different events. A reason string for an event JSON cannot canonicalise (a
 * number like 1e400) or a text that is not canonical; a failed step wins, as it did before the form was checked,
 * and the step is final either way (any failure ends verification).
 */
function canonicalStep(
  chain: ChainVerifier,
  event: ChainedRecord,
  text: string | undefined,
): ChainStep | string {
  try {
    const step = chain.next(event, text);
    if (step.ok && (text === undefined || !isCanonicalText(text, event))) return NOT_CANONICAL;
    return step;
  } catch (err) {
    if (isStrongroomError(err)) return `cannot be canonicalised: ${err.message}`;
    throw err;
  }
}

/**
 * Whether `text`, which JSON.parse turned into `parsed`, is exactly `canonicalJson(parsed)`. For what JSON.parse
 * makes (plain objects, dense arrays, strings, numbers), JSON.stringify writes the canonical form whenever every
 * object lists its members in sorted order, and writes it natively as one flat string: cheaper than building
 * the canonical form piece by piece and flattening it to compare (about a tenth of verification). Anything else
 * (members named like array indices, which objects list first; a number beyond the double range, which parses
 * as Infinity) takes the full comparison, so the answer is always canonicalJson's.
 */
function isCanonicalText(text: string, parsed: unknown): boolean {
  if (membersSorted(parsed) && JSON.stringify(parsed) === text) return true;
  return canonicalJson(parsed) === text;
}

function membersSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(membersSorted);
  const object = value as Record<string, unknown>;
  const names = Object.keys(object);
  for (let i = 0; i < names.length; i++) {
    const name = names[i] as string;
    if (i > 0 && !((names[i - 1] as string) < name)) return false;
    if (!membersSorted(object[name])) return false;
  }
  return true;
}

const NOT_CANONICAL =
  'is not written as its RFC 8785 canonical JSON in a line of exactly {"kind":"event","event":EVENT}';

function openTrusted(
  notes: readonly string[],
  verifier: NoteVerifier,
  header: AuditExportHeader,
): Trusted[] | ExportRejected {
  const trusted: Trusted[] = [];
  for (const [index, note] of notes.entries()) {
    const opened = openCheckpoint(note, verifier);
    if (!opened.ok) {
      const reason = `trusted checkpoint ${index} does not verify: ${opened.reason}`;
      return rejected('bad_trusted_checkpoint', 0, 1, reason, { trustedIndex: index });
    }
    const { origin, size, root } = opened.checkpoint;
    if (origin !== header.origin) {
      const reason = `the trusted checkpoint at size ${size} is of another log: ${quote(origin)}`;
      return rejected('bad_trusted_checkpoint', size, 1, reason, { trustedIndex: index });
    }
    trusted.push({ index, size, root });
  }
  return trusted.sort((a, b) => a.size - b.size || a.index - b.index);
}

function sameBase(a: AuditExportBase, b: AuditExportBase): boolean {
  return (
    a.size === b.size &&
    a.lastHash === b.lastHash &&
    a.frontier.length === b.frontier.length &&
    a.frontier.every((h, i) => h === b.frontier[i])
  );
}

function hasChainFields(event: Record<string, unknown>): event is Record<string, unknown> & ChainedRecord {
  return typeof event.seq === 'number' && Number.isSafeInteger(event.seq) && isHexHash(event.prevHash);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Exactly these keys: an unknown field could carry content nobody verified. */
function hasKeys(value: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => own.includes(k));
}

/** JSON.parse, with undefined (which JSON cannot produce) for text that is not JSON. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const EVENT_LINE_START = '{"kind":"event","event":';

/**
 * One JSON line of the export; a string is the reason it is not one. An event line written as the server
 * writes it (almost all of an export) parses its event text alone, which it keeps for hashing; any other line
 * takes the general path, so its verdict does not depend on the shortcut.
 */
function parseLine(text: string): Line | string {
  if (text.startsWith(EVENT_LINE_START) && text.endsWith('}')) {
    const eventText = text.slice(EVENT_LINE_START.length, -1);
    const event = parseJson(eventText);
    if (isObject(event)) return { kind: 'event', event, text: eventText };
  }
  if (text === '') return 'an empty line inside the export';
  const value = parseJson(text);
  if (value === undefined) return 'the line is not JSON (a torn or cut write)';
  if (!isObject(value)) return 'the line is not a JSON object';
  if (value.kind === 'header') return { kind: 'header' };
  if (value.kind === 'event' && hasKeys(value, ['kind', 'event']) && isObject(value.event)) {
    return { kind: 'event', event: value.event, text: undefined };
  }
  if (value.kind === 'checkpoint' && hasKeys(value, ['kind', 'note']) && typeof value.note === 'string') {
    return { kind: 'checkpoint', note: value.note };
  }
  return `the line is not a well-formed ${typeof value.kind === 'string' ? quote(value.kind) : 'export'} line`;
}

/** The header line (audit-export.ts), or the reason it is not one. */
function parseHeader(text: string): AuditExportHeader | string {
  const value = parseJson(text);
  if (!isObject(value) || value.kind !== 'header') return 'the first line is not a header';
  if (!hasKeys(value, ['kind', 'format', 'origin', 'verifierKey', 'base', 'exportedAt'])) {
    return 'the header does not have exactly the fields of its format';
  }
  if (value.format !== AUDIT_EXPORT_FORMAT) return `unknown export format ${quote(String(value.format))}`;
  if (typeof value.origin !== 'string' || value.origin === '' || /\s/.test(value.origin)) {
    return 'the header has no valid origin';
  }
  if (typeof value.verifierKey !== 'string' || typeof value.exportedAt !== 'string') {
    return 'the header has no verifier key or export time';
  }
  const base = parseBase(value.base);
  if (typeof base === 'string') return base;
  return { ...(value as unknown as AuditExportHeader), base };
}

function parseBase(value: unknown): AuditExportBase | string {
  if (!isObject(value) || !hasKeys(value, ['size', 'lastHash', 'frontier']))
    return 'the header has no valid base';
  const { size, lastHash, frontier } = value;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    return 'the base size is not a count';
  if (!isHexHash(lastHash) || (size === 0 && lastHash !== GENESIS_HASH)) {
    return 'the base last hash is not a hex hash (64 zeros for an empty base)';
  }
  if (!Array.isArray(frontier) || !frontier.every(isHexHash))
    return 'the base frontier is not a list of hex hashes';
  try {
    new CompactRange(
      size,
      frontier.map((h) => Buffer.from(h, 'hex')),
    );
  } catch {
    return `the base frontier does not describe ${size} events`;
  }
  return { size, lastHash, frontier };
}
