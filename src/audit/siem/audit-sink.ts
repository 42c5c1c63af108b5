import type { AuditEvent } from '../audit-event.js';

/**
 * Where the exporter runner sends audit events. The runner reads events in sequence order after a persisted
 * position, calls `deliver(batch)`, retries the same batch with back-off when it throws, and advances the
 * position only after it resolves: delivery is at-least-once and in order, and every message carries `seq`.
 */
export interface AuditSink {
  /** Stable name used to persist the exporter position (e.g. `syslog`, `jsonl`). */
  readonly name: string;
  /** Delivers events in order; resolves only when they are handed off durably (fsync'd, or written to the socket and flushed). Throws on any failure; the caller retries the same batch. */
  deliver(events: readonly AuditEvent[]): Promise<void>;
  close(): Promise<void>;
}
