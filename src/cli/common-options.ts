import { InvalidArgumentError, type Command } from 'commander';
import { EXIT_CODES_HELP } from './exit-codes.js';

/** `--json`, `--url`, `--token` and the exit-code epilogue, on every command. */
export function withCommonOptions(command: Command): Command {
  return command
    .option('--json', 'print the result as one JSON document on stdout')
    .option('--url <url>', 'server URL (else $STRONGROOM_URL, the config file, http://127.0.0.1:7700)')
    .option(
      '--token <token>',
      'API token (else $STRONGROOM_TOKEN, the config file); visible to other local users',
    )
    .addHelpText('after', EXIT_CODES_HELP);
}

/** A commander argument parser for whole numbers within bounds. */
export function wholeNumber(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const parsed = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return parsed;
  };
}
