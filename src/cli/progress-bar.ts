import { formatBytes } from './output.js';

const REDRAW_INTERVAL_MS = 100;
const BAR_WIDTH = 24;

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * A one-line transfer progress bar for a terminal: percentage, bytes, average rate and ETA, redrawn at most
 * ten times a second. The caller decides whether to use one (stderr is a TTY and output is not --json).
 */
export class ProgressBar {
  readonly #stream: { write(chunk: string): unknown };
  readonly #label: string;
  readonly #now: () => number;
  readonly #started: number;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #done = 0;
  #total = 0;
  #drawn = false;

  constructor(stream: { write(chunk: string): unknown }, label: string, now: () => number = Date.now) {
    this.#stream = stream;
    this.#label = label;
    this.#now = now;
    this.#started = now();
  }

  update(done: number, total: number): void {
    this.#done = done;
    this.#total = total;
    const now = this.#now();
    if (now - this.#lastDraw < REDRAW_INTERVAL_MS) return;
    this.#lastDraw = now;
    this.#draw(now);
  }

  /** Draw the final state and end the line. */
  finish(): void {
    this.#draw(this.#now());
    this.#stream.write('\n');
    this.#drawn = false;
  }

  /** Erase the bar (before printing an error). */
  clear(): void {
    if (this.#drawn) this.#stream.write('\r\x1b[2K');
    this.#drawn = false;
  }

  render(now: number): string {
    const fraction = this.#total > 0 ? Math.min(1, this.#done / this.#total) : 1;
    const filled = Math.round(fraction * BAR_WIDTH);
    const elapsed = (now - this.#started) / 1000;
    const rate = elapsed > 0 ? this.#done / elapsed : 0;
    const eta = rate > 0 ? (this.#total - this.#done) / rate : Number.NaN;
    return [
      `${this.#label} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`,
      `${Math.floor(fraction * 100)}%`.padStart(4),
      `${formatBytes(this.#done)}/${formatBytes(this.#total)}`,
      `${formatBytes(rate)}/s`,
      `ETA ${formatDuration(eta)}`,
    ].join('  ');
  }

  #draw(now: number): void {
    this.#stream.write(`\r\x1b[2K${this.render(now)}`);
    this.#drawn = true;
  }
}

/** A bar on stderr only when a person is watching: stderr is a terminal and the output is not `--json`. */
export function progressBarFor(
  stderr: { write(chunk: string): unknown; readonly isTTY?: boolean },
  json: boolean,
  label: string,
): ProgressBar | undefined {
  return stderr.isTTY === true && !json ? new ProgressBar(stderr, label) : undefined;
}
