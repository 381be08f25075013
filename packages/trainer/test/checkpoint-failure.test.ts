import * as fs from "node:fs/promises";
import { readdir } from "node:fs/promises";
import { CheckpointError } from "@mdrec/core";
import { fit, LOCK_FILE, loadCheckpointWeights, readCheckpoint } from "@mdrec/trainer";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { makeDataset, makeModel, readWeights, removeDirectory, temporaryDirectory } from "./helpers.js";

// Disk-full and permission failures cannot be provoked for real here (tests may run as root, which
// ignores permission bits), so the file-system calls the checkpoint writer makes are wrapped.
vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:fs/promises")>();
  return { ...actual, open: vi.fn(actual.open), mkdir: vi.fn(actual.mkdir) };
});

const train = makeDataset(120, 1); // 6 batches of 20
const directories: string[] = [];

afterEach(() => {
  vi.mocked(fs.open).mockReset();
  vi.mocked(fs.mkdir).mockReset();
});
afterAll(async () => {
  for (const created of directories) await removeDirectory(created);
});

function failure(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

describe("a checkpoint that cannot be written", () => {
  it.each([
    ["the disk is full while writing model.bin", "open", "model.bin", "ENOSPC", "no space left on device"],
    ["the directory is not writable", "mkdir", ".partial", "EACCES", "permission denied"],
  ] as const)(
    "stops training when %s and keeps the previous checkpoint intact",
    async (_label, call, match, code, text) => {
      const actual = await vi.importActual<typeof import("node:fs/promises")>("node:fs/promises");
      let failing = false;
      if (call === "open") {
        vi.mocked(fs.open).mockImplementation(((
          path: Parameters<typeof actual.open>[0],
          ...rest: unknown[]
        ) => {
          if (failing && String(path).endsWith(match)) return Promise.reject(failure(code, text));
          return (actual.open as (...args: unknown[]) => ReturnType<typeof actual.open>)(path, ...rest);
        }) as typeof actual.open);
      } else {
        vi.mocked(fs.mkdir).mockImplementation(((
          path: Parameters<typeof actual.mkdir>[0],
          ...rest: unknown[]
        ) => {
          if (failing && String(path).endsWith(match)) return Promise.reject(failure(code, text));
          return (actual.mkdir as (...args: unknown[]) => ReturnType<typeof actual.mkdir>)(path, ...rest);
        }) as typeof actual.mkdir);
      }
      const checkpointDir = await temporaryDirectory();
      directories.push(checkpointDir);
      const model = makeModel();
      let savedWeights: number[][] = [];
      const run = fit(model, train, {
        epochs: 2,
        batchSize: 20,
        checkpointDir,
        checkpointEvery: 3,
        callbacks: {
          onCheckpoint: () => {
            savedWeights = readWeights(model);
            failing = true; // every later checkpoint fails
          },
        },
      });
      await expect(run).rejects.toThrow(CheckpointError);
      await expect(run).rejects.toThrow(
        new RegExp(
          `Cannot write checkpoint at step 6 in ${checkpointDir} \\(the previous checkpoint, if any, is kept\\): .*${code}: ${text}`,
        ),
      );
      failing = false;
      const entries = await readdir(checkpointDir);
      expect(entries.filter((entry) => entry.includes("partial"))).toEqual([]);
      expect(entries).not.toContain(LOCK_FILE);
      expect(entries.filter((entry) => entry.startsWith("ckpt-"))).toHaveLength(1);
      const { manifest } = await readCheckpoint(checkpointDir);
      expect(manifest.step).toBe(3);
      const restored = makeModel({ seed: 50 });
      await loadCheckpointWeights(restored, checkpointDir);
      expect(readWeights(restored)).toEqual(savedWeights);
      model.dispose();
      restored.dispose();
    },
  );
});
