import type { CliIo } from './cli-io.js';
import { prompterFor } from './prompter.js';
import { readStdin } from './read-input.js';
import { UsageError } from './usage-error.js';

const MAX_TOKEN_INPUT = 16 * 1024;

/** The first line of piped stdin, read to its end (bounded): `echo $TOKEN | strongroom login`. */
async function readPipedLine(stdin: CliIo['stdin']): Promise<string> {
  const text = await readStdin(stdin, MAX_TOKEN_INPUT, 'the token on stdin is too long');
  return (text.split(/\r?\n/)[0] ?? '').trim();
}

/**
 * A token for `login`: from a hidden prompt on a terminal, so it never appears on screen or in scrollback;
 * else the first line of piped stdin.
 */
export async function readToken(io: CliIo): Promise<string> {
  const prompter = prompterFor(io);
  const token = prompter.interactive
    ? await prompter.ask('token: ', { hidden: true })
    : await readPipedLine(io.stdin);
  if (token === '') throw new UsageError('no token given');
  return token;
}
