import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError, ConfigError } from "@mdrec/core";
import {
  CHECKPOINT_POINTER_FILE,
  type FitOptions,
  fit,
  hasCheckpoint,
  LOCK_FILE,
  loadCheckpointWeights,
  readCheckpoint,
} from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import {
  makeDataset,
  makeModel,
  readWeights,
  removeDirectory,
  stripTimes,
  temporaryDirectory,
} from "./helpers.js";

const train = makeDataset(120, 1); // 6 batches of 20
const validation = makeDataset(60, 2);
const base: FitOptions = { validation, epochs: 2, batchSize: 20, learningRate: 0.05, seed: 4 };
const directories: string[] = [];

async function directory(): Promise<string> {
  const created = await temporaryDirectory();
  directories.push(created);
  return created;
}

afterAll(async () => {
  for (const created of directories) await removeDirectory(created);
});

/** A finished two-epoch run with checkpoints in a fresh directory. */
async function trainedDirectory(options: FitOptions = {}): Promise<string> {
  const checkpointDir = await directory();
  const model = makeModel();
  await fit(model, train, { ...base, checkpointDir, ...options });
  model.dispose();
  return checkpointDir;
}

describe("checkpoints", () => {
  it("commit one directory named by checkpoint.json, holding the whole training state", async () => {
    const checkpointDir = await trainedDirectory({
      checkpointEvery: 4,
      checkpointExtra: { vocabulary: ["a", "b"] },
    });
    const entries = (await readdir(checkpointDir)).sort();
    expect(entries).toHaveLength(2);
    expect(entries[0]).toBe(CHECKPOINT_POINTER_FILE);
    expect(entries[1]).toMatch(/^ckpt-000000012-[0-9a-f]{8}$/);
    expect(await hasCheckpoint(checkpointDir)).toBe(true);
    expect(await hasCheckpoint(join(checkpointDir, "missing"))).toBe(false);
    const { path, manifest } = await readCheckpoint(checkpointDir);
    expect(path).toBe(join(checkpointDir, entries[1]!));
    expect((await readdir(path)).sort()).toEqual(["manifest.json", "model.bin", "optimizer.bin"]);
    expect(manifest).toMatchObject({
      format: "mdrec-checkpoint",
      formatVersion: 1,
      step: 12,
      epoch: 2,
      nextBatch: 0,
      modelConfig: { name: "tiny", formatVersion: 1 },
      training: {
        optimizer: "adam",
        batchSize: 20,
        seed: 4,
        resolvedSchedule: { kind: "constant", warmupSteps: 0 },
      },
      dataset: {
        numRows: 120,
        numTasks: 1,
        numDomains: 3,
        features: ["user:categorical", "item:categorical", "price:numeric"],
      },
      trainableWeights: 5,
      stoppedEarly: false,
      extra: { vocabulary: ["a", "b"] },
    });
    expect(Number.isInteger(manifest.randomState)).toBe(true);
    expect(Object.keys(manifest.optimizerInternals)).toEqual(["accBeta1", "accBeta2"]);
    expect(manifest.history).toHaveLength(2);
    expect(manifest.history[1]!.validation!.overall.count).toBe(60);
    expect(manifest.files.model.specs).toHaveLength(6);
    expect(manifest.files.optimizer.specs).toHaveLength(11);
  });

  it("refuses to start over a directory that holds a checkpoint unless resume is set", async () => {
    const checkpointDir = await trainedDirectory();
    const model = makeModel();
    const run = fit(model, train, { ...base, checkpointDir });
    await expect(run).rejects.toThrow(CheckpointError);
    await expect(run).rejects.toThrow(
      `${checkpointDir} already holds a checkpoint; pass resume: true to continue that run, or use an empty directory`,
    );
    expect(await readdir(checkpointDir)).not.toContain(LOCK_FILE);
    model.dispose();
  });

  it("resume on an empty directory warns and trains from scratch", async () => {
    const checkpointDir = await directory();
    const warnings: string[] = [];
    const model = makeModel();
    const result = await fit(model, train, {
      ...base,
      checkpointDir,
      resume: true,
      callbacks: { onWarning: (message) => warnings.push(message) },
    });
    expect(warnings).toEqual([`resume: ${checkpointDir} holds no checkpoint yet; starting from scratch`]);
    expect(result.steps).toBe(12);
    expect(result.resumedFromStep).toBeUndefined();
    model.dispose();
  });

  it("resuming a finished run trains nothing more; a larger epoch budget continues it", async () => {
    const checkpointDir = await trainedDirectory({ checkpointExtra: { version: 1 } });
    const finished = makeModel();
    let steps = 0;
    const again = await fit(finished, train, {
      ...base,
      checkpointDir,
      resume: true,
      callbacks: { onStep: () => void steps++ },
    });
    expect(steps).toBe(0);
    expect(again.steps).toBe(12);
    expect(again.history).toHaveLength(2);
    expect(again.resumedFromStep).toBe(12);

    const longer = await fit(finished, train, { ...base, epochs: 3, checkpointDir, resume: true });
    expect(longer.steps).toBe(18);
    expect(longer.history.map((epoch) => epoch.epoch)).toEqual([0, 1, 2]);
    const uninterrupted = makeModel();
    const reference = await fit(uninterrupted, train, { ...base, epochs: 3 });
    expect(stripTimes(longer.history)).toEqual(stripTimes(reference.history));
    expect(readWeights(finished)).toEqual(readWeights(uninterrupted));
    // The extra JSON is carried over when the resumed run passes none.
    expect((await readCheckpoint(checkpointDir)).manifest.extra).toEqual({ version: 1 });
    finished.dispose();
    uninterrupted.dispose();
  });

  it("refuses a checkpoint of another model configuration, naming what differs", async () => {
    const checkpointDir = await trainedDirectory();
    const other = makeModel({ numExperts: 4, seed: 3 });
    const run = fit(other, train, { ...base, checkpointDir, resume: true });
    await expect(run).rejects.toThrow(CheckpointError);
    await expect(run).rejects.toThrow(
      /was written for a different model: options\.numExperts: checkpoint 3, model 4$/,
    );
    await expect(loadCheckpointWeights(other, checkpointDir)).rejects.toThrow(
      "options.numExperts: checkpoint 3, model 4",
    );
    other.dispose();
  });

  it("refuses to resume with other training options or other data, naming what differs", async () => {
    const checkpointDir = await trainedDirectory();
    const model = makeModel();
    await expect(fit(model, train, { ...base, batchSize: 40, checkpointDir, resume: true })).rejects.toThrow(
      /different training options .*: batchSize: checkpoint 20, this run 40$/,
    );
    await expect(
      fit(model, train, { ...base, optimizer: "sgd", weightDecay: 0.1, checkpointDir, resume: true }),
    ).rejects.toThrow(
      /optimizer: checkpoint "adam", this run "sgd"; weightDecay: checkpoint 0, this run 0.1$/,
    );
    await expect(fit(model, makeDataset(120, 99), { ...base, checkpointDir, resume: true })).rejects.toThrow(
      /was trained on different data: checksum: checkpoint "[0-9a-f]{16}", this run "[0-9a-f]{16}"$/,
    );
    model.dispose();
  });

  it("detects corrupted, truncated and foreign checkpoints", async () => {
    const checkpointDir = await trainedDirectory();
    const { path, manifest } = await readCheckpoint(checkpointDir);
    const model = makeModel();
    const resume = () => fit(model, train, { ...base, checkpointDir, resume: true });

    const weightsFile = join(path, "model.bin");
    const original = await readFile(weightsFile);
    const flipped = Buffer.from(original);
    flipped[10] = flipped[10]! ^ 0xff;
    await writeFile(weightsFile, flipped);
    await expect(resume()).rejects.toThrow(CheckpointError);
    await expect(resume()).rejects.toThrow(
      `${weightsFile} does not match its sha256 in the manifest: corrupted checkpoint`,
    );

    await writeFile(weightsFile, original);
    await truncate(weightsFile, original.byteLength - 8);
    await expect(resume()).rejects.toThrow(
      `${weightsFile} holds ${original.byteLength - 8} bytes but the manifest says ${manifest.files.model.bytes}`,
    );
    await writeFile(weightsFile, original);

    const manifestFile = join(path, "manifest.json");
    const manifestText = await readFile(manifestFile, "utf8");
    await writeFile(manifestFile, manifestText.slice(0, 100));
    await expect(resume()).rejects.toThrow(
      `${manifestFile} is not valid JSON (truncated or corrupted checkpoint)`,
    );
    await writeFile(manifestFile, manifestText.replace('"formatVersion":1', '"formatVersion":99'));
    await expect(resume()).rejects.toThrow(
      `${manifestFile} was written with checkpoint formatVersion 99; this @mdrec/trainer reads formatVersion 1`,
    );
    await writeFile(manifestFile, manifestText);

    const pointer = join(checkpointDir, CHECKPOINT_POINTER_FILE);
    await writeFile(pointer, "{ not json");
    await expect(resume()).rejects.toThrow(`${pointer} is not valid JSON (corrupted checkpoint)`);
    await writeFile(pointer, JSON.stringify({ format: "something-else" }));
    await expect(resume()).rejects.toThrow(
      `${pointer} is not an mdrec checkpoint (format "something-else", expected "mdrec-checkpoint")`,
    );
    await expect(readCheckpoint(join(checkpointDir, "nowhere"))).rejects.toThrow(
      `${join(checkpointDir, "nowhere")} holds no checkpoint (checkpoint.json not found)`,
    );
    model.dispose();
  });

  it("stores the best weights; loadCheckpointWeights loads the last or the best", async () => {
    const checkpointDir = await directory();
    const model = makeModel();
    await fit(model, train, {
      ...base,
      epochs: 3,
      checkpointDir,
      earlyStopping: { metric: "logloss", patience: 5, minDelta: 10 }, // best stays epoch 0
    });
    const { path } = await readCheckpoint(checkpointDir);
    expect((await readdir(path)).sort()).toEqual(["best.bin", "manifest.json", "model.bin", "optimizer.bin"]);
    const best = makeModel({ seed: 100 });
    await loadCheckpointWeights(best, checkpointDir, { which: "best" });
    expect(readWeights(best)).toEqual(readWeights(model)); // fit restored the best weights
    const last = makeModel({ seed: 100 });
    const info = await loadCheckpointWeights(last, checkpointDir);
    expect(info.manifest.step).toBe(18);
    expect(readWeights(last)).not.toEqual(readWeights(model));
    await expect(loadCheckpointWeights(last, checkpointDir, { which: "worst" as never })).rejects.toThrow(
      ConfigError,
    );
    await expect(loadCheckpointWeights(last, await trainedDirectory(), { which: "best" })).rejects.toThrow(
      "holds no best weights (the run did not use restoreBestWeights or has not evaluated yet)",
    );
    for (const created of [model, best, last]) created.dispose();
  });

  it("resuming a run that early stopping ended trains nothing and restores its best weights", async () => {
    const checkpointDir = await directory();
    const options: FitOptions = {
      ...base,
      epochs: 10,
      checkpointDir,
      earlyStopping: { metric: "logloss", patience: 2, minDelta: 10 }, // stops after epoch 2
    };
    const model = makeModel();
    const stopped = await fit(model, train, options);
    expect(stopped.stoppedEarly).toBe(true);
    const again = makeModel({ seed: 100 });
    let steps = 0;
    const resumed = await fit(again, train, {
      ...options,
      resume: true,
      callbacks: { onStep: () => void steps++ },
    });
    expect(steps).toBe(0);
    expect(resumed).toMatchObject({ stoppedEarly: true, restoredBestWeights: true, steps: 18, bestEpoch: 0 });
    expect(stripTimes(resumed.history)).toEqual(stripTimes(stopped.history));
    expect(readWeights(again)).toEqual(readWeights(model));
    model.dispose();
    again.dispose();
  });

  it("refuses a second run on a directory in use (lock), then accepts it once the first ends", async () => {
    const checkpointDir = await directory();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const first = makeModel();
    const firstRun = fit(first, train, {
      ...base,
      checkpointDir,
      callbacks: {
        onStep: async (event) => {
          if (event.step === 1) {
            started();
            await gate;
          }
        },
      },
    });
    await running;
    const second = makeModel();
    const secondRun = fit(second, train, { ...base, checkpointDir });
    await expect(secondRun).rejects.toThrow(CheckpointError);
    await expect(secondRun).rejects.toThrow(`${checkpointDir} is in use by another run (pid ${process.pid}`);
    release();
    await firstRun;
    expect(await readdir(checkpointDir)).not.toContain(LOCK_FILE);
    const resumed = await fit(second, train, { ...base, checkpointDir, resume: true });
    expect(resumed.resumedFromStep).toBe(12);
    first.dispose();
    second.dispose();
  });
});
