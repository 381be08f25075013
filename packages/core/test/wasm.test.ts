// Every core block must give the same outputs and gradients on wasm as on cpu (within 1e-5).
import "@tensorflow/tfjs-backend-wasm";
import {
  DataError,
  FeatureEmbedding,
  type FeatureSpec,
  gatherRows,
  Mlp,
  type MlpArgs,
  scatterAddRows,
  setGlobalSeed,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { autodiff, maxAbsDifference, weightValues } from "./helpers.js";

const TOLERANCE = 1e-5;
const BACKENDS = ["cpu", "wasm"] as const;

/** Runs `compute` on cpu and on wasm and returns both results. */
async function onBothBackends<T>(compute: () => T): Promise<[T, T]> {
  const results: T[] = [];
  for (const backend of BACKENDS) {
    await tf.setBackend(backend);
    await tf.ready();
    results.push(compute());
  }
  await tf.setBackend("cpu");
  return results as [T, T];
}

function expectClose(cpu: ArrayLike<number>, wasm: ArrayLike<number>, what: string): void {
  expect(maxAbsDifference(cpu, wasm), what).toBeLessThan(TOLERANCE);
}

function expectSameGradients(cpu: Map<string, Float32Array>, wasm: Map<string, Float32Array>): void {
  expect([...wasm.keys()]).toEqual([...cpu.keys()]);
  for (const [name, gradient] of cpu) {
    // A comparison of all-zero gradients would prove nothing.
    expect(
      gradient.some((value) => value !== 0),
      `gradient of ${name} is all zeros`,
    ).toBe(true);
    expectClose(gradient, wasm.get(name)!, `gradient of ${name}`);
  }
}

describe("wasm matches cpu", () => {
  beforeAll(async () => {
    await tf.setBackend("wasm");
    await tf.ready();
    await tf.setBackend("cpu");
  });
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  it("gatherRows: values and gradients, repeated ids accumulating", async () => {
    const table = tf.variable(tf.randomNormal([6, 4], 0, 1, "float32", 1));
    const ids = tf.tensor1d([5, 0, 5, 2, 5], "int32");
    const upstream = tf.randomNormal([5, 4], 0, 1, "float32", 2);
    const [cpu, wasm] = await onBothBackends(() => {
      const values = tf.tidy(() => gatherRows(table, ids).dataSync().slice());
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(gatherRows(table, ids), upstream)) as tf.Scalar,
        [table],
      );
      const gradient = grads[table.name]!.dataSync().slice();
      value.dispose();
      tf.dispose(grads);
      return { values, gradient };
    });
    expectClose(cpu.values, wasm.values, "gatherRows values");
    expectClose(cpu.gradient, wasm.gradient, "gatherRows gradient");
    // Row 5 is gathered three times on wasm too.
    const rows = tf.tidy(() => tf.reshape(upstream, [5, 4]).arraySync() as number[][]);
    for (let column = 0; column < 4; column++) {
      expect(wasm.gradient[5 * 4 + column]).toBeCloseTo(
        rows[0]![column]! + rows[2]![column]! + rows[4]![column]!,
        5,
      );
    }
    table.dispose();
  });

  it("scatterAddRows: values and gradients", async () => {
    const values = tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", 3));
    const ids = tf.tensor1d([1, 1, 0, 3, 1], "int32");
    const upstream = tf.randomNormal([4, 3], 0, 1, "float32", 4);
    const [cpu, wasm] = await onBothBackends(() => {
      const summed = tf.tidy(() => scatterAddRows(values, ids, 4).dataSync().slice());
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.mul(scatterAddRows(values, ids, 4), upstream)) as tf.Scalar,
        [values],
      );
      const gradient = grads[values.name]!.dataSync().slice();
      value.dispose();
      tf.dispose(grads);
      return { summed, gradient };
    });
    expectClose(cpu.summed, wasm.summed, "scatterAddRows values");
    expectClose(cpu.gradient, wasm.gradient, "scatterAddRows gradient");
    values.dispose();
  });

  it("Mlp: inference, training with batch norm and seeded dropout, and gradients", async () => {
    const cases: Partial<MlpArgs>[] = [
      { activation: "tanh" },
      { activation: "gelu", outputActivation: "sigmoid" },
      { batchNorm: true, dropout: 0.3 },
    ];
    for (const args of cases) {
      const mlp = new Mlp({ units: [8, 4], seed: 5, ...args });
      const x = tf.randomNormal([6, 5], 0, 1, "float32", 6) as tf.Tensor2D;
      mlp.forward(x).dispose();
      // Training calls move the batch-norm statistics: each backend starts from the same weights.
      const initial = weightValues(mlp.weights);
      const [cpu, wasm] = await onBothBackends(() => {
        const start = initial.map((values, index) =>
          tf.tensor(values, mlp.weights[index]!.shape as number[]),
        );
        mlp.setWeights(start);
        tf.dispose(start);
        const inference = tf.tidy(() => mlp.forward(x).dataSync().slice());
        setGlobalSeed(77); // same dropout masks on both backends
        const training = tf.tidy(() => mlp.forward(x, true).dataSync().slice());
        setGlobalSeed(78);
        const gradients = autodiff(
          () => tf.mean(tf.square(mlp.forward(x, true))) as tf.Scalar,
          mlp.trainableWeights,
        );
        return { inference, training, gradients };
      });
      const label = JSON.stringify(args);
      expectClose(cpu.inference, wasm.inference, `${label} inference`);
      expectClose(cpu.training, wasm.training, `${label} training`);
      expectSameGradients(cpu.gradients, wasm.gradients);
      mlp.dispose();
    }
  });

  it("FeatureEmbedding: values, gradients and input checks", async () => {
    const features: FeatureSpec[] = [
      { kind: "categorical", name: "user", vocabularySize: 7 },
      { kind: "numeric", name: "age", boundaries: [18, 30, 50], embeddingDim: 3 },
      { kind: "numeric", name: "price" },
    ];
    const embedding = new FeatureEmbedding({ features, embeddingDim: 4, initScale: 0.5, seed: 9 });
    const batch = {
      user: tf.tensor1d([6, 0, 6, 3], "int32"),
      age: tf.tensor1d([17, 18, 45, 80]),
      price: tf.tensor1d([0.5, -1, 2, 3]),
    };
    const upstream = tf.randomNormal([4, 8], 0, 1, "float32", 10);
    embedding.embed(batch).dispose();
    const [cpu, wasm] = await onBothBackends(() => {
      const values = tf.tidy(() => embedding.embed(batch).dataSync().slice());
      const gradients = autodiff(
        () => tf.sum(tf.mul(embedding.embed(batch), upstream)) as tf.Scalar,
        embedding.trainableWeights,
      );
      const badId = () => embedding.embed({ ...batch, user: tf.tensor1d([0, 7, 1, 2], "int32") });
      const nonFinite = () => embedding.embed({ ...batch, price: tf.tensor1d([0, 1, Number.NaN, 2]) });
      expect(badId).toThrow(DataError);
      expect(badId).toThrow('feature "user" has id 7 at row 1, outside [0, vocabularySize=7)');
      expect(nonFinite).toThrow('feature "price" has a non-finite value NaN at row 2');
      const empty = tf.tidy(
        () =>
          embedding.embed({
            user: tf.tensor1d([], "int32"),
            age: tf.tensor1d([], "float32"),
            price: tf.tensor1d([], "float32"),
          }).shape,
      );
      return { values, gradients, empty };
    });
    expectClose(cpu.values, wasm.values, "FeatureEmbedding values");
    expectSameGradients(cpu.gradients, wasm.gradients);
    expect(wasm.empty).toEqual([0, 8]);
    embedding.dispose();
  });
});
