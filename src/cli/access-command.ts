import type { Command } from 'commander';
import type { AccessOfView, WhoCanView } from '../api/schemas.js';
import type { CliIo } from './cli-io.js';
import { withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';

type Grant = WhoCanView['grants'][number];

const GRANT_HEADERS = ['ROLE', 'SCOPE', 'SOURCE', 'VIA', 'EXPIRES'] as const;

/** Where a grant comes from, in the columns of GRANT_HEADERS. */
function grantCells(g: Grant): string[] {
  return [g.role ?? '-', g.scope, g.source, g.via === null ? '-' : `group:${g.via}`, g.expiresAt ?? 'never'];
}

/** Custom policies that can still take away (or add) what the grants give, under their conditions. */
function printConditions(out: Output, conditions: WhoCanView['conditions']): void {
  out.line();
  if (conditions.length === 0) {
    out.line('conditions: none (no custom policy applies here)');
    return;
  }
  out.line('conditions: custom policies that can take away or add access (see `strongroom policy show ID`):');
  out.table(
    ['POLICY', 'EFFECT', 'SCOPE'],
    conditions.map((c) => [c.policy, c.effect, c.scope]),
  );
}

function printWhoCan(out: Output, resource: string, view: WhoCanView): void {
  out.line(`who may ${view.action} on ${resource}:`);
  out.table(
    ['PRINCIPAL', ...GRANT_HEADERS],
    view.grants.map((g) => [g.principal, ...grantCells(g)]),
    'nobody',
  );
  printConditions(out, view.conditions);
}

function printAccessOf(out: Output, view: AccessOfView): void {
  out.line(`${view.principal}  ${view.principalId}`);
  printFields(out, [['groups', view.groups.length === 0 ? '-' : view.groups.join(', ')]]);
  out.line();
  out.table(
    [...GRANT_HEADERS, 'STATE', 'ACTIONS'],
    view.grants.map((g) => [
      ...grantCells(g),
      g.active === false ? 'expired' : 'active',
      g.actions === undefined ? '-' : g.actions === 'all' ? 'all' : g.actions.join(','),
    ]),
    'no grants',
  );
  printConditions(out, view.conditions);
}

/** `strongroom access who-can|of`: access review, from the bindings and built-in policies in force. */
export function registerAccessCommands(program: Command, io: CliIo): void {
  const access = program
    .command('access')
    .description('review access: who holds an action on a resource, what a principal holds (auditor, admin)');

  withCommonOptions(access.command('who-can'))
    .description('everyone who holds an action on a resource, and where each grant comes from')
    .argument('<action>', 'an action, such as version:download')
    .argument('<resource>', '`organization`, `PROJECT`, `PROJECT/ARTIFACT` or `PROJECT/ARTIFACT:VERSION`')
    .action(async (action: string, resource: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.whoCan(action, resource);
      const out = new Output(io, options.json === true);
      out.result(view, () => printWhoCan(out, resource, view));
    });

  withCommonOptions(access.command('of'))
    .description('what a user or service account holds: its roles, directly or through groups')
    .argument('<principal>', '`user:NAME` or `sa:NAME`')
    .action(async (principal: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.accessOf(principal);
      const out = new Output(io, options.json === true);
      out.result(view, () => printAccessOf(out, view));
    });
}
