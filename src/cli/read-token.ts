import type { CliIo } from './cli-io.js';
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

/** Prompt on a terminal with echo off (raw mode), so the token never appears on screen or in scrollback. */
function promptHidden(io: CliIo, prompt: string): Promise<string> {
  const { stdin } = io;
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (error?: Error): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      if (error === undefined) resolve(value.trim());
      else reject(error);
    };
    const onData = (data: Buffer | string): void => {
      for (const char of typeof data === 'string' ? data : data.toString('utf8')) {
        if (char === '\r' || char === '\n' || char === '\u0004') return finish();
        if (char === '\u0003') return finish(new UsageError('login cancelled'));
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else if (char >= ' ') value += char;
        if (value.length > MAX_TOKEN_INPUT) return finish(new UsageError('the token is too long'));
      }
    };
    io.stderr.write(prompt);
    stdin.setRawMode?.(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** The token for `login`: from stdin when asked or piped, else from a hidden prompt. */
export async function readToken(io: CliIo, fromStdin: boolean): Promise<string> {
  const token =
    fromStdin || io.stdin.isTTY !== true || io.stdin.setRawMode === undefined
      ? await readPipedLine(io.stdin)
      : await promptHidden(io, 'token: ');
  if (token === '') throw new UsageError('no token given');
  return token;
}
