import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { BackendError, type BackendInfo, initBackend } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import cliPackage from "../package.json";
import {
  type CliConfig,
  type ConfigSource,
  describeSource,
  mergeConfigLayers,
  readConfigFile,
  validateConfig,
} from "./config.js";
import type { CliIo } from "./io.js";
import { createProgressReporter, type ProgressReporter } from "./progress.js";
import type { RunResults } from "./results.js";

/** Version of this package, written into results and printed by `mdrec --version`. */
export const CLI_VERSION: string = cliPackage.version;

/** What every command action receives: the validated config and where to write. */
export class CommandContext {
  constructor(
    readonly io: CliIo,
    readonly command: string,
    readonly config: CliConfig,
    /** Where each top-level config key came from (flag, environment, file). */
    readonly sources: Record<string, ConfigSource> = {},
  ) {}

  /** Prints a human-readable line: on stdout, or on stderr with `--json` (stdout then holds only JSON). */
  print(text = ""): void {
    (this.config.json ? this.io.stderr : this.io.stdout).write(`${text}\n`);
  }

  /** Prints a detail line only with `--verbose`. */
  detail(text: string): void {
    if (this.config.verbose) this.print(text);
  }

  /** Writes the command's machine-readable result on stdout (with `--json`). */
  emitJson(value: unknown): void {
    this.io.stdout.write(
      `${JSON.stringify(value, (_key, item) => (typeof item === "number" && !Number.isFinite(item) ? null : item), 2)}\n`,
    );
  }

  /** A progress display on the human-readable stream. */
  progress(): ProgressReporter {
    return createProgressReporter(this.config.json ? this.io.stderr : this.io.stdout);
  }

  /** Resolves a path against the run's working directory. */
  resolvePath(path: string): string {
    return resolve(this.io.cwd, path);
  }

  /**
   * Loads the backend the config asks for (`--backend`, `MDREC_BACKEND`, else the best that
   * loads) and prints the choice, always.
   */
  async startBackend(): Promise<BackendInfo> {
    const requested = this.config.backend;
    const from = requested === undefined ? "" : describeSource("backend", this.sources);
    try {
      return await initBackend({
        prefer: requested,
        allowFallback: this.config.allowBackendFallback,
        threads: this.config.threads,
        // MDREC_BACKEND is already merged into the config, with its source for messages; the
        // kernel variables (MDREC_FAST_KERNELS, MDREC_NATIVE_GEMM, MDREC_BLAS_THREADS) pass through.
        env: { ...process.env, MDREC_BACKEND: undefined },
        log: (line) => this.print(line.replace("option prefer", from)),
      });
    } catch (error) {
      if (!(error instanceof BackendError) || requested === undefined) throw error;
      // Reword the library's advice in terms of this command line.
      const details = /could not load \((.*)\)\. /s.exec(error.message)?.[1] ?? error.message;
      const advice =
        requested === "node-gpu" || requested === "node"
          ? `Install @tensorflow/tfjs-${requested} (see docs/gpu.md), choose another --backend`
          : "Choose another --backend";
      throw new BackendError(
        `Backend "${requested}" requested by ${from} could not load (${details}). ${advice}, or pass --allow-backend-fallback to use the next best one.`,
        { cause: error },
      );
    }
  }
}

/**
 * Reads the `--config` file, merges it with `MDREC_BACKEND` and the flags, validates, and
 * returns the context of a command.
 */
export async function createContext(
  io: CliIo,
  command: string,
  flags: Record<string, unknown>,
  configPath: string | undefined,
): Promise<CommandContext> {
  const file =
    configPath === undefined
      ? undefined
      : { path: configPath, values: await readConfigFile(configPath, io.cwd) };
  const layers = mergeConfigLayers(file, io.env, flags);
  return new CommandContext(io, command, validateConfig(layers), layers.sources);
}

/** A new run id: UTC time plus 4 random hex digits, e.g. `20250102-030405-9f3a`. */
export function newRunId(date = new Date()): string {
  const stamp = date.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}

/** Versions and machine for a results file. */
export function environmentSummary(backend: BackendInfo, threads: number): RunResults["environment"] {
  return {
    mdrec: CLI_VERSION,
    tfjs: tf.version_core,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    backend: backend.name,
    threads: backend.name === "wasm" ? threads : 1,
  };
}
