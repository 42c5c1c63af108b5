import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { expect } from 'vitest';
import type { CliIo } from '../../src/cli/cli-io.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { TestServer } from './server-harness.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunner {
  /** Run `strongroom ARGV` in process against the server, with the bootstrap token unless `token` is given. */
  (argv: readonly string[], options?: { readonly stdin?: string; readonly token?: string }): Promise<CliRun>;
  /** Run with `--json`, expect exit 0 and parse stdout. */
  json<T>(argv: readonly string[]): Promise<T>;
  /** A private directory for this runner's config file and any files a test writes. */
  readonly dir: string;
  close(): Promise<void>;
}

/** The CLI in process, as a person at a non-interactive shell (no terminal: no prompts). */
export async function cliRunner(server: TestServer): Promise<CliRunner> {
  const dir = await mkdtemp(join(tmpdir(), 'strongroom-cli-'));
  const run = async (
    argv: readonly string[],
    options: { readonly stdin?: string; readonly token?: string } = {},
  ): Promise<CliRun> => {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: { write: (c: string) => (stdout += c) },
      stderr: { write: (c: string) => (stderr += c) },
      stdin: Readable.from(
        options.stdin === undefined ? [] : [Buffer.from(options.stdin)],
      ) as unknown as CliIo['stdin'],
      env: {
        STRONGROOM_URL: server.url,
        STRONGROOM_TOKEN: options.token ?? server.token,
        STRONGROOM_CONFIG: join(dir, 'cfg'),
      },
    };
    const code = await runCli(argv, io);
    return { code, stdout, stderr };
  };
  return Object.assign(run, {
    json: async <T>(argv: readonly string[]): Promise<T> => {
      const result = await run([...argv, '--json']);
      expect(result.code, result.stderr).toBe(0);
      return JSON.parse(result.stdout) as T;
    },
    dir,
    close: () => rm(dir, { recursive: true, force: true }),
  });
}
