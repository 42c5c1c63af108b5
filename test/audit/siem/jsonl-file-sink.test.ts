import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../../src/audit/audit-event.js';
import { canonicalJson } from '../../../src/audit/canonical-json.js';
import { verifyChain, type ChainedRecord } from '../../../src/audit/hash-chain.js';
import {
  CURRENT_FILE,
  JsonLinesFileSink,
  type JsonLinesFileSinkOptions,
} from '../../../src/audit/siem/jsonl-file-sink.js';
import { toOcsf } from '../../../src/audit/siem/ocsf.js';
import { expectCode } from '../../storage/expect-code.js';
import { chainedEvents } from '../../support/siem-events.js';

let root: string;
let dir: string;
const open: JsonLinesFileSink[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strongroom-jsonl-'));
  dir = join(root, 'audit');
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  rmSync(root, { recursive: true, force: true });
});

function sink(options: Partial<JsonLinesFileSinkOptions> = {}): JsonLinesFileSink {
  const s = new JsonLinesFileSink({ directory: dir, ...options });
  open.push(s);
  return s;
}

function lines(file: string): string[] {
  const text = readFileSync(join(dir, file), 'utf8');
  if (text === '') return [];
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

function seqs(file: string): number[] {
  return lines(file).map((line) => (JSON.parse(line) as { seq: number }).seq);
}

/** Every seq in the directory, oldest rotated file first, current file last. */
function allSeqs(): number[] {
  const rotated = readdirSync(dir)
    .filter((name) => name !== CURRENT_FILE)
    .sort((a, b) => Number(a.split('-')[1]) - Number(b.split('-')[1]));
  return [...rotated, CURRENT_FILE].flatMap(seqs);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('JSON lines file sink', () => {
  it('appends one canonical JSON line per event, in order, that still verifies as a hash chain', async () => {
    const events = chainedEvents(10);
    await sink().deliver(events.slice(0, 4));
    await sink().deliver(events.slice(4));
    expect(lines(CURRENT_FILE)).toEqual(events.map((e) => canonicalJson(e)));
    const records = lines(CURRENT_FILE).map((l) => JSON.parse(l) as ChainedRecord);
    expect(verifyChain(records)).toMatchObject({ ok: true, count: 10 });
  });

  it('writes the OCSF form when configured', async () => {
    const events = chainedEvents(3);
    await sink({ format: 'ocsf' }).deliver(events);
    expect(lines(CURRENT_FILE).map((l) => JSON.parse(l) as unknown)).toEqual(events.map(toOcsf));
  });

  it('creates the directory 0700 and its files 0600 whatever the umask', async () => {
    const previous = process.umask(0);
    try {
      const s = sink({ maxBytes: 2000 });
      await s.deliver(chainedEvents(20));
    } finally {
      process.umask(previous);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const files = readdirSync(dir);
    expect(files.length).toBeGreaterThan(1);
    for (const name of files) expect(statSync(join(dir, name)).mode & 0o777, name).toBe(0o600);
  });

  it('rotates to audit-FIRST-LAST.jsonl before a line would pass maxBytes', async () => {
    const maxBytes = 3000;
    const s = sink({ maxBytes, maxFiles: 100 });
    const events = chainedEvents(40);
    for (let i = 0; i < 40; i += 7) await s.deliver(events.slice(i, i + 7));
    const rotated = readdirSync(dir).filter((n) => n !== CURRENT_FILE);
    expect(rotated.length).toBeGreaterThan(2);
    for (const name of rotated) {
      const [, first, last] = /^audit-(\d+)-(\d+)\.jsonl$/.exec(name)!.map(Number);
      expect(seqs(name)).toEqual(range(first!, last!));
      expect(statSync(join(dir, name)).size).toBeLessThanOrEqual(maxBytes);
    }
    expect(allSeqs()).toEqual(range(1, 40));
  });

  it('gives a line longer than maxBytes a file of its own', async () => {
    const s = sink({ maxBytes: 10, maxFiles: 100 });
    await s.deliver(chainedEvents(3));
    expect(readdirSync(dir).sort()).toEqual(['audit-1-1.jsonl', 'audit-2-2.jsonl', CURRENT_FILE]);
    expect(seqs(CURRENT_FILE)).toEqual([3]);
  });

  it('keeps only the newest maxFiles rotated files', async () => {
    const s = sink({ maxBytes: 10, maxFiles: 2 });
    await s.deliver(chainedEvents(6));
    expect(readdirSync(dir).sort()).toEqual(['audit-4-4.jsonl', 'audit-5-5.jsonl', CURRENT_FILE]);
    expect(allSeqs()).toEqual([4, 5, 6]);
  });

  it('truncates a torn last line on open and carries on after the last complete event', async () => {
    const events = chainedEvents(8);
    await sink().deliver(events.slice(0, 5));
    const torn = canonicalJson(events[5]).slice(0, 37);
    appendFileSync(join(dir, CURRENT_FILE), torn);
    await sink().deliver(events.slice(5));
    expect(seqs(CURRENT_FILE)).toEqual(range(1, 8));
  });

  it('truncates a file that holds nothing but a torn line', async () => {
    await sink().deliver(chainedEvents(1));
    writeFileSync(join(dir, CURRENT_FILE), '{"seq":1,"v":1,"act');
    await sink().deliver(chainedEvents(2));
    expect(seqs(CURRENT_FILE)).toEqual([1, 2]);
  });

  it('skips events already on disk when the runner retries a batch', async () => {
    const events = chainedEvents(15);
    const s = sink();
    await s.deliver(events.slice(0, 10));
    await s.deliver(events.slice(4, 15));
    await s.deliver(events.slice(4, 15));
    expect(seqs(CURRENT_FILE)).toEqual(range(1, 15));
  });

  it('remembers the last seq across a restart, from the current file or the newest rotated one', async () => {
    const events = chainedEvents(12);
    await sink({ maxBytes: 10, maxFiles: 50 }).deliver(events.slice(0, 6));
    // A crash between the rename and the next write leaves the current file empty.
    writeFileSync(join(dir, CURRENT_FILE), '');
    await sink({ maxBytes: 10, maxFiles: 50 }).deliver(events);
    expect(allSeqs()).toEqual(range(1, 12));
    await sink({ maxBytes: 1 << 20 }).deliver(events);
    expect(allSeqs()).toEqual(range(1, 12));
  });

  it('recognises the last seq of an OCSF file', async () => {
    const events = chainedEvents(6);
    await sink({ format: 'ocsf' }).deliver(events.slice(0, 4));
    await sink({ format: 'ocsf' }).deliver(events);
    const written = lines(CURRENT_FILE).map(
      (l) => (JSON.parse(l) as { metadata: { uid: string } }).metadata.uid,
    );
    expect(written).toEqual(['1', '2', '3', '4', '5', '6']);
  });

  it('fails a delivery it cannot make durable, then succeeds once the cause is gone', async () => {
    writeFileSync(dir, 'not a directory');
    const s = sink();
    const events: AuditEvent[] = chainedEvents(3);
    await expectCode(s.deliver(events), 'storage_error');
    rmSync(dir);
    await s.deliver(events);
    expect(seqs(CURRENT_FILE)).toEqual([1, 2, 3]);
  });

  it('refuses options outside their bounds', async () => {
    const bad: Partial<JsonLinesFileSinkOptions>[] = [
      { maxBytes: 0 },
      { maxBytes: 1.5 },
      { maxFiles: 0 },
      { format: 'xml' as 'json' },
      { directory: '' },
    ];
    for (const options of bad)
      await expectCode(
        Promise.resolve().then(() => new JsonLinesFileSink({ directory: dir, ...options })),
        'config_invalid',
      );
  });
});
