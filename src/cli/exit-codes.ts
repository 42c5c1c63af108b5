import type { ErrorCode } from '../core/errors.js';

/** The documented exit codes of `strongroom` (docs/cli.md); scripts branch on these, so they never change. */
export const EXIT_CODES = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  denied: 5,
  integrity: 6,
  unreachable: 7,
} as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** Codes raised on this side of the wire: by the client (connection, local files) or the CLI (usage). */
export type LocalErrorCode = 'connection_failed' | 'file_exists' | 'usage';

// One total map: adding an ErrorCode without deciding its exit code fails to compile.
const BY_CODE: Readonly<Record<ErrorCode | LocalErrorCode, ExitCode>> = {
  invalid_request: EXIT_CODES.usage,
  invalid_password: EXIT_CODES.usage,
  invalid_name: EXIT_CODES.usage,
  invalid_path: EXIT_CODES.usage,
  invalid_metadata: EXIT_CODES.usage,
  invalid_range: EXIT_CODES.usage,
  range_not_satisfiable: EXIT_CODES.usage,
  unsupported_media_type: EXIT_CODES.usage,
  chunk_misaligned: EXIT_CODES.usage,
  length_required: EXIT_CODES.usage,
  payload_too_large: EXIT_CODES.usage,
  config_invalid: EXIT_CODES.usage,
  usage: EXIT_CODES.usage,
  route_not_found: EXIT_CODES.notFound,
  project_not_found: EXIT_CODES.notFound,
  artifact_not_found: EXIT_CODES.notFound,
  version_not_found: EXIT_CODES.notFound,
  file_not_found: EXIT_CODES.notFound,
  upload_not_found: EXIT_CODES.notFound,
  user_not_found: EXIT_CODES.notFound,
  group_not_found: EXIT_CODES.notFound,
  service_account_not_found: EXIT_CODES.notFound,
  token_not_found: EXIT_CODES.notFound,
  binding_not_found: EXIT_CODES.notFound,
  policy_not_found: EXIT_CODES.notFound,
  elevation_not_found: EXIT_CODES.notFound,
  binding_exists: EXIT_CODES.conflict,
  elevation_closed: EXIT_CODES.conflict,
  self_approval: EXIT_CODES.denied,
  policy_invalid: EXIT_CODES.usage,
  project_exists: EXIT_CODES.conflict,
  user_exists: EXIT_CODES.conflict,
  group_exists: EXIT_CODES.conflict,
  service_account_exists: EXIT_CODES.conflict,
  artifact_exists: EXIT_CODES.conflict,
  artifact_conflict: EXIT_CODES.conflict,
  version_exists: EXIT_CODES.conflict,
  upload_offset_mismatch: EXIT_CODES.conflict,
  upload_incomplete: EXIT_CODES.conflict,
  file_exists: EXIT_CODES.conflict,
  unauthenticated: EXIT_CODES.denied,
  mfa_required: EXIT_CODES.denied,
  invite_invalid: EXIT_CODES.denied,
  account_locked: EXIT_CODES.denied,
  forbidden: EXIT_CODES.denied,
  digest_mismatch: EXIT_CODES.integrity,
  size_mismatch: EXIT_CODES.integrity,
  integrity_error: EXIT_CODES.integrity,
  connection_failed: EXIT_CODES.unreachable,
  upload_aborted: EXIT_CODES.unreachable,
  request_timeout: EXIT_CODES.unreachable,
  not_ready: EXIT_CODES.unreachable,
  audit_unavailable: EXIT_CODES.unreachable,
  key_unavailable: EXIT_CODES.unexpected,
  master_key_invalid: EXIT_CODES.unexpected,
  storage_error: EXIT_CODES.unexpected,
  internal_error: EXIT_CODES.unexpected,
};

/** The error's stable code, if it has one this CLI knows. */
export function errorCodeOf(err: unknown): ErrorCode | LocalErrorCode | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && Object.hasOwn(BY_CODE, code)
    ? (code as ErrorCode | LocalErrorCode)
    : undefined;
}

/** The one place that turns an error into an exit code. */
export function exitCodeFor(err: unknown): ExitCode {
  const code = errorCodeOf(err);
  return code === undefined ? EXIT_CODES.unexpected : BY_CODE[code];
}

/** The `--help` epilogue; docs/cli.md carries the same table. */
export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  unexpected error, or a \`policy test\` case failed
  2  usage error or invalid input
  3  not found
  4  conflict (already exists, upload offset mismatch, upload incomplete, local file exists)
  5  unauthenticated or forbidden, or \`policy explain\` decided deny
  6  integrity failure (digest or size mismatch, integrity_error, a pulled file failed verification)
  7  cannot reach the server (connection failed, timed out, server not ready)
`;
