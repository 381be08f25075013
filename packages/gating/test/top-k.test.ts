import { oneHotFloat } from "@mdrec/gating";
import { expectClose } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { selectTopK } from "../src/top-k.js";

const values = (tensor: tf.Tensor) => Array.from(tensor.dataSync());

// The device-side formulation selectTopK replaces: TopK, one-hot picks and a softmax.
function composed(logits: tf.Tensor2D, probs: tf.Tensor2D, k: number, renormalize: boolean): tf.Tensor2D {
  const [rows, columns] = logits.shape;
  // Read back so no gradient is asked of TopK (the indices are piecewise constant).
  const indices = tf.tensor2d(tf.topk(logits, k).indices.dataSync(), [rows, k], "int32"); // [B, k]
  const picker = oneHotFloat(indices, columns); // [B, k, N]
  const pick = (source: tf.Tensor2D) =>
    tf.sum(tf.mul(picker, tf.reshape(source, [rows, 1, columns])), 2) as tf.Tensor2D; // [B, k]
  return renormalize ? (tf.softmax(pick(logits)) as tf.Tensor2D) : pick(probs);
}

describe("selectTopK", () => {
  it("keeps the k largest per row, largest first, ties to the lower index, NaN last", () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([
        [0.5, 2, 2, -1],
        [Number.NaN, 1, 3, 1],
        [Number.NaN, Number.NaN, Number.NaN, Number.NaN],
      ]);
      const { indices, weights } = selectTopK(logits, tf.softmax(logits) as tf.Tensor2D, 2, true);
      expect(indices.dtype).toBe("int32");
      expect(values(indices)).toEqual([1, 2, 2, 1, 0, 1]);
      // Equal kept logits share the weight; exp(3) / (exp(3) + exp(1)) for row 1.
      expectClose(
        values(weights).slice(0, 4),
        [0.5, 0.5, 1 / (1 + Math.exp(-2)), 1 / (1 + Math.exp(2))],
        1e-6,
      );
    });
  });

  it("matches the TopK / one-hot / softmax composition in values and gradients", () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([0.3, -1.2, 2.5, 0.9, 1.1, 0.2, -0.4, 3.1, 2.2, -2, 0.6, 0.7], [3, 4]);
      const probe = tf.tensor2d([0.7, -0.2, 1.5, 0.4, -1, 0.3], [3, 2]);
      for (const renormalize of [true, false]) {
        const loss = (select: typeof selectTopK | typeof composed) => (input: tf.Tensor) => {
          const probs = tf.softmax(input) as tf.Tensor2D;
          const weights = select(input as tf.Tensor2D, probs, 2, renormalize);
          const kept = "weights" in weights ? weights.weights : weights;
          return tf.sum(tf.mul(kept, probe));
        };
        expectClose(values(loss(selectTopK)(logits)), values(loss(composed)(logits)), 1e-6);
        const gradient = tf.grad(loss(selectTopK))(logits);
        expectClose(values(gradient), values(tf.grad(loss(composed))(logits)), 1e-6);
        // And finite differences of the host-side selection itself.
        const base = values(logits);
        for (const position of [0, 2, 7, 8]) {
          const shifted = (delta: number) => {
            const next = base.slice();
            next[position]! += delta;
            return values(loss(selectTopK)(tf.tensor2d(next, [3, 4])))[0]!;
          };
          const numeric = (shifted(1e-3) - shifted(-1e-3)) / 2e-3;
          expect(Math.abs(numeric - values(gradient)[position]!)).toBeLessThan(2e-3);
        }
      }
    });
  });

  it("leaves only its two outputs behind", () => {
    const logits = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const probs = tf.softmax(logits) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const { indices, weights } = selectTopK(logits, probs, 1, false);
    expect(tf.memory().numTensors).toBe(before + 2);
    tf.dispose([indices, weights, logits, probs]);
  });
});
