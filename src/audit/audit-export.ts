import { StrongroomError } from '../core/errors.js';
import type { MetadataReader } from '../storage/metadata-store.js';
import type { AuditEvent } from './audit-event.js';

/**
 * The export format (`strongroom audit export`, archives made by retention), JSON lines:
 *
 *   {"kind":"header","format":"strongroom-audit/1","origin":ORIGIN,"verifierKey":VKEY,"base":BASE,"exportedAt":T}
 *   {"kind":"event","event":EVENT}              one per event, in sequence order, starting at base.size + 1
 *   {"kind":"checkpoint","note":SIGNED_NOTE}    placed right after the event whose seq equals its tree size
 *                                               (or right after the header when its size equals base.size)
 *
 * BASE describes the log before the first exported event, so an export that starts after an archive boundary
 * still verifies: `size` events came before, `lastHash` is the hash of event `size` (64 zeros when size is 0),
 * and `frontier` is the RFC 6962 compact range of those `size` leaves (hex, largest subtree first). The archive
 * that ends at that boundary ends with the same values, which `audit verify` checks when given both files.
 *
 * Each event's Merkle leaf is SHA-256(0x00 || canonical JSON of the event); its chain hash is SHA-256 of the
 * same canonical JSON. A checkpoint is a C2SP tlog-checkpoint signed note over (origin, size, root).
 */
export const AUDIT_EXPORT_FORMAT = 'strongroom-audit/1';

export interface AuditExportBase {
  readonly size: number;
  readonly lastHash: string;
  readonly frontier: readonly string[];
}

export interface AuditExportHeader {
  readonly kind: 'header';
  readonly format: typeof AUDIT_EXPORT_FORMAT;
  /** The checkpoint origin line of this log. */
  readonly origin: string;
  /** The log's signed-note verifier key as the server states it; `audit verify --key` overrides it. */
  readonly verifierKey: string;
  readonly base: AuditExportBase;
  readonly exportedAt: string;
}

export type AuditExportLine =
  | AuditExportHeader
  | { readonly kind: 'event'; readonly event: AuditEvent }
  | { readonly kind: 'checkpoint'; readonly note: string };

const PAGE = 1000;

/**
 * The export of the retained log through `throughSize` (default: its current end), as JSON lines in the format
 * above. Event bodies are written exactly as stored (the bytes that were hashed), so the export verifies
 * offline with nothing but this file and a verifier key.
 */
export async function* exportAuditLines(
  store: MetadataReader,
  log: { readonly origin: string; readonly verifierKey: string },
  exportedAt: string,
  throughSize?: number,
): AsyncGenerator<string> {
  const boundary = await store.getAuditBoundary();
  const state = await store.getAuditState();
  const end = Math.min(throughSize ?? state.size, state.size);
  const header: AuditExportHeader = {
    kind: 'header',
    format: AUDIT_EXPORT_FORMAT,
    origin: log.origin,
    verifierKey: log.verifierKey,
    base: {
      size: boundary.size,
      lastHash: boundary.lastHash,
      frontier: boundary.frontier.map((n) => n.toString('hex')),
    },
    exportedAt,
  };
  yield `${JSON.stringify(header)}\n`;
  let checkpoints = await store.listAuditCheckpoints(boundary.size, end, PAGE);
  let nextCheckpoint = 0;
  const checkpointsAt = async function* (size: number): AsyncGenerator<string> {
    for (;;) {
      if (nextCheckpoint >= checkpoints.length) {
        const last = checkpoints[checkpoints.length - 1];
        if (checkpoints.length < PAGE || last === undefined) return;
        checkpoints = await store.listAuditCheckpoints(last.size + 1, end, PAGE);
        nextCheckpoint = 0;
        continue;
      }
      const checkpoint = checkpoints[nextCheckpoint];
      if (checkpoint === undefined || checkpoint.size > size) return;
      nextCheckpoint++;
      if (checkpoint.size === size)
        yield `${JSON.stringify({ kind: 'checkpoint', note: checkpoint.note })}\n`;
    }
  };
  yield* checkpointsAt(boundary.size);
  let after = boundary.size;
  while (after < end) {
    const events = await store.searchAuditEvents({ afterSeq: after, limit: Math.min(PAGE, end - after) });
    if (events.length === 0) break;
    for (const event of events) {
      if (event.seq !== after + 1)
        throw new StrongroomError('storage_error', `audit event ${after + 1} is missing`);
      after = event.seq;
      yield `{"kind":"event","event":${event.body}}\n`;
      yield* checkpointsAt(event.seq);
    }
  }
}
