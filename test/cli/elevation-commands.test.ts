import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccessOfView, ElevationView } from '../../src/api/schemas.js';
import type { CliIo } from '../../src/cli/cli-io.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { runCli } from '../../src/cli/run-cli.js';
import { person } from '../support/principals.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/** The server's clock, moved forward to age a second factor; TOTP codes follow it. */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const epoch = () => Math.floor(clock.now().getTime() / 1000);

let server: TestServer;
let dir: string;

interface Person {
  readonly name: string;
  readonly secret: string;
  readonly token: string;
}

let alice: Person;
let bob: Person;

/** Invited with the bootstrap token and enrolled: a fresh session with a fresh second factor. */
async function enrol(name: string): Promise<Person> {
  const p = await person(server, clock, name);
  return { name, secret: p.secret, token: p.accessToken };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-elevation-cli-'));
  server = await startTestServer({ clock, config: { identity: { stepUpMaxAgeSeconds: 60 } } });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'vision' } });
  alice = await enrol('alice');
  bob = await enrol('bob');
  const bound = await cli(['role', 'bind', 'approver', 'user:bob', '--scope', 'project:vision']);
  expect(bound.code, bound.stderr).toBe(0);
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly prompts: readonly string[];
}

interface RunOptions {
  /** Whose token: a person's session, else the bootstrap admin's. */
  readonly as?: Person;
  /** Stdin and stderr are a terminal, and these answers are typed at its prompts. */
  readonly answers?: readonly (() => Promise<string>)[];
}

async function cli(argv: readonly string[], options: RunOptions = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const prompts: string[] = [];
  const answers = [...(options.answers ?? [])];
  const tty = options.answers !== undefined;
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  if (tty) {
    stdin.isTTY = true;
    stdin.setRawMode = () => stdin;
  } else {
    stdin.end();
  }
  const io: CliIo = {
    stdout: { write: (c: string) => (stdout += c) },
    stderr: {
      write: (c: string) => {
        stderr += c;
        if (tty && /: $/.test(c)) {
          prompts.push(c);
          const next = answers.shift();
          setImmediate(() => void (next ? next().then((text) => stdin.write(`${text}\n`)) : stdin.end()));
        }
        return true;
      },
      isTTY: tty,
    },
    stdin,
    env: {
      STRONGROOM_URL: server.url,
      STRONGROOM_TOKEN: options.as?.token ?? server.token,
      STRONGROOM_CONFIG: join(dir, 'cfg'),
    },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr, prompts };
}

async function request(as: Person, role: string, reason: string): Promise<ElevationView> {
  const run = await cli(
    ['elevate', role, '--scope', 'project:vision', '--for', '30m', '--reason', reason, '--json'],
    {
      as,
    },
  );
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as ElevationView;
}

/** Each code is good once: the next one comes from a later 30-second step. */
async function nextCode(secret: string): Promise<string> {
  offsetMs += 30_000;
  return generate({ secret, epoch: epoch() });
}

describe('just-in-time elevation', () => {
  it('a user asks, an approver approves, and the user then holds the role until it ends', async () => {
    // Without a role alice cannot even see the project: unreadable projects answer as missing.
    const before = await cli(['ls', 'vision'], { as: alice });
    expect(before.code).toBe(EXIT_CODES.notFound);
    expect(before.stderr).toContain('(project_not_found)');

    const asked = await cli(
      ['elevate', 'contributor', '--scope', 'project:vision', '--for', '2h', '--reason', 'fix the release'],
      { as: alice },
    );
    expect(asked.code, asked.stderr).toBe(0);
    const id = /elv_[0-9a-f]{32}/.exec(asked.stdout)?.[0] ?? '';
    expect(asked.stdout).toContain(`requested contributor at project:vision for 2h: ${id}`);
    expect(asked.stdout).toContain(`strongroom elevation approve ${id}`);

    const mine = await cli(['elevation', 'list'], { as: alice });
    expect(mine.stdout).toMatch(/^ID\s+REQUESTER\s+ROLE\s+SCOPE\s+FOR\s+STATUS\s+REQUESTED\s+REASON$/m);
    expect(mine.stdout).toMatch(
      new RegExp(
        `^${id}\\s+alice\\s+contributor\\s+project:vision\\s+2h\\s+pending\\s+\\S+\\s+fix the release$`,
        'm',
      ),
    );
    const pending = await cli(['elevation', 'list', '--status', 'pending', '--json'], { as: bob });
    expect((JSON.parse(pending.stdout) as ElevationView[]).map((e) => e.id)).toContain(id);
    expect((await cli(['elevation', 'list', '--status', 'later'], { as: bob })).code).toBe(EXIT_CODES.usage);

    // Deciding needs elevation:approve at the request's scope, which alice does not hold.
    const own = await cli(['elevation', 'approve', id], { as: alice });
    expect(own.code).toBe(EXIT_CODES.denied);
    expect(own.stderr).toContain('(forbidden)');

    // bob signed in moments ago: his second factor is fresh, so no prompt.
    const approved = await cli(['elevation', 'approve', id, '--reason', 'release blocker'], { as: bob });
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toMatch(
      new RegExp(
        `^approved ${id}: alice holds contributor at project:vision until \\S+Z \\(binding elevation-[0-9a-f]+\\)$`,
        'm',
      ),
    );

    expect((await cli(['ls', 'vision'], { as: alice })).code).toBe(0);
    const shown = await cli(['elevation', 'show', id], { as: alice });
    expect(shown.stdout).toMatch(new RegExp(`^${id} {2}active$`, 'm'));
    expect(shown.stdout).toMatch(/decided +\S+ by usr_[0-9a-f]+: release blocker/);
    const access = JSON.parse((await cli(['access', 'of', 'user:alice', '--json'])).stdout) as AccessOfView;
    expect(access.grants).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ role: 'contributor', scope: 'project:vision', active: true }),
      ]),
    );

    const again = await cli(['elevation', 'deny', id], { as: bob });
    expect(again.code).toBe(EXIT_CODES.conflict);
    expect(again.stderr).toContain('(elevation_closed)');
  });

  it('nobody approves their own request', async () => {
    const asked = await request(bob, 'incident-responder', 'incident 42');
    const self = await cli(['elevation', 'approve', asked.id], { as: bob });
    expect(self.code).toBe(EXIT_CODES.denied);
    expect(self.stderr).toContain('(self_approval)');
    const view = JSON.parse(
      (await cli(['elevation', 'show', asked.id, '--json'], { as: bob })).stdout,
    ) as ElevationView;
    expect(view.status).toBe('pending');
  });

  it('an approver with a stale second factor is asked for a code, then denies', async () => {
    const asked = await request(alice, 'viewer', 'read the dashboards');
    offsetMs += 61_000; // past identity.stepUpMaxAgeSeconds
    const refused = await cli(['elevation', 'deny', asked.id], { as: bob });
    expect(refused.code).toBe(EXIT_CODES.denied);
    expect(refused.stderr).toContain('(mfa_required)');
    expect(refused.stderr).toContain('strongroom auth step-up --code CODE');

    const denied = await cli(['elevation', 'deny', asked.id, '--reason', 'use the shared board'], {
      as: bob,
      answers: [() => nextCode(bob.secret)],
    });
    expect(denied.code, denied.stderr).toBe(0);
    expect(denied.prompts).toEqual(['TOTP code: ']);
    expect(denied.stdout).toContain(`denied ${asked.id}: alice asked for viewer at project:vision`);
    const listed = await cli(['elevation', 'list', '--status', 'denied', '--json'], { as: alice });
    expect((JSON.parse(listed.stdout) as ElevationView[]).map((e) => e.id)).toEqual([asked.id]);
  });

  it('a requester cancels a pending request; malformed requests are usage errors', async () => {
    const asked = await request(alice, 'auditor', 'quarterly review');
    const cancelled = await cli(['elevation', 'cancel', asked.id], { as: alice });
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toContain(`cancelled ${asked.id}`);
    expect((await cli(['elevation', 'cancel', asked.id], { as: alice })).code).toBe(EXIT_CODES.conflict);

    const elevate = (...args: string[]) =>
      cli(['elevate', 'viewer', '--scope', 'project:vision', ...args], { as: alice });
    expect((await elevate('--for', '10s', '--reason', 'too short')).code).toBe(EXIT_CODES.usage);
    expect((await elevate('--for', '1h')).code).toBe(EXIT_CODES.usage); // --reason is required
    expect((await elevate('--for', '1h', '--reason', 'x')).code).toBe(EXIT_CODES.usage);
    expect((await cli(['elevation', 'show', 'elv_nope'], { as: alice })).code).toBe(EXIT_CODES.usage);
    const foreign = await request(bob, 'viewer', 'someone else');
    expect((await cli(['elevation', 'cancel', foreign.id], { as: alice })).code).toBe(EXIT_CODES.notFound);
  });
});
