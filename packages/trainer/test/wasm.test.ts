import "@tensorflow/tfjs-backend-wasm";
import { binaryCrossEntropyWithLogits, evaluate, fit, type OptimizerName } from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import { makeDataset, makeModel, readWeights } from "./helpers.js";

afterAll(async () => {
  await tf.setBackend("cpu");
  await tf.ready();
});

async function onBackend<T>(backend: "cpu" | "wasm", run: () => Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  try {
    return await run();
  } finally {
    await tf.setBackend("cpu");
    await tf.ready();
  }
}

function expectClose(actual: number[], expected: number[], tolerance = 1e-5): void {
  expect(actual).toHaveLength(expected.length);
  for (const [index, value] of actual.entries())
    expect(Math.abs(value - expected[index]!)).toBeLessThan(tolerance);
}

describe("wasm matches cpu", () => {
  it("binaryCrossEntropyWithLogits value and gradient", async () => {
    const logits = [
      [0.3, -2.5, 0],
      [4, -0.7, 1.2],
    ];
    const labels = [
      [1, 0, 1],
      [0, 0, 1],
    ];
    const compute = () =>
      tf.tidy(() => {
        const x = tf.tensor2d(logits);
        const y = tf.tensor2d(labels);
        const { value, grads } = tf.valueAndGrads((input: tf.Tensor) =>
          binaryCrossEntropyWithLogits(input as tf.Tensor2D, y, [1, 0.5, 2]),
        )([x]);
        return [value.dataSync()[0]!, ...Array.from(grads[0]!.dataSync())];
      });
    const cpu = await onBackend("cpu", async () => compute());
    const wasm = await onBackend("wasm", async () => compute());
    expectClose(wasm, cpu);
  });

  it.each(["adam", "sgd"] as OptimizerName[])(
    "a few %s training steps give the same losses, weights and metrics",
    async (optimizer) => {
      const train = makeDataset(60, 1);
      const validation = makeDataset(30, 2);
      const run = () => async () => {
        const model = makeModel();
        const losses: number[] = [];
        await fit(model, train, {
          epochs: 1,
          batchSize: 20,
          optimizer,
          learningRate: 0.05,
          gradientClip: 1,
          weightDecay: 1e-3,
          callbacks: { onStep: (event) => void losses.push(...Object.values(event.losses)) },
        });
        const weights = readWeights(model).flat();
        const metrics = await evaluate(model, validation);
        model.dispose();
        return { losses, weights, auc: metrics.overall.auc, logloss: metrics.overall.logloss };
      };
      const cpu = await onBackend("cpu", run());
      const wasm = await onBackend("wasm", run());
      expectClose(wasm.losses, cpu.losses);
      expectClose(wasm.weights, cpu.weights);
      expect(Math.abs(wasm.auc - cpu.auc)).toBeLessThan(1e-5);
      expect(Math.abs(wasm.logloss - cpu.logloss)).toBeLessThan(1e-5);
    },
  );
});
