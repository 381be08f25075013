import { ConfigError, ShapeError } from "@mdrec/core";
import { importanceLoss, switchLoadLoss } from "@mdrec/gating";
import { checkInputGradients, expectClose, expectNoLeak, onBackend } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";

describe("importanceLoss", () => {
  it("golden value: squared coefficient of variation of the summed probs", () => {
    // importance = [1.5, 0.5]: mean 1, population variance 0.25
    const probs = tf.tensor2d([
      [0.5, 0.5],
      [1, 0],
    ]);
    expectClose(importanceLoss({ probs }), [0.25]);
  });

  it("is 0 (its minimum) for uniform routing and grows with imbalance", () => {
    expectClose(importanceLoss({ probs: tf.fill([4, 3], 1 / 3) as tf.Tensor2D }), [0], 1e-6);
    const skewed = importanceLoss({
      probs: tf.tensor2d([
        [0.9, 0.05, 0.05],
        [0.8, 0.1, 0.1],
      ]),
    }).dataSync()[0]!;
    expect(skewed).toBeGreaterThan(0.5);
  });

  it("gradient check and no leaks", () => {
    const probs = tf.softmax(tf.randomNormal([4, 3], 0, 1, "float32", 1)) as tf.Tensor2D;
    checkInputGradients((p) => importanceLoss({ probs: p as tf.Tensor2D }), [probs], 4, 1e-3);
    expectNoLeak(() => importanceLoss({ probs }));
  });
});

describe("switchLoadLoss", () => {
  it("golden values: N * sum_i f_i P_i, minimum 1 for uniform routing", () => {
    const uniform = {
      probs: tf.fill([2, 2], 0.5) as tf.Tensor2D,
      indices: tf.tensor2d([[0], [1]], [2, 1], "int32"),
    };
    expectClose(switchLoadLoss(uniform, 2), [1]);
    // f = [1, 0], P = [0.85, 0.15] -> 2 * 0.85
    const skewed = {
      probs: tf.tensor2d([
        [0.9, 0.1],
        [0.8, 0.2],
      ]),
      indices: tf.tensor2d([[0], [0]], [2, 1], "int32"),
    };
    expectClose(switchLoadLoss(skewed, 2), [1.7]);
    // k = 2 slots per row: f = [2/6, 3/6, 1/6], P = mean probs
    const topTwo = {
      probs: tf.tensor2d([
        [0.5, 0.3, 0.2],
        [0.2, 0.6, 0.2],
        [0.3, 0.3, 0.4],
      ]),
      indices: tf.tensor2d(
        [
          [0, 1],
          [1, 2],
          [1, 0],
        ],
        [3, 2],
        "int32",
      ),
    };
    const expected = 3 * ((2 / 6) * (1 / 3) + (3 / 6) * (1.2 / 3) + (1 / 6) * (0.8 / 3));
    expectClose(switchLoadLoss(topTwo, 3), [expected]);
  });

  it("gradient flows to probs only, matching finite differences; no leaks", () => {
    const probs = tf.softmax(tf.randomNormal([4, 3], 0, 1, "float32", 2)) as tf.Tensor2D;
    const indices = tf.tensor2d(
      [
        [0, 1],
        [2, 1],
        [1, 0],
        [0, 2],
      ],
      [4, 2],
      "int32",
    );
    checkInputGradients((p) => switchLoadLoss({ probs: p as tf.Tensor2D, indices }, 3), [probs], 4, 1e-3);
    expectNoLeak(() => switchLoadLoss({ probs, indices }, 3));
  });

  it("agrees on wasm and cpu", async () => {
    const run = () => {
      const probs = tf.softmax(tf.randomNormal([6, 4], 0, 1, "float32", 3)) as tf.Tensor2D;
      const indices = tf.tensor2d(
        [
          [0, 1],
          [2, 1],
          [1, 0],
          [0, 2],
          [3, 2],
          [3, 0],
        ],
        [6, 2],
        "int32",
      );
      const grad = tf.grad((p: tf.Tensor) => switchLoadLoss({ probs: p as tf.Tensor2D, indices }, 4))(probs);
      return [
        switchLoadLoss({ probs, indices }, 4).dataSync()[0]!,
        importanceLoss({ probs }).dataSync()[0]!,
        ...grad.dataSync(),
      ];
    };
    const cpu = run();
    expectClose(await onBackend("wasm", run), cpu, 1e-5);
  });

  it("rejects bad arguments", () => {
    const probs = tf.fill([2, 3], 1 / 3) as tf.Tensor2D;
    expect(() => switchLoadLoss({ probs, indices: tf.zeros([2, 1], "int32") as tf.Tensor2D }, 0)).toThrow(
      ConfigError,
    );
    expect(() => switchLoadLoss({ probs, indices: tf.zeros([2, 1], "int32") as tf.Tensor2D }, 4)).toThrow(
      "switchLoadLoss routing.probs must have shape [?, 4], received [2, 3]",
    );
    expect(() => switchLoadLoss({ probs, indices: tf.zeros([3, 1], "int32") as tf.Tensor2D }, 3)).toThrow(
      ShapeError,
    );
    expect(() => switchLoadLoss({ probs, indices: tf.zeros([3, 1], "int32") as tf.Tensor2D }, 3)).toThrow(
      "switchLoadLoss routing.indices must have 2 rows like routing.probs, received shape [3, 1]",
    );
    expect(() => importanceLoss({ probs: tf.ones([3]) as never })).toThrow(
      "importanceLoss routing.probs must have rank 2",
    );
  });
});
