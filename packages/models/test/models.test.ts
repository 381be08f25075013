// One parametrised suite over the registry: every registered model (CESAA too, once its package
// registers it) must train, reproduce, not leak, and round-trip.
import { DataError, disposeBatch, setGlobalSeed } from "@mdrec/core";
import { takeRows } from "@mdrec/data-loaders";
import { createModel, listModels, loadModel, type MultiDomainModel, modelPreset } from "@mdrec/models";
import { expectClose, onBackend, temporaryDirectory } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import {
  datasetAuc,
  firstBatch,
  predictDataset,
  syntheticSplits,
  trainModel,
  trainStep,
} from "./training.js";

// Held-out AUC every model must beat after one epoch (50 Adam steps, lr 5e-3, batch 128) on 6.4k
// rows with its tiny preset. A constant scores 0.5 and the Bayes-optimal scorer about 0.83 on this
// data; the four baselines land between 0.65 and 0.68.
const AUC_THRESHOLD = 0.62;

const { data, train, test } = syntheticSplits(7, 8000);
const smallTrain = takeRows(
  train,
  Int32Array.from({ length: 1024 }, (_, index) => index),
);
const options = { features: data.features, numDomains: data.numDomains, embeddingDim: 8 };

function create(name: string, seed = 3, extra: Record<string, unknown> = {}): MultiDomainModel {
  return createModel(name, { ...modelPreset(name, "tiny"), ...options, seed, ...extra });
}

// Packages that register models on import (and depend on @mdrec/models, so they cannot be a
// dependency here): imported by name at run time so the suite covers their models too.
const REGISTERING_PACKAGES = ["@mdrec/cesaa"];
for (const name of REGISTERING_PACKAGES) await import(/* @vite-ignore */ name);

const names = listModels();

describe("registry coverage", () => {
  it("registers the four baselines and CESAA", () => {
    expect(names).toEqual(expect.arrayContaining(["shared-bottom", "mmoe", "ple", "star", "cesaa"]));
  });
});

describe.each(names)("model %s", (name) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const step of cleanup) await step();
  });

  it(`trains with a seed to held-out AUC > ${AUC_THRESHOLD}`, () => {
    setGlobalSeed(11);
    const model = create(name);
    const before = datasetAuc(model, test);
    trainModel(model, train, { epochs: 1, batchSize: 128, learningRate: 5e-3, seed: 5 });
    const after = datasetAuc(model, test);
    expect(after).toBeGreaterThan(AUC_THRESHOLD);
    expect(after).toBeGreaterThan(before);
    model.dispose();
  });

  it("is bit-for-bit reproducible on cpu for equal seeds", () => {
    const runOnce = () => {
      setGlobalSeed(21);
      const model = create(name, 9);
      trainModel(model, smallTrain, { epochs: 1, seed: 2 });
      const predictions = predictDataset(model, test);
      model.dispose();
      return predictions;
    };
    const first = runOnce();
    expect(runOnce()).toEqual(first);
    setGlobalSeed(21);
    const other = create(name, 10);
    expect(predictDataset(other, test)).not.toEqual(first);
    other.dispose();
  });

  it("leaks no tensors per training step after warm-up, and dispose frees every tensor", () => {
    const start = tf.memory().numTensors;
    const model = create(name);
    const optimizer = tf.train.adam(3e-3);
    const batch = firstBatch(train, 64);
    trainStep(model, optimizer, batch); // creates Adam's slot variables
    const before = tf.memory().numTensors;
    trainStep(model, optimizer, batch);
    tf.tidy(() => {
      model.call(batch, { training: false });
      model.predict(batch);
    });
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("round-trips getConfig -> createModel and save -> loadModel with identical predictions", async () => {
    const model = create(name);
    const config = model.getConfig();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    expect(config.name).toBe(name);
    const rebuilt = createModel(config.name, config.options);
    expect(rebuilt.getConfig()).toEqual(config);
    expect(predictDataset(rebuilt, test)).toEqual(predictDataset(model, test));
    rebuilt.dispose();
    trainModel(model, smallTrain, { epochs: 1 });
    const trained = predictDataset(model, test);
    const directory = await temporaryDirectory();
    cleanup.push(directory.cleanup);
    await model.save(directory.path);
    const loaded = await loadModel(directory.path);
    expect(loaded.getConfig()).toEqual(model.getConfig());
    expect(predictDataset(loaded, test)).toEqual(trained);
    expect(loaded.summary()).toEqual(model.summary());
    loaded.dispose();
    model.dispose();
  });

  it("returns logits [B, numTasks] and trains with two tasks", () => {
    const model = create(name, 4, { numTasks: 2 });
    const batch = firstBatch(train, 32);
    const twoTasks = {
      ...batch,
      labels: tf.concat([batch.labels, tf.sub(1, batch.labels)], 1) as tf.Tensor2D,
    };
    const output = model.call(twoTasks, { training: false });
    expect(output.logits.shape).toEqual([32, 2]);
    tf.dispose(output as unknown as tf.TensorContainer);
    const optimizer = tf.train.adam(1e-2);
    const losses = Array.from({ length: 5 }, () => trainStep(model, optimizer, twoTasks));
    expect(losses[4]).toBeLessThan(losses[0]!);
    optimizer.dispose();
    twoTasks.labels.dispose();
    disposeBatch(batch);
    model.dispose();
  });

  it("predicts the same on wasm as on cpu within 1e-5", async () => {
    const model = create(name);
    const batch = firstBatch(train, 64);
    const predict = () => {
      const probabilities = model.predict(batch);
      const result = Array.from(probabilities.dataSync());
      probabilities.dispose();
      return result;
    };
    const cpu = predict();
    const wasm = await onBackend("wasm", predict);
    expectClose(wasm, cpu, 1e-5);
    disposeBatch(batch);
    model.dispose();
  });

  it("reports its parameter count and refuses a batch with a domain id out of range", () => {
    const model = create(name);
    const summary = model.summary();
    const counted = model.trainableWeights().reduce((sum, weight) => sum + weight.read().size, 0);
    expect(summary).toMatchObject({ name, parameters: counted });
    const batch = firstBatch(train, 8);
    const badDomains = tf.tensor1d([0, 1, 2, 3, 0, 1, 9, 0], "int32");
    expect(() => model.call({ ...batch, domainIds: badDomains }, { training: true })).toThrow(
      new DataError(`batch.domainIds[6] must be in [0, numDomains=4), received 9`),
    );
    badDomains.dispose();
    disposeBatch(batch);
    model.dispose();
  });
});
