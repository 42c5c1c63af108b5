import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainView, PolicyTestView, PolicyView } from '../../src/api/schemas.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { cliRunner, type CliRunner } from '../support/cli-runner.js';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

/** `strongroom policy ...` as the bootstrap admin, who is exempt from step-up, against a real server. */
let server: TestServer;
let cli: CliRunner;

beforeAll(async () => {
  server = await startTestServer();
  cli = await cliRunner(server);
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'vision' } });
  const pushed = await pushFiles(
    server,
    { project: 'vision', artifact: 'resnet', version: '1.0.0' },
    [{ path: 'weights.bin', data: Buffer.from('weights') }],
    { kind: 'model', sensitivity: 'internal' },
  );
  expect(pushed.status).toBe(201);
  for (const username of ['alice', 'bob'])
    await server.api('/api/v1/users', { method: 'POST', json: { username } });
  const bound = await cli([
    'role',
    'bind',
    'viewer',
    'user:alice',
    '--scope',
    'project:vision',
    '--id',
    'alice-vision',
  ]);
  expect(bound.code, bound.stderr).toBe(0);
});

afterAll(async () => {
  await server.close();
  await cli.close();
});

async function file(name: string, text: string): Promise<string> {
  const path = join(cli.dir, name);
  await writeFile(path, text);
  return path;
}

const CORPORATE_NETWORK = `@description("downloads only from the corporate network")
forbid (principal, action == Strongroom::Action::"version:download", resource)
unless { context.ip.isInRange(ip("10.0.0.0/8")) };
`;

// A typo Cedar's validator catches against the schema: `stag` is not an attribute of a version.
const TYPO = `forbid (principal, action == Strongroom::Action::"version:download", resource is Strongroom::Version)
when { resource.stag == "quarantined" };
`;

const download = (user: string, ip: string, expect: string) => ({
  name: `${user} downloads from ${ip}`,
  principal: { kind: 'user', id: user },
  action: 'version:download',
  resource: { kind: 'version', project: 'vision', artifact: 'resnet', version: '1.0.0' },
  context: { ip },
  expect,
});

const jsonLines = (...cases: unknown[]) => cases.map((c) => JSON.stringify(c)).join('\n') + '\n';

describe('strongroom policy', () => {
  it('schema prints the Cedar schema policies are validated against', async () => {
    const run = await cli(['policy', 'schema']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('namespace Strongroom');
    const json = JSON.parse((await cli(['policy', 'schema', '--json'])).stdout) as { schema: string };
    expect(json.schema).toContain('entity Version');
  });

  it('add refuses a policy that fails validation with Cedar`s own error, and stores nothing', async () => {
    const bad = await file('typo.cedar', TYPO);
    const run = await cli(['policy', 'add', 'typo', bad, '--scope', 'project:vision']);
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toContain('(policy_invalid)');
    expect(run.stderr).toMatch(/`stag`/);
    const validated = await cli(['policy', 'validate', bad, '--scope', 'organization']);
    expect(validated.code).toBe(EXIT_CODES.usage);
    expect(validated.stderr).toContain('(policy_invalid)');
    expect((await cli(['policy', 'list'])).stdout).toContain('no custom policies');
  });

  it('validate accepts a good policy without storing it', async () => {
    const good = await file('corp.cedar', CORPORATE_NETWORK);
    const run = await cli(['policy', 'validate', good, '--scope', 'project:vision', '--id', 'corp-network']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`${good}: valid at project:vision`);
    expect(
      JSON.parse((await cli(['policy', 'validate', good, '--scope', 'organization', '--json'])).stdout),
    ).toEqual({ valid: true });
    expect((await cli(['policy', 'list', '--json'])).stdout.trim()).toBe('[]');
  });

  it('add (from stdin), list, show, add again to replace, and rm', async () => {
    const added = await cli(['policy', 'add', 'corp-network', '-', '--scope', 'project:vision'], {
      stdin: CORPORATE_NETWORK,
    });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(
      'added policy corp-network at project:vision; decisions name it policy:corp-network',
    );

    const listed = await cli(['policy', 'list']);
    expect(listed.stdout).toMatch(/^ID\s+SCOPE\s+UPDATED\s+DESCRIPTION$/m);
    expect(listed.stdout).toMatch(/^corp-network\s+project:vision\s+\S+$/m);
    // Within a scope: an organization list holds the project's policy, an artifact's list does not.
    expect((await cli(['policy', 'ls', '--scope', 'organization'])).stdout).toContain('corp-network');
    expect((await cli(['policy', 'ls', '--scope', 'artifact:vision/resnet', '--json'])).stdout.trim()).toBe(
      '[]',
    );

    const shown = await cli(['policy', 'show', 'corp-network']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^corp-network {2}project:vision$/m);
    expect(shown.stdout).toContain('isInRange(ip("10.0.0.0/8"))');

    const path = await file('corp.cedar', CORPORATE_NETWORK);
    const replaced = await cli([
      'policy',
      'add',
      'corp-network',
      path,
      '--scope',
      'project:vision',
      '--description',
      'office only',
      '--json',
    ]);
    expect(replaced.code, replaced.stderr).toBe(0);
    const view = JSON.parse(replaced.stdout) as PolicyView;
    expect(view).toMatchObject({ id: 'corp-network', scope: 'project:vision', description: 'office only' });
    expect(view.updatedAt).not.toBe(view.createdAt);

    const temporary = await cli(['policy', 'add', 'temporary', path, '--scope', 'organization']);
    expect(temporary.code, temporary.stderr).toBe(0);
    const removed = await cli(['policy', 'rm', 'temporary']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('removed policy temporary');
    const gone = await cli(['policy', 'show', 'temporary']);
    expect(gone.code).toBe(EXIT_CODES.notFound);
    expect(gone.stderr).toContain('(policy_not_found)');
    expect((await cli(['policy', 'rm', 'temporary'])).code).toBe(EXIT_CODES.notFound);
  });

  it('add reads nothing it cannot: a missing file is a usage error before any request', async () => {
    const run = await cli(['policy', 'add', 'x', join(cli.dir, 'missing.cedar'), '--scope', 'organization']);
    expect(run.code).toBe(EXIT_CODES.usage);
    expect(run.stderr).toMatch(/cannot read policy file `.*missing\.cedar`: ENOENT/);
  });

  it('explain exits 0 on allow and 5 on deny, naming the policies behind the decision', async () => {
    const allowed = await cli([
      'policy',
      'explain',
      '--as',
      'user:alice',
      'version:download',
      'vision/resnet:1.0.0',
      '--ip',
      '10.1.2.3',
    ]);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/^allow {2}user:alice version:download vision\/resnet:1\.0\.0$/m);
    expect(allowed.stdout).toMatch(/permitted by +binding:alice-vision/);
    expect(allowed.stdout).toMatch(/slice +project:vision/);

    const forbidden = await cli([
      'policy',
      'explain',
      '--as',
      'user:alice',
      'version:download',
      'vision/resnet:1.0.0',
      '--ip',
      '192.168.1.5',
    ]);
    expect(forbidden.code).toBe(EXIT_CODES.denied);
    expect(forbidden.stdout).toMatch(/^deny {2}/m);
    expect(forbidden.stdout).toMatch(/denied by +policy:corp-network/);
    expect(forbidden.stderr).toBe('');

    const stranger = await cli([
      'policy',
      'explain',
      '--as',
      'user:bob',
      'version:download',
      'vision/resnet:1.0.0',
      '--ip',
      '10.9.9.9',
      '--json',
    ]);
    expect(stranger.code).toBe(EXIT_CODES.denied);
    const view = JSON.parse(stranger.stdout) as ExplainView; // one document: the explanation, not an error
    expect(view).toMatchObject({ decision: 'deny', reasons: [], slice: 'project:vision' });
    const human = await cli(['policy', 'explain', '--as', 'user:bob', 'project:read', 'vision']);
    expect(human.stdout).toMatch(/denied by +default deny: no policy permits/);

    const context = await cli([
      'policy',
      'explain',
      '--as',
      'user:alice',
      'version:read',
      'vision/resnet:1.0.0',
      '--time',
      '2030-06-01T12:00:00+02:00',
      '--mfa-age',
      '30',
      '--json',
    ]);
    expect(context.code, context.stderr).toBe(0);
    expect((JSON.parse(context.stdout) as ExplainView).context).toMatchObject({
      time: Date.parse('2030-06-01T10:00:00Z') / 1000,
      hourUtc: 10,
      mfaAgeSeconds: 30,
    });
    const badTime = await cli([
      'policy',
      'explain',
      '--as',
      'user:alice',
      'project:read',
      'vision',
      '--time',
      'noon',
    ]);
    expect(badTime.code).toBe(EXIT_CODES.usage);
    const unknown = await cli(['policy', 'explain', '--as', 'user:nobody', 'project:read', 'vision']);
    expect(unknown.code).toBe(EXIT_CODES.notFound);
  });

  it('test exits 0 when every case passes and 1 when one fails, printing each case', async () => {
    const passing = await file(
      'pass.jsonl',
      jsonLines(download('alice', '10.0.0.7', 'allow'), download('alice', '192.168.0.1', 'deny')),
    );
    const passed = await cli(['policy', 'test', passing]);
    expect(passed.code, passed.stderr).toBe(0);
    expect(passed.stdout).toContain('ok    alice downloads from 10.0.0.7');
    expect(passed.stdout).toContain('2 passed, 0 failed');

    const failing = await file(
      'fail.json',
      JSON.stringify([download('alice', '10.0.0.7', 'allow'), download('bob', '10.0.0.7', 'allow')]),
    );
    const failed = await cli(['policy', 'test', failing]);
    expect(failed.code).toBe(EXIT_CODES.unexpected);
    expect(failed.stdout).toContain('FAIL  bob downloads from 10.0.0.7');
    expect(failed.stdout).toContain('expected allow, got deny because []');
    expect(failed.stdout).toContain('1 passed, 1 failed');
    const json = await cli(['policy', 'test', failing, '--json']);
    expect(json.code).toBe(EXIT_CODES.unexpected);
    expect(JSON.parse(json.stdout) as PolicyTestView).toMatchObject({ passed: 1, failed: 1 });
  });

  it('test names the line of a JSON syntax error, and passes malformed cases to the server to refuse', async () => {
    const broken = await file(
      'broken.jsonl',
      `${JSON.stringify(download('alice', '10.0.0.7', 'allow'))}\n{"name": }\n`,
    );
    const syntax = await cli(['policy', 'test', broken]);
    expect(syntax.code).toBe(EXIT_CODES.usage);
    expect(syntax.stderr).toMatch(/policy test file `.*broken\.jsonl` is not valid JSON: line 2/);
    expect(syntax.stderr).not.toContain('{"name": }'); // the reason, not the input echoed back

    const notObject = await file('numbers.json', '[1, 2]');
    expect((await cli(['policy', 'test', notObject])).stderr).toContain('case 1: a case is a JSON object');
    expect((await cli(['policy', 'test', await file('empty.jsonl', '\n\n')])).code).toBe(EXIT_CODES.usage);

    const malformed = await file(
      'malformed.jsonl',
      jsonLines({ ...download('alice', '10.0.0.7', 'allow'), expect: 'maybe' }),
    );
    const refused = await cli(['policy', 'test', malformed]);
    expect(refused.code).toBe(EXIT_CODES.usage);
    expect(refused.stderr).toContain('(invalid_request)');
    expect(refused.stderr).toContain('policy test case 1: expect');
  });
});
