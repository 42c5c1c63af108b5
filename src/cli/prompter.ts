import { StringDecoder } from 'node:string_decoder';
import type { CliIo } from './cli-io.js';
import { terminalSafe } from './output.js';
import { UsageError } from './usage-error.js';

const MAX_ANSWER = 16 * 1024;

/** Ctrl-C at a prompt: the person wants out, not to be asked again. */
export class PromptCancelled extends UsageError {
  constructor() {
    super('cancelled');
    this.name = 'PromptCancelled';
  }
}

export interface AskOptions {
  /** Read with echo off (passwords, codes, tokens): nothing typed reaches the screen or the scrollback. */
  readonly hidden?: boolean;
  /** Keep leading and trailing spaces, which belong to a password (NIST SP 800-63B allows them). */
  readonly exact?: boolean;
}

/**
 * Questions on stderr, answers from stdin, one line each. On a terminal the line is read in raw mode, so a
 * hidden answer is never echoed; from a pipe, answers are successive lines (what a script or a test feeds).
 * Whatever arrives after a line's end is kept for the next question, so nothing piped is lost between them.
 */
export class Prompter {
  readonly #io: CliIo;
  #pending = '';
  #ended = false;
  // A character typed or piped may arrive split across chunks.
  readonly #decoder = new StringDecoder('utf8');

  constructor(io: CliIo) {
    this.#io = io;
  }

  /** A person is at the keyboard: stdin is a terminal we can switch to raw mode. */
  get interactive(): boolean {
    return this.#io.stdin.isTTY === true && this.#io.stdin.setRawMode !== undefined;
  }

  async ask(question: string, options: AskOptions = {}): Promise<string> {
    this.#io.stderr.write(terminalSafe(question));
    const label = question.replace(/[:?]?\s*$/, '');
    const answer = await this.#readLine(options.hidden !== true && this.interactive, label);
    return options.exact === true ? answer : answer.trim();
  }

  #readLine(echo: boolean, label: string): Promise<string> {
    const { stdin, stderr } = this.#io;
    const raw = this.interactive;
    return new Promise((resolve, reject) => {
      let value = '';
      const finish = (error?: Error): void => {
        stdin.removeListener('data', onData);
        stdin.removeListener('end', onEnd);
        if (raw) {
          stdin.setRawMode?.(false);
          stderr.write('\n');
        }
        stdin.pause();
        if (error === undefined) resolve(value);
        else reject(error);
      };
      const consume = (text: string): boolean => {
        for (let i = 0; i < text.length; i++) {
          const char = text.charAt(i);
          if (char === '\r' || char === '\n' || (raw && char === '\u0004')) {
            // A CRLF line end is one end, not an end and an empty answer to the next question.
            const rest = text.slice(i + 1);
            this.#pending = char === '\r' && rest.startsWith('\n') ? rest.slice(1) : rest;
            finish();
            return true;
          }
          if (raw && char === '\u0003') {
            finish(new PromptCancelled());
            return true;
          }
          if (char === '\u007f' || char === '\b') {
            if (echo && value.length > 0) stderr.write('\b \b');
            value = value.slice(0, -1);
          } else if (char >= ' ') {
            value += char;
            if (echo) stderr.write(terminalSafe(char));
          }
          if (value.length > MAX_ANSWER) {
            finish(new UsageError('the answer is too long'));
            return true;
          }
        }
        return false;
      };
      const onData = (data: Buffer | string): void => {
        consume(typeof data === 'string' ? data : this.#decoder.write(data));
      };
      const onEnd = (): void => {
        this.#ended = true;
        if (value === '') finish(new UsageError(`stdin ended before the ${label} was given`));
        else finish();
      };
      const pending = this.#pending;
      this.#pending = '';
      if (consume(pending)) return;
      if (this.#ended || (stdin as { readableEnded?: boolean }).readableEnded === true) return onEnd();
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      if (raw) stdin.setRawMode?.(true);
      stdin.resume();
    });
  }
}

const prompters = new WeakMap<CliIo, Prompter>();

/** The one Prompter of an invocation: answers read ahead for one question are kept for the next. */
export function prompterFor(io: CliIo): Prompter {
  let prompter = prompters.get(io);
  if (prompter === undefined) {
    prompter = new Prompter(io);
    prompters.set(io, prompter);
  }
  return prompter;
}
