import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { acquireDirectoryLock, LOCK_FILE } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { EXIT_RUNTIME, EXIT_USAGE, exitCodeFor, OutputLockedError, UsageError } from "../src/errors.js";
import { openOutputDirectory } from "../src/output-dir.js";
import { tempDirectory } from "./fixtures.js";

const root = tempDirectory("mdrec-out-");
afterAll(() => root.cleanup());
let counter = 0;
const fresh = () => join(root.path, `out-${counter++}`);

describe("openOutputDirectory", () => {
  it("creates the directory, writes atomically, and releases the lock", async () => {
    const path = join(fresh(), "nested");
    const directory = await openOutputDirectory(path, { overwrite: false, cwd: root.path });
    expect(existsSync(join(path, LOCK_FILE))).toBe(true);
    await directory.write("results.json", '{"a":1}');
    await directory.write("results.json", '{"a":2}');
    expect(readFileSync(join(path, "results.json"), "utf8")).toBe('{"a":2}');
    await directory.release();
    await directory.release();
    expect(readdirSync(path)).toEqual(["results.json"]);
  });

  it("refuses a directory holding another run's results unless overwrite (BAD_INPUTS 27)", async () => {
    const path = fresh();
    mkdirSync(path);
    writeFileSync(
      join(path, "results.json"),
      JSON.stringify({ kind: "compare", runId: "run-1", createdAt: "2025-01-01T00:00:00Z" }),
    );
    writeFileSync(join(path, "report.html"), "<html></html>");
    const refusal = await openOutputDirectory(path, { overwrite: false, cwd: root.path }).catch(
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(UsageError);
    expect(exitCodeFor(refusal)).toBe(EXIT_USAGE);
    expect((refusal as Error).message).toBe(
      `--out out-1 already holds results of another run (mdrec compare, run run-1, written 2025-01-01T00:00:00Z): report.html, results.json. ` +
        "Pass --overwrite to replace them, or choose another --out.",
    );
    // The refused run left no lock behind.
    expect(existsSync(join(path, LOCK_FILE))).toBe(false);
    const directory = await openOutputDirectory(path, { overwrite: true, cwd: root.path });
    await directory.write("results.json", "{}");
    await directory.release();
    expect(readFileSync(join(path, "results.json"), "utf8")).toBe("{}");
  });

  it("refuses a non-empty directory without results, and a file", async () => {
    const path = fresh();
    mkdirSync(path);
    writeFileSync(join(path, "notes.txt"), "mine");
    await expect(openOutputDirectory(path, { overwrite: false, cwd: root.path })).rejects.toThrow(
      "--out out-2 is not empty (notes.txt). Pass --overwrite to write into it anyway, or choose another --out.",
    );
    const file = join(root.path, "a-file");
    writeFileSync(file, "x");
    await expect(openOutputDirectory(file, { overwrite: true, cwd: root.path })).rejects.toThrow(
      "--out a-file is a file, not a directory",
    );
  });

  it("refuses a directory another live run is writing (BAD_INPUTS 25) with exit code 1", async () => {
    const path = fresh();
    const held = await acquireDirectoryLock(path);
    try {
      const refusal = await openOutputDirectory(path, { overwrite: true, cwd: root.path }).catch(
        (error: unknown) => error,
      );
      expect(refusal).toBeInstanceOf(OutputLockedError);
      expect(exitCodeFor(refusal)).toBe(EXIT_RUNTIME);
      expect((refusal as Error).message).toMatch(
        new RegExp(`^--out out-3: .* in use by another run \\(pid ${process.pid}`),
      );
    } finally {
      await held.release();
    }
    const directory = await openOutputDirectory(path, { overwrite: false, cwd: root.path });
    await directory.release();
  });

  it("takes over the lock of a run that died", async () => {
    const path = fresh();
    mkdirSync(path);
    const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    const deadPid = Number(child.stdout);
    writeFileSync(
      join(path, LOCK_FILE),
      JSON.stringify({
        pid: deadPid,
        hostname: hostname(),
        startedAt: "2025-01-01T00:00:00Z",
        token: "dead",
      }),
    );
    const warnings: string[] = [];
    const directory = await openOutputDirectory(path, {
      overwrite: false,
      cwd: root.path,
      onWarning: (message) => warnings.push(message),
    });
    expect(warnings.join("\n")).toContain(`pid ${deadPid}`);
    await directory.release();
    expect(existsSync(join(path, LOCK_FILE))).toBe(false);
  });
});
