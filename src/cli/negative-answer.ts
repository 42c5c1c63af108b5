import type { ExitCode } from './exit-codes.js';

/**
 * A command that worked and printed its answer, but the answer is "no": `policy explain` decided deny, a
 * `policy test` case failed. Scripts branch on the exit code; nothing more is printed, so with `--json` stdout
 * stays the one document already written.
 */
export class NegativeAnswer extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = 'NegativeAnswer';
    this.exitCode = exitCode;
  }
}
