import { createHash } from 'node:crypto';
import { AUDIT_EVENT_VERSION, type AuditEvent, type AuditEventBody } from '../../src/audit/audit-event.js';
import {
  AUDIT_EXPORT_FORMAT,
  type AuditExportBase,
  type AuditExportLine,
} from '../../src/audit/audit-export.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { GENESIS_HASH, recordHashes, type RecordHashes } from '../../src/audit/hash-chain.js';
import { CompactRange, MerkleTree, leafHash } from '../../src/audit/merkle-tree.js';
import {
  formatCheckpoint,
  generateNoteKey,
  parseSignerKey,
  signNote,
  type NoteSigner,
} from '../../src/audit/signed-note.js';

/**
 * Valid audit logs and exports for tests (audit-export.ts): chained events, checkpoints signed with a key
 * generated for the run, and the log's state at any size, so a test can tamper with one thing at a time.
 */

export const TEST_ORIGIN = 'audit.strongroom.test/log';

export interface LogKey {
  readonly signerKey: string;
  readonly verifierKey: string;
  readonly signer: NoteSigner;
}

export function logKey(name = TEST_ORIGIN): LogKey {
  const { signerKey, verifierKey } = generateNoteKey(name);
  return { signerKey, verifierKey, signer: parseSignerKey(signerKey) };
}

/** The key of the genuine test log, generated once per test file. */
export const LOG_KEY = logKey();

const ACTIONS = ['version:download', 'version:create', 'artifact:list', 'version:promote', 'token:create'];

/** A plausible event body for `seq`: actors, actions, outcomes and details vary with it. */
export function eventBody(seq: number): AuditEventBody {
  const failed = seq % 7 === 0;
  return {
    category: seq % 11 === 0 ? 'authentication' : 'api',
    actor: { id: `user-${seq % 5}`, type: 'user', authMethod: 'password+totp' },
    action: ACTIONS[seq % ACTIONS.length] as string,
    resource: `vision/resnet:1.0.${seq % 13}`,
    decision: { effect: failed ? 'deny' : 'allow', policies: [`policy-${seq % 3}`] },
    outcome: failed ? 'failed' : 'succeeded',
    errorCode: failed ? 'forbidden' : null,
    severity: failed ? 'warning' : 'info',
    request: {
      id: `req-${seq}`,
      method: 'GET',
      path: `/v1/projects/vision/artifacts/resnet/versions/1.0.${seq % 13}`,
      status: failed ? 403 : 200,
      clientAddress: '203.0.113.7',
      userAgent: 'strongroom-cli/0.1.0',
    },
    details: { bytes: seq * 1024, cached: seq % 2 === 0 },
  };
}

// Events are immutable here (tampering makes new objects), so their hashes can be remembered by identity.
const hashes = new WeakMap<AuditEvent, RecordHashes>();

/** The chain and leaf hashes of an event, computed once per event object. */
export function hashesOf(event: AuditEvent): RecordHashes {
  let known = hashes.get(event);
  if (known === undefined) {
    known = recordHashes(event);
    hashes.set(event, known);
  }
  return known;
}

/** A small body (a background action with no request), for logs where only the volume matters. */
export function systemEventBody(seq: number): AuditEventBody {
  return {
    category: 'system',
    actor: { id: null, type: 'system', authMethod: null },
    action: 'blob:verify',
    resource: `upload/${seq}`,
    decision: { effect: 'none', policies: [] },
    outcome: 'succeeded',
    errorCode: null,
    severity: 'info',
    request: null,
  };
}

/** The event `seq` with `body`, chained to `prevHash`. */
export function chainedEvent(
  seq: number,
  prevHash: string,
  body: AuditEventBody = eventBody(seq),
): AuditEvent {
  const time = new Date(Date.UTC(2025, 0, 1) + seq * 1000).toISOString();
  return { ...body, v: AUDIT_EVENT_VERSION, seq, time, prevHash };
}

/** `count` chained events after `start` (the genesis by default), produced lazily. */
export function* chainEvents(
  count: number,
  start: { readonly size: number; readonly lastHash: string } = { size: 0, lastHash: GENESIS_HASH },
  body: (seq: number) => AuditEventBody = eventBody,
): Generator<AuditEvent> {
  let prevHash = start.lastHash;
  for (let seq = start.size + 1; seq <= start.size + count; seq++) {
    const event = chainedEvent(seq, prevHash, body(seq));
    prevHash = hashesOf(event).hash;
    yield event;
  }
}

/** Recomputes every prevHash from the event before it: what someone rewriting the log without the key does. */
export function rechain(events: readonly AuditEvent[], prevHash = GENESIS_HASH): AuditEvent[] {
  let prev = prevHash;
  return events.map((e) => {
    const event = { ...e, prevHash: prev };
    prev = hashesOf(event).hash;
    return event;
  });
}

/** A C2SP checkpoint note for (origin, size, root). */
export function signCheckpoint(signer: NoteSigner, size: number, root: Buffer, origin = TEST_ORIGIN): string {
  return signNote(formatCheckpoint({ origin, size, root, extensions: [] }), signer);
}

export interface ExportOptions {
  /** The log before the first event; the empty log by default. */
  readonly base?: AuditExportBase;
  /** Sizes that get a checkpoint line (the base's size included); every 50 events by default. */
  readonly checkpointAt?: (size: number) => boolean;
  readonly key?: LogKey;
  /** The verifier key the header states; the signing key's by default. */
  readonly headerKey?: string;
  readonly origin?: string;
}

export const EMPTY_BASE: AuditExportBase = { size: 0, lastHash: GENESIS_HASH, frontier: [] };

/** An event line as the server writes it (audit-export.ts): the event's canonical JSON, the bytes that are hashed. */
export function eventLine(event: AuditEvent): string {
  return `{"kind":"event","event":${canonicalJson(event)}}`;
}

/** The lines of an export (audit-export.ts) of `events`, with checkpoints signed over those very events. */
export function* exportLines(events: Iterable<AuditEvent>, options: ExportOptions = {}): Generator<string> {
  const base = options.base ?? EMPTY_BASE;
  const key = options.key ?? LOG_KEY;
  const origin = options.origin ?? TEST_ORIGIN;
  const checkpointAt = options.checkpointAt ?? ((size: number) => size > 0 && size % 50 === 0);
  const range = new CompactRange(
    base.size,
    base.frontier.map((h) => Buffer.from(h, 'hex')),
  );
  const line = (l: AuditExportLine) => JSON.stringify(l);
  const checkpoint = () =>
    line({ kind: 'checkpoint', note: signCheckpoint(key.signer, range.size, range.root(), origin) });
  yield line({
    kind: 'header',
    format: AUDIT_EXPORT_FORMAT,
    origin,
    verifierKey: options.headerKey ?? key.verifierKey,
    base,
    exportedAt: '2025-01-02T00:00:00.000Z',
  });
  if (checkpointAt(range.size)) yield checkpoint();
  for (const event of events) {
    range.append(hashesOf(event).leaf);
    yield eventLine(event);
    if (checkpointAt(range.size)) yield checkpoint();
  }
}

/**
 * The export of `count` events with `systemEventBody` bodies, checkpoints every `every`, written the way the
 * server writes them (each event line embeds the stored canonical JSON) from a hand-written canonical form: fast
 * enough for volume tests. A wrong form would fail verification, which recomputes it with `canonicalJson`.
 */
export function* volumeExportLines(count: number, every: number, key: LogKey = LOG_KEY): Generator<string> {
  const range = new CompactRange();
  let prevHash = GENESIS_HASH;
  yield [...exportLines([], { key, checkpointAt: () => false })][0] as string;
  for (let seq = 1; seq <= count; seq++) {
    const time = new Date(Date.UTC(2025, 0, 1) + seq * 1000).toISOString();
    const canonical =
      '{"action":"blob:verify","actor":{"authMethod":null,"id":null,"type":"system"},"category":"system",' +
      '"decision":{"effect":"none","policies":[]},"errorCode":null,"outcome":"succeeded",' +
      `"prevHash":"${prevHash}","request":null,"resource":"upload/${seq}","seq":${seq},"severity":"info",` +
      `"time":"${time}","v":1}`;
    const bytes = Buffer.from(canonical, 'utf8');
    prevHash = createHash('sha256').update(bytes).digest('hex');
    range.append(leafHash(bytes));
    yield `{"kind":"event","event":${canonical}}`;
    if (seq % every === 0) {
      const note = signCheckpoint(key.signer, range.size, range.root());
      yield JSON.stringify({ kind: 'checkpoint', note } satisfies AuditExportLine);
    }
  }
}

/** A genuine log held in memory, with its full export and its state and signed checkpoint at any size. */
export class AuditLogFixture {
  readonly events: readonly AuditEvent[];
  readonly lines: readonly string[];
  private readonly tree: MerkleTree;

  constructor(
    count: number,
    readonly key: LogKey = LOG_KEY,
  ) {
    this.events = [...chainEvents(count)];
    this.tree = new MerkleTree(this.events.map((e) => hashesOf(e).leaf));
    this.lines = [...exportLines(this.events, { key })];
  }

  /** The log after `size` events: an archive ending there ends with this, an export starting there has it as base. */
  stateAt(size: number): AuditExportBase {
    const range = new CompactRange();
    for (let i = 0; i < size; i++) range.append(this.tree.leaf(i));
    const last = this.events[size - 1];
    return {
      size,
      lastHash: last === undefined ? GENESIS_HASH : hashesOf(last).hash,
      frontier: range.hashes.map((h) => h.toString('hex')),
    };
  }

  /** The hex Merkle root of the first `size` events. */
  rootAt(size: number): string {
    return this.tree.root(size).toString('hex');
  }

  /** The signed checkpoint a client would have kept at `size` (threat H2's outside copy). */
  checkpointAt(size: number, key: LogKey = this.key): string {
    return signCheckpoint(key.signer, size, this.tree.root(size));
  }

  /** The export of the events after `from` (an archive boundary), checkpoints every 50 events. */
  exportFrom(from: number): string[] {
    return [...exportLines(this.events.slice(from), { key: this.key, base: this.stateAt(from) })];
  }
}

/** The 1-based line of event `seq` in `lines`. */
export function lineOfEvent(lines: readonly string[], seq: number): number {
  const at = lines.findIndex((l) => {
    const parsed = JSON.parse(l) as { kind: string; event?: { seq: number } };
    return parsed.kind === 'event' && parsed.event?.seq === seq;
  });
  if (at < 0) throw new Error(`no event ${seq} in the export`);
  return at + 1;
}

/** The 1-based line of the checkpoint line for `size` in `lines`. */
export function lineOfCheckpoint(lines: readonly string[], size: number): number {
  const at = lines.findIndex((l) => {
    const parsed = JSON.parse(l) as { kind: string; note?: string };
    return parsed.kind === 'checkpoint' && parsed.note?.split('\n')[1] === String(size);
  });
  if (at < 0) throw new Error(`no checkpoint for ${size} in the export`);
  return at + 1;
}

/** The events of an export, in order. */
export function eventsOf(lines: readonly string[]): AuditEvent[] {
  return lines
    .map((l) => JSON.parse(l) as AuditExportLine)
    .flatMap((l) => (l.kind === 'event' ? [l.event] : []));
}

/** `lines` with the event lines replaced by `events` (same count), checkpoint and header lines untouched. */
export function replaceEvents(lines: readonly string[], events: readonly AuditEvent[]): string[] {
  let i = 0;
  return lines.map((l) => {
    const parsed = JSON.parse(l) as AuditExportLine;
    return parsed.kind === 'event' ? eventLine(events[i++] as AuditEvent) : l;
  });
}
