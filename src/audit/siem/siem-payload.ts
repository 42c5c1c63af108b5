import type { AuditEvent } from '../audit-event.js';
import { canonicalJson } from '../canonical-json.js';
import { toOcsf } from './ocsf.js';

/** What an exporter sends for each event: the event itself, or its OCSF form. */
export const SIEM_FORMATS = ['json', 'ocsf'] as const;
export type SiemFormat = (typeof SIEM_FORMATS)[number];

/**
 * One event as a single line of JSON (RFC 8259; no raw control characters, so no newline inside). The `json`
 * form is the RFC 8785 canonical JSON the hash chain covers, so a SIEM can recompute each event's hash and
 * check it against the next event's `prevHash`.
 */
export function siemPayload(event: AuditEvent, format: SiemFormat): string {
  return canonicalJson(format === 'ocsf' ? toOcsf(event) : event);
}

/**
 * The sequence number carried by a payload of either form (`seq`, or OCSF `metadata.uid`), null if none: the
 * key that lets a receiver drop duplicates of at-least-once delivery (docs/siem.md).
 */
export function payloadSeq(payload: unknown): number | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const record = payload as { seq?: unknown; metadata?: { uid?: unknown } };
  const seq = typeof record.seq === 'number' ? record.seq : Number(record.metadata?.uid);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : null;
}
