/**
 * The audit event (DESIGN.md section 5): who did what to which resource, what policy decided, how it ended.
 * Events hold ids and codes only, never secrets, tokens or decrypted data. User-supplied strings (names, user
 * agents) are JSON string values, so a newline or a brace in them cannot start a new event in any export.
 */

/** Format version of the event body; a verifier refuses versions it does not know. */
export const AUDIT_EVENT_VERSION = 1;

/** Which OCSF class an event maps to when exported (API Activity, Authentication, Account Change). */
export const AUDIT_CATEGORIES = ['api', 'authentication', 'account', 'system'] as const;
export type AuditCategory = (typeof AUDIT_CATEGORIES)[number];

/** RFC 5424 severities we use (numeric values in `SYSLOG_SEVERITY`). */
export const AUDIT_SEVERITIES = ['info', 'notice', 'warning', 'error'] as const;
export type AuditSeverity = (typeof AUDIT_SEVERITIES)[number];

export interface AuditActor {
  /** The principal id; null when the request carried no valid credentials. */
  readonly id: string | null;
  readonly type: 'user' | 'service' | 'anonymous' | 'system';
  /** How the principal proved itself (`bootstrap-token`, `password+totp`, `oidc`, ...); null if it did not. */
  readonly authMethod: string | null;
}

export interface AuditDecision {
  /** `none` when no authorization took place (public route, authentication failed, unmatched route). */
  readonly effect: 'allow' | 'deny' | 'none';
  /** Ids of the policies behind the decision. */
  readonly policies: readonly string[];
}

export interface AuditRequest {
  readonly id: string;
  readonly method: string;
  /** The path without its query string (queries may carry values nobody should keep). */
  readonly path: string;
  /** The HTTP status answered; null when the event was committed before the status was known. */
  readonly status: number | null;
  readonly clientAddress: string;
  readonly userAgent: string | null;
}

/** What a caller supplies; the log adds `v`, `seq`, `time` and `prevHash`. */
export interface AuditEventBody {
  readonly category: AuditCategory;
  readonly actor: AuditActor;
  /** The route's declared action (`version:download`), or a system action (`key:rewrap`, `audit:prune`). */
  readonly action: string;
  /** The resource in reference form: `vision`, `vision/resnet`, `vision/resnet:1.0.0`, `upload/ID`, or null. */
  readonly resource: string | null;
  readonly decision: AuditDecision;
  readonly outcome: 'succeeded' | 'failed';
  /** The stable error code of a failed outcome. */
  readonly errorCode: string | null;
  readonly severity: AuditSeverity;
  /** The HTTP request behind the event; null for background actions. */
  readonly request: AuditRequest | null;
  /** Small, non-secret facts about the action (counts, ids, sizes). */
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

/** An event as stored, chained and exported. Its hash is SHA-256 over its RFC 8785 canonical JSON. */
export interface AuditEvent extends AuditEventBody {
  readonly v: typeof AUDIT_EVENT_VERSION;
  /** 1-based position in the log; leaf index `seq - 1` of the Merkle tree. */
  readonly seq: number;
  /** RFC 3339 UTC time with milliseconds. */
  readonly time: string;
  /** Hex SHA-256 of the previous event (64 zeros for the first). */
  readonly prevHash: string;
}

export const SYSLOG_SEVERITY: Readonly<Record<AuditSeverity, number>> = {
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
};
