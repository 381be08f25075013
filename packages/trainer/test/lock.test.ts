import { spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "@mdrec/core";
import { acquireDirectoryLock, LOCK_FILE } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { removeDirectory, temporaryDirectory } from "./helpers.js";

const directories: string[] = [];
async function directory(): Promise<string> {
  const created = await temporaryDirectory();
  directories.push(created);
  return created;
}
afterAll(async () => {
  for (const created of directories) await removeDirectory(created);
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", ""]);
  return child.pid!;
}

describe("acquireDirectoryLock", () => {
  it("holds the directory until released, refusing a second holder by pid", async () => {
    const root = join(await directory(), "nested", "run");
    const lock = await acquireDirectoryLock(root);
    const content = JSON.parse(await readFile(join(root, LOCK_FILE), "utf8"));
    expect(content).toMatchObject({ pid: process.pid, hostname: hostname() });
    expect(lock.path).toBe(join(root, LOCK_FILE));
    const second = acquireDirectoryLock(root);
    await expect(second).rejects.toThrow(CheckpointError);
    await expect(second).rejects.toThrow(`${root} is in use by another run (pid ${process.pid}, since`);
    await lock.release();
    await lock.release();
    const again = await acquireDirectoryLock(root);
    await again.release();
  });

  it("takes over a stale lock from a process that no longer runs, and says so", async () => {
    const root = await directory();
    const pid = deadPid();
    await writeFile(
      join(root, LOCK_FILE),
      JSON.stringify({ pid, hostname: hostname(), startedAt: "2020-01-01T00:00:00.000Z", token: "old" }),
    );
    const warnings: string[] = [];
    const lock = await acquireDirectoryLock(root, { onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual([
      `Taking over stale lock ${join(root, LOCK_FILE)}: its process (pid ${pid}, since 2020-01-01T00:00:00.000Z) is no longer running`,
    ]);
    expect(JSON.parse(await readFile(join(root, LOCK_FILE), "utf8")).pid).toBe(process.pid);
    await lock.release();
  });

  it("refuses a lock from another host and an unreadable lock file", async () => {
    const root = await directory();
    const path = join(root, LOCK_FILE);
    await writeFile(path, JSON.stringify({ pid: 1, hostname: "elsewhere", startedAt: "then", token: "t" }));
    await expect(acquireDirectoryLock(root)).rejects.toThrow(
      `${root} is locked by pid 1 on host elsewhere (since then); delete ${path} if that run has ended`,
    );
    await writeFile(path, "garbage");
    await expect(acquireDirectoryLock(root)).rejects.toThrow(
      `${path} exists but is not a valid lock (content "garbage"); delete it if no run uses ${root}`,
    );
  });

  it("does not remove a lock that another run has taken over meanwhile", async () => {
    const root = await directory();
    const lock = await acquireDirectoryLock(root);
    const other = JSON.stringify({ pid: 1, hostname: hostname(), startedAt: "now", token: "other" });
    await writeFile(lock.path, other);
    await lock.release();
    expect(await readFile(lock.path, "utf8")).toBe(other);
  });
});
