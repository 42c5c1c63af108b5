import { InvalidArgumentError, type Command } from 'commander';
import type { BindingView } from '../api/schemas.js';
import type { CliIo } from './cli-io.js';
import {
  ROLE_HELP,
  SCOPE_HELP,
  duration,
  rfc3339Time,
  scopeArgument,
  withCommonOptions,
} from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

interface BindOptions extends CommonOptions {
  readonly scope: string;
  readonly id?: string;
  readonly until?: string;
  readonly description?: string;
}

interface ListOptions extends CommonOptions {
  readonly scope?: string;
}

const bindingLifetime = duration(60, 10 * 366 * 86_400);

/** `--until`: an RFC 3339 time, or how long from now (`8h`, `30d`, seconds). */
function untilTime(value: string): string {
  try {
    if (/^\d+[smhd]?$/.test(value)) return new Date(Date.now() + bindingLifetime(value) * 1000).toISOString();
    return rfc3339Time(value);
  } catch {
    throw new InvalidArgumentError(
      'expected an RFC 3339 time (2030-06-01T12:00:00Z) or a duration from now from 1m to 3660d (8h, 30d)',
    );
  }
}

function bindingState(binding: BindingView): string {
  return binding.active ? 'active' : 'expired';
}

function printBinding(out: Output, b: BindingView): void {
  out.line(`${b.id}  ${b.role}  ${b.principal} at ${b.scope}`);
  printFields(out, [
    ['state', bindingState(b)],
    ['expires', b.expiresAt ?? 'never'],
    ['principal id', b.principalId],
    ['created', `${b.createdAt} by ${b.createdBy}`],
    ...(b.elevationId === null ? [] : [['elevation', b.elevationId] as const]),
    ['description', b.description === '' ? '-' : b.description],
    ['in reasons as', `binding:${b.id}`],
  ]);
}

/** `strongroom role bind|unbind|list|show`: built-in roles granted at a scope (docs/authorization.md). */
export function registerRoleCommands(program: Command, io: CliIo): void {
  const role = program
    .command('role')
    .description('role bindings: a built-in role for a user, service account or group at a scope');

  withCommonOptions(role.command('bind'))
    .description('grant a role at a scope, optionally until a time (needs a recent MFA)')
    .argument('<role>', ROLE_HELP)
    .argument('<principal>', '`user:NAME`, `sa:NAME` or `group:NAME`')
    .requiredOption('--scope <scope>', SCOPE_HELP, scopeArgument)
    .option('--id <id>', 'binding id (default: generated): lowercase letters, digits, ".", "_" and "-"')
    .option('--until <time>', 'expiry: an RFC 3339 time, or a duration from now such as 8h or 30d', untilTime)
    .option('--description <text>', 'why the role is granted')
    .action(async (roleName: string, principal: string, options: BindOptions) => {
      const client = await connect(io, options);
      const created = await client.createRoleBinding({
        role: roleName,
        principal,
        scope: options.scope,
        ...(options.id === undefined ? {} : { id: options.id }),
        ...(options.until === undefined ? {} : { expiresAt: options.until }),
        ...(options.description === undefined ? {} : { description: options.description }),
      });
      const out = new Output(io, options.json === true);
      out.result(created, () =>
        out.line(
          `bound ${created.role} to ${created.principal} at ${created.scope}` +
            `${created.expiresAt === null ? '' : ` until ${created.expiresAt}`} (binding ${created.id})`,
        ),
      );
    });

  withCommonOptions(role.command('unbind'))
    .description('remove a role binding: the role is gone on the next request (needs a recent MFA)')
    .argument('<id>', 'binding id')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      await client.deleteRoleBinding(id);
      const out = new Output(io, options.json === true);
      out.result({ binding: id, removed: true }, () => out.line(`removed role binding ${id}`));
    });

  withCommonOptions(role.command('list').alias('ls'))
    .description('list role bindings, expired ones included')
    .option('--scope <scope>', `only those within this scope: ${SCOPE_HELP}`, scopeArgument)
    .action(async (options: ListOptions) => {
      const client = await connect(io, options);
      const { items } = await client.listRoleBindings(
        options.scope === undefined ? {} : { scope: options.scope },
      );
      const out = new Output(io, options.json === true);
      out.result(items, () =>
        out.table(
          ['ID', 'ROLE', 'PRINCIPAL', 'SCOPE', 'STATE', 'EXPIRES', 'DESCRIPTION'],
          items.map((b) => [
            b.id,
            b.role,
            b.principal,
            b.scope,
            bindingState(b),
            b.expiresAt ?? 'never',
            b.description,
          ]),
          'no role bindings',
        ),
      );
    });

  withCommonOptions(role.command('show'))
    .description('show a role binding')
    .argument('<id>', 'binding id')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const found = await client.getRoleBinding(id);
      const out = new Output(io, options.json === true);
      out.result(found, () => printBinding(out, found));
    });
}
