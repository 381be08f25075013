import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "@mdrec/core";

/** File name of the lock {@link acquireDirectoryLock} creates. */
export const LOCK_FILE = "mdrec.lock";

/** What a lock file holds. */
export interface LockOwner {
  pid: number;
  hostname: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** Random token that tells this lock apart from a later one with a reused pid. */
  token: string;
}

/** A held lock; {@link DirectoryLock.release} removes it. */
export interface DirectoryLock {
  /** Path of the lock file. */
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

/** Options of {@link acquireDirectoryLock}. */
export interface AcquireLockOptions {
  /** Receives the notice when a stale lock is taken over. Defaults to `console.warn`. */
  onWarning?: (message: string) => void;
}

function processIsRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (
      Number.isInteger(value.pid) &&
      typeof value.hostname === "string" &&
      typeof value.token === "string"
    ) {
      return value as LockOwner;
    }
  } catch {
    // An unreadable lock is reported as such by the caller.
  }
  return undefined;
}

/**
 * Takes an exclusive lock on `directory` (created if missing) so that two runs never write to
 * it at once. The lock is a file `mdrec.lock` holding `{ pid, hostname, startedAt, token }`,
 * created atomically with its content (hard link of a finished temp file, which fails if the lock
 * exists).
 *
 * A lock held by a running process refuses with a `CheckpointError` naming the pid. A lock left
 * by a process that no longer runs on this host (killed, crashed) is stale: it is taken over and
 * `onWarning` says so. A lock from another host cannot be checked and is refused; delete the file
 * by hand when that run is known to be gone.
 *
 * @example
 * const lock = await acquireDirectoryLock("./runs/mmoe");
 * try { ... } finally { await lock.release(); }
 */
export async function acquireDirectoryLock(
  directory: string,
  options: AcquireLockOptions = {},
): Promise<DirectoryLock> {
  const warn = options.onWarning ?? ((message: string) => console.warn(message));
  const path = join(directory, LOCK_FILE);
  try {
    await mkdir(directory, { recursive: true });
  } catch (error) {
    throw new CheckpointError(`Cannot create directory ${directory}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString("hex"),
  };
  const temporary = join(directory, `.${LOCK_FILE}.${owner.token}.tmp`);
  try {
    await writeFile(temporary, JSON.stringify(owner));
  } catch (error) {
    throw new CheckpointError(`Cannot write the lock file in ${directory}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await link(temporary, path);
        return makeLock(path, owner);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
          throw new CheckpointError(`Cannot create lock ${path}: ${(error as Error).message}`, {
            cause: error,
          });
        }
      }
      const text = await readFile(path, "utf8").catch(() => "");
      const holder = parseOwner(text);
      if (holder === undefined) {
        throw new CheckpointError(
          `${path} exists but is not a valid lock (content ${JSON.stringify(text.slice(0, 80))}); delete it if no run uses ${directory}`,
        );
      }
      if (holder.hostname !== owner.hostname) {
        throw new CheckpointError(
          `${directory} is locked by pid ${holder.pid} on host ${holder.hostname} (since ${holder.startedAt}); delete ${path} if that run has ended`,
        );
      }
      if (processIsRunning(holder.pid)) {
        throw new CheckpointError(
          `${directory} is in use by another run (pid ${holder.pid}, since ${holder.startedAt}, lock ${path}); wait for it to finish or choose another directory`,
        );
      }
      warn(
        `Taking over stale lock ${path}: its process (pid ${holder.pid}, since ${holder.startedAt}) is no longer running`,
      );
      // Remove only the stale lock we read; if another run replaced it meanwhile, link fails again.
      const current = parseOwner(await readFile(path, "utf8").catch(() => ""));
      if (current?.token === holder.token) await rm(path, { force: true });
    }
    throw new CheckpointError(
      `${directory} was locked by another run while taking over a stale lock (${path})`,
    );
  } finally {
    await rm(temporary, { force: true });
  }
}

function makeLock(path: string, owner: LockOwner): DirectoryLock {
  let released = false;
  return {
    path,
    owner,
    async release() {
      if (released) return;
      released = true;
      const current = parseOwner(await readFile(path, "utf8").catch(() => ""));
      if (current?.token === owner.token) await rm(path, { force: true });
    },
  };
}
