import type { Clock } from '../core/clock.js';
import type { MetadataStore, StoredCheckpoint } from '../storage/metadata-store.js';
import type { AuditEvent } from './audit-event.js';
import type { AuditLog } from './audit-log.js';
import { archiveAndPrune, type ArchiveResult, type RetentionDeps } from './audit-retention.js';
import type { CheckpointSink } from './checkpoint-sinks.js';
import { DeliveryQueue } from './delivery-queue.js';
import type { AuditSink } from './siem/audit-sink.js';

export interface AuditPublisherOptions {
  readonly store: MetadataStore;
  readonly log: AuditLog;
  readonly clock: Clock;
  readonly checkpointIntervalMs: number;
  readonly checkpointSinks: readonly CheckpointSink[];
  readonly eventSinks: readonly AuditSink[];
  /** Archive and prune; on a timer only when `maxAgeMs` is set, on demand always. */
  readonly retention: RetentionDeps & { readonly maxAgeMs: number | undefined; readonly intervalMs: number };
  readonly retry?: { readonly initialMs: number; readonly maxMs: number };
  readonly pollMs?: number;
  onError(what: string, err: unknown): void;
}

/**
 * The audit log's background work: a checkpoint every T seconds when events arrived, copies of every checkpoint
 * to the configured sinks, every event to the SIEM exporters (each with its own persisted position, in order,
 * retried with back-off), and retention. Nothing here is on a request's path.
 */
export class AuditPublisher {
  private readonly queues: DeliveryQueue<unknown>[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private retentionRun: Promise<unknown> | undefined;

  constructor(private readonly options: AuditPublisherOptions) {
    const { store, log } = options;
    const retry = options.retry ?? { initialMs: 1000, maxMs: 60_000 };
    const pollMs = options.pollMs ?? 5000;
    for (const sink of options.checkpointSinks) {
      const queue = new DeliveryQueue<StoredCheckpoint>({
        name: `checkpoint.${sink.name}`,
        store,
        read: (after, limit) => store.listAuditCheckpoints(after + 1, Number.MAX_SAFE_INTEGER, limit),
        positionOf: (c) => c.size,
        deliver: (items) => sink.deliver(items),
        batchSize: 100,
        retry,
        pollMs,
        onError: (err) => options.onError(`checkpoint sink ${sink.name}`, err),
      });
      this.queues.push(queue as DeliveryQueue<unknown>);
    }
    for (const sink of options.eventSinks) {
      const queue = new DeliveryQueue<AuditEvent>({
        name: `export.${sink.name}`,
        store,
        read: async (after, limit) => {
          const rows = await store.searchAuditEvents({ afterSeq: after, limit });
          return rows.map((r) => JSON.parse(r.body) as AuditEvent);
        },
        positionOf: (e) => e.seq,
        deliver: (items) => sink.deliver(items),
        batchSize: 500,
        retry,
        pollMs,
        onError: (err) => options.onError(`audit exporter ${sink.name}`, err),
      });
      this.queues.push(queue as DeliveryQueue<unknown>);
    }
    log.onCheckpoint(() => this.wake('checkpoint.'));
  }

  async start(): Promise<void> {
    const { log, checkpointIntervalMs, retention } = this.options;
    this.unsubscribe = this.options.log.subscribe(() => this.wake('export.'));
    for (const queue of this.queues) await queue.start();
    this.every(checkpointIntervalMs, () => log.checkpoint(), 'checkpoint');
    const maxAgeMs = retention.maxAgeMs;
    if (maxAgeMs !== undefined)
      this.every(retention.intervalMs, () => this.applyRetention(maxAgeMs), 'retention');
  }

  /** Archives and prunes events older than `maxAgeMs` (through the last checkpoint before that age). */
  applyRetention(maxAgeMs: number): Promise<ArchiveResult | undefined> {
    const retention = this.options.retention;
    const now = this.options.clock.now();
    const cutoff = new Date(now.getTime() - maxAgeMs);
    const run = (this.retentionRun ?? Promise.resolve()).then(() => archiveAndPrune(retention, cutoff, now));
    this.retentionRun = run.catch(() => undefined);
    return run;
  }

  private every(ms: number, task: () => Promise<unknown>, what: string): void {
    const timer = setInterval(() => {
      task().catch((err: unknown) => this.options.onError(what, err));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private wake(prefix: string): void {
    for (const queue of this.queues) if (queue.name.startsWith(prefix)) queue.wake();
  }

  /** Stops timers and deliveries, after signing a last checkpoint so the log's end has an outside copy. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    this.unsubscribe?.();
    await this.options.log.drain();
    await this.options.log.checkpoint().catch((err: unknown) => this.options.onError('checkpoint', err));
    for (const queue of this.queues) await queue.stop();
    for (const sink of this.options.eventSinks) await sink.close();
    await this.retentionRun;
  }
}
