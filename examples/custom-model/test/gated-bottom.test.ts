import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-wasm";
import { type Batch, ConfigError, disposeBatch, type FeatureSpec } from "@mdrec/core";
import { generateSyntheticDataset, iterateBatches, syntheticPresets } from "@mdrec/data-loaders";
import {
  createModel,
  getModelInfo,
  listModels,
  loadModel,
  type MultiDomainModel,
  modelPreset,
} from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import { GATED_BOTTOM, type GatedBottomOptions } from "../src/gated-bottom.js";

const data = generateSyntheticDataset({ ...syntheticPresets.tiny, numRows: 400, seed: 3 });
const base = { features: data.features, numDomains: data.numDomains };

function tinyModel(extra: Partial<GatedBottomOptions> = {}): MultiDomainModel {
  return createModel(GATED_BOTTOM, { ...modelPreset(GATED_BOTTOM, "tiny"), ...base, seed: 5, ...extra });
}

function firstBatch(rows = 32): Batch {
  return iterateBatches(data, { batchSize: rows }).next().value as Batch;
}

/** Predictions of `model` on `batch` as a plain array. */
function predictions(model: MultiDomainModel, batch: Batch): number[] {
  const probabilities = model.predict(batch);
  const values = Array.from(probabilities.dataSync());
  probabilities.dispose();
  return values;
}

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  for (let index = 0; index < expected.length; index++) {
    expect(Math.abs(actual[index]! - expected[index]!), `entry ${index}`).toBeLessThanOrEqual(tolerance);
  }
}

const directories: string[] = [];
afterAll(async () => {
  for (const directory of directories) await rm(directory, { recursive: true, force: true });
});

describe("gated-bottom, a model authored from the blocks", () => {
  it("is registered on import with a description and a tiny preset", () => {
    expect(listModels()).toContain(GATED_BOTTOM);
    expect(getModelInfo(GATED_BOTTOM).description).toMatch(/^Domain-gated shared bottom/);
    expect(modelPreset(GATED_BOTTOM, "tiny")).toMatchObject({ numExperts: 4, k: 1 });
  });

  it("computes its equation: golden logits and parameter count on hand-set weights", () => {
    const features: FeatureSpec[] = [{ kind: "numeric", name: "price" }]; // x = price
    const model = createModel(GATED_BOTTOM, {
      features,
      numDomains: 2,
      bottomUnits: [1],
      numExperts: 2,
      k: 1,
      expertUnits: [1],
      towerUnits: [],
      activation: "linear",
      loadBalance: 0,
      seed: 1,
    });
    // bottom 1+1, gate 1x(2 domains x 2 experts) + noise 1x2, experts 2x(1+1), towers 2x(1+1)
    expect(model.summary()).toEqual({
      name: GATED_BOTTOM,
      parameters: 16,
      expertsPerRow: 1,
      totalExperts: 2,
    });
    const set = (suffix: string, values: number[]) => {
      const weight = model.trainableWeights().find((candidate) => candidate.name.endsWith(suffix))!;
      weight.write(tf.tensor(values, weight.shape as number[]));
    };
    set("bottom/kernel_0", [2]); // h = 2 price
    set("bottom/bias_0", [0]);
    set("gate/gate_kernel", [1, -1, -1, 1]); // domain 0 prefers expert 0, domain 1 expert 1 (for h > 0)
    set("experts/kernel_0", [3, -1]); // E0(h) = 3h, E1(h) = -h
    set("experts/bias_0", [0, 0]);
    set("towers/kernel_0", [1, 0.5]); // Tower_0(f) = f, Tower_1(f) = 0.5 f + 1
    set("towers/bias_0", [0, 1]);
    const batch: Batch = {
      features: { price: tf.tensor1d([1, 2, 0.5]) },
      domainIds: tf.tensor1d([0, 1, 1], "int32"),
      labels: tf.zeros([3, 1]),
    };
    const output = model.call(batch, { training: false });
    // domain 0: 3 * (2 * 1) = 6; domain 1: 0.5 * -(2 * 2) + 1 = -1 and 0.5 * -(2 * 0.5) + 1 = 0.5
    expectClose(output.logits.dataSync(), [6, -1, 0.5]);
    expect(Array.from(output.routing[0]!.indices.dataSync())).toEqual([0, 1, 1]);
    expectClose(output.routing[0]!.weights.dataSync(), [1, 1, 1]);
    expect(output.auxLosses).toEqual({});
    tf.dispose(output as unknown as tf.TensorContainer);
    disposeBatch(batch);
    model.dispose();
  });

  it("matches finite differences in its gradients (k = N and tanh: a smooth loss)", () => {
    const model = tinyModel({ k: 4, activation: "tanh" });
    const batch = firstBatch(16);
    const loss = () => tf.mean(model.call(batch, { training: false }).logits) as tf.Scalar;
    const variables = model
      .trainableWeights()
      .filter((weight) =>
        /bottom\/kernel_0|gate\/gate_kernel|experts\/kernel_0|towers\/kernel_0/.test(weight.name),
      )
      .map((weight) => weight.read() as tf.Variable);
    expect(variables).toHaveLength(4);
    const { value, grads } = tf.variableGrads(loss, variables);
    value.dispose();
    const epsilon = 1e-2;
    for (const variable of variables) {
      const original = variable.dataSync().slice();
      const analytic = Array.from(grads[variable.name]!.dataSync());
      // The entry with the largest gradient, so the check cannot pass on zeros.
      const entry = analytic.reduce(
        (best, gradient, index) => (Math.abs(gradient) > Math.abs(analytic[best]!) ? index : best),
        0,
      );
      const shifted = (delta: number) => {
        const values = original.slice();
        values[entry]! += delta;
        variable.assign(tf.tensor(values, variable.shape));
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      const numeric = (shifted(epsilon) - shifted(-epsilon)) / (2 * epsilon);
      variable.assign(tf.tensor(original, variable.shape));
      expect(Math.abs(analytic[entry]!)).toBeGreaterThan(1e-4);
      expect(Math.abs(analytic[entry]! - numeric), variable.name).toBeLessThanOrEqual(
        1e-2 * Math.max(1, Math.abs(numeric)),
      );
    }
    tf.dispose(grads);
    disposeBatch(batch);
    model.dispose();
  });

  it("gives the same logits with sparse and dense dispatch", () => {
    const batch = firstBatch();
    const sparse = tinyModel({ k: 2 });
    const dense = tinyModel({ k: 2, dispatch: "dense" });
    expectClose(predictions(sparse, batch), predictions(dense, batch));
    expect(sparse.summary().expertsPerRow).toBe(2);
    expect(dense.summary().expertsPerRow).toBe(4);
    sparse.dispose();
    dense.dispose();
    disposeBatch(batch);
  });

  it("round-trips its config (createModel(config.name, config.options)) and its weights (save/loadModel)", async () => {
    const batch = firstBatch();
    const model = tinyModel();
    const expected = predictions(model, batch);
    const config = model.getConfig();
    expect(config.options).toMatchObject({
      bottomUnits: [16],
      numExperts: 4,
      k: 1,
      dispatch: "sparse",
      loadBalance: 0.01,
    });
    const rebuilt = createModel(config.name, config.options);
    expect(predictions(rebuilt, batch)).toEqual(expected); // same seed -> same initial weights
    const directory = await mkdtemp(join(tmpdir(), "mdrec-gated-bottom-"));
    directories.push(directory);
    await model.save(directory);
    const loaded = await loadModel(directory);
    expect(loaded.name).toBe(GATED_BOTTOM);
    expect(predictions(loaded, batch)).toEqual(expected);
    for (const each of [model, rebuilt, loaded]) each.dispose();
    disposeBatch(batch);
  });

  it("gives identical outputs for equal seeds and different ones for another seed", () => {
    const batch = firstBatch();
    const first = tinyModel();
    const second = tinyModel();
    const other = tinyModel({ seed: 6 });
    expect(predictions(second, batch)).toEqual(predictions(first, batch));
    expect(predictions(other, batch)).not.toEqual(predictions(first, batch));
    for (const each of [first, second, other]) each.dispose();
    disposeBatch(batch);
  });

  it("leaks no tensors per call after warm-up, and dispose frees its weights", () => {
    const before = tf.memory().numTensors;
    const batch = firstBatch();
    const model = tinyModel();
    tf.tidy(() => {
      model.call(batch, { training: true });
    });
    const warm = tf.memory().numTensors;
    tf.tidy(() => {
      const { logits, auxLosses } = model.call(batch, { training: true });
      expect(Object.keys(auxLosses)).toEqual(["load"]);
      logits.dataSync();
    });
    expect(tf.memory().numTensors).toBe(warm);
    model.dispose();
    disposeBatch(batch);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("refuses bad options with the key, the value received and the nearest valid key", () => {
    const attempt = (extra: Record<string, unknown>) => () =>
      createModel(GATED_BOTTOM, { ...base, ...extra });
    expect(attempt({ numExperts: 4, k: 5 })).toThrow(
      new ConfigError("gated-bottom options.k must be an integer in [1, numExperts=4], received 5"),
    );
    expect(attempt({ numExpert: 4 })).toThrow(
      'Unknown key "numExpert" in gated-bottom options. Did you mean "numExperts"?',
    );
    expect(attempt({ dispatch: "fast" })).toThrow(
      'gated-bottom options.dispatch must be one of "sparse", "dense", received "fast"',
    );
    expect(attempt({ loadBalance: -1 })).toThrow(
      "gated-bottom options.loadBalance must be a finite number >= 0, received -1",
    );
    expect(attempt({ bottomUnits: [] })).toThrow(
      "gated-bottom options.bottomUnits must be a non-empty array of positive integers, received []",
    );
    expect(attempt({ numExperts: 4, k: 5 })).toThrow(ConfigError);
  });

  it("gives the same predictions and gradients on wasm as on cpu", async () => {
    const run = () => {
      const model = tinyModel({ k: 2 });
      const batch = firstBatch();
      const probabilities = predictions(model, batch);
      const variables = model.trainableWeights().map((weight) => weight.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => tf.mean(model.call(batch, { training: false }).logits) as tf.Scalar,
        variables,
      );
      // Every weight but the gate's noise kernel, which only acts in training.
      const trained = variables.filter((variable) => grads[variable.name] !== undefined);
      expect(trained).toHaveLength(variables.length - 1);
      const gradients = trained.flatMap((variable) => Array.from(grads[variable.name]!.dataSync()));
      tf.dispose([value, ...Object.values(grads)]);
      disposeBatch(batch);
      model.dispose();
      return { probabilities, gradients };
    };
    const onCpu = run();
    await tf.setBackend("wasm");
    try {
      const onWasm = run();
      expectClose(onWasm.probabilities, onCpu.probabilities);
      expectClose(onWasm.gradients, onCpu.gradients);
    } finally {
      await tf.setBackend("cpu");
    }
  });
});
