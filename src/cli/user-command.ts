import type { Command } from 'commander';
import type { InviteView, UserView } from '../api/schemas.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

interface InviteOptions extends CommonOptions {
  readonly displayName?: string;
  readonly email?: string;
}

function printUser(out: Output, user: UserView): void {
  out.line(`${user.username}  ${user.state}`);
  printFields(out, [
    ['id', user.id],
    ['display name', user.displayName],
    ['email', user.email ?? '-'],
    ['created', user.createdAt],
    ['failed logins', String(user.failedLogins)],
    ...(user.lockedUntil === null ? [] : [['locked until', user.lockedUntil] as const]),
  ]);
}

/** The invitation token is shown here once, with what the user does with it; the server keeps only its hash. */
function printInvitation(out: Output, url: string, invite: InviteView, verb: string): void {
  const name = invite.user.username;
  out.line(`${verb} ${name}; the invitation expires ${invite.expiresAt}`);
  out.line(`invitation token (shown once; give it to ${name} over a trusted channel):`);
  out.line(`  ${invite.inviteToken}`);
  out.line(`${name} sets a password and enrols an authenticator app with:`);
  out.line(`  strongroom login --url ${url} --invite`);
}

/** `strongroom user invite|ls|show|disable|enable|unlock|reset`. */
export function registerUserCommands(program: Command, io: CliIo): void {
  const user = program.command('user').description('people who sign in with a password and TOTP (admin)');

  withCommonOptions(user.command('invite'))
    .description('create a user and print their invitation token (shown once)')
    .argument('<name>', 'username: lowercase letters, digits, ".", "_" and "-"')
    .option('--display-name <text>', 'the name shown for the user')
    .option('--email <address>', 'the user email address')
    .action(async (name: string, options: InviteOptions) => {
      const client = await connect(io, options);
      const invite = await client.inviteUser({
        username: name,
        ...(options.displayName === undefined ? {} : { displayName: options.displayName }),
        ...(options.email === undefined ? {} : { email: options.email }),
      });
      const out = new Output(io, options.json === true);
      out.result(invite, () => printInvitation(out, client.url, invite, 'invited'));
    });

  withCommonOptions(user.command('ls'))
    .description('list users')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const users: UserView[] = [];
      for await (const item of client.iterateUsers()) users.push(item);
      const out = new Output(io, options.json === true);
      out.result(users, () =>
        out.table(
          ['USERNAME', 'STATE', 'DISPLAY NAME', 'EMAIL', 'CREATED'],
          users.map((u) => [u.username, lockedState(u), u.displayName, u.email ?? '-', u.createdAt]),
          'no users',
        ),
      );
    });

  withCommonOptions(user.command('show'))
    .description('show a user')
    .argument('<name>', 'username')
    .action(async (name: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const found = await client.getUser(name);
      const out = new Output(io, options.json === true);
      out.result(found, () => printUser(out, found));
    });

  const changes = [
    ['disable', 'disable a user: every session and token of theirs is revoked at once', 'disabled'],
    ['enable', 'enable a disabled user', 'enabled'],
    ['unlock', 'clear failed sign-ins and any lock', 'unlocked'],
  ] as const;
  for (const [verb, description, done] of changes) {
    withCommonOptions(user.command(verb))
      .description(description)
      .argument('<name>', 'username')
      .action(async (name: string, options: CommonOptions) => {
        const client = await connect(io, options);
        const changed =
          verb === 'disable'
            ? await client.disableUser(name)
            : verb === 'enable'
              ? await client.enableUser(name)
              : await client.unlockUser(name);
        const out = new Output(io, options.json === true);
        out.result(changed, () => out.line(`${done} ${changed.username} (now ${lockedState(changed)})`));
      });
  }

  withCommonOptions(user.command('reset'))
    .description('start enrolment over (lost authenticator): revoke everything and print a new invitation')
    .argument('<name>', 'username')
    .action(async (name: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const invite = await client.resetUser(name);
      const out = new Output(io, options.json === true);
      out.result(invite, () => printInvitation(out, client.url, invite, 'reset'));
    });
}

function lockedState(user: UserView): string {
  return user.lockedUntil !== null && Date.parse(user.lockedUntil) > Date.now()
    ? `${user.state}, locked`
    : user.state;
}
