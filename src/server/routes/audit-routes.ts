import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import {
  AuditCheckpointView,
  AuditEventPage,
  AuditPruneBody,
  AuditPruneResult,
  AuditSearchQuery,
  ConsistencyProofQuery,
  ConsistencyProofView,
  InclusionProofQuery,
  InclusionProofView,
} from '../../api/schemas.js';
import { buildConsistencyProof, buildInclusionProof } from '../../audit/audit-proof.js';
import { MerkleTree } from '../../audit/merkle-tree.js';
import type { AuditEvent } from '../../audit/audit-event.js';
import { exportAuditLines } from '../../audit/audit-export.js';
import type { AuditLog } from '../../audit/audit-log.js';
import type { AuditPublisher } from '../../audit/audit-publisher.js';
import type { Clock } from '../../core/clock.js';
import { StrongroomError } from '../../core/errors.js';
import type { Principal } from '../../policy/authorizer.js';
import type { MetadataStore, StoredCheckpoint } from '../../storage/metadata-store.js';
import { resourceOf } from '../pipeline.js';

const errors = { '4xx': { $ref: 'Problem#' }, '5xx': { $ref: 'Problem#' } } as const;
const DEFAULT_LIMIT = 100;
const read = { action: 'audit:read', resource: resourceOf.organization } as const;

export interface AuditRouteDeps {
  /** The raw store: reading the log is not itself a change to record in a transaction. */
  readonly store: MetadataStore;
  readonly audit: AuditLog;
  readonly verifierKey: string;
  readonly publisher: AuditPublisher;
  readonly clock: Clock;
}

/** Reading the audit log (the auditor's routes), its export and checkpoints, and on-demand retention. */
export async function auditRoutes(base: FastifyInstance, deps: AuditRouteDeps): Promise<void> {
  const app = base.withTypeProvider<TypeBoxTypeProvider>();
  const { store, audit } = deps;

  app.get(
    '/api/v1/audit/events',
    {
      schema: {
        tags: ['audit'],
        summary: 'Search events (filters, cursor pagination); `wait` long-polls for new ones (tail -f)',
        querystring: AuditSearchQuery,
        response: { 200: AuditEventPage, ...errors },
      },
      config: read,
    },
    async (request) => {
      const q = request.query;
      if (q.since !== undefined && q.until !== undefined && q.since >= q.until)
        throw new StrongroomError('invalid_request', '`since` must be before `until`');
      const query = {
        actor: q.actor,
        action: q.action,
        resource: q.resource,
        outcome: q.outcome,
        since: q.since === undefined ? undefined : new Date(q.since).toISOString(),
        until: q.until === undefined ? undefined : new Date(q.until).toISOString(),
        limit: q.limit ?? DEFAULT_LIMIT,
      };
      const deadline = Date.now() + (q.wait ?? 0) * 1000;
      let after = q.after ?? 0;
      for (;;) {
        // Subscribe before querying, so an event committed in between still wakes the wait.
        const arrival = q.wait ? nextEvents(audit, deadline, request.principal) : undefined;
        const rows = await store.searchAuditEvents({ ...query, afterSeq: after });
        const events = rows.map((r) => JSON.parse(r.body) as AuditEvent);
        const last = rows[rows.length - 1];
        // A follower does not see its own polls, or each poll would answer the one before it at once.
        const items = q.wait ? events.filter((e) => !isOwnRead(e, request.principal)) : events;
        if (last) after = last.seq;
        if (items.length > 0 || !arrival || Date.now() >= deadline) {
          arrival?.cancel();
          return { items, next: after };
        }
        if (!(await arrival.promise)) return { items, next: after };
      }
    },
  );

  app.get(
    '/api/v1/audit/export',
    {
      schema: {
        tags: ['audit'],
        summary: 'Export the retained log as JSON lines (docs/audit-format.md), after signing a checkpoint',
        response: { 200: Type.Unknown({ description: 'application/x-ndjson' }), ...errors },
      },
      config: read,
    },
    async (_request, reply) => {
      // Runs once the answer starts, after this request's own event: the export ends with a checkpoint
      // covering everything in it.
      const lines = async function* () {
        await audit.checkpoint();
        yield* exportAuditLines(
          store,
          { origin: audit.options.origin, verifierKey: deps.verifierKey },
          deps.clock.now().toISOString(),
        );
      };
      return reply
        .header('content-type', 'application/x-ndjson; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(Readable.from(lines()));
    },
  );

  app.get(
    '/api/v1/audit/checkpoint',
    {
      schema: {
        tags: ['audit'],
        summary: 'The latest signed checkpoint (signing one first if events arrived since)',
        response: { 200: AuditCheckpointView, ...errors },
      },
      config: read,
    },
    async () => {
      const checkpoint = await audit.checkpoint();
      if (!checkpoint) throw new StrongroomError('not_ready', 'the audit log has no checkpoint yet');
      return {
        origin: audit.options.origin,
        verifierKey: deps.verifierKey,
        size: checkpoint.size,
        note: checkpoint.note,
      };
    },
  );

  /** The signed checkpoint at `size`, or the latest (signing one first if events arrived since). */
  const checkpointAt = async (size: number | undefined): Promise<StoredCheckpoint> => {
    const latest = await audit.checkpoint();
    const found = size === undefined ? latest : await store.getAuditCheckpoint(size);
    if (!found) {
      throw new StrongroomError(
        'invalid_request',
        size === undefined ? 'the audit log is empty' : `no checkpoint was signed at tree size ${size}`,
      );
    }
    return found;
  };
  const treeOf = async (size: number) => new MerkleTree([...(await store.listAuditLeaves(1, size))]);

  app.get(
    '/api/v1/audit/proof/inclusion',
    {
      schema: {
        tags: ['audit'],
        summary: 'Proof that event SEQ is in the tree a signed checkpoint commits to',
        querystring: InclusionProofQuery,
        response: { 200: InclusionProofView, ...errors },
      },
      config: read,
    },
    async (request) => {
      const { seq, size } = request.query;
      const checkpoint = await checkpointAt(size);
      if (seq > checkpoint.size)
        throw new StrongroomError('invalid_request', `event ${seq} is not in the tree of ${checkpoint.size}`);
      const [row] = await store.searchAuditEvents({ afterSeq: seq - 1, limit: 1 });
      const event = row?.seq === seq ? (JSON.parse(row.body) as AuditEvent) : undefined;
      return buildInclusionProof(await treeOf(checkpoint.size), seq, checkpoint, event);
    },
  );

  app.get(
    '/api/v1/audit/proof/consistency',
    {
      schema: {
        tags: ['audit'],
        summary: 'Proof that the tree of OLD events is a prefix of a signed checkpoint of NEW events',
        querystring: ConsistencyProofQuery,
        response: { 200: ConsistencyProofView, ...errors },
      },
      config: read,
    },
    async (request) => {
      const checkpoint = await checkpointAt(request.query.new);
      const old = request.query.old;
      if (old > checkpoint.size)
        throw new StrongroomError('invalid_request', `tree size ${old} is beyond ${checkpoint.size}`);
      const oldCheckpoint = old > 0 ? await store.getAuditCheckpoint(old) : undefined;
      return buildConsistencyProof(await treeOf(checkpoint.size), oldCheckpoint ?? old, checkpoint);
    },
  );

  app.post(
    '/api/v1/audit/prune',
    {
      schema: {
        tags: ['audit'],
        summary: 'Archive and prune events older than N days, through the last checkpoint before that age',
        body: AuditPruneBody,
        response: { 200: AuditPruneResult, ...errors },
      },
      config: { action: 'audit:prune', resource: resourceOf.organization },
    },
    async (request) => {
      const result = await deps.publisher.applyRetention(request.body.olderThanDays * 86_400_000);
      if (!result) return { pruned: false };
      return {
        pruned: true,
        from: result.from,
        through: result.through,
        archive: result.file.split('/').pop() ?? '',
        sha256: result.sha256,
      };
    },
  );
}

function isOwnRead(event: AuditEvent, principal: Principal | undefined): boolean {
  return event.action === 'audit:read' && principal !== undefined && event.actor.id === principal.id;
}

/** Resolves true when events other than the caller's own audit reads commit, false at the deadline. */
function nextEvents(audit: AuditLog, deadline: number, principal: Principal | undefined) {
  let cancel = () => {};
  const promise = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
    const unsubscribe = audit.subscribe((events) => {
      if (events.some((e) => !isOwnRead(e, principal))) finish(true);
    });
    const finish = (value: boolean) => {
      clearTimeout(timer);
      unsubscribe();
      resolve(value);
    };
    cancel = () => finish(false);
  });
  return { promise, cancel };
}
