// Progress on long work: a redrawn bar with rate and ETA on a terminal, plain lines otherwise.
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number, private readonly unit = "",
    private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = !!stream.isTTY && process.env.CI !== "true";
  }

  /** Update to `done` units; redraws at most every 100 ms on a TTY, never prints otherwise. */
  update(done: number): void {
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < 100 && done < this.total) return;
    this.lastDraw = now;
    const elapsedS = (now - this.start) / 1000;
    const rate = done / Math.max(elapsedS, 1e-9);
    const eta = (this.total - done) / Math.max(rate, 1e-9);
    const width = 24, filled = Math.round((width * done) / Math.max(this.total, 1));
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    this.stream.write(`\r\x1b[2K${this.label} ${bar} ${done}/${this.total} ${formatRate(rate)}${this.unit}/s ETA ${formatDuration(eta)}`);
  }

  /** Clear the bar line so a log line can be printed cleanly. */
  clear(): void {
    if (this.tty) this.stream.write("\r\x1b[2K");
  }

  done(): void {
    this.clear();
  }
}

export function formatRate(x: number): string {
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)}G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(x >= 100 ? 0 : 1);
}
