import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/client/api-error.js';
import { ConnectionError } from '../../src/client/connection-error.js';
import { FileExistsError } from '../../src/client/file-exists-error.js';
import type { CliIo } from '../../src/cli/cli-io.js';
import { EXIT_CODES, EXIT_CODES_HELP, exitCodeFor } from '../../src/cli/exit-codes.js';
import { ProgressBar, progressBarFor } from '../../src/cli/progress-bar.js';
import { runCli } from '../../src/cli/run-cli.js';
import { UsageError } from '../../src/cli/usage-error.js';
import { ERROR_CODES, StrongroomError, type ErrorCode } from '../../src/core/errors.js';

const GOOD = 'sr_good_token_1';

/** A tiny server with just the routes these tests call; it records who asked what. */
class TinyServer {
  readonly requests: { path: string; search: string; authorization: string | undefined }[] = [];
  url = '';
  #server: Server | undefined;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      this.requests.push({
        path: url.pathname,
        search: url.search,
        authorization: req.headers.authorization,
      });
      const send = (status: number, body: unknown, type = 'application/json'): void => {
        res.writeHead(status, { 'content-type': type, 'x-request-id': 'req-42' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${GOOD}`) {
        return send(
          401,
          {
            type: 'about:blank',
            title: 'Unauthorized',
            status: 401,
            code: 'unauthenticated',
            detail: 'bad token',
            requestId: 'req-42',
          },
          'application/problem+json',
        );
      }
      if (url.pathname === '/api/v1/whoami') return send(200, { principal: 'alice', authMethod: 'token' });
      if (url.pathname === '/api/v1/projects/vision/artifacts') {
        const artifact = (name: string) => ({
          project: 'vision',
          name,
          kind: 'model',
          sensitivity: 'internal',
          description: '',
          tags: [],
          owner: 'alice',
          createdAt: '2024-01-01T00:00:00Z',
          updatedAt: '2024-01-01T00:00:00Z',
        });
        const second = url.searchParams.get('cursor') === 'page-2';
        return send(200, {
          items: second ? [artifact('vit')] : [artifact('resnet'), artifact('unet')],
          nextCursor: second ? null : 'page-2',
        });
      }
      send(
        404,
        { code: 'route_not_found', detail: 'no route', requestId: 'req-42' },
        'application/problem+json',
      );
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let work: string;
let server: TinyServer;
let env: Record<string, string | undefined>;

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'strongroom-cli-'));
  server = new TinyServer();
  await server.start();
  env = { XDG_CONFIG_HOME: path.join(work, 'xdg'), HOME: path.join(work, 'home') };
});

afterEach(async () => {
  await server.stop();
  await rm(work, { recursive: true, force: true });
});

async function cli(args: string[], stdin?: string): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    stdin: Readable.from(stdin === undefined ? [] : [Buffer.from(stdin)]),
    env,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

const configFile = () => path.join(work, 'xdg', 'strongroom', 'config.json');

describe('exit codes', () => {
  const cases: [string, unknown, number][] = [
    ['version exists', new StrongroomError('version_exists', 'x'), 4],
    ['upload offset mismatch', new StrongroomError('upload_offset_mismatch', 'x'), 4],
    ['upload incomplete', new StrongroomError('upload_incomplete', 'x'), 4],
    ['a local file exists', new FileExistsError('/x', 'x'), 4],
    ['project not found', new StrongroomError('project_not_found', 'x'), 3],
    ['version not found', new StrongroomError('version_not_found', 'x'), 3],
    ['unauthenticated', new StrongroomError('unauthenticated', 'x'), 5],
    ['forbidden', new StrongroomError('forbidden', 'x'), 5],
    ['digest mismatch', new StrongroomError('digest_mismatch', 'x'), 6],
    ['size mismatch', new StrongroomError('size_mismatch', 'x'), 6],
    ['integrity error', new StrongroomError('integrity_error', 'x'), 6],
    ['invalid name', new StrongroomError('invalid_name', 'x'), 2],
    ['invalid path', new StrongroomError('invalid_path', 'x'), 2],
    ['usage error', new UsageError('x'), 2],
    ['connection failed', new ConnectionError('x'), 7],
    ['unknown error', new Error('boom'), 1],
    ['not an error at all', 'boom', 1],
    [
      'an unknown server code',
      new ApiError({
        status: 418,
        code: 'internal_error',
        serverCode: 'teapot',
        requestId: 'r',
        details: undefined,
        message: 'x',
      }),
      1,
    ],
  ];
  it.each(cases)('%s exits with its documented code', (_name, err, expected) => {
    expect(exitCodeFor(err)).toBe(expected);
  });

  it('every server error code maps to a documented non-zero exit code', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const exit = exitCodeFor(new StrongroomError(code, 'x'));
      expect(exit, code).toBeGreaterThanOrEqual(1);
      expect(exit, code).toBeLessThanOrEqual(7);
    }
  });

  it('docs/cli.md and --help list the same exit codes', async () => {
    const docs = await readFile(new URL('../../docs/cli.md', import.meta.url), 'utf8');
    for (const code of Object.values(EXIT_CODES)) {
      expect(docs, `docs/cli.md exit code ${code}`).toMatch(new RegExp(`^\\| ${code}\\s+\\|`, 'm'));
      expect(EXIT_CODES_HELP, `--help exit code ${code}`).toMatch(new RegExp(`^  ${code}  `, 'm'));
    }
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes:');
    expect(help.stdout).toContain('7  cannot reach the server');
  });

  it('an unknown option is a usage error', async () => {
    const run = await cli(['whoami', '--no-such-flag']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown option/);
  });
});

describe('login', () => {
  it('verifies the token, then writes the config file with mode 0600 in a 0700 directory', async () => {
    const run = await cli(['login', '--url', server.url, '--token-stdin', '--json'], `${GOOD}\n`);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      principal: 'alice',
      url: server.url,
      configFile: configFile(),
    });
    expect(server.requests.map((r) => r.path)).toEqual(['/api/v1/whoami']);
    expect((await stat(configFile())).mode & 0o777).toBe(0o600);
    expect((await stat(path.dirname(configFile()))).mode & 0o777).toBe(0o700);
    expect(JSON.parse(await readFile(configFile(), 'utf8'))).toEqual({ url: server.url, token: GOOD });
  });

  it('reads a piped token when stdin is not a terminal, and honours $STRONGROOM_CONFIG', async () => {
    env['STRONGROOM_CONFIG'] = path.join(work, 'custom', 'sr.json');
    const run = await cli(['login', '--url', server.url], `${GOOD}\n`);
    expect(run.code).toBe(0);
    expect((await stat(path.join(work, 'custom', 'sr.json'))).mode & 0o777).toBe(0o600);
  });

  it('does not save a token the server rejects', async () => {
    const run = await cli(['login', '--url', server.url, '--token-stdin'], 'wrong-token\n');
    expect(run.code).toBe(5);
    expect(run.stderr).toContain('error: bad token (unauthenticated)');
    await expect(stat(configFile())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('credentials', () => {
  it('uses the saved url and token when nothing else is given', async () => {
    await cli(['login', '--url', server.url, '--token-stdin'], GOOD);
    const run = await cli(['whoami']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`alice (token) at ${server.url}`);
  });

  it('never sends the saved token to a different server', async () => {
    await cli(['login', '--url', server.url, '--token-stdin'], GOOD);
    const other = new TinyServer();
    await other.start();
    try {
      const run = await cli(['whoami', '--url', other.url]);
      expect(run.code).toBe(5);
      expect(run.stderr).toMatch(/no token for/);
      expect(other.requests).toEqual([]);
    } finally {
      await other.stop();
    }
  });

  it('prefers $STRONGROOM_TOKEN over the config file, and --token over both', async () => {
    await cli(['login', '--url', server.url, '--token-stdin'], GOOD);
    env['STRONGROOM_TOKEN'] = 'from-env';
    expect((await cli(['whoami'])).code).toBe(5);
    expect(server.requests.at(-1)?.authorization).toBe('Bearer from-env');
    expect((await cli(['whoami', '--token', GOOD])).code).toBe(0);
  });

  it('refuses a config file that other users can read', async () => {
    await cli(['login', '--url', server.url, '--token-stdin'], GOOD);
    await chmod(configFile(), 0o644);
    const run = await cli(['whoami']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/chmod 600/);
  });
});

describe('errors and output', () => {
  it('prints the error, its code and the request id on stderr', async () => {
    const run = await cli(['whoami', '--url', server.url, '--token', 'nope']);
    expect(run.code).toBe(5);
    expect(run.stderr).toBe('error: bad token (unauthenticated)\nrequest id: req-42\n');
    expect(run.stdout).toBe('');
  });

  it('with --json also prints one error document on stdout', async () => {
    const run = await cli(['whoami', '--url', server.url, '--token', 'nope', '--json']);
    expect(JSON.parse(run.stdout)).toEqual({
      error: { code: 'unauthenticated', message: 'bad token', status: 401, requestId: 'req-42' },
    });
  });

  it('an unreachable server exits 7', async () => {
    const url = server.url;
    await server.stop();
    const run = await cli(['whoami', '--url', url, '--token', GOOD]);
    expect(run.code).toBe(7);
    expect(run.stderr).toMatch(/^error: cannot reach .* \(connection_failed\)/);
    expect(run.stderr).not.toContain(GOOD);
  });

  it('ls follows cursors to the last page', async () => {
    const run = await cli(['ls', 'vision', '--json', '--url', server.url, '--token', GOOD]);
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { name: string }[]).map((a) => a.name)).toEqual([
      'resnet',
      'unet',
      'vit',
    ]);
    expect(server.requests.map((r) => r.search)).toEqual(['', '?cursor=page-2']);
    const human = await cli(['ls', 'vision', '--url', server.url, '--token', GOOD]);
    expect(human.stdout.split('\n')[0]).toMatch(/^ARTIFACT\s+KIND\s+SENSITIVITY/);
  });
});

describe('push input checks', () => {
  const pushArgs = (...rest: string[]) => [
    'push',
    'vision/resnet:1.0.0',
    work,
    '--url',
    server.url,
    '--token',
    GOOD,
    ...rest,
  ];

  it.each([
    ['an array', '[1, 2]'],
    ['a string', '"model"'],
    ['null', 'null'],
    ['not JSON', '{oops'],
  ])('metadata that is %s is a usage error before any request', async (_what, content) => {
    await writeFile(path.join(work, 'meta.json'), content);
    const run = await cli(pushArgs('--metadata', path.join(work, 'meta.json')));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: metadata file .* \(usage\)/);
    expect(server.requests).toEqual([]);
  });

  it('a malformed reference is a usage error before any request', async () => {
    const run = await cli(['push', 'Vision/../x:1', work, '--url', server.url, '--token', GOOD]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/\(invalid_name\)/);
    expect(server.requests).toEqual([]);
  });

  it('an unknown kind is a usage error', async () => {
    await mkdir(path.join(work, 'm'), { recursive: true });
    const run = await cli(pushArgs('--kind', 'spaceship'));
    expect(run.code).toBe(2);
    expect(server.requests).toEqual([]);
  });
});

describe('progress bar', () => {
  it('redraws at most ten times a second and shows percentage, bytes, rate and ETA', () => {
    let now = 0;
    let writes = 0;
    const bar = new ProgressBar({ write: () => (writes += 1) }, 'push', () => now);
    for (let i = 1; i <= 100; i++) {
      now = i * 10; // 100 updates over one second
      bar.update(i * 1024, 100 * 1024);
    }
    expect(writes).toBeLessThanOrEqual(11);
    expect(writes).toBeGreaterThanOrEqual(9);
    now = 1000;
    bar.update(50 * 1024, 100 * 1024);
    expect(bar.render(1000)).toMatch(
      /push \[#{12}-{12}\]\s+50%\s+50\.0 KiB\/100\.0 KiB\s+50\.0 KiB\/s\s+ETA 0:01/,
    );
  });

  it('is only used when stderr is a terminal and output is not JSON', () => {
    const tty = { write: () => true, isTTY: true };
    expect(progressBarFor(tty, false, 'x')).toBeInstanceOf(ProgressBar);
    expect(progressBarFor(tty, true, 'x')).toBeUndefined();
    expect(progressBarFor({ write: () => true, isTTY: false }, false, 'x')).toBeUndefined();
  });
});
