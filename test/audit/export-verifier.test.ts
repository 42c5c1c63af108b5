import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditEventBody } from '../../src/audit/audit-event.js';
import type { AuditExportLine } from '../../src/audit/audit-export.js';
import { EXPORT_FAILURES, verifyExport, type VerifyExportOptions } from '../../src/audit/export-verifier.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { GENESIS_HASH, recordHashes } from '../../src/audit/hash-chain.js';
import { MerkleTree } from '../../src/audit/merkle-tree.js';
import { formatCheckpoint, parseSignerKey, signNote } from '../../src/audit/signed-note.js';
import {
  AuditLogFixture,
  LOG_KEY,
  TEST_ORIGIN,
  chainEvents,
  chainedEvent,
  eventBody,
  eventLine,
  eventsOf,
  exportLines,
  lineOfCheckpoint,
  lineOfEvent,
  logKey,
  rechain,
  replaceEvents,
  signCheckpoint,
  systemEventBody,
  volumeExportLines,
} from '../support/audit-fixtures.js';

// 310 events, checkpoints after every 50th: the last 10 events are not covered by a checkpoint yet.
const log = new AuditLogFixture(310);
const genuine = log.lines;
const key = LOG_KEY.verifierKey;

function verify(lines: Iterable<string> | AsyncIterable<string>, options: VerifyExportOptions = {}) {
  return verifyExport(lines, { verifierKey: key, ...options });
}

/** The export with event `seq` changed by `edit` and nothing else touched. */
function withEvent(seq: number, edit: (e: AuditEvent) => AuditEvent, lines = genuine): string[] {
  return replaceEvents(
    lines,
    eventsOf(lines).map((e) => (e.seq === seq ? edit(e) : e)),
  );
}

const mallory = (e: AuditEvent): AuditEvent => ({ ...e, actor: { ...e.actor, id: 'mallory' } });

/** Lines up to and including the one at 1-based `line`. */
const upTo = (lines: readonly string[], line: number) => lines.slice(0, line);

describe('export verification: a genuine export', () => {
  it('verifies, reporting the events after the last checkpoint as an uncheckpointed tail', async () => {
    const verdict = await verify(genuine);
    expect(verdict).toMatchObject({
      ok: true,
      origin: TEST_ORIGIN,
      keySource: 'option',
      first: 1,
      last: 310,
      events: 310,
      checkpoints: 6,
      uncheckpointedTail: 10,
      trusted: 0,
      unchecked: [],
      end: log.stateAt(310),
    });
    expect(verdict.ok && verdict.lastCheckpoint).toEqual({
      size: 300,
      root: log.rootAt(300),
      note: (JSON.parse(genuine[lineOfCheckpoint(genuine, 300) - 1]!) as { note: string }).note,
    });
  });

  it('verifies from a line stream (readline over a byte stream), with or without newlines, and a final empty line', async () => {
    const input = Readable.from([genuine.join('\n') + '\n']);
    expect(await verify(createInterface({ input, crlfDelay: Infinity }))).toMatchObject({
      ok: true,
      last: 310,
    });
    expect(await verify([...genuine, ''])).toMatchObject({ ok: true, last: 310 });
    expect(await verify(genuine.map((l) => `${l}\n`))).toMatchObject({ ok: true, last: 310 });
    expect(await verify([`${genuine[0]}\n${genuine[1]}`, ...genuine.slice(2)])).toMatchObject({
      ok: false,
      code: 'bad_header',
    });
  });

  it('without a key of its own uses the header key and says so, so the CLI can warn it is self-asserted', async () => {
    expect(await verifyExport(genuine)).toMatchObject({ ok: true, keySource: 'export' });
  });
});

describe('export verification: tampering (H1)', () => {
  it('an edited event field is named exactly: it no longer hashes to the prevHash of its successor', async () => {
    expect(await verify(withEvent(120, mallory))).toEqual({
      ok: false,
      code: 'chain_break',
      position: 120,
      line: lineOfEvent(genuine, 120),
      reason: 'event 120 does not hash to the prevHash recorded by event 121',
    });
  });

  it('an edited event right before a checkpoint is still named exactly, not only by the checkpoint range', async () => {
    expect(await verify(withEvent(150, mallory))).toMatchObject({
      ok: false,
      code: 'chain_break',
      position: 150,
      line: lineOfEvent(genuine, 150),
    });
  });

  it('an edited last event is caught by the checkpoint after it, as the range since the one before', async () => {
    const lines = withEvent(300, mallory, upTo(genuine, lineOfCheckpoint(genuine, 300)));
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'root_mismatch',
      position: 251,
      range: { after: 250, upTo: 300 },
      line: lineOfCheckpoint(genuine, 300),
    });
  });

  it('an edited last event of the uncheckpointed tail passes alone, and trusted checkpoints catch it', async () => {
    const lines = withEvent(310, mallory);
    expect(await verify(lines)).toMatchObject({ ok: true, uncheckpointedTail: 10 });
    // Only trusted checkpoints bound the range: the export's own may have been re-signed by whoever rewrote it.
    expect(await verify(lines, { trustedCheckpoints: [log.checkpointAt(310)] })).toMatchObject({
      ok: false,
      code: 'trusted_mismatch',
      position: 1,
      range: { after: 0, upTo: 310 },
      line: lineOfEvent(genuine, 310),
      trustedIndex: 0,
    });
    const trustedCheckpoints = [log.checkpointAt(310), log.checkpointAt(300)];
    expect(await verify(lines, { trustedCheckpoints })).toMatchObject({
      ok: false,
      code: 'trusted_mismatch',
      position: 301,
      range: { after: 300, upTo: 310 },
      trustedIndex: 0,
    });
  });

  it('a deleted event is named by its position', async () => {
    const lines = genuine.filter((_, i) => i + 1 !== lineOfEvent(genuine, 77));
    expect(await verify(lines)).toEqual({
      ok: false,
      code: 'sequence_break',
      position: 77,
      line: lineOfEvent(genuine, 77),
      reason: 'expected event 77, found seq 78',
    });
  });

  it('two reordered events are named by the first of the two positions', async () => {
    const lines = [...genuine];
    const [a, b] = [lineOfEvent(genuine, 140) - 1, lineOfEvent(genuine, 141) - 1];
    [lines[a], lines[b]] = [lines[b]!, lines[a]!];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'sequence_break',
      position: 140,
      line: a + 1,
    });
  });

  it('an inserted forged event that chains onto its predecessor is exposed where the sequence breaks after it', async () => {
    const at = lineOfCheckpoint(genuine, 200);
    const forged = chainedEvent(201, recordHashes(log.events[199]!).hash, {
      ...eventBody(201),
      action: 'forged',
    });
    const lines = [...upTo(genuine, at), eventLine(forged), ...genuine.slice(at)];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'sequence_break',
      position: 202,
      line: at + 2,
      reason: 'expected event 202, found seq 201',
    });
  });

  it('a torn write (the last line cut short) is a malformed line at the event being written', async () => {
    const last = genuine.at(-1)!;
    const lines = [...genuine.slice(0, -1), last.slice(0, last.length >> 1)];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'malformed_line',
      position: 310,
      line: genuine.length,
    });
  });

  it('a line cut in two is a malformed line where the cut starts', async () => {
    const at = lineOfEvent(genuine, 150) - 1;
    const line = genuine[at]!;
    const lines = [...genuine.slice(0, at), line.slice(0, 40), line.slice(40), ...genuine.slice(at + 1)];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'malformed_line',
      position: 150,
      line: at + 1,
    });
  });

  it('re-chaining without the key keeps the chain but not the checkpoints: the range up to the next one is named', async () => {
    const events = eventsOf(genuine);
    const tampered = rechain(events.map((e) => (e.seq === 120 ? mallory(e) : e)));
    expect(await verify(replaceEvents(genuine, tampered))).toMatchObject({
      ok: false,
      code: 'root_mismatch',
      position: 101,
      range: { after: 100, upTo: 150 },
      line: lineOfCheckpoint(genuine, 150),
    });
  });

  it('a forged event inserted with everything after it renumbered and re-chained is caught by the next checkpoint', async () => {
    const events = eventsOf(genuine);
    const forged = { ...events[209]!, action: 'forged' };
    const shifted = [...events.slice(0, 210), forged, ...events.slice(210)].map((e, i) => ({
      ...e,
      seq: i + 1,
    }));
    const lines = [...exportLines(rechain(shifted), { checkpointAt: () => false })];
    // Keep the genuine checkpoint lines where their sizes fall.
    const withCheckpoints = lines.flatMap((l, i) => {
      const size = i; // line i + 1 holds event i (the header is line 1)
      return size > 0 && size % 50 === 0 && size <= 300
        ? [l, genuine[lineOfCheckpoint(genuine, size) - 1]!]
        : [l];
    });
    expect(await verify(withCheckpoints)).toMatchObject({
      ok: false,
      code: 'root_mismatch',
      position: 201,
      range: { after: 200, upTo: 250 },
    });
  });
});

describe('export verification: truncation and re-signing (H2)', () => {
  const truncated = upTo(genuine, lineOfEvent(genuine, 260));

  it('a truncated tail verifies on its own, and a trusted checkpoint beyond its end exposes it', async () => {
    expect(await verify(truncated)).toMatchObject({ ok: true, last: 260, uncheckpointedTail: 10 });
    expect(await verify(truncated, { trustedCheckpoints: [log.checkpointAt(300)] })).toEqual({
      ok: false,
      code: 'truncated',
      position: 261,
      line: truncated.length + 1,
      range: { after: 260, upTo: 300 },
      trustedIndex: 0,
      reason: 'the export ends at event 260, but a trusted checkpoint has 300: events 261 to 300 are missing',
    });
  });

  it('trusted checkpoints within the export are checked and counted', async () => {
    const trustedCheckpoints = [log.checkpointAt(310), log.checkpointAt(123), log.checkpointAt(0)];
    expect(await verify(genuine, { trustedCheckpoints })).toMatchObject({
      ok: true,
      trusted: 3,
      unchecked: [],
      uncheckpointedTail: 0,
    });
  });

  const resigned = (signer = LOG_KEY) => {
    const events = rechain(eventsOf(genuine).map((e) => (e.seq === 120 ? mallory(e) : e)));
    return [...exportLines(events, { key: signer })];
  };

  it('re-chaining and re-signing with the key verifies on its own, and a trusted checkpoint taken earlier catches it', async () => {
    const lines = resigned();
    expect(await verify(lines)).toMatchObject({ ok: true });
    expect(
      await verify(lines, { trustedCheckpoints: [log.checkpointAt(100), log.checkpointAt(200)] }),
    ).toMatchObject({
      ok: false,
      code: 'trusted_mismatch',
      position: 101,
      range: { after: 100, upTo: 200 },
      line: lineOfEvent(lines, 200),
      trustedIndex: 1,
    });
    expect(await verify(lines, { trustedCheckpoints: [log.checkpointAt(200)] })).toMatchObject({
      ok: false,
      code: 'trusted_mismatch',
      position: 1,
      range: { after: 0, upTo: 200 },
    });
  });

  it("re-signing with another key fails against the log's key, and against trusted checkpoints when the header names it", async () => {
    const attacker = logKey();
    const lines = [...exportLines(eventsOf(resigned()), { key: attacker })];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'bad_checkpoint',
      position: 50,
      line: lineOfCheckpoint(lines, 50),
    });
    expect(await verifyExport(lines)).toMatchObject({ ok: true, keySource: 'export' });
    expect(await verifyExport(lines, { trustedCheckpoints: [log.checkpointAt(100)] })).toMatchObject({
      ok: false,
      code: 'bad_trusted_checkpoint',
      trustedIndex: 0,
    });
  });
});

describe('export verification: structure', () => {
  it('user strings holding newlines and JSON stay inside their event: one line each, and they round-trip', async () => {
    const injection = `x\n{"kind":"event","event":{"v":1,"seq":3,"prevHash":"${'0'.repeat(64)}"}}\r\n\u2028\u2029"}`;
    const body = (seq: number) =>
      seq === 2
        ? {
            ...eventBody(seq),
            resource: injection,
            request: { ...eventBody(seq).request!, userAgent: `curl\n{"kind":"checkpoint","note":"x"}` },
          }
        : eventBody(seq);
    const lines = [...exportLines(chainEvents(4, undefined, body), { checkpointAt: (n) => n === 4 })];
    expect(lines).toHaveLength(1 + 4 + 1);
    expect(lines.every((l) => !/[\n\r]/.test(l))).toBe(true);
    const input = Readable.from([lines.join('\n') + '\n']);
    expect(await verify(createInterface({ input, crlfDelay: Infinity }))).toMatchObject({
      ok: true,
      events: 4,
    });
    const parsed = JSON.parse(lines[2]!) as AuditExportLine;
    expect(parsed.kind === 'event' && parsed.event.resource).toBe(injection);
  });

  it('an event re-encoded without changing what it parses to is refused: the hashes are of the bytes as written', async () => {
    const seq = 40;
    const at = lineOfEvent(genuine, seq) - 1;
    const event = log.events[seq - 1]!;
    const text = canonicalJson(event);
    const action = event.action;
    const code = action.charCodeAt(0).toString(16).padStart(4, '0');
    const reencodings = [
      text.replaceAll(',"', ', "'), // white space
      JSON.stringify(event), // members in another order
      text.replace(`"seq":${seq}`, `"seq":${seq}.0`), // another spelling of a number
      text.replace(`"action":"${action}"`, `"action":"\\u${code}${action.slice(1)}"`), // an escape
      text.replace('{', `{"seq":${seq},`), // a duplicate member, which JSON.parse would silently drop
    ];
    for (const reencoded of reencodings) {
      expect(JSON.parse(reencoded), reencoded).toEqual(JSON.parse(text));
      expect(reencoded).not.toBe(text);
      const lines = genuine.map((l, i) => (i === at ? `{"kind":"event","event":${reencoded}}` : l));
      expect(await verify(lines), reencoded).toMatchObject({
        ok: false,
        code: 'malformed_line',
        position: seq,
        line: at + 1,
      });
    }
    // The line around the event is written one way too: a second "event" member cannot hide behind the first.
    for (const line of [
      `{"event":${text},"kind":"event"}`,
      `{"kind":"event", "event":${text}}`,
      `{"kind":"event","event":${JSON.stringify({ ...event, actor: { ...event.actor, id: 'mallory' } })},"event":${text}}`,
    ]) {
      const lines = genuine.map((l, i) => (i === at ? line : l));
      expect(await verify(lines), line).toMatchObject({ ok: false, code: 'malformed_line', position: seq });
    }
  });

  it('a checkpoint signed by the key for another log is refused', async () => {
    const at = lineOfCheckpoint(genuine, 100) - 1;
    const root = Buffer.from(log.rootAt(100), 'hex');
    const other = signCheckpoint(LOG_KEY.signer, 100, root, 'other.strongroom.test/log');
    const lines = genuine.map((l, i) => (i === at ? JSON.stringify({ kind: 'checkpoint', note: other }) : l));
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'bad_checkpoint',
      position: 100,
      line: at + 1,
      reason: 'the checkpoint at size 100 is of another log: `other.strongroom.test/log`',
    });
  });

  it('a checkpoint line out of place or repeated is refused', async () => {
    const from = lineOfCheckpoint(genuine, 50) - 1;
    const moved = [...genuine];
    const [line] = moved.splice(from, 1);
    moved.splice(from + 2, 0, line!);
    expect(await verify(moved)).toMatchObject({
      ok: false,
      code: 'bad_checkpoint',
      position: 50,
      line: from + 3,
      reason: 'the checkpoint for size 50 is out of place: it follows event 52',
    });
    const repeated = [...genuine.slice(0, from + 1), genuine[from]!, ...genuine.slice(from + 1)];
    expect(await verify(repeated)).toMatchObject({ ok: false, code: 'bad_checkpoint', line: from + 2 });
  });

  it('an event of an unknown format version is refused', async () => {
    const lines = withEvent(30, (e) => ({ ...e, v: 2 }) as unknown as AuditEvent);
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'unknown_version',
      position: 30,
      line: lineOfEvent(genuine, 30),
    });
  });

  it('refuses lines that are not exactly one of the kinds', async () => {
    const at = lineOfEvent(genuine, 10) - 1;
    const cases = [
      'not json',
      '[]',
      '{"kind":"comment"}',
      JSON.stringify({ ...(JSON.parse(genuine[at]!) as object), extra: 'unverified' }),
      JSON.stringify({ kind: 'event', event: { ...log.events[9]!, seq: '10' } }),
      JSON.stringify({ kind: 'checkpoint', note: 42 }),
      genuine[0]!,
      '',
    ];
    for (const bad of cases) {
      const lines = genuine.map((l, i) => (i === at ? bad : l));
      expect(await verify(lines), bad).toMatchObject({ ok: false, code: 'malformed_line', position: 10 });
    }
    const huge = genuine[at]!.replace('"bytes":10240', '"bytes":1e400');
    expect(await verify(genuine.map((l, i) => (i === at ? huge : l)))).toMatchObject({
      ok: false,
      code: 'malformed_line',
      position: 10,
    });
  });

  it('refuses a missing or malformed header', async () => {
    const header = JSON.parse(genuine[0]!) as Record<string, unknown> & { base: Record<string, unknown> };
    const headers = [
      { ...header, format: 'strongroom-audit/2' },
      { ...header, origin: '' },
      { ...header, base: { ...header.base, lastHash: 'f'.repeat(64) } },
      { ...header, base: { ...header.base, frontier: ['a'.repeat(64)] } },
      { ...header, base: { ...header.base, size: -1 } },
      { ...header, verifierKey: 'not a key' },
      { ...header, signedBy: 'nobody' },
    ];
    for (const h of headers) {
      const lines = [JSON.stringify(h), ...genuine.slice(1)];
      expect(await verifyExport(lines), JSON.stringify(h)).toMatchObject({
        ok: false,
        code: 'bad_header',
        position: 0,
        line: 1,
      });
    }
    expect(await verify(genuine.slice(1))).toMatchObject({ ok: false, code: 'bad_header', line: 1 });
    expect(await verify([])).toMatchObject({ ok: false, code: 'bad_header', line: 1 });
  });

  it('refuses trusted checkpoints that are not signed by the key or are of another log', async () => {
    const other = logKey();
    const foreign = signCheckpoint(LOG_KEY.signer, 10, Buffer.alloc(32), 'other.strongroom.test/log');
    for (const trusted of [log.checkpointAt(100, other), 'not a note', foreign]) {
      expect(await verify(genuine, { trustedCheckpoints: [log.checkpointAt(50), trusted] })).toMatchObject({
        ok: false,
        code: 'bad_trusted_checkpoint',
        trustedIndex: 1,
      });
    }
  });
});

describe('export verification: archive boundaries', () => {
  const tail = log.exportFrom(200);

  it('an export after an archive boundary verifies, and continues the archive it names as previous', async () => {
    const archive = upTo(genuine, lineOfCheckpoint(genuine, 200));
    const first = await verify(archive);
    expect(first).toMatchObject({ ok: true, last: 200, uncheckpointedTail: 0 });
    const previous = first.ok ? first.end : undefined;
    expect(await verify(tail, { previous })).toMatchObject({
      ok: true,
      first: 201,
      last: 310,
      events: 110,
      checkpoints: 3,
      end: log.stateAt(310),
    });
  });

  it('refuses an export that does not continue the previous archive', async () => {
    expect(await verify(tail, { previous: log.stateAt(199) })).toMatchObject({
      ok: false,
      code: 'previous_mismatch',
      position: 200,
      line: 1,
    });
    const forged = { ...log.stateAt(200), lastHash: 'e'.repeat(64) };
    expect(await verify(tail, { previous: forged })).toMatchObject({
      ok: false,
      code: 'previous_mismatch',
      position: 201,
    });
  });

  it('checks trusted checkpoints at the boundary, and reports those before it as unchecked, not passing', async () => {
    const verdict = await verify(tail, {
      trustedCheckpoints: [log.checkpointAt(250), log.checkpointAt(100), log.checkpointAt(200)],
    });
    expect(verdict).toMatchObject({ ok: true, trusted: 2, unchecked: [{ index: 1, size: 100 }] });
  });

  it('a base whose frontier was altered fails at the checkpoint that follows the header', async () => {
    const header = JSON.parse(tail[0]!) as { base: { frontier: string[] } };
    header.base.frontier[0] = 'a'.repeat(64);
    const lines = [JSON.stringify(header), ...tail.slice(1)];
    expect(await verify(lines)).toMatchObject({ ok: false, code: 'root_mismatch', position: 200, line: 1 });
  });

  it('a base whose last hash was altered fails at the first event', async () => {
    const header = JSON.parse(tail[0]!) as { base: { lastHash: string } };
    header.base.lastHash = 'a'.repeat(64);
    const lines = [JSON.stringify(header), ...tail.slice(1)];
    expect(await verify(lines)).toMatchObject({
      ok: false,
      code: 'chain_break',
      position: 201,
      reason: 'event 201 does not continue the log: its prevHash is not the hash of event 200',
    });
  });
});

describe('export verification: scale', () => {
  it('streams an export of 100,000 events without holding them', async () => {
    const lines = volumeExportLines(100_000, 1000);
    expect(await verify(lines)).toMatchObject({
      ok: true,
      events: 100_000,
      checkpoints: 100,
      uncheckpointedTail: 0,
    });
  });
});

describe('export verification: documentation', () => {
  const doc = readFileSync(new URL('../../docs/audit-format.md', import.meta.url), 'utf8');

  it('docs/audit-format.md explains every failure code', () => {
    for (const code of Object.keys(EXPORT_FAILURES)) expect(doc, code).toContain(`\`${code}\``);
  });

  it('the worked example of docs/audit-format.md holds: hashes, root and signed checkpoint', async () => {
    const go = JSON.parse(
      readFileSync(new URL('../fixtures/audit/signed-note-vectors.json', import.meta.url), 'utf8'),
    ) as { signerKey: string; verifierKey: string };
    const body = (seq: number): AuditEventBody => ({
      ...systemEventBody(seq),
      action: 'audit:prune',
      resource: null,
      severity: 'notice',
      details: { pruned: seq },
    });
    const time = (seq: number) => `2025-01-01T00:00:0${seq}.000Z`;
    const e1: AuditEvent = { ...body(1), v: 1, seq: 1, time: time(1), prevHash: GENESIS_HASH };
    const e2: AuditEvent = { ...body(2), v: 1, seq: 2, time: time(2), prevHash: recordHashes(e1).hash };
    const [h1, h2] = [recordHashes(e1), recordHashes(e2)];
    const root = new MerkleTree([h1.leaf, h2.leaf]).root();
    expect(doc).toContain(canonicalJson(e1));
    for (const value of [h1.hash, h1.leaf.toString('hex'), h2.leaf.toString('hex'), root.toString('hex')]) {
      expect(doc).toContain(value);
    }
    const origin = 'registry.example.com/audit';
    const note = signNote(
      formatCheckpoint({ origin, size: 2, root, extensions: [] }),
      parseSignerKey(go.signerKey),
    );
    expect(doc).toContain(note.trimEnd());
    expect(doc).toContain(go.verifierKey);
    const key = { ...LOG_KEY, verifierKey: go.verifierKey, signer: parseSignerKey(go.signerKey) };
    const lines = [...exportLines([e1, e2], { key, origin, checkpointAt: (n) => n === 2 })];
    expect(await verifyExport(lines, { verifierKey: go.verifierKey })).toMatchObject({ ok: true, events: 2 });
    const edited = replaceEvents(lines, [{ ...e1, details: { pruned: 2 } }, e2]);
    expect(await verifyExport(edited, { verifierKey: go.verifierKey })).toMatchObject({
      code: 'chain_break',
      position: 1,
    });
    const rechained = replaceEvents(lines, rechain([e1, e2].map((e) => ({ ...e, details: { pruned: 9 } }))));
    expect(await verifyExport(rechained, { verifierKey: go.verifierKey })).toMatchObject({
      code: 'root_mismatch',
      range: { after: 0, upTo: 2 },
    });
  });
});
