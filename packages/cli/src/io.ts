/** A text sink: what the CLI needs of `process.stdout` / `process.stderr`. */
export interface OutputStream {
  write(text: string): unknown;
  /** True for an interactive terminal: progress bars are drawn only then. */
  isTTY?: boolean;
  /** Terminal width in characters, when known. */
  columns?: number;
}

/**
 * Where a CLI run reads and writes. `runCli(argv, io)` takes one so tests run commands
 * in-process and capture their output; {@link processIo} is the real process.
 */
export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  /** Environment variables (`MDREC_BACKEND`). */
  env: Record<string, string | undefined>;
  /** Directory relative paths resolve against. */
  cwd: string;
}

/** The running process's streams, environment and working directory. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** An output stream that keeps everything written to it, for tests and embedding. */
export class BufferStream implements OutputStream {
  readonly chunks: string[] = [];
  isTTY: boolean;
  columns: number;

  constructor(options: { isTTY?: boolean; columns?: number } = {}) {
    this.isTTY = options.isTTY ?? false;
    this.columns = options.columns ?? 120;
  }

  write(text: string): boolean {
    this.chunks.push(text);
    return true;
  }

  /** Everything written so far. */
  get text(): string {
    return this.chunks.join("");
  }
}

/**
 * A {@link CliIo} writing to two {@link BufferStream}s, for calling `runCli` from tests.
 * @example
 * const io = bufferIo({ cwd: tmp });
 * const code = await runCli(["report", "results.json"], io);
 * console.log(io.stdout.text);
 */
export function bufferIo(
  options: { isTTY?: boolean; env?: Record<string, string | undefined>; cwd?: string } = {},
): CliIo & { stdout: BufferStream; stderr: BufferStream } {
  return {
    stdout: new BufferStream({ isTTY: options.isTTY }),
    stderr: new BufferStream({ isTTY: false }),
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  };
}
