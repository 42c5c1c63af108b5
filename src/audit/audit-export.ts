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
