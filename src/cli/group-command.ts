import type { Command } from 'commander';
import type { GroupView } from '../api/schemas.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

interface CreateOptions extends CommonOptions {
  readonly description?: string;
}

const PRINCIPAL_HELP = '`user:NAME` or `sa:NAME`';

/** `strongroom group create|ls|show|add|remove`. */
export function registerGroupCommands(program: Command, io: CliIo): void {
  const group = program.command('group').description('groups of users and service accounts (admin)');

  withCommonOptions(group.command('create'))
    .description('create a group')
    .argument('<name>', 'group name: lowercase letters, digits and dashes')
    .option('--description <text>', 'what the group is for')
    .action(async (name: string, options: CreateOptions) => {
      const client = await connect(io, options);
      const created = await client.createGroup({
        name,
        ...(options.description === undefined ? {} : { description: options.description }),
      });
      const out = new Output(io, options.json === true);
      out.result(created, () => out.line(`created group ${created.name}`));
    });

  withCommonOptions(group.command('ls'))
    .description('list groups')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const groups: GroupView[] = [];
      for await (const item of client.iterateGroups()) groups.push(item);
      const out = new Output(io, options.json === true);
      out.result(groups, () =>
        out.table(
          ['NAME', 'CREATED', 'DESCRIPTION'],
          groups.map((g) => [g.name, g.createdAt, g.description]),
          'no groups',
        ),
      );
    });

  withCommonOptions(group.command('show'))
    .description('show a group and its members')
    .argument('<name>', 'group name')
    .action(async (name: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.getGroup(name);
      const out = new Output(io, options.json === true);
      out.result(view, () => {
        out.line(`${view.group.name}${view.group.description === '' ? '' : `  ${view.group.description}`}`);
        printFields(out, [['created', view.group.createdAt]]);
        out.line();
        out.table(
          ['MEMBER', 'SOURCE'],
          view.members.map((m) => [m.principal, m.source]),
          'no members',
        );
      });
    });

  withCommonOptions(group.command('add'))
    .description('add a user or service account to a group')
    .argument('<name>', 'group name')
    .argument('<principal>', PRINCIPAL_HELP)
    .action(async (name: string, principal: string, options: CommonOptions) => {
      const client = await connect(io, options);
      await client.addGroupMember(name, principal);
      const out = new Output(io, options.json === true);
      out.result({ group: name, principal, member: true }, () => out.line(`added ${principal} to ${name}`));
    });

  withCommonOptions(group.command('remove'))
    .description('remove a user or service account from a group (effective on their next request)')
    .argument('<name>', 'group name')
    .argument('<principal>', PRINCIPAL_HELP)
    .action(async (name: string, principal: string, options: CommonOptions) => {
      const client = await connect(io, options);
      await client.removeGroupMember(name, principal);
      const out = new Output(io, options.json === true);
      out.result({ group: name, principal, member: false }, () =>
        out.line(`removed ${principal} from ${name}`),
      );
    });
}
