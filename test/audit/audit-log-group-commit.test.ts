import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/audit-event.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { verifyChain } from '../../src/audit/hash-chain.js';
import { systemClock } from '../../src/core/clock.js';
import type { MetadataStore } from '../../src/storage/metadata-store.js';
import { openSqliteMetadataStore } from '../../src/storage/sqlite/sqlite-metadata-store.js';
import { LOG_KEY, TEST_ORIGIN, eventBody } from '../support/audit-fixtures.js';

let store: MetadataStore;
let log: AuditLog;
let commits: (readonly AuditEvent[])[];

beforeEach(async () => {
  store = await openSqliteMetadataStore(':memory:');
  await store.migrate();
  log = new AuditLog(store, systemClock, {
    origin: TEST_ORIGIN,
    signer: LOG_KEY.signer,
    checkpointEvery: 1e6,
  });
  commits = [];
  log.subscribe((events) => commits.push(events));
});

afterEach(async () => {
  await log.drain();
  await store.close().catch(() => undefined);
});

const nextTurn = () => new Promise<void>((resolve) => setTimeout(resolve, 1));

describe('audit log group commit', () => {
  it('appends in flight together share one transaction, and each resolves with its own place in the chain', async () => {
    const events = await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(eventBody(i + 1))));
    expect(commits.map((c) => c.length)).toEqual([50]);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(events.map((e) => e.request?.id)).toEqual(Array.from({ length: 50 }, (_, i) => `req-${i + 1}`));
    expect(verifyChain(events)).toMatchObject({ ok: true, count: 50 });
  });

  it('appends that arrive while another transaction holds the store join the batch waiting for it', async () => {
    let release = () => {};
    const held = store.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    const appends: Promise<AuditEvent>[] = [];
    for (let i = 1; i <= 10; i++) {
      appends.push(log.append(eventBody(i)));
      await nextTurn(); // each in its own turn of the event loop, as requests arrive
    }
    release();
    await held;
    await Promise.all(appends);
    expect(commits.map((c) => c.length)).toEqual([10]);
  });

  it('when the transaction cannot even begin, every waiting append fails with audit_unavailable', async () => {
    await store.close();
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => log.append(eventBody(i + 1))),
    );
    for (const result of settled) {
      expect(result).toMatchObject({ status: 'rejected', reason: { code: 'audit_unavailable' } });
    }
    expect(commits).toEqual([]);
  });
});
