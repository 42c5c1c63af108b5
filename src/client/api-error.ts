import { ERROR_CODES, StrongroomError, type ErrorCode } from '../core/errors.js';

/** How much of an error body the client reads: a problem document is small; anything longer is not one. */
const MAX_PROBLEM_BYTES = 64 * 1024;

export interface ApiErrorInit {
  readonly status: number;
  readonly code: ErrorCode;
  /** The code string exactly as the server sent it, when it sent one (it may be newer than this client). */
  readonly serverCode: string | undefined;
  readonly requestId: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  readonly message: string;
}

/**
 * A non-2xx answer from the server (RFC 9457 problem+json). `code` is always a code this client knows, so
 * callers can `switch (err.code)`; a code from a newer server maps to `internal_error` and stays readable in
 * `serverCode`. Built only from the response body and headers, never from the request, so the token cannot
 * leak into it.
 */
export class ApiError extends StrongroomError {
  readonly status: number;
  readonly serverCode: string | undefined;
  readonly requestId: string | undefined;

  constructor(init: ApiErrorInit) {
    super(init.code, init.message, init.details === undefined ? {} : { details: init.details });
    this.name = 'ApiError';
    this.status = init.status;
    this.serverCode = init.serverCode;
    this.requestId = init.requestId;
  }
}

export function isKnownErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}

/** The code to assume when the server sent no problem document (a proxy's HTML page, an empty body). */
function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 404:
      return 'route_not_found';
    case 408:
      return 'request_timeout';
    case 411:
      return 'length_required';
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 416:
      return 'range_not_satisfiable';
    case 503:
      return 'not_ready';
    default:
      return 'internal_error';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readBounded(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      length += value.byteLength;
      if (length > MAX_PROBLEM_BYTES) {
        await reader.cancel();
        return '';
      }
    }
  } catch {
    return '';
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Turn a non-2xx response into an ApiError, reading at most a small, bounded body. */
export async function apiErrorFromResponse(response: Response): Promise<ApiError> {
  const text = await readBounded(response);
  let problem: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (isRecord(parsed)) problem = parsed;
  } catch {
    // Not a problem document; fall back to the status line below.
  }
  const serverCode = typeof problem['code'] === 'string' ? problem['code'] : undefined;
  const code =
    serverCode === undefined
      ? codeForStatus(response.status)
      : isKnownErrorCode(serverCode)
        ? serverCode
        : 'internal_error';
  const detail = typeof problem['detail'] === 'string' ? problem['detail'] : undefined;
  const title = typeof problem['title'] === 'string' ? problem['title'] : undefined;
  const requestId =
    typeof problem['requestId'] === 'string'
      ? problem['requestId']
      : (response.headers.get('x-request-id') ?? undefined);
  const details = isRecord(problem['details']) ? problem['details'] : undefined;
  const message = detail ?? title ?? `the server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError({ status: response.status, code, serverCode, requestId, details, message });
}
