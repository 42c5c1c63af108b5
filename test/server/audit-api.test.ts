import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import {
  parseConsistencyProof,
  parseInclusionProof,
  verifyConsistencyProof,
  verifyInclusionProof,
} from '../../src/audit/audit-proof.js';
import { verifyExport } from '../../src/audit/export-verifier.js';
import { verifyChain } from '../../src/audit/hash-chain.js';
import { MerkleTree, leafHash } from '../../src/audit/merkle-tree.js';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { openNote, parseCheckpoint, parseVerifierKey } from '../../src/audit/signed-note.js';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

let server: TestServer;

let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'strongroom-audit-'));
  server = await startTestServer({
    dataDir,
    config: {
      audit: {
        checkpointEvery: 20,
        checkpointSinks: [{ type: 'file', name: 'witness', path: join(dataDir, 'witness.jsonl') }],
      },
    },
  });
});

afterAll(async () => {
  await server.close();
  await rm(dataDir, { recursive: true, force: true });
});

interface EventPage {
  items: AuditEvent[];
  next: number;
}

async function search(query: Record<string, string | number> = {}): Promise<AuditEvent[]> {
  const params = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await server.api(`/api/v1/audit/events?${params}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as EventPage).items;
}

async function allEvents(): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  let after = 0;
  for (;;) {
    const res = await server.api(`/api/v1/audit/events?after=${after}&limit=1000`);
    const page = (await res.json()) as EventPage;
    out.push(...page.items);
    // Each search is itself recorded, so "no more events" never comes: a short page is the end.
    if (page.items.length < 1000) return out;
    after = page.next;
  }
}

async function eventOf(requestId: string): Promise<AuditEvent[]> {
  return (await allEvents()).filter((e) => e.request?.id === requestId);
}

describe('every request is recorded', () => {
  it('a mutation commits its event with the change: actor, decision, resource, request, no status yet', async () => {
    const res = await server.api('/api/v1/projects', {
      method: 'POST',
      json: { name: 'audited', description: 'x' },
      headers: { 'user-agent': 'audit-test/1' },
    });
    expect(res.status).toBe(201);
    const events = await eventOf(res.headers.get('x-request-id') ?? '');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      v: 1,
      category: 'api',
      actor: { id: 'bootstrap-admin', type: 'user', authMethod: 'bootstrap-token' },
      action: 'project:create',
      resource: null,
      decision: { effect: 'allow', policies: ['builtin:bootstrap-admin'] },
      outcome: 'succeeded',
      errorCode: null,
      severity: 'info',
      request: { method: 'POST', path: '/api/v1/projects', status: null, userAgent: 'audit-test/1' },
    });
    expect(events[0]?.request?.clientAddress).toMatch(/127\.0\.0\.1/);
  });

  it('a read, a denial-by-absence and an unmatched route are recorded with their outcome', async () => {
    const read = await server.api('/api/v1/projects/audited');
    const missing = await server.api('/api/v1/projects/nope');
    const unmatched = await server.api('/api/v1/nothing-here');
    expect([read.status, missing.status, unmatched.status]).toEqual([200, 404, 404]);
    const [r] = await eventOf(read.headers.get('x-request-id') ?? '');
    expect(r).toMatchObject({ action: 'project:read', resource: 'audited', outcome: 'succeeded' });
    expect(r?.request?.status).toBe(200);
    const [m] = await eventOf(missing.headers.get('x-request-id') ?? '');
    expect(m).toMatchObject({
      action: 'project:read',
      resource: 'nope',
      outcome: 'failed',
      errorCode: 'project_not_found',
      severity: 'warning',
    });
    const [u] = await eventOf(unmatched.headers.get('x-request-id') ?? '');
    expect(u).toMatchObject({ action: 'route:unmatched', outcome: 'failed', errorCode: 'route_not_found' });
  });

  it('a request without valid credentials is an authentication event by an anonymous actor', async () => {
    const res = await fetch(`${server.url}/api/v1/projects`, { headers: { authorization: 'Bearer wrong' } });
    expect(res.status).toBe(401);
    const [e] = await eventOf(res.headers.get('x-request-id') ?? '');
    expect(e).toMatchObject({
      category: 'authentication',
      actor: { id: null, type: 'anonymous', authMethod: null },
      outcome: 'failed',
      errorCode: 'unauthenticated',
      decision: { effect: 'none', policies: [] },
    });
  });

  it('a download is recorded before its first byte, with the version as resource', async () => {
    const data = Buffer.from('weights');
    expect(
      (
        await pushFiles(server, { project: 'audited', artifact: 'm', version: '1' }, [
          { path: 'w.bin', data },
        ])
      ).status,
    ).toBe(201);
    const res = await server.api('/api/v1/projects/audited/artifacts/m/versions/1/file?path=w.bin');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(data);
    const [e] = await eventOf(res.headers.get('x-request-id') ?? '');
    expect(e).toMatchObject({ action: 'version:download', resource: 'audited/m:1', outcome: 'succeeded' });
    expect(e?.request?.status).toBe(200);
  });

  it('public probes are not recorded by default', async () => {
    const res = await fetch(`${server.url}/healthz`);
    expect(await eventOf(res.headers.get('x-request-id') ?? '')).toEqual([]);
  });
});

describe('search', () => {
  it('filters by actor, action, resource prefix, outcome and time, with a cursor', async () => {
    for (let i = 0; i < 5; i++) await server.api(`/api/v1/projects/audited/artifacts/a${i}`);
    const failed = await search({ action: 'artifact:read', outcome: 'failed' });
    expect(failed.length).toBeGreaterThanOrEqual(5);
    expect(failed.every((e) => e.action === 'artifact:read' && e.outcome === 'failed')).toBe(true);
    const prefixed = await search({ resource: 'audited/*' });
    expect(prefixed.length).toBeGreaterThanOrEqual(6);
    expect(prefixed.every((e) => e.resource?.startsWith('audited/'))).toBe(true);
    expect(await search({ actor: 'someone-else' })).toEqual([]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await search({ since: future })).toEqual([]);
    const first = (await (
      await server.api('/api/v1/audit/events?action=artifact:read&limit=2')
    ).json()) as EventPage;
    expect(first.items).toHaveLength(2);
    const second = (await (
      await server.api(`/api/v1/audit/events?action=artifact:read&limit=2&after=${first.next}`)
    ).json()) as EventPage;
    expect(second.items[0]!.seq).toBeGreaterThan(first.items[1]!.seq);
  });

  it('rejects malformed filters with a clear error', async () => {
    const res = await server.api('/api/v1/audit/events?since=yesterday');
    expect(res.status).toBe(400);
    const reversed = await server.api(
      '/api/v1/audit/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z',
    );
    expect(((await reversed.json()) as { code: string }).code).toBe('invalid_request');
  });

  it('a follower waits for the next event and does not see its own polls', async () => {
    const [last] = (await search({ limit: 1000 })).slice(-1);
    const follow = server.api(`/api/v1/audit/events?after=${last!.seq}&wait=10`);
    await new Promise((r) => setTimeout(r, 200));
    await server.api('/api/v1/projects/followed-thing');
    const page = (await (await follow).json()) as EventPage;
    expect(page.items.map((e) => e.resource)).toContain('followed-thing');
    expect(page.items.some((e) => e.action === 'audit:read')).toBe(false);
  });
});

describe('chain, tree and checkpoints', () => {
  it('the stored events chain and the signed checkpoint covers them (RFC 6962 root, C2SP note)', async () => {
    const res = await server.api('/api/v1/audit/checkpoint');
    expect(res.status).toBe(200);
    const view = (await res.json()) as { origin: string; verifierKey: string; size: number; note: string };
    const opened = openNote(view.note, [parseVerifierKey(view.verifierKey)]);
    const checkpoint = parseCheckpoint(opened.text);
    expect(checkpoint.origin).toBe(view.origin);
    const events = (await allEvents()).filter((e) => e.seq <= checkpoint.size);
    expect(events).toHaveLength(checkpoint.size);
    expect(verifyChain(events as never)).toMatchObject({ ok: true });
    const tree = new MerkleTree(events.map((e) => leafHash(Buffer.from(canonicalJson(e)))));
    expect(tree.root().equals(checkpoint.root)).toBe(true);
  });

  it('user-supplied newlines and JSON cannot forge an event in the export', async () => {
    const forged = 'x\n{"kind":"event","event":{"seq":1}}\r\n';
    const agent = '"},{"kind":"event","event":{"seq":1}}';
    await server.api(`/api/v1/projects/${encodeURIComponent(forged)}`, { headers: { 'user-agent': agent } });
    const res = await server.api('/api/v1/audit/export');
    expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = (await res.text()).split('\n').filter((l) => l !== '');
    const parsed = lines.map((l) => JSON.parse(l) as { kind: string; event?: AuditEvent });
    const events = parsed.filter((l) => l.kind === 'event').map((l) => l.event!);
    expect(parsed[0]?.kind).toBe('header');
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.find((e) => e.resource === forged)?.request?.userAgent).toBe(agent);
    expect(verifyChain(events as never)).toMatchObject({ ok: true });
    expect(parsed.filter((l) => l.kind === 'checkpoint').length).toBeGreaterThanOrEqual(1);
  });
});

describe('background actions', () => {
  it('key rotation records the request and the rewrap the server did for it', async () => {
    const res = await server.api('/api/v1/keys/rotate', { method: 'POST' });
    expect(res.status).toBe(200);
    const [rotate] = await eventOf(res.headers.get('x-request-id') ?? '');
    expect(rotate).toMatchObject({ action: 'key:rotate', outcome: 'succeeded' });
    const rewraps = await search({ action: 'key:rewrap' });
    expect(rewraps.at(-1)).toMatchObject({
      category: 'system',
      actor: { id: 'strongroom', type: 'system' },
      request: null,
    });
    expect(Number(rewraps.at(-1)?.details?.rewrapped)).toBeGreaterThan(0);
    expect((await search({ action: 'key:destroy' })).length).toBeGreaterThanOrEqual(1);
  });
});

describe('audit store unwritable (H3)', () => {
  it('refuses every request with audit_unavailable and changes nothing', async () => {
    const db = new Database(join(server.dataDir, 'strongroom.db'));
    db.pragma('busy_timeout = 5000');
    db.exec(
      `create trigger audit_full before insert on audit_events begin select raise(abort, 'disk full'); end`,
    );
    try {
      const create = await server.api('/api/v1/projects', { method: 'POST', json: { name: 'never' } });
      expect(create.status).toBe(503);
      expect(((await create.json()) as { code: string }).code).toBe('audit_unavailable');
      const read = await server.api('/api/v1/projects/audited');
      expect(read.status).toBe(503);
      const download = await server.api('/api/v1/projects/audited/artifacts/m/versions/1/file?path=w.bin');
      expect(download.status).toBe(503);
      expect(((await download.json()) as { code: string }).code).toBe('audit_unavailable');
    } finally {
      db.exec('drop trigger audit_full');
      db.close();
    }
    expect((await server.api('/api/v1/projects/never')).status).toBe(404);
    expect((await server.api('/api/v1/projects/audited')).status).toBe(200);
  });
});

describe('checkpoint sinks', () => {
  it('copies every checkpoint to a file outside the log, in order', async () => {
    const dir = await readdir(server.dataDir);
    expect(dir).toContain('strongroom.db');
    const sinkFile = join(server.dataDir, 'witness.jsonl');
    await server.ctx.audit.checkpoint();
    let content = '';
    for (let i = 0; i < 100 && !content.includes('checkpoint'); i++) {
      content = await readFile(sinkFile, 'utf8').catch(() => '');
      if (!content) await new Promise((r) => setTimeout(r, 50));
    }
    const notes = content
      .split('\n')
      .filter((l) => l)
      .map((l) => JSON.parse(l) as { kind: string; note: string });
    expect(notes.length).toBeGreaterThanOrEqual(1);
    const sizes = notes.map((n) => parseCheckpoint(n.note.slice(0, n.note.indexOf('\n\n') + 1)).size);
    expect([...sizes].sort((a, b) => a - b)).toEqual(sizes);
  });
});

describe('proofs a third party checks without trusting the server (H4)', () => {
  it('an inclusion proof for an event verifies against the signed checkpoint and the event itself', async () => {
    const key = ((await (await server.api('/api/v1/audit/checkpoint')).json()) as { verifierKey: string })
      .verifierKey;
    const res = await server.api('/api/v1/audit/proof/inclusion?seq=2');
    expect(res.status).toBe(200);
    const proof = parseInclusionProof(await res.json());
    expect(proof.event?.seq).toBe(2);
    expect(verifyInclusionProof(proof, key, proof.event)).toMatchObject({ ok: true, seq: 2 });
    const forged = { ...proof, event: { ...proof.event!, action: 'project:delete' } };
    expect(verifyInclusionProof(forged, key, forged.event)).toMatchObject({ ok: false });
  });

  it('a consistency proof links an older checkpoint to the latest one', async () => {
    const first = (await (await server.api('/api/v1/audit/checkpoint')).json()) as {
      size: number;
      verifierKey: string;
    };
    await server.api('/api/v1/projects');
    await server.ctx.audit.checkpoint();
    const res = await server.api(`/api/v1/audit/proof/consistency?old=${first.size}`);
    const proof = parseConsistencyProof(await res.json());
    expect(proof.newSize).toBeGreaterThan(first.size);
    expect(proof.oldCheckpoint).toBeDefined();
    expect(verifyConsistencyProof(proof, first.verifierKey)).toMatchObject({ ok: true });
  });

  it('asks for a checkpointed size and an event inside it', async () => {
    expect((await server.api('/api/v1/audit/proof/inclusion?seq=1&size=3')).status).toBe(400);
    expect((await server.api('/api/v1/audit/proof/inclusion?seq=999999')).status).toBe(400);
  });
});

describe('export, offline verification and retention', () => {
  async function exportLines(): Promise<string[]> {
    const text = await (await server.api('/api/v1/audit/export')).text();
    return text.split('\n').filter((l) => l !== '');
  }

  it('an export verifies offline: chain, tree, every checkpoint signature', async () => {
    const { verifierKey } = (await (await server.api('/api/v1/audit/checkpoint')).json()) as {
      verifierKey: string;
    };
    const verdict = await verifyExport(await exportLines(), { verifierKey });
    expect(verdict).toMatchObject({ ok: true, keySource: 'option', first: 1 });
    if (!verdict.ok) return;
    expect(verdict.checkpoints).toBeGreaterThanOrEqual(2);
    expect(verdict.uncheckpointedTail).toBe(0);
  });

  it('retention archives old events with their last checkpoint, prunes them, and both halves still verify', async () => {
    const { verifierKey } = (await (await server.api('/api/v1/audit/checkpoint')).json()) as {
      verifierKey: string;
    };
    const res = await server.api('/api/v1/audit/prune', { method: 'POST', json: { olderThanDays: 0 } });
    expect(res.status).toBe(200);
    const result = (await res.json()) as { pruned: boolean; from: number; through: number; archive: string };
    expect(result).toMatchObject({ pruned: true, from: 1 });
    const archive = (await readFile(join(dataDir, 'audit-archive', result.archive), 'utf8'))
      .split('\n')
      .filter((l) => l !== '');
    const archived = await verifyExport(archive, { verifierKey });
    expect(archived).toMatchObject({ ok: true, last: result.through, uncheckpointedTail: 0 });
    const live = await verifyExport(await exportLines(), {
      verifierKey,
      ...(archived.ok ? { previous: archived.end } : {}),
    });
    expect(live).toMatchObject({ ok: true, first: result.through + 1 });
    expect(await search({ until: new Date(Date.now() + 60_000).toISOString(), limit: 5 })).not.toContainEqual(
      expect.objectContaining({ seq: 1 }),
    );
    const [prune] = await search({ action: 'audit:prune' });
    expect(prune).toMatchObject({ category: 'system', details: { through: result.through } });
    // Proofs still reach into the pruned part: leaves are kept.
    expect((await server.api('/api/v1/audit/proof/inclusion?seq=1')).status).toBe(200);
  });
});
