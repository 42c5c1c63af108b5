import { InvalidArgumentError, type Command } from 'commander';
import { parseArtifactRef, parseProjectName } from '../core/names.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

/** How a scope is written in every command and request. */
export const SCOPE_HELP = '`organization`, `project:PROJECT` or `artifact:PROJECT/ARTIFACT`';
/** The built-in roles (docs/authorization.md); the server refuses any other name. */
export const ROLE_HELP = 'viewer, contributor, approver, incident-responder, auditor or admin';

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

const UNIT_SECONDS = { d: 86_400, h: 3600, m: 60, s: 1 } as const;

/** Seconds the way people write them: `2h`, `90m`, `1d` where it divides evenly, else `125s`. */
export function formatDuration(seconds: number): string {
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

/** A commander argument parser for a duration in seconds within bounds: `90m`, `12h`, `30d`, or bare seconds. */
export function duration(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    const match = /^(\d{1,9})([smhd]?)$/.exec(value);
    const unit = (match?.[2] || 's') as keyof typeof UNIT_SECONDS;
    const seconds = match ? Number(match[1]) * UNIT_SECONDS[unit] : Number.NaN;
    if (!(seconds >= min && seconds <= max))
      throw new InvalidArgumentError(
        `expected a duration from ${formatDuration(min)} to ${formatDuration(max)}, such as 90m, 12h or 30d`,
      );
    return seconds;
  };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/** A commander argument parser for an RFC 3339 time with its offset; answers it in UTC (`...Z`). */
export function rfc3339Time(value: string): string {
  const ms = RFC3339.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms))
    throw new InvalidArgumentError('expected an RFC 3339 time with an offset, such as 2030-06-01T12:00:00Z');
  return new Date(ms).toISOString();
}

/** A commander argument parser for a scope, with its names checked before any request is made. */
export function scopeArgument(value: string): string {
  if (value === 'organization') return value;
  if (value.startsWith('project:')) return `project:${parseProjectName(value.slice('project:'.length))}`;
  if (value.startsWith('artifact:')) {
    const ref = parseArtifactRef(value.slice('artifact:'.length));
    return `artifact:${ref.project}/${ref.artifact}`;
  }
  throw new InvalidArgumentError(`expected ${SCOPE_HELP}`);
}
