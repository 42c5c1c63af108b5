import { readFile, stat } from 'node:fs/promises';
import { quote } from '../core/errors.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './usage-error.js';

/** Read piped stdin to its end, refusing more than `maxBytes`: a runaway pipe is never held in memory. */
export async function readStdin(stdin: CliIo['stdin'], maxBytes: number, tooLarge: string): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stdin as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    length += buffer.length;
    if (length > maxBytes) throw new UsageError(tooLarge);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The text of a local file named on the command line; unreadable or too large is a usage error (exit 2). */
export async function readTextFile(file: string, what: string, maxBytes: number): Promise<string> {
  try {
    if ((await stat(file)).size > maxBytes) throw new UsageError(`${what} ${quote(file)} is too large`);
    return await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(
      `cannot read ${what} ${quote(file)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

/** `FILE` or `-` for stdin, the Unix convention: `cat policy.cedar | strongroom policy add ID - ...`. */
export function readInput(io: CliIo, file: string, what: string, maxBytes: number): Promise<string> {
  return file === '-'
    ? readStdin(io.stdin, maxBytes, `${what} on stdin is too large`)
    : readTextFile(file, what, maxBytes);
}
