/**
 * Every failure Strongroom reports carries a stable, documented `code` (listed in docs/errors.md, kept in sync
 * by a test). Domain code never chooses an HTTP status: the server's error mapper is the one place that does.
 */
export const ERROR_CODES = {
  invalid_request: 'the request is malformed or fails validation',
  invalid_name: 'a project, artifact or version name is not allowed',
  invalid_path: 'a file path inside a version is not a safe relative POSIX path',
  invalid_metadata: 'version metadata is not a JSON object within the size limit',
  invalid_range: 'the Range header is malformed',
  range_not_satisfiable: 'the requested byte range lies outside the file',
  unsupported_media_type: 'the request body has a content type this route does not accept',
  unauthenticated: 'no valid credentials were presented',
  mfa_required:
    'the action needs a recent second-factor verification (step-up); verify a TOTP code and retry',
  account_locked:
    'too many failed sign-ins: the account is locked for a while (see Retry-After) or until an admin unlocks it',
  invalid_password: 'the password does not meet the password policy',
  forbidden: 'the caller is authenticated but the policy denies the action',
  route_not_found: 'no route matches the method and path',
  project_not_found: 'the project does not exist or is not visible to the caller',
  artifact_not_found: 'the artifact does not exist or is not visible to the caller',
  version_not_found: 'the version does not exist, is not visible, or is not yet available',
  file_not_found: 'the version has no file at that path',
  upload_not_found: 'the upload session does not exist, has expired or belongs to someone else',
  user_not_found: 'the user does not exist',
  group_not_found: 'the group does not exist',
  service_account_not_found: 'the service account does not exist',
  token_not_found: 'the token does not exist',
  binding_not_found: 'the role binding does not exist',
  policy_not_found: 'the custom policy does not exist',
  elevation_not_found: 'the elevation request does not exist or is not visible to the caller',
  invite_invalid: 'the invitation is unknown, used, expired or revoked',
  project_exists: 'a project with that name already exists',
  user_exists: 'a user with that name already exists',
  group_exists: 'a group with that name already exists',
  binding_exists: 'a role binding with that id already exists',
  elevation_closed: 'the elevation request was already decided, cancelled, or has expired',
  self_approval: 'an elevation must be approved or denied by someone other than the person who asked',
  policy_invalid: 'the Cedar policy does not parse or fails validation against the schema',
  service_account_exists: 'a service account with that name already exists',
  artifact_exists: 'an artifact with that name already exists in the project',
  artifact_conflict: 'the artifact exists with a different kind or sensitivity than the request states',
  version_exists: 'the version already exists or is being uploaded by another session',
  upload_offset_mismatch: 'the chunk does not start at the offset the server has durably received',
  upload_incomplete: 'the upload cannot be committed before every part is fully received',
  chunk_misaligned: 'a chunk that does not finish its part must be a whole number of segments long',
  length_required: 'the upload needs a Content-Length header',
  payload_too_large: 'the body, file, version or metadata is larger than the configured limit',
  size_mismatch: 'the bytes received do not match the declared size',
  digest_mismatch: 'the SHA-256 computed by the server differs from the one the client declared',
  upload_aborted: 'the client stopped sending before the chunk was complete; the durable offset is kept',
  request_timeout: 'the client was idle or too slow for too long',
  integrity_error: 'stored data failed authentication (tampered, truncated or swapped) and is never served',
  key_unavailable:
    'a data key or key-encryption key needed to read the object is missing or cannot be unwrapped',
  master_key_invalid:
    'the master key is missing, malformed, too widely readable, or does not match this data',
  config_invalid: 'the configuration fails validation',
  storage_error: 'the storage backend failed; the operation was not acknowledged',
  not_ready: 'the server is not ready to serve requests',
  audit_unavailable: 'the audit event could not be written, so the request was refused and nothing changed',
  internal_error: 'an unexpected error; the request id in the response identifies it in the server log',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorOptions {
  /** Safe, non-secret facts a client may act on (for example the durable offset of an upload). */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

/** The one error type domain code throws. Messages are lowercase, one line, user input in backticks. */
export class StrongroomError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StrongroomError';
    this.code = code;
    this.details = options.details;
  }
}

export function isStrongroomError(err: unknown, code?: ErrorCode): err is StrongroomError {
  return err instanceof StrongroomError && (code === undefined || err.code === code);
}

// eslint-disable-next-line no-control-regex
const CONTROL_OR_BACKTICK = /[\u0000-\u001f\u007f`]/g;

/** Quote user input for an error message: backticks, control characters escaped, length bounded. */
export function quote(input: string, max = 80): string {
  const clipped = input.length > max ? `${input.slice(0, max)}…` : input;
  const safe = clipped.replace(
    CONTROL_OR_BACKTICK,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `\`${safe}\``;
}
