/**
 * Progress for long work (downloads, loading weights) on stderr, so stdout stays
 * clean for answers and --json. On a terminal: one bar redrawn in place; else
 * (logs, CI): a plain line every `lineIntervalMs`, because carriage-return
 * redraws turn into megabytes of noise in a log file.
 */
export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[i]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream?: NodeJS.WriteStream;
  /** Non-TTY: at most one line per this many ms (default 5000). */
  lineIntervalMs?: number;
}

export class ProgressBar {
  private done = 0;
  private readonly started = Date.now();
  private lastDraw = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private finished = false;

  constructor(private readonly opts: ProgressOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
  }

  /** Sets the absolute amount done (bytes). */
  update(done: number, label?: string): void {
    this.done = done;
    if (label) this.opts.label = label;
    const now = Date.now();
    const interval = this.tty ? 100 : this.opts.lineIntervalMs ?? 5000;
    if (now - this.lastDraw < interval) return;
    this.lastDraw = now;
    this.draw();
  }

  /** Prints a message above the bar (e.g. "file x: done"). */
  log(message: string): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
    this.stream.write(message + '\n');
    if (this.tty && !this.finished) this.draw();
  }

  finish(message?: string): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty) this.stream.write('\r\x1b[2K');
    if (message) this.stream.write(message + '\n');
  }

  private draw(): void {
    const { total, label } = this.opts;
    const elapsed = (Date.now() - this.started) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const frac = total > 0 ? Math.min(1, this.done / total) : 0;
    const eta = rate > 0 && total > 0 ? (total - this.done) / rate : NaN;
    const pct = `${(frac * 100).toFixed(1).padStart(5)}%`;
    const amounts = `${formatBytes(this.done)}/${formatBytes(total)} ${formatBytes(rate)}/s eta ${formatDuration(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round(frac * width);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      const line = `${label} ${bar} ${pct} ${amounts}`;
      const cols = this.stream.columns || 100;
      this.stream.write('\r\x1b[2K' + line.slice(0, cols - 1));
    } else {
      this.stream.write(`${label}: ${pct.trim()} ${amounts}\n`);
    }
  }
}
