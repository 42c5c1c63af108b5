/**
 * The server could not be reached or the connection broke before an answer arrived. Deliberately not a
 * StrongroomError: no server decided anything, so no server code applies. `uploadId` names an upload session
 * that was kept so the push can resume.
 */
export class ConnectionError extends Error {
  readonly code = 'connection_failed' as const;
  readonly uploadId: string | undefined;

  constructor(message: string, options: { cause?: unknown; uploadId?: string | undefined } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ConnectionError';
    this.uploadId = options.uploadId;
  }
}

/** Describe why a fetch failed without echoing the request (which carries the token in a header). */
export function describeNetworkCause(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (cause instanceof Error) {
    const code = (cause as Error & { code?: unknown }).code;
    return typeof code === 'string' && !cause.message.includes(code)
      ? `${cause.message} (${code})`
      : cause.message;
  }
  return String(cause);
}
