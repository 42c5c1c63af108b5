import type { CliIo } from './cli-io.js';
import { prompterFor } from './prompter.js';
import { UsageError } from './usage-error.js';

const MAX_TOKEN_INPUT = 16 * 1024;

/** Read piped stdin to its end (bounded) and keep the first line: `echo $TOKEN | strongroom login`. */
async function readPipedLine(stdin: CliIo['stdin']): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    length += buffer.length;
    if (length > MAX_TOKEN_INPUT) throw new UsageError('the token on stdin is too long');
    chunks.push(buffer);
  }
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
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
