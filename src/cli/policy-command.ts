import { InvalidArgumentError, type Command } from 'commander';
import type { ExplainBody, ExplainView, PolicyTestView, PolicyView } from '../api/schemas.js';
import { quote } from '../core/errors.js';
import type { CliIo } from './cli-io.js';
import { SCOPE_HELP, rfc3339Time, wholeNumber, scopeArgument, withCommonOptions } from './common-options.js';
import { connect, type CommonOptions } from './credentials.js';
import { EXIT_CODES } from './exit-codes.js';
import { NegativeAnswer } from './negative-answer.js';
import { Output } from './output.js';
import { printFields } from './print-fields.js';
import { readInput } from './read-input.js';
import { UsageError } from './usage-error.js';

interface ScopeOptions extends CommonOptions {
  readonly scope?: string;
}

interface AddOptions extends CommonOptions {
  readonly scope: string;
  readonly description?: string;
}

interface ValidateOptions extends CommonOptions {
  readonly scope: string;
  readonly id?: string;
}

interface ExplainOptions extends CommonOptions {
  readonly as: string;
  readonly ip?: string;
  readonly time?: number | string;
  readonly mfaAge?: number;
  readonly authMethod?: string;
  readonly environment?: string;
  readonly devicePosture?: string;
}

/**
 * The server takes at most 65,536 characters of policy text, which is at most four times as many UTF-8 bytes: a
 * file larger than that is refused before anything is sent; the server checks the length itself.
 */
const MAX_POLICY_FILE_BYTES = 4 * 65_536;
const MAX_TEST_FILE_BYTES = 16 * 1024 * 1024;
const RESOURCE_HELP = '`organization`, `PROJECT`, `PROJECT/ARTIFACT` or `PROJECT/ARTIFACT:VERSION`';

/** `--time`: epoch seconds, or an RFC 3339 time. */
function explainTime(value: string): number | string {
  if (/^\d{1,12}$/.test(value)) return Number(value);
  try {
    return rfc3339Time(value);
  } catch {
    throw new InvalidArgumentError(
      'expected epoch seconds or an RFC 3339 time, such as 2030-06-01T12:00:00Z',
    );
  }
}

function explainBody(principal: string, action: string, resource: string, o: ExplainOptions): ExplainBody {
  const context: NonNullable<ExplainBody['context']> = {
    ...(o.ip === undefined ? {} : { ip: o.ip }),
    ...(o.time === undefined ? {} : { time: o.time }),
    ...(o.mfaAge === undefined ? {} : { mfaAgeSeconds: o.mfaAge }),
    ...(o.authMethod === undefined ? {} : { authMethod: o.authMethod }),
    ...(o.environment === undefined ? {} : { environment: o.environment }),
    ...(o.devicePosture === undefined ? {} : { devicePosture: o.devicePosture }),
  };
  return { principal, action, resource, ...(Object.keys(context).length === 0 ? {} : { context }) };
}

/** The policies behind a decision; an empty list on a deny is Cedar's default deny. */
function describeReasons(view: Pick<ExplainView, 'decision' | 'reasons'>): string {
  if (view.reasons.length > 0) return view.reasons.join(', ');
  return view.decision === 'deny' ? 'default deny: no policy permits' : '-';
}

/** A context value as Cedar writes it: `ip("10.0.0.1")` rather than its JSON encoding. */
function cedarValue(value: unknown): string {
  const extension = (value as { __extn?: { fn?: unknown; arg?: unknown } } | null)?.__extn;
  if (typeof extension?.fn === 'string') return `${extension.fn}(${JSON.stringify(extension.arg)})`;
  return JSON.stringify(value);
}

function printExplanation(out: Output, request: ExplainBody, view: ExplainView): void {
  out.line(`${view.decision}  ${request.principal} ${request.action} ${request.resource}`);
  printFields(out, [
    [view.decision === 'allow' ? 'permitted by' : 'denied by', describeReasons(view)],
    ...view.errors.map((e) => ['error', e] as const),
    ['slice', view.slice],
    ['policy version', String(view.policyVersion)],
    [
      'context',
      Object.entries(view.context)
        .map(([key, value]) => `${key}=${cedarValue(value)}`)
        .join(' '),
    ],
  ]);
}

function printPolicy(out: Output, policy: PolicyView): void {
  out.line(`${policy.id}  ${policy.scope}`);
  printFields(out, [
    ['description', policy.description === '' ? '-' : policy.description],
    ['created', `${policy.createdAt} by ${policy.createdBy}`],
    ['updated', `${policy.updatedAt} by ${policy.updatedBy}`],
    ['in reasons as', `policy:${policy.id}`],
  ]);
  out.line();
  for (const line of policy.text.replace(/\n$/, '').split('\n')) out.line(line);
}

/**
 * Where a JSON syntax error is, as far as the runtime says (`line 3 column 7: <reason>`), else the reason;
 * `firstLine` is the line `text` starts on when it is known (JSON lines).
 */
function jsonError(err: unknown, text: string, firstLine?: number): string {
  const message = err instanceof Error ? err.message : String(err);
  // Node 20 quotes the whole input after the reason; the reason alone is what a person needs.
  const reason = message
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/ in JSON at position \d+.*$/s, '');
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return firstLine === undefined ? reason : `line ${firstLine}: ${reason}`;
  const before = text.slice(0, Number(position));
  const line = (firstLine ?? 1) + before.split('\n').length - 1;
  return `line ${line} column ${before.length - before.lastIndexOf('\n')}: ${reason}`;
}

/**
 * The cases of a policy test file as JSON values, in the format `src/policy/cedar/policy-test.ts` reads: a
 * JSON array, or JSON lines with one case per line. Only the JSON is checked here, naming the line of a syntax
 * error; the server checks each case's fields against the same schema the test suite uses.
 */
function parsePolicyTestFile(text: string, file: string): unknown[] {
  const where = `policy test file ${quote(file)}`;
  const cases: { item: unknown; at: string }[] = [];
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${where} is not valid JSON: ${jsonError(err, text)}`);
    }
    (parsed as unknown[]).forEach((item, i) => cases.push({ item, at: `case ${i + 1}` }));
  } else {
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        cases.push({ item: JSON.parse(line), at: `line ${i + 1}` });
      } catch (err) {
        throw new UsageError(`${where} is not valid JSON: ${jsonError(err, line, i + 1)}`);
      }
    });
  }
  if (cases.length === 0) throw new UsageError(`${where} has no cases`);
  for (const { item, at } of cases) {
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      throw new UsageError(`${where}, ${at}: a case is a JSON object`);
  }
  return cases.map((c) => c.item);
}

function printTestResults(out: Output, view: PolicyTestView): void {
  for (const r of view.results) {
    out.line(r.passed ? `ok    ${r.name}` : `FAIL  ${r.name}`);
    if (!r.passed) out.line(`        ${r.failure ?? `expected ${r.expected}, got ${r.decision}`}`);
  }
  out.line(`${view.passed} passed, ${view.failed} failed`);
}

/** `strongroom policy schema|list|show|add|rm|validate|explain|test` (docs/cli.md, docs/authorization.md). */
export function registerPolicyCommands(program: Command, io: CliIo): void {
  const policy = program
    .command('policy')
    .description('custom Cedar policies, explaining decisions and testing policies (docs/authorization.md)');

  withCommonOptions(policy.command('schema'))
    .description('print the Cedar schema every custom policy is validated against')
    .action(async (options: CommonOptions) => {
      const client = await connect(io, options);
      const view = await client.policySchema();
      const out = new Output(io, options.json === true);
      out.result(view, () => {
        for (const line of view.schema.replace(/\n$/, '').split('\n')) out.line(line);
      });
    });

  withCommonOptions(policy.command('list').alias('ls'))
    .description('list custom policies')
    .option('--scope <scope>', `only those within this scope: ${SCOPE_HELP}`, scopeArgument)
    .action(async (options: ScopeOptions) => {
      const client = await connect(io, options);
      const { items } = await client.listPolicies(
        options.scope === undefined ? {} : { scope: options.scope },
      );
      const out = new Output(io, options.json === true);
      out.result(items, () =>
        out.table(
          ['ID', 'SCOPE', 'UPDATED', 'DESCRIPTION'],
          items.map((p) => [p.id, p.scope, p.updatedAt, p.description]),
          'no custom policies',
        ),
      );
    });

  withCommonOptions(policy.command('show'))
    .description('show a custom policy and its Cedar text')
    .argument('<id>', 'policy id')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      const found = await client.getPolicy(id);
      const out = new Output(io, options.json === true);
      out.result(found, () => printPolicy(out, found));
    });

  withCommonOptions(policy.command('add'))
    .description(
      'add a custom policy, or replace the one with the same id (validated first; needs a recent MFA)',
    )
    .argument('<id>', 'policy id: lowercase letters, digits, ".", "_" and "-"')
    .argument('<file>', 'a file holding exactly one Cedar policy, or - for stdin')
    .requiredOption('--scope <scope>', `where it applies: ${SCOPE_HELP}`, scopeArgument)
    .option('--description <text>', 'what the policy is for')
    .action(async (id: string, file: string, options: AddOptions) => {
      const text = await readInput(io, file, 'policy file', MAX_POLICY_FILE_BYTES);
      const client = await connect(io, options);
      const saved = await client.putPolicy(id, {
        text,
        scope: options.scope,
        ...(options.description === undefined ? {} : { description: options.description }),
      });
      const out = new Output(io, options.json === true);
      const verb = saved.createdAt === saved.updatedAt ? 'added' : 'replaced';
      out.result(saved, () =>
        out.line(`${verb} policy ${saved.id} at ${saved.scope}; decisions name it policy:${saved.id}`),
      );
    });

  withCommonOptions(policy.command('rm'))
    .description('remove a custom policy (needs a recent MFA)')
    .argument('<id>', 'policy id')
    .action(async (id: string, options: CommonOptions) => {
      const client = await connect(io, options);
      await client.deletePolicy(id);
      const out = new Output(io, options.json === true);
      out.result({ policy: id, removed: true }, () => out.line(`removed policy ${id}`));
    });

  withCommonOptions(policy.command('validate'))
    .description('check a policy against the schema and the stored policies without storing it')
    .argument('<file>', 'a file holding exactly one Cedar policy, or - for stdin')
    .requiredOption('--scope <scope>', `where it would apply: ${SCOPE_HELP}`, scopeArgument)
    .option(
      '--id <id>',
      'the id it would have (a stored policy with that id is left out, as `add` replaces it)',
    )
    .action(async (file: string, options: ValidateOptions) => {
      const text = await readInput(io, file, 'policy file', MAX_POLICY_FILE_BYTES);
      const client = await connect(io, options);
      const view = await client.validatePolicy({
        text,
        scope: options.scope,
        ...(options.id === undefined ? {} : { id: options.id }),
      });
      const out = new Output(io, options.json === true);
      out.result(view, () => out.line(`${file === '-' ? 'stdin' : file}: valid at ${options.scope}`));
    });

  withCommonOptions(policy.command('explain'))
    .description(
      `the decision a principal would get and the policies behind it (exit ${EXIT_CODES.denied} on deny)`,
    )
    .requiredOption('--as <principal>', '`user:NAME` or `sa:NAME`')
    .argument('<action>', 'an action, such as version:download')
    .argument('<resource>', RESOURCE_HELP)
    .option('--ip <address>', 'client address (default 127.0.0.1)')
    .option('--time <time>', 'epoch seconds or RFC 3339 time (default now)', explainTime)
    .option('--mfa-age <seconds>', 'seconds since the second factor was proved', wholeNumber(0, 2 ** 31))
    .option('--auth-method <method>', 'how the request authenticated (password, oidc, api-token, ...)')
    .option('--environment <env>', 'the environment of a service account token')
    .option('--device-posture <posture>', 'a device posture claim')
    .action(async (action: string, resource: string, options: ExplainOptions) => {
      const client = await connect(io, options);
      const request = explainBody(options.as, action, resource, options);
      const view = await client.explainDecision(request);
      const out = new Output(io, options.json === true);
      out.result(view, () => printExplanation(out, request, view));
      if (view.decision !== 'allow')
        throw new NegativeAnswer(EXIT_CODES.denied, `${options.as} may not ${action} ${resource}`);
    });

  withCommonOptions(policy.command('test'))
    .description(
      `run policy test cases against the policies in force (exit ${EXIT_CODES.unexpected} if any fails)`,
    )
    .argument('<file>', 'a JSON array of cases, or JSON lines (one case per line); - for stdin')
    .action(async (file: string, options: CommonOptions) => {
      const cases = parsePolicyTestFile(
        await readInput(io, file, 'policy test file', MAX_TEST_FILE_BYTES),
        file,
      );
      const client = await connect(io, options);
      const view = await client.runPolicyTests(cases);
      const out = new Output(io, options.json === true);
      out.result(view, () => printTestResults(out, view));
      if (view.failed > 0)
        throw new NegativeAnswer(
          EXIT_CODES.unexpected,
          `${view.failed} of ${view.results.length} cases failed`,
        );
    });
}
