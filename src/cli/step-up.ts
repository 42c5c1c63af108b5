import { ApiError } from '../client/api-error.js';
import type { CliIo } from './cli-io.js';
import { terminalSafe } from './output.js';
import { prompterFor } from './prompter.js';
import { UsageError } from './usage-error.js';

const STEP_UP_HINT = 'verify a code with `strongroom auth step-up --code CODE`, then run the command again';

/** A 6-digit TOTP code as typed: spaces (`123 456`) are dropped; anything else is refused before sending. */
export function parseTotpCode(input: string): string {
  const code = input.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(code)) throw new UsageError('a TOTP code is 6 digits');
  return code;
}

/** Ask for a code from the authenticator app. */
export async function readTotpCode(io: CliIo, question = 'TOTP code: '): Promise<string> {
  return parseTotpCode(await prompterFor(io).ask(question));
}

/**
 * The CLI's answer to `mfa_required` (the SessionKeeper's `stepUpCode`): on a terminal, ask for a code, which
 * the client sends to `POST /auth/step-up` before retrying the request once. Without a terminal nobody can
 * answer, so the command fails with the error and how to step up from a script.
 */
export async function askStepUpCode(io: CliIo, error: ApiError): Promise<string> {
  if (!prompterFor(io).interactive) {
    throw new ApiError({
      status: error.status,
      code: error.code,
      serverCode: error.serverCode,
      requestId: error.requestId,
      details: error.details,
      message: `${error.message}; ${STEP_UP_HINT}`,
    });
  }
  io.stderr.write(`${terminalSafe(error.message)}\n`);
  return readTotpCode(io);
}
