import { BackendError, ConfigError, DataError, MdrecError, ShapeError } from "@mdrec/core";

/** Exit status of a successful command. */
export const EXIT_OK = 0;
/** Exit status of a run-time failure (training diverged, disk full, a lock held by another run). */
export const EXIT_RUNTIME = 1;
/** Exit status of bad usage or bad input (unknown flag, invalid config, malformed data). */
export const EXIT_USAGE = 2;

/**
 * Bad command-line usage: a missing or malformed argument, an unknown command, an output
 * directory that holds another run's results. Exits with status 2.
 */
export class UsageError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("USAGE", message, options);
  }
}

/** Another run holds the output directory's lock. Exits with status 1: retry when it ends. */
export class OutputLockedError extends MdrecError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("OUTPUT_LOCKED", message, options);
  }
}

/**
 * The exit status for an error: 2 for what the user can fix in the command line, config or data
 * (usage, config, data, shape and backend-request errors), 1 for everything else.
 */
export function exitCodeFor(error: unknown): number {
  if (
    error instanceof UsageError ||
    error instanceof ConfigError ||
    error instanceof DataError ||
    error instanceof ShapeError ||
    error instanceof BackendError
  ) {
    return EXIT_USAGE;
  }
  return EXIT_RUNTIME;
}

/**
 * The text printed for an error: one line `mdrec: <message>`; with `verbose` the stack and the
 * chain of causes too.
 */
export function formatError(error: unknown, verbose: boolean): string {
  const message = error instanceof Error ? error.message : String(error);
  if (!verbose) return `mdrec: ${message}\n`;
  const lines = [`mdrec: ${message}`];
  let current: unknown = error;
  let depth = 0;
  while (current instanceof Error && depth < 5) {
    if (depth > 0) lines.push(`caused by: ${current.message}`);
    if (current.stack) lines.push(current.stack.split("\n").slice(1).join("\n"));
    current = current.cause;
    depth++;
  }
  return `${lines.join("\n")}\n`;
}
