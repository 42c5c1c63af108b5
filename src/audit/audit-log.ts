import { EventEmitter } from 'node:events';
import type { Clock } from '../core/clock.js';
import { StrongroomError } from '../core/errors.js';
import type {
  AuditLogState,
  MetadataStore,
  MetadataWriter,
  StoredAuditEvent,
  StoredCheckpoint,
} from '../storage/metadata-store.js';
import { AUDIT_EVENT_VERSION, type AuditEvent, type AuditEventBody } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { canonicalHashes } from './hash-chain.js';
import { CompactRange } from './merkle-tree.js';
import { formatCheckpoint, signNote, type NoteSigner } from './signed-note.js';

export interface AuditLogOptions {
  /** The checkpoint origin line (C2SP tlog-checkpoint); also the signing key's name. */
  readonly origin: string;
  readonly signer: NoteSigner;
  /** Sign a checkpoint once this many events have been appended since the last one. */
  readonly checkpointEvery: number;
}

interface Pending {
  readonly body: AuditEventBody;
  readonly resolve: (event: AuditEvent) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * The tamper-evident audit log (DESIGN.md section 5): every event is chained to the previous one by the SHA-256
 * of its RFC 8785 canonical JSON and becomes a leaf of an RFC 6962 Merkle tree whose root is signed in C2SP
 * checkpoints. Appends happen inside metadata transactions, so an event commits with the change it records or
 * not at all (H3), and the log's end is compare-and-set so the chain cannot fork.
 */
export class AuditLog {
  private readonly emitter = new EventEmitter();
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private sinceCheckpoint = 0;
  private checkpointing: Promise<StoredCheckpoint | undefined> | undefined;

  constructor(
    private readonly store: MetadataStore,
    private readonly clock: Clock,
    readonly options: AuditLogOptions,
  ) {
    this.emitter.setMaxListeners(0);
  }

  /**
   * Appends events inside the caller's transaction (H3: they commit with its change or not at all). Call
   * `published` with the result after the transaction commits.
   */
  async appendIn(tx: MetadataWriter, bodies: readonly AuditEventBody[]): Promise<AuditEvent[]> {
    const state = await tx.getAuditState();
    const range = new CompactRange(state.size, state.frontier);
    const time = this.clock.now().toISOString();
    const events: AuditEvent[] = [];
    const rows: StoredAuditEvent[] = [];
    let prevHash = state.lastHash;
    for (const body of bodies) {
      const event: AuditEvent = { ...body, v: AUDIT_EVENT_VERSION, seq: range.size + 1, time, prevHash };
      const json = canonicalJson(event);
      const { hash, leaf } = canonicalHashes(json);
      prevHash = hash;
      range.append(leaf);
      events.push(event);
      rows.push({
        seq: event.seq,
        time,
        actor: body.actor.id,
        action: body.action,
        resource: body.resource,
        outcome: body.outcome,
        body: json,
        leaf,
      });
    }
    const next: AuditLogState = {
      size: range.size,
      lastHash: prevHash,
      frontier: range.hashes,
      prunedThrough: state.prunedThrough,
    };
    await tx.appendAuditEvents(state.size, rows, next);
    return events;
  }

  /** Tells followers, exporters and the checkpoint schedule about events whose transaction has committed. */
  published(events: readonly AuditEvent[]): void {
    if (events.length === 0) return;
    this.sinceCheckpoint += events.length;
    this.emitter.emit('events', events);
    if (this.sinceCheckpoint >= this.options.checkpointEvery) {
      this.checkpoint().catch((err: unknown) => this.emitter.emit('error', err));
    }
  }

  /**
   * Group commit for events that accompany no change (reads, denials, failures): concurrent appends share one
   * transaction and one fsync. Resolves once the event is durable; rejects (with `audit_unavailable`) if it
   * could not be written, and the caller must then fail its request.
   */
  append(body: AuditEventBody): Promise<AuditEvent> {
    return new Promise<AuditEvent>((resolve, reject) => {
      this.queue.push({ body, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // One turn of the event loop first: requests whose bytes arrived during the last commit's fsync (the
        // SQLite driver blocks the loop while it syncs) reach their append and join this batch. Without it each
        // request started a transaction of its own, since its whole commit ran before the next request's I/O.
        await new Promise<void>((resolve) => setImmediate(resolve));
        let batch: Pending[] = [];
        try {
          const events = await this.store.transaction((tx) => {
            // Taken once the transaction holds the connection, so appends queued while it waited join too.
            batch = this.takeQueue();
            return this.appendIn(
              tx,
              batch.map((p) => p.body),
            );
          });
          this.published(events);
          batch.forEach((p, i) => p.resolve(events[i] as AuditEvent));
        } catch (err) {
          // A transaction that failed to begin never took its batch: what waited for it fails the same way.
          if (batch.length === 0) batch = this.takeQueue();
          const failure = unavailable(err);
          for (const p of batch) p.reject(failure);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private takeQueue(): Pending[] {
    const batch = this.queue;
    this.queue = [];
    return batch;
  }

  /** Follow committed events (`audit tail -f`, exporters). Returns the unsubscribe function. */
  subscribe(listener: (events: readonly AuditEvent[]) => void): () => void {
    this.emitter.on('events', listener);
    return () => this.emitter.off('events', listener);
  }

  /** Failures of background checkpointing, for the server log. */
  onError(listener: (err: unknown) => void): void {
    this.emitter.on('error', listener);
  }

  /** Notified after each new signed checkpoint (checkpoint sinks wake on it). */
  onCheckpoint(listener: (checkpoint: StoredCheckpoint) => void): void {
    this.emitter.on('checkpoint', listener);
  }

  /**
   * Signs a checkpoint over the current end of the log unless one exists for that size (C2SP tlog-checkpoint,
   * threat H2: an outside copy of it catches truncation and re-chaining later). Returns the latest checkpoint.
   */
  checkpoint(): Promise<StoredCheckpoint | undefined> {
    this.checkpointing ??= this.signCheckpoint().finally(() => {
      this.checkpointing = undefined;
    });
    return this.checkpointing;
  }

  private async signCheckpoint(): Promise<StoredCheckpoint | undefined> {
    this.sinceCheckpoint = 0;
    const created = await this.store.transaction(async (tx) => {
      const state = await tx.getAuditState();
      const latest = await tx.latestAuditCheckpoint();
      if (state.size === 0 || (latest !== undefined && latest.size >= state.size)) return undefined;
      const root = new CompactRange(state.size, state.frontier).root();
      const note = signNote(
        formatCheckpoint({ origin: this.options.origin, size: state.size, root, extensions: [] }),
        this.options.signer,
      );
      const checkpoint: StoredCheckpoint = {
        size: state.size,
        note,
        createdAt: this.clock.now().toISOString(),
      };
      await tx.insertAuditCheckpoint(checkpoint);
      return checkpoint;
    });
    if (created) this.emitter.emit('checkpoint', created);
    return created ?? (await this.store.latestAuditCheckpoint());
  }

  /** Waits for queued appends (shutdown). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }
}

/** Any failure to write the audit log becomes `audit_unavailable`: the request that needed it fails (H3). */
export function unavailable(err: unknown): StrongroomError {
  if (err instanceof StrongroomError && err.code === 'audit_unavailable') return err;
  return new StrongroomError('audit_unavailable', 'the audit log cannot be written; nothing was changed', {
    cause: err,
  });
}
