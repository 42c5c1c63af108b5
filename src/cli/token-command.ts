import type { Command } from 'commander';
import type { CreateTokenBody, IssuedTokenView, TokenView } from '../api/schemas.js';
import { parseProjectName } from '../core/names.js';
import type { CliIo } from './cli-io.js';
import { duration, withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

interface ScopeOptions extends CommonOptions {
  readonly project?: string[];
  readonly action?: string[];
  readonly readOnly?: boolean;
  readonly ttl: number;
  readonly description?: string;
}

interface CreateOptions extends ScopeOptions {
  readonly sa: string;
}

const MIN_TTL_SECONDS = 60;
const MAX_TTL_SECONDS = 366 * 86_400;

/** `--ttl 90m`, `1h`, `30d`: a lifetime in seconds, within what the server accepts. */
export const parseDuration = duration(MIN_TTL_SECONDS, MAX_TTL_SECONDS);

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

type Scope = {
  readonly projects?: readonly string[];
  readonly actions?: readonly string[];
  readonly readOnly: boolean;
};

/** A token scope for people: `unrestricted`, or `projects a, b; actions x; read-only`. */
export function formatScope(scope: Scope | null | undefined): string {
  if (scope === null || scope === undefined) return 'unrestricted';
  const parts = [
    scope.projects === undefined ? 'all projects' : `projects ${scope.projects.join(', ')}`,
    ...(scope.actions === undefined ? [] : [`actions ${scope.actions.join(', ')}`]),
    ...(scope.readOnly ? ['read-only'] : []),
  ];
  return parts.join('; ');
}

function tokenState(token: TokenView): string {
  if (token.revokedAt !== null) return 'revoked';
  return Date.parse(token.expiresAt) <= Date.now() ? 'expired' : 'active';
}

/** The request body from `--project`, `--action`, `--read-only`, `--ttl`, `--description`. */
function tokenBody(options: ScopeOptions): CreateTokenBody {
  const projects = options.project?.map((p) => parseProjectName(p));
  return {
    scope: {
      readOnly: options.readOnly === true,
      ...(projects === undefined ? {} : { projects: [...new Set(projects)] }),
      ...(options.action === undefined ? {} : { actions: [...new Set(options.action)] }),
    },
    ttlSeconds: options.ttl,
    ...(options.description === undefined ? {} : { description: options.description }),
  };
}

/** The one time a token is shown: itself first (so `| head -1` takes it), then what it is. */
function printIssued(out: Output, issued: IssuedTokenView): void {
  const { record } = issued;
  out.line(issued.token);
  printFields(out, [
    ['id', record.id],
    ['scope', formatScope(record.scope)],
    ...(record.environment === null ? [] : [['environment', record.environment] as const]),
    ['expires', record.expiresAt],
  ]);
  out.note(
    'this token is shown once and the server keeps only its hash: store it now (e.g. in a secret store)',
  );
}

function withScopeOptions(command: Command): Command {
  return command
    .option('--project <name>', 'allow only this project; repeat for more (default: every project)', collect)
    .option('--action <action>', 'allow only this action, such as version:download; repeat for more', collect)
    .option('--read-only', 'allow only reads')
    .requiredOption('--ttl <duration>', 'lifetime, such as 1h or 30d', parseDuration)
    .option('--description <text>', 'what the token is for');
}

/** `strongroom token create|ls|revoke|rotate|derive` and `strongroom bootstrap-token rotate|disable`. */
export function registerTokenCommands(program: Command, io: CliIo): void {
  const token = program.command('token').description('scoped, expiring API tokens');

  withScopeOptions(withCommonOptions(token.command('create')))
    .description('issue a token for a service account (printed once)')
    .requiredOption('--sa <name>', 'the service account')
    .action(async (options: CreateOptions) => {
      const body = tokenBody(options);
      const client = await connect(io, options);
      const issued = await client.createServiceAccountToken(options.sa, body);
      const out = new Output(io, options.json === true);
      out.result(issued, () => printIssued(out, issued));
    });

  withCommonOptions(token.command('ls'))
    .description('list the tokens of a user or service account (never the tokens themselves)')
    .argument('<principal>', '`user:NAME` or `sa:NAME`')
    .option('--all', 'include revoked tokens')
    .action(async (principal: string, options: CommonOptions & { readonly all?: boolean }) => {
      const client = await connect(io, options);
      const { items } = await client.listTokens(principal, { includeRevoked: options.all === true });
      const out = new Output(io, options.json === true);
      out.result(items, () =>
        out.table(
          ['ID', 'KIND', 'STATE', 'SCOPE', 'ENVIRONMENT', 'EXPIRES', 'DESCRIPTION'],
          items.map((t) => [
            t.id,
            t.kind,
            tokenState(t),
            formatScope(t.scope),
            t.environment ?? '-',
            t.expiresAt,
            t.description,
          ]),
          'no tokens',
        ),
      );
    });

  withCommonOptions(token.command('revoke'))
    .description('revoke a token (and every token derived from it) on its next request')
    .argument('<id>', 'token id (tok_...)')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const revoked = await client.revokeToken(id);
      const out = new Output(io, options.json === true);
      out.result(revoked, () => out.line(`revoked ${revoked.id}`));
    });

  withCommonOptions(token.command('rotate'))
    .description('replace a service-account token with a new one of the same scope (printed once)')
    .argument('<id>', 'token id (tok_...)')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const issued = await client.rotateToken(id);
      const out = new Output(io, options.json === true);
      out.result(issued, () => {
        printIssued(out, issued);
        out.note(`${id} is revoked`);
      });
    });

  withScopeOptions(withCommonOptions(token.command('derive')))
    .description('mint a shorter-lived, never wider token from the current credentials (printed once)')
    .action(async (options: ScopeOptions) => {
      const body = tokenBody(options);
      const client = await connect(io, options);
      const issued = await client.deriveToken(body);
      const out = new Output(io, options.json === true);
      out.result(issued, () => printIssued(out, issued));
    });

  const bootstrap = program
    .command('bootstrap-token')
    .description('the break-glass bootstrap admin token (needs a recent second factor)');

  withCommonOptions(bootstrap.command('rotate'))
    .description('replace the bootstrap token (printed once); the old one stops working at once')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const result = await client.rotateBootstrapToken();
      const out = new Output(io, options.json === true);
      out.result(result, () => {
        out.line(result.token ?? '');
        out.note('this is the new bootstrap token, shown once: keep it offline; the old one no longer works');
      });
    });

  withCommonOptions(bootstrap.command('disable'))
    .description('turn the bootstrap token off (`bootstrap-token rotate` turns it on again)')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const result = await client.disableBootstrapToken();
      const out = new Output(io, options.json === true);
      out.result(result, () => out.line('the bootstrap token is disabled'));
    });
}
