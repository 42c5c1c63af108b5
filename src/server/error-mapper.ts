import { ERROR_CODES, StrongroomError, type ErrorCode } from '../core/errors.js';

/** The one place that turns an error code into an HTTP status (Backstage: domain errors carry no status). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_request: 400,
  invalid_name: 400,
  invalid_path: 400,
  invalid_metadata: 400,
  invalid_range: 400,
  chunk_misaligned: 400,
  size_mismatch: 400,
  unauthenticated: 401,
  mfa_required: 401,
  invite_invalid: 401,
  account_locked: 429,
  invalid_password: 400,
  forbidden: 403,
  route_not_found: 404,
  project_not_found: 404,
  artifact_not_found: 404,
  version_not_found: 404,
  file_not_found: 404,
  upload_not_found: 404,
  user_not_found: 404,
  group_not_found: 404,
  service_account_not_found: 404,
  token_not_found: 404,
  binding_not_found: 404,
  policy_not_found: 404,
  elevation_not_found: 404,
  binding_exists: 409,
  elevation_closed: 409,
  self_approval: 403,
  policy_invalid: 400,
  request_timeout: 408,
  project_exists: 409,
  user_exists: 409,
  group_exists: 409,
  service_account_exists: 409,
  artifact_exists: 409,
  artifact_conflict: 409,
  version_exists: 409,
  upload_offset_mismatch: 409,
  upload_incomplete: 409,
  upload_aborted: 409,
  length_required: 411,
  payload_too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  digest_mismatch: 422,
  integrity_error: 500,
  key_unavailable: 500,
  master_key_invalid: 500,
  config_invalid: 500,
  internal_error: 500,
  storage_error: 503,
  not_ready: 503,
  audit_unavailable: 503,
};

/** Codes whose messages may describe server internals: the client gets a generic message instead. */
const OPAQUE: ReadonlySet<ErrorCode> = new Set([
  'internal_error',
  'storage_error',
  'key_unavailable',
  'master_key_invalid',
  'config_invalid',
]);

export interface MappedError {
  readonly status: number;
  readonly code: ErrorCode;
  readonly detail: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  validation?: unknown;
  message: string;
}

/** Maps any thrown value to a problem; unknown errors become `internal_error` and reveal nothing. */
export function mapError(err: unknown): MappedError {
  if (err instanceof StrongroomError) {
    const detail = OPAQUE.has(err.code) ? ERROR_CODES[err.code] : err.message;
    return {
      status: HTTP_STATUS[err.code],
      code: err.code,
      detail,
      ...(err.details && !OPAQUE.has(err.code) ? { details: err.details } : {}),
    };
  }
  const e = err as FastifyLikeError;
  if (e && typeof e === 'object') {
    if (e.validation) return { status: 400, code: 'invalid_request', detail: e.message };
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return {
          status: 413,
          code: 'payload_too_large',
          detail: 'the request body is larger than the limit',
        };
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return {
          status: 415,
          code: 'unsupported_media_type',
          detail: 'this route does not accept that content type',
        };
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return { status: 400, code: 'invalid_request', detail: 'the body is not valid JSON' };
      case 'FST_ERR_CTP_INVALID_TYPE':
        return { status: 415, code: 'unsupported_media_type', detail: 'the content type is invalid' };
    }
    if (e.statusCode === 400 && typeof e.message === 'string' && /JSON/i.test(e.message)) {
      return { status: 400, code: 'invalid_request', detail: 'the body is not valid JSON' };
    }
  }
  return { status: 500, code: 'internal_error', detail: ERROR_CODES.internal_error };
}

/** The RFC 9457 body every error answer carries. */
export function problemBody(mapped: MappedError, request: { readonly url: string; readonly id: string }) {
  return {
    type: `urn:strongroom:error:${mapped.code}`,
    title: ERROR_CODES[mapped.code],
    status: mapped.status,
    code: mapped.code,
    detail: mapped.detail,
    instance: request.url.split('?')[0],
    requestId: request.id,
    ...(mapped.details ? { details: mapped.details } : {}),
  };
}
