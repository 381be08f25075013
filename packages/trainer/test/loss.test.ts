import { ConfigError, ShapeError } from "@mdrec/core";
import { binaryCrossEntropyWithLogits } from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";

/** -(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), the textbook form, in float64. */
function reference(logit: number, label: number): number {
  const probability = 1 / (1 + Math.exp(-logit));
  return -(label * Math.log(probability) + (1 - label) * Math.log(1 - probability));
}

const logits = [
  [0, 2],
  [-3, 1],
];
const labels = [
  [1, 0],
  [0, 1],
];

function lossOf(values: number[][], targets: number[][], taskWeights?: number[]): number {
  return tf.tidy(
    () => binaryCrossEntropyWithLogits(tf.tensor2d(values), tf.tensor2d(targets), taskWeights).dataSync()[0]!,
  );
}

describe("binaryCrossEntropyWithLogits", () => {
  it("matches hand-computed values", () => {
    const expected = (reference(0, 1) + reference(2, 0) + reference(-3, 0) + reference(1, 1)) / 4;
    expect(expected).toBeCloseTo((Math.LN2 + 2.126928 + 0.048587 + 0.313262) / 4, 5);
    expect(lossOf(logits, labels)).toBeCloseTo(expected, 6);
  });

  it("weights each task and averages over rows and tasks", () => {
    const expected = (2 * reference(0, 1) + 2 * reference(-3, 0)) / 4;
    expect(lossOf(logits, labels, [2, 0])).toBeCloseTo(expected, 6);
    expect(lossOf(logits, labels, [1, 1])).toBeCloseTo(lossOf(logits, labels), 7);
  });

  it("stays finite for extreme logits", () => {
    expect(lossOf([[100, -100]], [[0, 1]])).toBeCloseTo(100, 4);
    expect(lossOf([[100, -100]], [[1, 0]])).toBeLessThan(1e-30);
  });

  it("has gradient (sigmoid(x) - y) / count, also at x = 0, matching finite differences", () => {
    const x = tf.tensor2d(logits);
    const y = tf.tensor2d(labels);
    const gradient = tf.grad((input: tf.Tensor) => binaryCrossEntropyWithLogits(input as tf.Tensor2D, y))(x);
    const values = gradient.arraySync() as number[][];
    expect(values[0]![0]).toBeCloseTo((0.5 - 1) / 4, 7);
    const epsilon = 1e-2;
    logits.forEach((row, i) => {
      row.forEach((logit, j) => {
        const plus = logits.map((line) => [...line]);
        const minus = logits.map((line) => [...line]);
        plus[i]![j] = logit + epsilon;
        minus[i]![j] = logit - epsilon;
        const numeric = (lossOf(plus, labels) - lossOf(minus, labels)) / (2 * epsilon);
        expect(Math.abs(values[i]![j]! - numeric)).toBeLessThan(1e-2 * Math.max(Math.abs(numeric), 1e-2));
        expect(values[i]![j]).toBeCloseTo((1 / (1 + Math.exp(-logit)) - labels[i]![j]!) / 4, 6);
      });
    });
    const weighted = tf.grad((input: tf.Tensor) =>
      binaryCrossEntropyWithLogits(input as tf.Tensor2D, y, [3, 0]),
    )(x);
    expect((weighted.arraySync() as number[][]).map((row) => row[1] === 0)).toEqual([true, true]);
    expect((weighted.arraySync() as number[][])[1]![0]).toBeCloseTo((3 * (1 / (1 + Math.exp(3)))) / 4, 6);
    tf.dispose([x, y, gradient, weighted]);
  });

  it("leaks no tensors in the forward or the backward pass", () => {
    const x = tf.tensor2d(logits);
    const y = tf.tensor2d(labels);
    const run = () =>
      tf.tidy(() => {
        binaryCrossEntropyWithLogits(x, y, [1, 2]);
        tf.grad((input: tf.Tensor) => binaryCrossEntropyWithLogits(input as tf.Tensor2D, y, [1, 2]))(x);
      });
    run();
    const before = tf.memory().numTensors;
    run();
    const loss = binaryCrossEntropyWithLogits(x, y);
    loss.dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });

  it("rejects tensors of the wrong rank, dtype or shape and a wrong number of task weights", () => {
    const x = tf.tensor2d(logits);
    const y = tf.tensor2d(labels);
    const vector = tf.tensor1d([0, 1]);
    const narrow = tf.tensor2d([[1], [0]]);
    const integers = tf.tensor2d(labels, undefined, "int32");
    expect(() => binaryCrossEntropyWithLogits(vector as unknown as tf.Tensor2D, y)).toThrow(ShapeError);
    expect(() => binaryCrossEntropyWithLogits(vector as unknown as tf.Tensor2D, y)).toThrow(
      "binaryCrossEntropyWithLogits logits must have rank 2, received shape [2]",
    );
    expect(() => binaryCrossEntropyWithLogits(x, narrow)).toThrow(
      "binaryCrossEntropyWithLogits labels must have shape [2, 2], received [2, 1]",
    );
    expect(() => binaryCrossEntropyWithLogits(x, integers)).toThrow(
      "binaryCrossEntropyWithLogits labels must have dtype float32, received int32",
    );
    expect(() => binaryCrossEntropyWithLogits(x, y, [1])).toThrow(ConfigError);
    expect(() => binaryCrossEntropyWithLogits(x, y, [1])).toThrow(
      "binaryCrossEntropyWithLogits taskWeights must have 2 entries (one per task), received [1]",
    );
    tf.dispose([x, y, vector, narrow, integers]);
  });
});
