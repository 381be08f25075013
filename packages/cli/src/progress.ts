import cliProgress from "cli-progress";
import type { OutputStream } from "./io.js";

/** One training step as the progress display needs it. */
export interface StepProgress {
  /** Steps done so far in this task (1-based after the first step). */
  step: number;
  /** Steps the task will take (all epochs). */
  totalSteps: number;
  /** 1-based epoch. */
  epoch: number;
  epochs: number;
  /** Loss of the step (task loss plus auxiliary losses). */
  loss: number;
  examplesPerSecond: number;
  /** Estimated seconds left in this task. */
  etaSeconds: number;
}

/** Shows training progress: a bar on a terminal, plain lines elsewhere. */
export interface ProgressReporter {
  /** Starts a task (e.g. one model's training) of `totalSteps` steps. */
  begin(label: string, totalSteps: number): void;
  /** Reports a finished step. */
  step(progress: StepProgress): void;
  /** Prints a line of text without breaking the bar (epoch summaries). */
  line(text: string): void;
  /** Ends the current task. */
  end(): void;
}

/** `75` -> `"1m15s"`, `12.3` -> `"12s"`. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const whole = Math.round(seconds);
  if (whole < 60) return `${whole}s`;
  const minutes = Math.floor(whole / 60);
  return `${minutes}m${String(whole % 60).padStart(2, "0")}s`;
}

function formatRate(examplesPerSecond: number): string {
  return Number.isFinite(examplesPerSecond) ? Math.round(examplesPerSecond).toLocaleString("en-US") : "?";
}

/** Options of {@link createProgressReporter}. */
export interface ProgressOptions {
  /** Draw a bar (needs a terminal). Defaults to `stream.isTTY`. */
  interactive?: boolean;
  /** In plain mode, at least this many milliseconds between step lines (besides each 10%). Defaults to 15000. */
  plainIntervalMs?: number;
  /** Clock, for tests. Defaults to `Date.now`. */
  now?: () => number;
}

/**
 * A progress display on `stream`. On a terminal: a cli-progress bar with loss, examples/s and
 * ETA, and summary lines printed above it. Elsewhere (CI, pipes, files): plain lines without
 * control characters, one per 10% of the steps (or every `plainIntervalMs`), so logs stay short.
 */
export function createProgressReporter(
  stream: OutputStream,
  options: ProgressOptions = {},
): ProgressReporter {
  const interactive = options.interactive ?? stream.isTTY === true;
  return interactive ? new BarProgress(stream) : new PlainProgress(stream, options);
}

// Redraws at most this often; the bar library's own timer cannot be relied on because a training
// loop that awaits only already-settled promises never lets timers run.
const REDRAW_MS = 100;

class BarProgress implements ProgressReporter {
  private multiBar: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private lastDraw = 0;

  constructor(private readonly stream: OutputStream) {}

  begin(label: string, totalSteps: number): void {
    this.end();
    this.multiBar = new cliProgress.MultiBar(
      {
        stream: this.stream as NodeJS.WritableStream,
        format: `${label.padEnd(14)} {bar} {percentage}% | epoch {epoch}/{epochs} | loss {loss} | {speed} ex/s | ETA {etaText}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        autopadding: true,
        fps: 8,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar = this.multiBar.create(Math.max(1, totalSteps), 0, {
      epoch: 1,
      epochs: "?",
      loss: "-",
      speed: "-",
      etaText: "?",
    });
  }

  step(progress: StepProgress): void {
    this.bar?.setTotal(Math.max(1, progress.totalSteps));
    this.bar?.update(progress.step, {
      epoch: progress.epoch,
      epochs: progress.epochs,
      loss: Number.isFinite(progress.loss) ? progress.loss.toFixed(4) : String(progress.loss),
      speed: formatRate(progress.examplesPerSecond),
      etaText: formatEta(progress.etaSeconds),
    });
    const now = Date.now();
    if (now - this.lastDraw >= REDRAW_MS) {
      this.lastDraw = now;
      this.multiBar?.update();
    }
  }

  line(text: string): void {
    if (this.multiBar) {
      this.multiBar.log(`${text}\n`);
      this.multiBar.update();
    } else {
      this.stream.write(`${text}\n`);
    }
  }

  end(): void {
    this.multiBar?.stop();
    this.multiBar = undefined;
    this.bar = undefined;
  }
}

class PlainProgress implements ProgressReporter {
  private label = "";
  private lastDecile = -1;
  private lastPrinted = 0;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly stream: OutputStream,
    options: ProgressOptions,
  ) {
    this.intervalMs = options.plainIntervalMs ?? 15_000;
    this.now = options.now ?? Date.now;
  }

  begin(label: string, totalSteps: number): void {
    this.label = label;
    this.lastDecile = 0;
    this.lastPrinted = this.now();
    this.stream.write(`[${label}] training: ${totalSteps} steps\n`);
  }

  step(progress: StepProgress): void {
    const decile = Math.floor((10 * progress.step) / Math.max(1, progress.totalSteps));
    const due = this.now() - this.lastPrinted >= this.intervalMs;
    if (decile <= this.lastDecile && !due && progress.step !== progress.totalSteps) return;
    if (progress.step === progress.totalSteps && this.lastDecile === 10) return;
    this.lastDecile = Math.max(decile, this.lastDecile);
    this.lastPrinted = this.now();
    const percent = Math.floor((100 * progress.step) / Math.max(1, progress.totalSteps));
    const loss = Number.isFinite(progress.loss) ? progress.loss.toFixed(4) : String(progress.loss);
    this.stream.write(
      `[${this.label}] step ${progress.step}/${progress.totalSteps} (${percent}%) epoch ${progress.epoch}/${progress.epochs} ` +
        `loss ${loss} ${formatRate(progress.examplesPerSecond)} ex/s ETA ${formatEta(progress.etaSeconds)}\n`,
    );
  }

  line(text: string): void {
    this.stream.write(`${text}\n`);
  }

  end(): void {
    this.label = "";
  }
}
