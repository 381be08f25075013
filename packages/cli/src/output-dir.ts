import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { CheckpointError, writeFileAtomic } from "@mdrec/core";
import { acquireDirectoryLock, type DirectoryLock, LOCK_FILE } from "@mdrec/trainer";
import { OutputLockedError, UsageError } from "./errors.js";

/** Files whose presence marks a directory as holding a finished run's results. */
export const RESULT_FILES = ["results.json", "results.md", "report.html"] as const;

/** An output directory locked for one run; write files with {@link OutputDirectory.write}. */
export interface OutputDirectory {
  /** Absolute path. */
  readonly path: string;
  /** Writes `name` inside the directory atomically (temp file + rename). */
  write(name: string, data: string | Uint8Array): Promise<void>;
  /** Removes the lock. Safe to call twice. */
  release(): Promise<void>;
}

/** Options of {@link openOutputDirectory}. */
export interface OpenOutputOptions {
  /** Replace results of another run instead of refusing. */
  overwrite: boolean;
  /** How the path was given, for messages (e.g. `"--out"`). Defaults to `"--out"`. */
  argument?: string;
  /** Directory messages show paths relative to. Defaults to the process working directory. */
  cwd?: string;
  /** Receives notices such as a stale lock taken over. */
  onWarning?: (message: string) => void;
}

async function describeExistingRun(directory: string): Promise<string> {
  try {
    const previous = JSON.parse(await readFile(join(directory, "results.json"), "utf8")) as {
      runId?: unknown;
      createdAt?: unknown;
      kind?: unknown;
    };
    const parts = [
      typeof previous.kind === "string" ? `mdrec ${previous.kind}` : undefined,
      typeof previous.runId === "string" ? `run ${previous.runId}` : undefined,
      typeof previous.createdAt === "string" ? `written ${previous.createdAt}` : undefined,
    ].filter((part) => part !== undefined);
    return parts.length ? ` (${parts.join(", ")})` : "";
  } catch {
    return "";
  }
}

/**
 * Creates (if needed) and locks an output directory for one run. Refuses, unless `overwrite`,
 * a directory that already holds files, naming the earlier run when its `results.json` is
 * there (BAD_INPUTS 27); refuses a directory another live run has locked (25). Files are then
 * written atomically, so a reader sees either the old or the new version of each file.
 */
export async function openOutputDirectory(
  path: string,
  options: OpenOutputOptions,
): Promise<OutputDirectory> {
  const argument = options.argument ?? "--out";
  const shown = relative(options.cwd ?? process.cwd(), path) || ".";
  const existing = await stat(path).catch(() => undefined);
  if (existing && !existing.isDirectory()) {
    throw new UsageError(`${argument} ${shown} is a file, not a directory`);
  }
  let lock: DirectoryLock;
  try {
    lock = await acquireDirectoryLock(path, { onWarning: options.onWarning ?? (() => undefined) });
  } catch (error) {
    if (error instanceof CheckpointError && /in use by another run|locked by/.test(error.message)) {
      throw new OutputLockedError(`${argument} ${shown}: ${error.message}`, { cause: error });
    }
    throw new UsageError(`${argument} ${shown}: ${(error as Error).message}`, { cause: error });
  }
  const release = () => lock.release();
  try {
    // The lock and temp files of atomic writes are not results.
    const entries = (await readdir(path)).filter((name) => name !== LOCK_FILE && !name.endsWith(".tmp"));
    if (entries.length > 0 && !options.overwrite) {
      const results = entries.filter((name) => (RESULT_FILES as readonly string[]).includes(name));
      const listed = entries.slice(0, 6).join(", ") + (entries.length > 6 ? ", ..." : "");
      throw new UsageError(
        results.length > 0
          ? `${argument} ${shown} already holds results of another run${await describeExistingRun(path)}: ${listed}. ` +
              "Pass --overwrite to replace them, or choose another --out."
          : `${argument} ${shown} is not empty (${listed}). Pass --overwrite to write into it anyway, or choose another --out.`,
      );
    }
  } catch (error) {
    await release();
    throw error;
  }
  return {
    path,
    write: (name, data) => writeFileAtomic(join(path, name), data),
    release,
  };
}
