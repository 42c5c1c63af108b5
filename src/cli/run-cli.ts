import { Command, CommanderError } from 'commander';
import { ApiError } from '../client/api-error.js';
import { ConnectionError } from '../client/connection-error.js';
import { CLIENT_VERSION } from '../client/strongroom-client.js';
import type { CliIo } from './cli-io.js';
import { EXIT_CODES, EXIT_CODES_HELP, errorCodeOf, exitCodeFor, type ExitCode } from './exit-codes.js';
import { registerAccessCommands } from './access-command.js';
import { registerAuditCommands } from './audit-command.js';
import { registerElevationCommands } from './elevation-command.js';
import { registerGroupCommands } from './group-command.js';
import { registerKeysCommands } from './keys-command.js';
import { registerLoginCommands } from './login-command.js';
import { registerLsCommand } from './ls-command.js';
import { NegativeAnswer } from './negative-answer.js';
import { terminalSafe } from './output.js';
import { registerPolicyCommands } from './policy-command.js';
import { registerProjectCommands } from './project-command.js';
import { registerPullCommand } from './pull-command.js';
import { registerPushCommand } from './push-command.js';
import { registerRoleCommands } from './role-command.js';
import { registerServiceAccountCommands } from './sa-command.js';
import { registerServeCommand } from './serve-command.js';
import { registerShowCommand } from './show-command.js';
import { registerTokenCommands } from './token-command.js';
import { registerUserCommands } from './user-command.js';

/** The whole command tree, writing through `io` and throwing instead of exiting. */
export function buildProgram(io: CliIo): Command {
  const program = new Command('strongroom')
    .description('Strongroom: a zero-trust registry for ML artifacts')
    .version(CLIENT_VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showSuggestionAfterError()
    .addHelpText('after', EXIT_CODES_HELP);
  registerServeCommand(program, io);
  registerLoginCommands(program, io);
  registerProjectCommands(program, io);
  registerLsCommand(program, io);
  registerShowCommand(program, io);
  registerPushCommand(program, io);
  registerPullCommand(program, io);
  registerKeysCommands(program, io);
  registerAuditCommands(program, io);
  registerUserCommands(program, io);
  registerGroupCommands(program, io);
  registerServiceAccountCommands(program, io);
  registerTokenCommands(program, io);
  registerRoleCommands(program, io);
  registerPolicyCommands(program, io);
  registerAccessCommands(program, io);
  registerElevationCommands(program, io);
  return program;
}

interface ErrorReport {
  readonly code: string;
  readonly message: string;
  readonly status?: number;
  readonly requestId?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly uploadId?: string;
}

function describeError(err: unknown): ErrorReport {
  const message = err instanceof Error ? err.message : String(err);
  const rawCode = (err as { code?: unknown } | null | undefined)?.code;
  const code = errorCodeOf(err) ?? (typeof rawCode === 'string' ? rawCode : 'unexpected_error');
  if (err instanceof ApiError) {
    return {
      // The server's own string, even when this client does not know it (it maps to internal_error).
      code: err.serverCode ?? code,
      message,
      status: err.status,
      ...(err.requestId === undefined ? {} : { requestId: err.requestId }),
      ...(err.details === undefined ? {} : { details: err.details }),
    };
  }
  if (err instanceof ConnectionError && err.uploadId !== undefined)
    return { code, message, uploadId: err.uploadId };
  return { code, message };
}

/** `error: <message> (<code>)` and the request id on stderr; with --json also one error document on stdout. */
function reportError(io: CliIo, err: unknown, json: boolean): void {
  const report = describeError(err);
  io.stderr.write(`error: ${terminalSafe(report.message)} (${terminalSafe(report.code)})\n`);
  if (report.requestId !== undefined) io.stderr.write(`request id: ${terminalSafe(report.requestId)}\n`);
  if (json) io.stdout.write(`${JSON.stringify({ error: report }, null, 2)}\n`);
}

/** Run one `strongroom` invocation; resolves to its exit code (docs/cli.md) and never exits the process. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<ExitCode> {
  const program = buildProgram(io);
  let json = false;
  program.hook('preAction', (_program, action) => {
    json = action.opts<{ json?: boolean }>().json === true;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (err) {
    // Commander has already printed its message (unknown option, missing argument) or the help text.
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
    if (err instanceof NegativeAnswer) return err.exitCode;
    reportError(io, err, json);
    return exitCodeFor(err);
  }
}
