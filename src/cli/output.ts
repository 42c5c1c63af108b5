import type { CliIo } from './cli-io.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Human byte counts in binary units: `512 B`, `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} ${UNITS[0]}` : `${value.toFixed(1)} ${UNITS[unit] ?? ''}`;
}

/** A manifest digest with its algorithm named: the server sends bare hex SHA-256. */
export function formatDigest(digest: string | null): string {
  if (digest === null) return '-';
  return digest.includes(':') ? digest : `sha256:${digest}`;
}

/** A manifest digest shortened for a table; `show` prints it whole. */
export function shortDigest(digest: string | null): string {
  return digest === null ? '-' : formatDigest(digest).slice(0, 'sha256:'.length + 12);
}

/**
 * Make a string safe to print on a terminal: server-supplied text (names, descriptions, error messages) must
 * not be able to move the cursor, retitle the window or fake output with escape sequences.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '\uFFFD');
}

/**
 * Where a command's result goes: one JSON document on stdout with `--json`, concise lines and tables
 * otherwise. Diagnostics always go to stderr so stdout stays parseable.
 */
export class Output {
  readonly json: boolean;
  readonly #io: CliIo;

  constructor(io: CliIo, json: boolean) {
    this.#io = io;
    this.json = json;
  }

  /** Print the machine document with `--json`, or run the human rendering. */
  result(document: unknown, human: () => void): void {
    if (this.json) {
      this.#io.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
    } else {
      human();
    }
  }

  line(text = ''): void {
    this.#io.stdout.write(`${terminalSafe(text)}\n`);
  }

  /** Left-aligned columns separated by two spaces; `empty` is printed when there are no rows. */
  table(headers: readonly string[], rows: readonly (readonly string[])[], empty = '(none)'): void {
    if (rows.length === 0) {
      this.line(empty);
      return;
    }
    const cells = [headers, ...rows].map((row) => row.map((cell) => terminalSafe(cell)));
    const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
    for (const row of cells) {
      const padded = row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)));
      this.#io.stdout.write(`${padded.join('  ').trimEnd()}\n`);
    }
  }

  /** A diagnostic for humans, on stderr. */
  note(text: string): void {
    this.#io.stderr.write(`${terminalSafe(text)}\n`);
  }
}
