import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/cli-io.js';
import { writeConfigFile, type StoredConfig } from '../../src/cli/config-file.js';
import { EXIT_CODES } from '../../src/cli/exit-codes.js';
import { PromptCancelled, Prompter } from '../../src/cli/prompter.js';
import { runCli } from '../../src/cli/run-cli.js';
import { StrongroomClient } from '../../src/client/strongroom-client.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';

/** The server's clock, moved forward by the tests (token expiry, step-up age); TOTP codes follow it. */
let offsetMs = 0;
const clock = { now: () => new Date(Date.now() + offsetMs) };
const epoch = () => Math.floor(clock.now().getTime() / 1000);

let server: TestServer;
let dir: string;
let adminToken: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strongroom-identity-cli-'));
  server = await startTestServer({
    clock,
    config: { identity: { accessTokenTtlSeconds: 60, stepUpMaxAgeSeconds: 60 } },
  });
  adminToken = server.token;
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'alpha' } });
  await server.api('/api/v1/projects', { method: 'POST', json: { name: 'beta' } });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

interface Transcript {
  readonly stdout: string;
  readonly stderr: string;
}

/** An answer typed at a prompt; a function answers from what the command has printed so far. */
type Answer = string | ((so: Transcript) => string | Promise<string>);

interface RunOptions {
  /** Whose credentials: the bootstrap admin token, or the config file of a named person. */
  readonly as?: string;
  /** Answers, one per prompt, given only once the prompt appears (as a person would). */
  readonly answers?: readonly Answer[];
  /** Whether stdin and stderr are terminals. */
  readonly tty?: boolean;
}

interface Run extends Transcript {
  readonly code: number;
  readonly prompts: readonly string[];
}

const configOf = (person: string) => join(dir, `${person}.json`);

async function cli(argv: readonly string[], options: RunOptions = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const prompts: string[] = [];
  const answers = [...(options.answers ?? [])];
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  if (options.tty === true) {
    stdin.isTTY = true;
    stdin.setRawMode = () => stdin;
  }
  const answer = (prompt: string): void => {
    prompts.push(prompt);
    const next = answers.shift();
    setImmediate(() => {
      if (next === undefined) {
        stdin.end();
        return;
      }
      void Promise.resolve(typeof next === 'function' ? next({ stdout, stderr }) : next).then((text) =>
        stdin.write(`${text}\n`),
      );
    });
  };
  const io: CliIo = {
    stdout: { write: (c: string) => (stdout += c) },
    stderr: {
      write: (c: string) => {
        stderr += c;
        if (/: $/.test(c)) answer(c);
        return true;
      },
      isTTY: options.tty === true,
    },
    stdin,
    env:
      options.as === undefined
        ? { STRONGROOM_URL: server.url, STRONGROOM_TOKEN: adminToken, STRONGROOM_CONFIG: configOf('admin') }
        : { STRONGROOM_URL: server.url, STRONGROOM_CONFIG: configOf(options.as) },
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr, prompts };
}

/** Each code is good once: the next one comes from a later 30-second step. */
async function nextCode(secret: string): Promise<string> {
  offsetMs += 30_000;
  return generate({ secret, epoch: epoch() });
}

function secretShown(so: Transcript): string {
  const match = /secret {2}([A-Z2-7]+)/.exec(so.stderr);
  if (!match?.[1]) throw new Error(`no secret in ${so.stderr}`);
  return match[1];
}

async function savedConfig(person: string): Promise<StoredConfig> {
  return JSON.parse(await readFile(configOf(person), 'utf8')) as StoredConfig;
}

function tokenIn(text: string, prefix: string): string {
  const match = new RegExp(`${prefix}_[A-Za-z0-9_-]{43}`).exec(text);
  if (!match) throw new Error(`no ${prefix}_ token in ${text}`);
  return match[0];
}

function statusWith(token: string): Promise<number> {
  return server
    .api('/api/v1/whoami', { headers: { authorization: `Bearer ${token}` } })
    .then((res) => res.status);
}

interface Person {
  readonly name: string;
  readonly password: string;
  readonly secret: string;
  readonly recoveryCodes: readonly string[];
}

/** Invite with the CLI, then enrol with `login --invite TOKEN` as the person would. */
async function enrol(name: string): Promise<Person> {
  const invited = await cli(['user', 'invite', name]);
  expect(invited.code, invited.stderr).toBe(0);
  const password = `a long passphrase number ${name.length}`;
  let secret = '';
  const run = await cli(['login', '--invite', tokenIn(invited.stdout, 'sri')], {
    as: name,
    answers: [password, password, (so) => generate({ secret: (secret = secretShown(so)), epoch: epoch() })],
  });
  expect(run.code, run.stderr).toBe(0);
  const recoveryCodes = run.stdout.match(/^ {2}[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/gm) ?? [];
  return { name, password, secret, recoveryCodes: recoveryCodes.map((c) => c.trim()) };
}

describe('enrolment, whoami and logout', () => {
  it('an invited user enrols with `login --invite`, sees who they are, and logs out', async () => {
    const invited = await cli([
      'user',
      'invite',
      'alice',
      '--display-name',
      'Alice A',
      '--email',
      'a@example.com',
    ]);
    expect(invited.code, invited.stderr).toBe(0);
    const invitation = tokenIn(invited.stdout, 'sri');
    expect(invited.stdout).toContain('strongroom login --url');

    const password = 'correct horse battery staple';
    const enrolment = await cli(['login', '--invite'], {
      as: 'alice',
      tty: true,
      answers: [
        invitation,
        password,
        password,
        (so) => generate({ secret: secretShown(so), epoch: epoch() }),
      ],
    });
    expect(enrolment.code, enrolment.stderr).toBe(0);
    expect(enrolment.prompts).toEqual([
      'invitation token: ',
      'new password: ',
      'new password again: ',
      'code from the app: ',
    ]);
    expect(enrolment.stderr).toMatch(/uri {5}otpauth:\/\/totp\//);
    expect(enrolment.stderr).toMatch(/[▄▀█]/); // the QR code, drawn on the terminal
    expect(enrolment.stderr).toContain('not shown again');
    expect(enrolment.stderr).not.toContain(password); // hidden prompts echo nothing
    expect(enrolment.stdout.match(/^ {2}[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/gm)).toHaveLength(10);

    const saved = await savedConfig('alice');
    expect(saved.token).toMatch(/^sra_/);
    expect(saved.session).toMatchObject({ username: 'alice', refreshToken: expect.stringMatching(/^srr_/) });
    expect((await stat(configOf('alice'))).mode & 0o777).toBe(0o600);

    const whoami = await cli(['whoami'], { as: 'alice' });
    expect(whoami.code, whoami.stderr).toBe(0);
    expect(whoami.stdout).toContain(`alice (password+totp) at ${server.url}`);
    expect(whoami.stdout).toMatch(/kind +user/);
    expect(whoami.stdout).toMatch(/mfa +verified/);
    const json = JSON.parse((await cli(['whoami', '--json'], { as: 'alice' })).stdout) as Record<
      string,
      unknown
    >;
    expect(json).toMatchObject({ name: 'alice', kind: 'user', authMethod: 'password+totp', scope: null });

    const logout = await cli(['logout'], { as: 'alice' });
    expect(logout.code, logout.stderr).toBe(0);
    expect(logout.stdout).toContain('the session is revoked');
    await expect(stat(configOf('alice'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await statusWith(saved.token)).toBe(401);
    const after = await cli(['whoami'], { as: 'alice' });
    expect(after.code).toBe(EXIT_CODES.denied);
    expect(after.stderr).toMatch(/no token for/);
  });

  it('a used invitation is refused', async () => {
    const invited = await cli(['user', 'invite', 'used']);
    const invitation = tokenIn(invited.stdout, 'sri');
    const password = 'another fine passphrase';
    const answers: Answer[] = [
      password,
      password,
      (so) => generate({ secret: secretShown(so), epoch: epoch() }),
    ];
    expect((await cli(['login', '--invite', invitation], { as: 'used', answers })).code).toBe(0);
    const again = await cli(['login', '--invite', invitation], {
      as: 'used2',
      answers: [password, password],
    });
    expect(again.code).toBe(EXIT_CODES.denied);
    expect(again.stderr).toContain('(invite_invalid)');
  });
});

describe('prompts', () => {
  const ioWith = (stdin: CliIo['stdin']): CliIo => ({
    stdout: { write: () => true },
    stderr: { write: () => true },
    stdin,
    env: {},
  });

  it('answers piped in one chunk are kept for the next question, CRLF or not', async () => {
    const stdin = new PassThrough();
    stdin.end('alice\r\n  secret with spaces  \n123456');
    const prompter = new Prompter(ioWith(stdin));
    expect(await prompter.ask('username: ')).toBe('alice');
    expect(await prompter.ask('password: ', { hidden: true, exact: true })).toBe('  secret with spaces  ');
    expect(await prompter.ask('code: ')).toBe('123456');
    await expect(prompter.ask('more: ')).rejects.toThrow(/stdin ended before the more was given/);
  });

  it('Ctrl-C at a terminal cancels, and the mistyped password is asked for again', async () => {
    const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => undefined });
    stdin.write('abc\u0003');
    await expect(new Prompter(ioWith(stdin)).ask('password: ', { hidden: true })).rejects.toBeInstanceOf(
      PromptCancelled,
    );
    const invitation = tokenIn((await cli(['user', 'invite', 'retry'])).stdout, 'sri');
    const good = 'a passphrase long enough';
    const run = await cli(['login', '--invite', invitation], {
      as: 'retry',
      tty: true,
      answers: [
        good,
        'a different one',
        good,
        good,
        '12',
        (so) => generate({ secret: secretShown(so), epoch: epoch() }),
      ],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('the passwords do not match; try again');
    expect(run.stderr).toContain('a TOTP code is 6 digits; try again');
  });
});

describe('interactive login', () => {
  let bob: Person;

  beforeAll(async () => {
    bob = await enrol('bob');
  });

  it('asks for username, password and TOTP code, and saves a refreshable session without printing it', async () => {
    await rm(configOf('bob'), { force: true });
    const run = await cli(['login', '--json'], {
      as: 'bob',
      tty: true,
      answers: ['bob', bob.password, () => nextCode(bob.secret)],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.prompts).toEqual(['username: ', 'password: ', 'TOTP code: ']);
    expect(run.stderr).toContain('bob'); // the username is echoed...
    expect(run.stderr).not.toContain(bob.password); // ...the password is not
    const saved = await savedConfig('bob');
    expect(JSON.parse(run.stdout)).toMatchObject({
      username: 'bob',
      authMethod: 'password+totp',
      sessionId: saved.session?.sessionId,
    });
    expect(run.stdout).not.toContain(saved.token);
    expect(run.stdout).not.toContain(saved.session?.refreshToken);
    expect((await cli(['whoami'], { as: 'bob' })).code).toBe(0);
  });

  it('signs in with a recovery code instead, reading answers from a pipe', async () => {
    const run = await cli(['login', '--username', 'bob', '--recovery-code'], {
      as: 'bob',
      answers: [bob.password, bob.recoveryCodes[0]!],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.prompts).toEqual(['password: ', 'recovery code: ']);
    expect(JSON.parse((await cli(['whoami', '--json'], { as: 'bob' })).stdout)).toMatchObject({
      authMethod: 'password+recovery-code',
    });
  });

  it('a wrong password fails with exit 5 and keeps the saved session', async () => {
    const before = await savedConfig('bob');
    const run = await cli(['login', '--username', 'bob'], {
      as: 'bob',
      answers: ['not the password', () => nextCode(bob.secret)],
    });
    expect(run.code).toBe(EXIT_CODES.denied);
    expect(await savedConfig('bob')).toEqual(before);
  });

  it('an API token is still saved with `login --token-stdin`, and logout only forgets it', async () => {
    const piped = new PassThrough();
    piped.end(`${adminToken}\n`);
    let stdout = '';
    const code = await runCli(['login'], {
      stdout: { write: (c: string) => (stdout += c) },
      stderr: { write: () => true },
      stdin: piped,
      env: { STRONGROOM_URL: server.url, STRONGROOM_CONFIG: configOf('break-glass') },
    });
    expect(code).toBe(0);
    expect(stdout).toContain('as bootstrap-admin');
    expect(await savedConfig('break-glass')).toEqual({ url: server.url, token: adminToken });
    const logout = await cli(['logout'], { as: 'break-glass' });
    expect(logout.code).toBe(0);
    expect(logout.stderr).toContain('not a session');
    expect(await statusWith(adminToken)).toBe(200);
  });
});

describe('sessions are refreshed and stepped up inside the client', () => {
  it('an expired access token is refreshed transparently and the new pair saved', async () => {
    await enrol('carol');
    const before = await savedConfig('carol');
    offsetMs += 61_000; // past the 60-second access token
    expect(await statusWith(before.token)).toBe(401);
    const run = await cli(['whoami'], { as: 'carol' });
    expect(run.code, run.stderr).toBe(0);
    const after = await savedConfig('carol');
    expect(after.token).not.toBe(before.token);
    expect(after.session?.refreshToken).not.toBe(before.session?.refreshToken);
    expect(after.session?.sessionId).toBe(before.session?.sessionId);
    expect(await statusWith(after.token)).toBe(200);
  });

  it('a token past its recorded expiry is refreshed before it is even sent', async () => {
    await enrol('hal');
    const before = await savedConfig('hal');
    const session = { ...before.session!, accessExpiresAt: new Date(Date.now() - 1000).toISOString() };
    await writeConfigFile(configOf('hal'), { ...before, session });
    expect((await cli(['whoami'], { as: 'hal' })).code).toBe(0);
    expect((await savedConfig('hal')).token).not.toBe(before.token);
    expect(await statusWith(before.token)).toBe(401); // a child of the spent refresh token
  });

  it('concurrent requests refused at once share one refresh (a refresh token is single-use)', async () => {
    const url = server.url;
    const invited = await cli(['user', 'invite', 'ida']);
    const invite = tokenIn(invited.stdout, 'sri');
    const start = await new StrongroomClient({ url }).startEnrolment(invite, 'a perfectly fine passphrase');
    let tokens = (
      await new StrongroomClient({ url }).finishEnrolment(
        invite,
        await generate({ secret: start.secret, epoch: epoch() }),
      )
    ).session;
    let refreshes = 0;
    const client = new StrongroomClient({
      url,
      token: tokens.accessToken,
      session: {
        refresh: async () => {
          refreshes += 1;
          tokens = await new StrongroomClient({ url }).refreshSession(tokens.refreshToken);
          return tokens.accessToken;
        },
      },
    });
    offsetMs += 61_000;
    const answers = await Promise.all(Array.from({ length: 4 }, () => client.whoami()));
    expect(answers.map((a) => a.name)).toEqual(['ida', 'ida', 'ida', 'ida']);
    expect(refreshes).toBe(1);
  });

  it('a session that cannot be refreshed says to log in again', async () => {
    await enrol('erin');
    expect((await cli(['user', 'disable', 'erin'])).code).toBe(0);
    const run = await cli(['whoami'], { as: 'erin' });
    expect(run.code).toBe(EXIT_CODES.denied);
    expect(run.stderr).toMatch(/has expired or was revoked; run `strongroom login` again/);
  });

  it('on mfa_required at a terminal, asks for a code, steps up and retries once', async () => {
    const dave = await enrol('dave');
    expect((await cli(['group', 'create', 'admins'])).code).toBe(0);
    expect((await cli(['group', 'add', 'admins', 'user:dave'])).code).toBe(0);
    offsetMs += 61_000; // past the step-up age (and the access token: both recover, in turn)
    const run = await cli(['keys', 'rotate'], {
      as: 'dave',
      tty: true,
      answers: [() => nextCode(dave.secret)],
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.prompts).toEqual(['TOTP code: ']);
    expect(run.stderr).toMatch(/needs a second-factor verification/);
    expect(run.stdout).toMatch(/key-encryption key version \d+ is current/);
  });

  it('without a terminal, fails with the hint; `auth step-up --code` then lets the command pass', async () => {
    const frank = await enrol('frank');
    expect((await cli(['group', 'add', 'admins', 'user:frank'])).code).toBe(0);
    offsetMs += 61_000;
    const refused = await cli(['keys', 'rotate'], { as: 'frank' });
    expect(refused.code).toBe(EXIT_CODES.denied);
    expect(refused.stderr).toContain('strongroom auth step-up --code CODE');
    expect(refused.stderr).toContain('(mfa_required)');
    expect(refused.prompts).toEqual([]);
    const stepUp = await cli(['auth', 'step-up', '--code', await nextCode(frank.secret)], { as: 'frank' });
    expect(stepUp.code, stepUp.stderr).toBe(0);
    expect(stepUp.stdout).toMatch(/second factor verified at/);
    expect((await cli(['keys', 'rotate'], { as: 'frank' })).code).toBe(0);
  });
});

describe('admin commands', () => {
  it('users: ls, show, disable, enable, unlock, reset', async () => {
    await enrol('gina');
    const ls = await cli(['user', 'ls']);
    expect(ls.stdout.split('\n')[0]).toMatch(/^USERNAME\s+STATE\s+DISPLAY NAME\s+EMAIL\s+CREATED/);
    expect(ls.stdout).toMatch(/^gina\s+active/m);
    const shown = JSON.parse((await cli(['user', 'show', 'gina', '--json'])).stdout) as { state: string };
    expect(shown.state).toBe('active');
    expect((await cli(['user', 'disable', 'gina'])).stdout).toContain('disabled gina (now disabled)');
    expect((await cli(['user', 'enable', 'gina'])).stdout).toContain('enabled gina (now active)');
    expect((await cli(['user', 'unlock', 'gina'])).code).toBe(0);
    const reset = await cli(['user', 'reset', 'gina']);
    expect(reset.code).toBe(0);
    tokenIn(reset.stdout, 'sri');
    expect((await cli(['user', 'show', 'gina'])).stdout).toMatch(/^gina {2}invited/);
    const missing = await cli(['user', 'show', 'nobody']);
    expect(missing.code).toBe(EXIT_CODES.notFound);
    expect(missing.stderr).toContain('(user_not_found)');
  });

  it('groups: create, ls, show members, add, remove', async () => {
    expect((await cli(['group', 'create', 'ml-team', '--description', 'model owners'])).code).toBe(0);
    expect((await cli(['group', 'create', 'ml-team'])).code).toBe(EXIT_CODES.conflict);
    expect((await cli(['group', 'ls'])).stdout).toMatch(/^ml-team\s+\S+\s+model owners$/m);
    expect((await cli(['group', 'add', 'ml-team', 'user:bob'])).stdout).toContain(
      'added user:bob to ml-team',
    );
    const shown = await cli(['group', 'show', 'ml-team']);
    expect(shown.stdout).toMatch(/^MEMBER\s+SOURCE$/m);
    expect(shown.stdout).toMatch(/^user:bob\s+manual$/m);
    expect((await cli(['group', 'remove', 'ml-team', 'user:bob'])).code).toBe(0);
    expect((await cli(['group', 'show', 'ml-team'])).stdout).toContain('no members');
    const malformed = await cli(['group', 'add', 'ml-team', 'bob']);
    expect(malformed.code).toBe(EXIT_CODES.usage);
  });

  it('service accounts and tokens: the token is printed once and never listed', async () => {
    expect((await cli(['sa', 'create', 'ci', '--env', 'moon'])).code).toBe(EXIT_CODES.usage);
    const created = await cli(['sa', 'create', 'ci', '--env', 'staging', '--description', 'pipelines']);
    expect(created.code, created.stderr).toBe(0);
    expect((await cli(['sa', 'ls'])).stdout).toMatch(/^ci\s+staging\s+active/m);
    expect((await cli(['group', 'add', 'admins', 'sa:ci'])).code).toBe(0);

    expect((await cli(['token', 'create', '--sa', 'ci', '--ttl', '5s'])).code).toBe(EXIT_CODES.usage);
    const issued = await cli([
      'token',
      'create',
      '--sa',
      'ci',
      '--project',
      'alpha',
      '--read-only',
      '--ttl',
      '1h',
      '--description',
      'pull',
    ]);
    expect(issued.code, issued.stderr).toBe(0);
    const token = tokenIn(issued.stdout, 'srk');
    expect(issued.stdout.split('\n')[0]).toBe(token);
    expect(issued.stdout).toMatch(/scope +projects alpha; read-only/);
    expect(issued.stderr).toContain('shown once');
    const id = /tok_[0-9a-f]{32}/.exec(issued.stdout)![0];

    const listed = await cli(['token', 'ls', 'sa:ci']);
    expect(listed.stdout).toMatch(
      new RegExp(`^${id}\\s+api\\s+active\\s+projects alpha; read-only\\s+staging`, 'm'),
    );
    expect(listed.stdout).not.toContain(token);
    expect((await cli(['token', 'ls', 'sa:ci', '--json'])).stdout).not.toContain(token);

    const whoami = JSON.parse((await cli(['whoami', '--json', '--token', token])).stdout) as Record<
      string,
      unknown
    >;
    expect(whoami).toMatchObject({ authMethod: 'api-token', environment: 'staging' });

    const derived = await cli([
      'token',
      'derive',
      '--project',
      'alpha',
      '--project',
      'beta',
      '--ttl',
      '10m',
      '--token',
      token,
    ]);
    expect(derived.code, derived.stderr).toBe(0);
    expect(derived.stdout).toMatch(/scope +projects alpha; read-only/); // never wider than its parent
    const child = tokenIn(derived.stdout, 'srk');

    const rotated = await cli(['token', 'rotate', id]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const replacement = tokenIn(rotated.stdout, 'srk');
    expect(await statusWith(token)).toBe(401);
    expect(await statusWith(child)).toBe(401); // revoked with its parent
    expect(await statusWith(replacement)).toBe(200);
    const newId = /tok_[0-9a-f]{32}/.exec(rotated.stdout)![0];
    expect((await cli(['token', 'revoke', newId])).stdout).toContain(`revoked ${newId}`);
    expect(await statusWith(replacement)).toBe(401);
    const active = (await cli(['token', 'ls', 'sa:ci'])).stdout;
    expect(active).not.toContain(id);
    expect(active).not.toContain(newId);
    const all = (await cli(['token', 'ls', 'sa:ci', '--all'])).stdout;
    expect(all).toMatch(new RegExp(`^${id}\\s+api\\s+revoked`, 'm'));
    expect(all).toMatch(new RegExp(`^${newId}\\s+api\\s+revoked`, 'm'));
    expect((await cli(['token', 'revoke', 'tok_nope'])).code).toBe(EXIT_CODES.usage);

    expect((await cli(['sa', 'disable', 'ci'])).stdout).toContain('service account ci is disabled');
    expect((await cli(['sa', 'enable', 'ci'])).stdout).toContain('service account ci is active');
  });

  it('bootstrap-token rotate prints the new token once; the old one stops working', async () => {
    const rotated = await cli(['bootstrap-token', 'rotate', '--json']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const view = JSON.parse(rotated.stdout) as { token: string; enabled: boolean };
    expect(view.token).toMatch(/^srt_/);
    expect(await statusWith(adminToken)).toBe(401);
    adminToken = view.token;
    const disabled = await cli(['bootstrap-token', 'disable']);
    expect(disabled.stdout).toContain('the bootstrap token is disabled');
    expect(await statusWith(adminToken)).toBe(401);
  });
});
