import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessOfView, BindingView, WhoCanView } from '../../src/api/schemas.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { cliRunner, type CliRunner } from '../support/cli-runner.js';
import { pushFiles, startTestServer, type TestServer } from '../support/server-harness.js';

/** `strongroom role ...` and `strongroom access ...` as the bootstrap admin (exempt from step-up). */
let server: TestServer;
let cli: CliRunner;
const json = <T>(argv: readonly string[]): Promise<T> => cli.json<T>(argv);

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
  for (const username of ['alice', 'carol'])
    await server.api('/api/v1/users', { method: 'POST', json: { username } });
  await server.api('/api/v1/groups', { method: 'POST', json: { name: 'ml' } });
  await server.api('/api/v1/groups/ml/members', { method: 'POST', json: { principal: 'user:carol' } });
});

afterAll(async () => {
  await server.close();
  await cli.close();
});

describe('strongroom role', () => {
  it('bind, list, show and unbind a role binding', async () => {
    const bound = await cli([
      'role',
      'bind',
      'viewer',
      'user:alice',
      '--scope',
      'project:vision',
      '--id',
      'alice-vision',
      '--until',
      '8h',
      '--description',
      'model review',
    ]);
    expect(bound.code, bound.stderr).toBe(0);
    expect(bound.stdout).toMatch(
      /^bound viewer to user:alice at project:vision until \S+Z \(binding alice-vision\)$/m,
    );

    const listed = await cli(['role', 'list']);
    expect(listed.stdout).toMatch(/^ID\s+ROLE\s+PRINCIPAL\s+SCOPE\s+STATE\s+EXPIRES\s+DESCRIPTION$/m);
    expect(listed.stdout).toMatch(
      /^alice-vision\s+viewer\s+user:alice\s+project:vision\s+active\s+\S+Z\s+model review$/m,
    );
    expect(listed.stdout).toMatch(/^admins\s+admin\s+group:admins\s+organization\s+active\s+never/m);
    const within = await json<BindingView[]>(['role', 'ls', '--scope', 'project:vision']);
    expect(within.map((b) => b.id)).toEqual(['alice-vision']);

    const shown = await cli(['role', 'show', 'alice-vision']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^alice-vision {2}viewer {2}user:alice at project:vision$/m);
    expect(shown.stdout).toMatch(/in reasons as +binding:alice-vision/);
    const view = await json<BindingView>(['role', 'show', 'alice-vision']);
    expect(Date.parse(view.expiresAt ?? '') - Date.now()).toBeGreaterThan(8 * 3600_000 - 60_000);

    const unbound = await cli(['role', 'unbind', 'alice-vision']);
    expect(unbound.code, unbound.stderr).toBe(0);
    expect(unbound.stdout).toContain('removed role binding alice-vision');
    const gone = await cli(['role', 'show', 'alice-vision']);
    expect(gone.code).toBe(EXIT_CODES.notFound);
    expect(gone.stderr).toContain('(binding_not_found)');
    expect((await cli(['role', 'unbind', 'alice-vision'])).code).toBe(EXIT_CODES.notFound);
  });

  it('refuses what it cannot grant with the documented exit codes', async () => {
    const bind = (...args: string[]) => cli(['role', 'bind', ...args]);
    expect((await bind('viewer', 'user:alice', '--scope', 'project:vision', '--id', 'twice')).code).toBe(0);
    const twice = await bind('viewer', 'user:alice', '--scope', 'project:vision', '--id', 'twice');
    expect(twice.code).toBe(EXIT_CODES.conflict);
    expect(twice.stderr).toContain('(binding_exists)');
    const role = await bind('wizard', 'user:alice', '--scope', 'project:vision');
    expect(role.code).toBe(EXIT_CODES.usage);
    expect(role.stderr).toContain('unknown role `wizard`');
    expect((await bind('viewer', 'user:nobody', '--scope', 'project:vision')).code).toBe(EXIT_CODES.notFound);
    expect((await bind('viewer', 'user:alice', '--scope', 'project:nope')).code).toBe(EXIT_CODES.notFound);
    const scope = await bind('viewer', 'user:alice', '--scope', 'vision');
    expect(scope.code).toBe(EXIT_CODES.usage);
    expect(scope.stderr).toContain(
      'expected `organization`, `project:PROJECT` or `artifact:PROJECT/ARTIFACT`',
    );
    const until = await bind('viewer', 'user:alice', '--scope', 'project:vision', '--until', 'tomorrow');
    expect(until.code).toBe(EXIT_CODES.usage);
    expect((await bind('viewer', 'user:alice', '--scope', 'project:vision', '--id', 'Bad Id')).code).toBe(
      EXIT_CODES.usage,
    );
    expect((await cli(['role', 'unbind', 'twice'])).code).toBe(0);
  });
});

describe('strongroom access', () => {
  it('who-can lists each grant with its source, the group it comes through and the conditions', async () => {
    expect(
      (await cli(['role', 'bind', 'viewer', 'group:ml', '--scope', 'project:vision', '--id', 'ml'])).code,
    ).toBe(0);
    expect(
      (
        await cli([
          'role',
          'bind',
          'contributor',
          'user:alice',
          '--scope',
          'artifact:vision/resnet',
          '--id',
          'a',
        ])
      ).code,
    ).toBe(0);

    const view = await json<WhoCanView>(['access', 'who-can', 'version:download', 'vision/resnet:1.0.0']);
    expect(view.action).toBe('version:download');
    expect(view.grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ principal: 'group:ml', source: 'binding:ml', role: 'viewer', via: null }),
        expect.objectContaining({ principal: 'user:carol', source: 'binding:ml', via: 'ml' }),
        expect.objectContaining({
          principal: 'user:alice',
          source: 'binding:a',
          scope: 'artifact:vision/resnet',
        }),
        expect.objectContaining({ source: 'builtin:bootstrap-admin' }),
      ]),
    );
    expect(view.conditions).toEqual([]);

    const human = await cli(['access', 'who-can', 'version:download', 'vision/resnet:1.0.0']);
    expect(human.stdout).toContain('who may version:download on vision/resnet:1.0.0:');
    expect(human.stdout).toMatch(/^PRINCIPAL\s+ROLE\s+SCOPE\s+SOURCE\s+VIA\s+EXPIRES$/m);
    expect(human.stdout).toMatch(/^user:carol\s+viewer\s+project:vision\s+binding:ml\s+group:ml\s+never$/m);
    expect(human.stdout).toContain('conditions: none');

    // A custom policy in the project's scope is listed as a condition on what the bindings grant.
    const policy = await server.api('/api/v1/policy/policies/office', {
      method: 'PUT',
      json: {
        scope: 'project:vision',
        text:
          'forbid (principal, action == Strongroom::Action::"version:download", resource) ' +
          'unless { context.ip.isInRange(ip("10.0.0.0/8")) };',
      },
    });
    expect(policy.status, await policy.text()).toBe(201);
    const conditioned = await cli(['access', 'who-can', 'version:download', 'vision/resnet:1.0.0']);
    expect(conditioned.stdout).toMatch(/^policy:office\s+forbid\s+project:vision$/m);

    // A typo in the resource is an error, not an empty answer.
    const nobody = await cli(['access', 'who-can', 'version:download', 'nope/x:1']);
    expect(nobody.code).toBe(EXIT_CODES.notFound);
    expect(nobody.stderr).toContain('project_not_found');
    expect((await cli(['access', 'who-can', 'version:fly', 'vision'])).code).toBe(EXIT_CODES.usage);
  });

  it('of lists what a principal holds, directly or through its groups, with the actions', async () => {
    const carol = await json<AccessOfView>(['access', 'of', 'user:carol']);
    expect(carol).toMatchObject({ principal: 'user:carol', groups: ['ml'] });
    expect(carol.grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ source: 'binding:ml', role: 'viewer', via: 'ml', active: true }),
        expect.objectContaining({ source: 'builtin:self-service', role: null }),
      ]),
    );
    const human = await cli(['access', 'of', 'user:alice']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^user:alice {2}usr_[0-9a-f]{32}$/m);
    expect(human.stdout).toMatch(/groups +-/);
    expect(human.stdout).toMatch(/^ROLE\s+SCOPE\s+SOURCE\s+VIA\s+EXPIRES\s+STATE\s+ACTIONS$/m);
    expect(human.stdout).toMatch(
      /^contributor\s+artifact:vision\/resnet\s+binding:a\s+-\s+never\s+active\s+\S*version:create/m,
    );
    expect(human.stdout).toMatch(/^policy:office\s+forbid\s+project:vision$/m);
    expect((await cli(['access', 'of', 'user:nobody'])).code).toBe(EXIT_CODES.notFound);
    expect((await cli(['access', 'of', 'group:ml'])).code).toBe(EXIT_CODES.usage);
  });
});
