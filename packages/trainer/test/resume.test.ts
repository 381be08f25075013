import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fit, LOCK_FILE, predictDataset } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { RESUME_BATCHES_PER_EPOCH, resumeScenario } from "./fixtures/resume-setup.js";
import { readWeights, removeDirectory, stripTimes, temporaryDirectory } from "./helpers.js";

const packageDirectory = fileURLToPath(new URL("..", import.meta.url));
const directories: string[] = [];

afterAll(async () => {
  for (const directory of directories) await removeDirectory(directory);
});

/**
 * Runs the resume scenario in a child process (the same sources through tsx; see
 * fixtures/tfjs-esm-resolve.mjs for why the hook is needed) and SIGKILLs it when it prints
 * `STEP <killAtStep>`.
 */
function runChildAndKill(
  directory: string,
  killAtStep: number,
): Promise<{ lines: string[]; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      [
        "--conditions=source",
        "--import",
        "tsx",
        "--import",
        "./test/fixtures/register-tfjs-esm-resolve.mjs",
        "./test/fixtures/resume-child.ts",
        directory,
        "40",
      ],
      { cwd: packageDirectory, stdio: ["ignore", "pipe", "pipe"] },
    );
    const lines: string[] = [];
    let stderr = "";
    let buffer = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (line === `STEP ${killAtStep}`) child.kill("SIGKILL");
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve({ lines, signal });
      else
        reject(
          new Error(`child exited with code ${code} before it was killed:\n${lines.join("\n")}\n${stderr}`),
        );
    });
  });
}

describe("resume after SIGKILL", () => {
  it("continues mid-epoch and ends bit-for-bit like an uninterrupted run", async () => {
    const directory = await temporaryDirectory();
    directories.push(directory);
    // Checkpoints at every third step and at epoch ends (10 batches): killing at step 14 leaves
    // the step-12 checkpoint, mid-way through the second epoch, and loses steps 13-14.
    const { lines } = await runChildAndKill(directory, 14);
    const checkpoints = lines.filter((line) => line.startsWith("CHECKPOINT"));
    expect(checkpoints.slice(0, 5)).toEqual([
      "CHECKPOINT 3 0 3",
      "CHECKPOINT 6 0 6",
      "CHECKPOINT 9 0 9",
      "CHECKPOINT 10 1 0",
      "CHECKPOINT 12 1 2",
    ]);
    expect(lines).not.toContain("DONE");
    const lock = JSON.parse(await readFile(join(directory, LOCK_FILE), "utf8")) as { pid: number };
    expect(lock.pid).not.toBe(process.pid);

    const warnings: string[] = [];
    const resumed = resumeScenario();
    const resumedResult = await fit(resumed.model, resumed.train, {
      ...resumed.options,
      checkpointDir: directory,
      resume: true,
      callbacks: { onWarning: (message) => warnings.push(message) },
    });
    expect(warnings.join("\n")).toMatch(
      new RegExp(`Taking over stale lock .*pid ${lock.pid}.*no longer running`),
    );
    const resumedFrom = resumedResult.resumedFromStep!;
    expect(resumedFrom).toBeGreaterThanOrEqual(12);
    expect(resumedFrom).toBeLessThan(20);
    expect(resumedFrom % RESUME_BATCHES_PER_EPOCH).not.toBe(0);

    const uninterrupted = resumeScenario();
    const uninterruptedDirectory = await temporaryDirectory();
    directories.push(uninterruptedDirectory);
    const uninterruptedResult = await fit(uninterrupted.model, uninterrupted.train, {
      ...uninterrupted.options,
      checkpointDir: uninterruptedDirectory,
    });

    expect(resumedResult.steps).toBe(uninterruptedResult.steps);
    expect(resumedResult.history.map((epoch) => epoch.examples)).toEqual([200, 200, 200]);
    expect(stripTimes(resumedResult.history)).toEqual(stripTimes(uninterruptedResult.history));
    expect(resumedResult.evaluations).toEqual(uninterruptedResult.evaluations);
    expect(resumedResult.bestEpoch).toBe(uninterruptedResult.bestEpoch);
    expect(resumedResult.bestMetric).toBe(uninterruptedResult.bestMetric);
    expect(readWeights(resumed.model)).toEqual(readWeights(uninterrupted.model));
    const validation = resumed.options.validation!;
    expect(await predictDataset(resumed.model, validation)).toEqual(
      await predictDataset(uninterrupted.model, validation),
    );
    resumed.model.dispose();
    uninterrupted.model.dispose();
  });
});
