import * as tf from "@tensorflow/tfjs-core";

/**
 * Indices of the `k` largest entries of each row, as an op with a zero gradient.
 *
 * tfjs registers no gradient for TopK, and the indices feed one-hot products that lie on the
 * loss path, so a plain `tf.topk` makes every backward pass throw. The indices are piecewise
 * constant in the logits, so zero is their exact gradient.
 *
 * @param logits `[B, N]`.
 * @returns int32 `[B, k]`, largest first.
 */
export function topKIndices(logits: tf.Tensor2D, k: number): tf.Tensor2D {
  const select = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor2D;
    const { values, indices } = tf.topk(input, k); // [B, k] each
    values.dispose();
    return { value: indices, gradFunc: (dy: tf.Tensor) => tf.zeros([dy.shape[0]!, input.shape[1]]) };
  });
  return select(logits) as tf.Tensor2D;
}
