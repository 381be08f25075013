import { readdir } from "node:fs/promises";
import { TrainingError } from "@mdrec/core";
import {
  type EpochEndEvent,
  type EvaluateEvent,
  evaluate,
  fit,
  learningRateAt,
  readCheckpoint,
  resolveSchedule,
  type StepEvent,
} from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import {
  makeDataset,
  makeModel,
  readWeights,
  removeDirectory,
  stripTimes,
  temporaryDirectory,
} from "./helpers.js";

const train = makeDataset(240, 1); // 12 batches of 20
const validation = makeDataset(120, 2);
const directories: string[] = [];

async function directory(): Promise<string> {
  const created = await temporaryDirectory();
  directories.push(created);
  return created;
}

afterAll(async () => {
  for (const created of directories) await removeDirectory(created);
});

describe("fit", () => {
  it("lowers the loss, logs every loss part per epoch and beats chance on validation", async () => {
    const model = makeModel();
    const result = await fit(model, train, { validation, epochs: 3, batchSize: 20, learningRate: 0.05 });
    expect(result.history.map((epoch) => [epoch.epoch, epoch.steps, epoch.examples])).toEqual([
      [0, 12, 240],
      [1, 12, 240],
      [2, 12, 240],
    ]);
    const [first, , last] = result.history;
    expect(Object.keys(first!.losses)).toEqual(["total", "bce", "importance"]);
    for (const epoch of result.history) {
      expect(epoch.losses.total).toBeCloseTo(epoch.losses.bce! + epoch.losses.importance!, 6);
      expect(epoch.seconds).toBeGreaterThan(0);
      expect(epoch.examplesPerSecond).toBeGreaterThan(0);
      expect(epoch.learningRate).toBe(0.05);
    }
    expect(last!.losses.bce).toBeLessThan(first!.losses.bce! - 0.05);
    expect(last!.validation!.overall.auc).toBeGreaterThan(0.7);
    expect(result.steps).toBe(36);
    expect(result.evaluations.map((record) => [record.epoch, record.step])).toEqual([
      [0, 12],
      [1, 24],
      [2, 36],
    ]);
    expect(result.bestMetric).toBe(Math.max(...result.evaluations.map((record) => record.monitored)));
    expect(result.stoppedEarly).toBe(false);
    expect(result.restoredBestWeights).toBe(false);
    expect(result.resumedFromStep).toBeUndefined();
    expect(result.trainExamplesPerSecond).toBeGreaterThan(0);
    model.dispose();
  });

  it("reports progress: a step event per logEvery steps with interval means, epoch ends and evaluations", async () => {
    const perStep: StepEvent[] = [];
    const grouped: StepEvent[] = [];
    const epochEnds: EpochEndEvent[] = [];
    const evaluations: EvaluateEvent[] = [];
    const options = { validation, epochs: 2, batchSize: 20, learningRate: 0.05, seed: 3 };
    const modelA = makeModel();
    await fit(modelA, train, {
      ...options,
      callbacks: {
        onStep: (event) => {
          perStep.push(event);
        },
        onEpochEnd: (event) => {
          epochEnds.push(event);
        },
        onEvaluate: (event) => {
          evaluations.push(event);
        },
      },
    });
    const modelB = makeModel();
    await fit(modelB, train, {
      ...options,
      logEvery: 5,
      callbacks: { onStep: (event) => void grouped.push(event) },
    });

    expect(perStep.map((event) => event.step)).toEqual(Array.from({ length: 24 }, (_, index) => index + 1));
    expect(perStep.map((event) => event.batchInEpoch)).toEqual([...Array(12).keys(), ...Array(12).keys()]);
    expect(perStep[13]).toMatchObject({
      epoch: 1,
      batchesPerEpoch: 12,
      plannedSteps: 24,
      learningRate: 0.05,
    });
    for (const event of perStep) {
      expect(Object.keys(event.losses)).toEqual(["total", "bce", "importance"]);
      expect(event.examplesPerSecond).toBeGreaterThan(0);
      expect(event.elapsedSeconds).toBeGreaterThan(0);
      expect(event.etaSeconds).toBeGreaterThanOrEqual(0);
    }
    expect(perStep[23]!.etaSeconds).toBe(0);
    // logEvery 5: events at steps 5 and 10, the epoch's last batch (12), then 17, 22, 24.
    expect(grouped.map((event) => event.step)).toEqual([5, 10, 12, 17, 22, 24]);
    const mean = (from: number, to: number) =>
      perStep.slice(from, to).reduce((sum, event) => sum + event.losses.bce!, 0) / (to - from);
    expect(grouped[0]!.losses.bce).toBeCloseTo(mean(0, 5), 6);
    expect(grouped[2]!.losses.bce).toBeCloseTo(mean(10, 12), 6);

    expect(epochEnds.map((event) => event.epoch)).toEqual([0, 1]);
    for (const event of epochEnds) {
      expect(event.trainLoss).toBe(event.summary.losses.total);
      expect(event.validation).toBe(event.summary.validation);
      expect(event.best?.metric).toBe("auc");
      expect(event.stopped).toBeUndefined();
    }
    expect(evaluations.map((event) => [event.epoch, event.step])).toEqual([
      [0, 12],
      [1, 24],
    ]);
    expect(evaluations[0]!.improved).toBe(true);
    expect(evaluations[0]!.monitored).toBe(evaluations[0]!.result.overall.auc);
    modelA.dispose();
    modelB.dispose();
  });

  it("is deterministic: the same seed gives identical history and weights, another seed differs", async () => {
    const run = async (seed: number) => {
      const model = makeModel({ dropout: 0.3 });
      const result = await fit(model, train, {
        validation,
        epochs: 2,
        batchSize: 20,
        seed,
        learningRate: 0.05,
      });
      const weights = readWeights(model);
      model.dispose();
      return { history: stripTimes(result.history), weights };
    };
    const first = await run(5);
    const second = await run(5);
    const other = await run(6);
    expect(second.history).toEqual(first.history);
    expect(second.weights).toEqual(first.weights);
    expect(other.weights).not.toEqual(first.weights);
  });

  it("stops early after `patience` evaluations without improvement and restores the best weights", async () => {
    const model = makeModel();
    const ends: EpochEndEvent[] = [];
    const result = await fit(model, train, {
      validation,
      epochs: 10,
      batchSize: 20,
      learningRate: 0.05,
      // A minDelta no logloss change can reach: only the first evaluation counts as improving.
      earlyStopping: { metric: "logloss", patience: 2, minDelta: 10 },
      callbacks: { onEpochEnd: (event) => void ends.push(event) },
    });
    expect(result.history).toHaveLength(3);
    expect(result.stoppedEarly).toBe(true);
    expect(result.bestEpoch).toBe(0);
    expect(result.bestStep).toBe(12);
    expect(result.bestMetric).toBe(result.history[0]!.validation!.overall.logloss);
    expect(result.restoredBestWeights).toBe(true);
    expect(ends.map((event) => event.stopped)).toEqual([undefined, undefined, true]);
    expect(await evaluate(model, validation, { batchSize: 20 })).toEqual(result.history[0]!.validation);
    model.dispose();
  });

  it("keeps the last weights when restoreBestWeights is false", async () => {
    const model = makeModel();
    const result = await fit(model, train, {
      validation,
      epochs: 10,
      batchSize: 20,
      learningRate: 0.05,
      earlyStopping: { metric: "logloss", patience: 1, minDelta: 10 },
      restoreBestWeights: false,
    });
    expect(result.history).toHaveLength(2);
    expect(result.restoredBestWeights).toBe(false);
    expect(await evaluate(model, validation, { batchSize: 20 })).toEqual(result.history[1]!.validation);
    model.dispose();
  });

  it("stops at maxSteps inside an epoch with a partial, evaluated summary", async () => {
    const model = makeModel();
    const result = await fit(model, train, { validation, epochs: 3, batchSize: 20, maxSteps: 17 });
    expect(result.steps).toBe(17);
    expect(result.history.map((epoch) => [epoch.epoch, epoch.steps, epoch.examples, epoch.partial])).toEqual([
      [0, 12, 240, undefined],
      [1, 5, 100, true],
    ]);
    expect(result.history[1]!.validation).toBeDefined();
    expect(result.evaluations.map((record) => record.step)).toEqual([12, 17]);
    model.dispose();
  });

  it("evaluates every N steps when evaluateEvery is a number", async () => {
    const model = makeModel();
    const result = await fit(model, train, { validation, epochs: 2, batchSize: 20, evaluateEvery: 5 });
    expect(result.evaluations.map((record) => [record.epoch, record.step])).toEqual([
      [0, 5],
      [0, 10],
      [1, 15],
      [1, 20],
    ]);
    expect(result.history.map((epoch) => epoch.validation)).toEqual([undefined, undefined]);
    model.dispose();
  });

  it("follows the learning-rate schedule step by step", async () => {
    const schedule = { kind: "cosine", warmupSteps: 4 } as const;
    const rates: number[] = [];
    const model = makeModel();
    await fit(model, train, {
      epochs: 2,
      batchSize: 20,
      learningRate: 0.1,
      schedule,
      callbacks: { onStep: (event) => void rates.push(event.learningRate) },
    });
    const resolved = resolveSchedule(schedule, 24);
    expect(rates).toEqual(Array.from({ length: 24 }, (_, step) => learningRateAt(resolved, 0.1, step)));
    expect(rates[0]).toBeCloseTo(0.025, 12);
    expect(rates[3]).toBeCloseTo(0.1, 12);
    model.dispose();
  });

  it("adds weightDecay * w to every gradient (one SGD step, golden difference)", async () => {
    const step = async (weightDecay: number) => {
      const model = makeModel();
      const before = readWeights(model);
      await fit(model, train, {
        epochs: 1,
        batchSize: 240,
        optimizer: "sgd",
        learningRate: 0.1,
        weightDecay,
      });
      const after = readWeights(model);
      model.dispose();
      return { before, after };
    };
    const plain = await step(0);
    const decayed = await step(0.5);
    const trainable = plain.before.length - 1; // the last weight is the non-trainable moving mean
    for (let index = 0; index < trainable; index++) {
      plain.before[index]!.forEach((initial, position) => {
        // w1(decay) - w1(plain) = -learningRate * weightDecay * w0
        expect(decayed.after[index]![position]! - plain.after[index]![position]!).toBeCloseTo(
          -0.1 * 0.5 * initial,
          5,
        );
      });
    }
  });

  it("clips the global gradient norm", async () => {
    const updateNorm = async (gradientClip?: number) => {
      const model = makeModel();
      const before = readWeights(model).flat();
      await fit(model, train, { epochs: 1, batchSize: 240, optimizer: "sgd", learningRate: 1, gradientClip });
      const after = readWeights(model);
      model.dispose();
      // The update of the trainable weights is -learningRate * clipped gradient.
      const trainable = after.slice(0, -1).flat();
      return Math.sqrt(trainable.reduce((sum, value, index) => sum + (value - before[index]!) ** 2, 0));
    };
    const unclipped = await updateNorm(undefined);
    expect(unclipped).toBeGreaterThan(0.01);
    expect(await updateNorm(0.01)).toBeCloseTo(0.01, 5);
    expect(await updateNorm(unclipped * 2)).toBeCloseTo(unclipped, 6);
  });

  it("scales the task loss by taskWeights", async () => {
    const twoTasks = makeDataset(60, 4, { numTasks: 2 });
    const firstLoss = async (taskWeights?: number[]) => {
      const model = makeModel({ numTasks: 2 });
      let loss = Number.NaN;
      await fit(model, twoTasks, {
        epochs: 1,
        batchSize: 60,
        taskWeights,
        callbacks: {
          onStep: (event) => {
            loss = event.losses.bce!;
          },
        },
      });
      model.dispose();
      return loss;
    };
    expect(await firstLoss([2, 2])).toBeCloseTo(2 * (await firstLoss()), 5);
    expect((await firstLoss([1, 0])) + (await firstLoss([0, 1]))).toBeCloseTo(await firstLoss(), 5);
  });

  it.each(["adam", "adagrad", "sgd", "rmsprop"] as const)("trains with %s", async (optimizer) => {
    const model = makeModel();
    const result = await fit(model, train, { epochs: 2, batchSize: 20, optimizer, learningRate: 0.05 });
    expect(result.history[1]!.losses.bce).toBeLessThan(result.history[0]!.losses.bce!);
    model.dispose();
  });

  it("leaks no tensors (optimizer slots, best-weight copies and batches are freed)", async () => {
    const model = makeModel({ dropout: 0.1 });
    const checkpointDir = await directory();
    await fit(model, train, { epochs: 1, batchSize: 20, maxSteps: 2 }); // warm-up: kernels and caches
    const before = tf.memory().numTensors;
    await fit(model, train, {
      validation,
      epochs: 2,
      batchSize: 20,
      earlyStopping: { metric: "auc" },
      checkpointDir,
      checkpointEvery: 5,
      gradientClip: 1,
      weightDecay: 1e-4,
    });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it("stops on a NaN loss naming step, epoch and batch, and keeps the last good checkpoint", async () => {
    const model = makeModel();
    const checkpointDir = await directory();
    const failure = fit(model, train, {
      epochs: 2,
      batchSize: 20,
      checkpointDir,
      checkpointEvery: 3,
      callbacks: {
        onStep: (event) => {
          // Poison one weight after step 16: step 17 (epoch 1, batch 4) computes a NaN loss.
          if (event.step === 16) {
            const kernel = model.trainableWeights().find((weight) => weight.name.includes("kernel"))!;
            kernel.write(tf.fill(kernel.shape as number[], Number.NaN));
          }
        },
      },
    });
    await expect(failure).rejects.toThrow(TrainingError);
    await expect(failure).rejects.toThrow(
      /Loss is not finite at step 17 \(epoch 1, batch 4 of 12\): total=NaN, bce=NaN, importance=.*the last good checkpoint \(step 15, .*\) is intact/,
    );
    const { manifest } = await readCheckpoint(checkpointDir);
    expect(manifest.step).toBe(15);
    expect(manifest.history).toHaveLength(1);
    expect(await readdir(checkpointDir)).not.toContain("mdrec.lock");
    model.dispose();
  });

  it("resumes in-process from a mid-epoch checkpoint (maxSteps stop) exactly like an uninterrupted run", async () => {
    const options = {
      validation,
      epochs: 3,
      batchSize: 20,
      learningRate: 0.05,
      schedule: { kind: "exponential", decayRate: 0.9, decaySteps: 4 } as const,
      restoreBestWeights: true,
      seed: 13,
    };
    const checkpointDir = await directory();
    const interrupted = makeModel({ dropout: 0.2 });
    // Step 18: Adam's running beta2 power differs in the last bit from tfjs's pow(beta2, 19),
    // so the resume must restore it exactly.
    const stopped = await fit(interrupted, train, { ...options, checkpointDir, maxSteps: 18 });
    expect(stopped.history.at(-1)!.partial).toBe(true);
    interrupted.dispose();

    const resumedModel = makeModel({ dropout: 0.2, seed: 999 }); // the seed only sets initial weights
    const resumed = await fit(resumedModel, train, { ...options, checkpointDir, resume: true });
    const uninterruptedModel = makeModel({ dropout: 0.2 });
    const uninterrupted = await fit(uninterruptedModel, train, options);

    expect(resumed.resumedFromStep).toBe(18);
    expect(stripTimes(resumed.history)).toEqual(stripTimes(uninterrupted.history));
    expect(resumed.evaluations).toEqual(uninterrupted.evaluations);
    expect(resumed.restoredBestWeights).toBe(true);
    expect(readWeights(resumedModel)).toEqual(readWeights(uninterruptedModel));
    resumedModel.dispose();
    uninterruptedModel.dispose();
  });

  it("rejects an auxiliary loss named like the trainer's own losses", async () => {
    const inner = makeModel();
    const clashing = Object.assign(Object.create(inner) as typeof inner, {
      call: (batch: Parameters<typeof inner.call>[0], options: { training: boolean }) => {
        const output = inner.call(batch, options);
        return { ...output, auxLosses: { total: output.auxLosses.importance! } };
      },
    });
    await expect(fit(clashing, train, { epochs: 1, batchSize: 20 })).rejects.toThrow(
      'model "tiny" reports an auxiliary loss named "total", which the trainer uses for its own loss; rename it',
    );
    inner.dispose();
  });
});
