import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetadataStore, StoredCheckpoint } from '../storage/metadata-store.js';
import { runInScope, systemScope } from './audit-scope.js';
import { exportAuditLines } from './audit-export.js';
import { CompactRange } from './merkle-tree.js';

export interface ArchiveResult {
  /** Events after `from - 1` through `through` went into `file` and were pruned. */
  readonly from: number;
  readonly through: number;
  readonly file: string;
  readonly sha256: string;
}

export interface RetentionDeps {
  /** The raw store, for reads. */
  readonly store: MetadataStore;
  /** The audited store: the prune commits its own `audit:prune` event. */
  readonly audited: MetadataStore;
  readonly log: { readonly origin: string; readonly verifierKey: string };
  readonly archiveDir: string;
}

/**
 * Retention (issue 3): events before `cutoff` are written to an archive (an export ending with a signed
 * checkpoint), made durable, and only then pruned. The archive ends at a checkpoint, and the retained log
 * starts at exactly that boundary (its hash and compact range are kept), so the archive and the live log each
 * verify on their own and `audit verify ARCHIVE LIVE` checks that they join.
 */
export async function archiveAndPrune(
  deps: RetentionDeps,
  cutoff: Date,
  now: Date,
): Promise<ArchiveResult | undefined> {
  const { store } = deps;
  const boundary = await store.getAuditBoundary();
  const before = await store.lastAuditSeqBefore(cutoff.toISOString());
  const checkpoint = await lastCheckpointIn(store, boundary.size + 1, before);
  if (checkpoint === undefined) return undefined;
  const through = checkpoint.size;

  await mkdir(deps.archiveDir, { recursive: true, mode: 0o700 });
  const name = `audit-${boundary.size + 1}-${through}.jsonl`;
  const final = join(deps.archiveDir, name);
  const partial = `${final}.partial`;
  const hash = createHash('sha256');
  const file = await open(partial, 'w', 0o600);
  try {
    for await (const line of exportAuditLines(store, deps.log, now.toISOString(), through)) {
      hash.update(line);
      await file.write(line);
    }
    await file.sync();
  } catch (err) {
    await file.close();
    await rm(partial, { force: true });
    throw err;
  } finally {
    await file.close().catch(() => undefined);
  }
  await rename(partial, final);
  const dir = await open(deps.archiveDir, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }

  const range = new CompactRange(boundary.size, boundary.frontier);
  for (const leaf of await store.listAuditLeaves(boundary.size + 1, through)) range.append(leaf);
  const [last] = await store.searchAuditEvents({ afterSeq: through - 1, limit: 1 });
  if (last?.seq !== through) throw new Error(`audit event ${through} is missing`);
  const lastHash = createHash('sha256').update(last.body, 'utf8').digest('hex');
  const sha256 = hash.digest('hex');
  const scope = systemScope('audit:prune', null, () => ({
    from: boundary.size + 1,
    through,
    archive: name,
    sha256,
  }));
  await runInScope(scope, () =>
    deps.audited.transaction((tx) =>
      tx.pruneAuditEvents({ size: through, lastHash, frontier: range.hashes }),
    ),
  );
  return { from: boundary.size + 1, through, file: final, sha256 };
}

async function lastCheckpointIn(
  store: MetadataStore,
  from: number,
  to: number,
): Promise<StoredCheckpoint | undefined> {
  let last: StoredCheckpoint | undefined;
  for (let start = from; start <= to;) {
    const page = await store.listAuditCheckpoints(start, to, 1000);
    if (page.length === 0) break;
    last = page[page.length - 1];
    start = (last?.size ?? to) + 1;
  }
  return last;
}
