import { Option, type Command } from 'commander';
import type { ServiceAccountView } from '../api/schemas.js';
import { ENVIRONMENTS, type Environment } from '../core/domain.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';

interface CreateOptions extends CommonOptions {
  readonly env: Environment;
  readonly description?: string;
}

function accountState(account: ServiceAccountView): string {
  return account.disabled ? 'disabled' : 'active';
}

/** `strongroom sa create|ls|disable|enable`. */
export function registerServiceAccountCommands(program: Command, io: CliIo): void {
  const sa = program
    .command('sa')
    .description('service accounts: machine principals with scoped tokens (admin)');

  withCommonOptions(sa.command('create'))
    .description('create a service account bound to one environment')
    .argument('<name>', 'name: lowercase letters, digits and dashes')
    .addOption(
      new Option('--env <environment>', 'the environment its tokens are bound to')
        .choices(ENVIRONMENTS)
        .makeOptionMandatory(),
    )
    .option('--description <text>', 'what the account is for')
    .action(async (name: string, options: CreateOptions) => {
      const client = await connect(io, options);
      const created = await client.createServiceAccount({
        name,
        environment: options.env,
        ...(options.description === undefined ? {} : { description: options.description }),
      });
      const out = new Output(io, options.json === true);
      out.result(created, () =>
        out.line(`created service account ${created.name} (${created.environment}); issue it a token with:
  strongroom token create --sa ${created.name} --ttl 30d`),
      );
    });

  withCommonOptions(sa.command('ls'))
    .description('list service accounts')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const accounts: ServiceAccountView[] = [];
      for await (const item of client.iterateServiceAccounts()) accounts.push(item);
      const out = new Output(io, options.json === true);
      out.result(accounts, () =>
        out.table(
          ['NAME', 'ENVIRONMENT', 'STATE', 'CREATED', 'DESCRIPTION'],
          accounts.map((a) => [a.name, a.environment, accountState(a), a.createdAt, a.description]),
          'no service accounts',
        ),
      );
    });

  for (const verb of ['disable', 'enable'] as const) {
    withCommonOptions(sa.command(verb))
      .description(
        verb === 'disable'
          ? 'disable a service account: its tokens stop working on their next request'
          : 'enable a disabled service account',
      )
      .argument('<name>', 'service account name')
      .action(async (name: string, options: CommonOptions) => {
        const client = await connect(io, options);
        const changed =
          verb === 'disable'
            ? await client.disableServiceAccount(name)
            : await client.enableServiceAccount(name);
        const out = new Output(io, options.json === true);
        out.result(changed, () => out.line(`service account ${changed.name} is ${accountState(changed)}`));
      });
  }
}
