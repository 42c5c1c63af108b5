import { Option, type Command } from 'commander';
import type { ElevationView } from '../api/schemas.js';
import type { ElevationStatus } from '../client/strongroom-client.js';
import type { CliIo } from './cli-io.js';
import {
  ROLE_HELP,
  SCOPE_HELP,
  duration,
  formatDuration,
  scopeArgument,
  withCommonOptions,
} from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

interface RequestOptions extends CommonOptions {
  readonly scope: string;
  readonly for: number;
  readonly reason: string;
}

interface DecideOptions extends CommonOptions {
  readonly reason?: string;
}

// A record, so that a status added to the API without being added here fails to compile.
const STATUSES = Object.keys({
  pending: 0,
  expired: 0,
  active: 0,
  ended: 0,
  denied: 0,
  cancelled: 0,
} satisfies Record<ElevationStatus, 0>);

/** The longest elevation the API accepts; a server may be configured to allow less. */
const MAX_ELEVATION_SECONDS = 30 * 86_400;

function who(e: ElevationView): string {
  return e.requester ?? e.requesterId;
}

function printElevation(out: Output, e: ElevationView): void {
  out.line(`${e.id}  ${e.status}`);
  printFields(out, [
    ['requester', who(e)],
    ['role', `${e.role} at ${e.scope}`],
    ['for', formatDuration(e.durationSeconds)],
    ['reason', e.reason],
    ['requested', `${e.requestedAt} (decided by ${e.requestExpiresAt} or it expires)`],
    ...(e.decidedAt === null
      ? []
      : [
          [
            'decided',
            `${e.decidedAt} by ${e.decidedBy ?? '-'}${e.decisionReason === null ? '' : `: ${e.decisionReason}`}`,
          ] as const,
        ]),
    ...(e.bindingId === null
      ? []
      : [['binding', `${e.bindingId} until ${e.grantExpiresAt ?? '-'}`] as const]),
  ]);
}

/** `strongroom elevate` and `strongroom elevation list|show|approve|deny|cancel`: just-in-time roles. */
export function registerElevationCommands(program: Command, io: CliIo): void {
  withCommonOptions(program.command('elevate'))
    .description('ask for a role at a scope for a while; someone else approves it')
    .argument('<role>', ROLE_HELP)
    .requiredOption('--scope <scope>', SCOPE_HELP, scopeArgument)
    .requiredOption(
      '--for <duration>',
      'how long the role is held once approved: 30m, 2h, 1d or seconds',
      duration(60, MAX_ELEVATION_SECONDS),
    )
    .requiredOption('--reason <text>', 'why, for the approver and the audit log (3 to 500 characters)')
    .action(async (role: string, options: RequestOptions) => {
      const client = await connect(io, options);
      const created = await client.requestElevation({
        role,
        scope: options.scope,
        durationSeconds: options.for,
        reason: options.reason,
      });
      const out = new Output(io, options.json === true);
      out.result(created, () => {
        out.line(
          `requested ${created.role} at ${created.scope} for ${formatDuration(created.durationSeconds)}: ${created.id}`,
        );
        out.line(
          `someone holding elevation:approve at ${created.scope} decides it by ${created.requestExpiresAt}:`,
        );
        out.line(`  strongroom elevation approve ${created.id}`);
      });
    });

  const elevation = program
    .command('elevation')
    .description('just-in-time elevation requests: yours, and those you may decide');

  withCommonOptions(elevation.command('list').alias('ls'))
    .description('your own requests and those you may approve')
    .addOption(new Option('--status <status>', 'only requests in this state').choices(STATUSES))
    .action(async (options: CommonOptions & { readonly status?: ElevationStatus }) => {
      const client = await connect(io, options);
      const { items } = await client.listElevations(
        options.status === undefined ? {} : { status: options.status },
      );
      const out = new Output(io, options.json === true);
      out.result(items, () =>
        out.table(
          ['ID', 'REQUESTER', 'ROLE', 'SCOPE', 'FOR', 'STATUS', 'REQUESTED', 'REASON'],
          items.map((e) => [
            e.id,
            who(e),
            e.role,
            e.scope,
            formatDuration(e.durationSeconds),
            e.status,
            e.requestedAt,
            e.reason,
          ]),
          'no elevation requests',
        ),
      );
    });

  withCommonOptions(elevation.command('show'))
    .description('show an elevation request')
    .argument('<id>', 'elevation id (elv_...)')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const found = await client.getElevation(id);
      const out = new Output(io, options.json === true);
      out.result(found, () => printElevation(out, found));
    });

  withCommonOptions(elevation.command('approve'))
    .description(
      'approve a pending request: the requester holds the role for its duration (needs a recent MFA)',
    )
    .argument('<id>', 'elevation id (elv_...)')
    .option('--reason <text>', 'why, for the audit log')
    .action(async (id: string, options: DecideOptions) => {
      const client = await connect(io, options);
      const decided = await client.approveElevation(id, options.reason);
      const out = new Output(io, options.json === true);
      out.result(decided, () =>
        out.line(
          `approved ${decided.id}: ${who(decided)} holds ${decided.role} at ${decided.scope} ` +
            `until ${decided.grantExpiresAt ?? '-'} (binding ${decided.bindingId ?? '-'})`,
        ),
      );
    });

  withCommonOptions(elevation.command('deny'))
    .description('deny a pending request (needs a recent MFA)')
    .argument('<id>', 'elevation id (elv_...)')
    .option('--reason <text>', 'why, for the requester and the audit log')
    .action(async (id: string, options: DecideOptions) => {
      const client = await connect(io, options);
      const decided = await client.denyElevation(id, options.reason);
      const out = new Output(io, options.json === true);
      out.result(decided, () =>
        out.line(`denied ${decided.id}: ${who(decided)} asked for ${decided.role} at ${decided.scope}`),
      );
    });

  withCommonOptions(elevation.command('cancel'))
    .description('withdraw your own pending request')
    .argument('<id>', 'elevation id (elv_...)')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const cancelled = await client.cancelElevation(id);
      const out = new Output(io, options.json === true);
      out.result(cancelled, () => out.line(`cancelled ${cancelled.id}`));
    });
}
