import { assertTensor, ConfigError, formatValue } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";

/**
 * Mean binary cross-entropy of logits against {0, 1} labels over every row and task:
 * `mean_{b,t} w_t * (max(x, 0) - x * y + log(1 + exp(-|x|)))`, the numerically stable form of
 * `-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))`.
 *
 * The gradient is written out as `w_t * (sigmoid(x) - y) / (B * T)`: autodiff of the stable form
 * goes through `relu` and `abs`, whose tfjs gradients are 0 at `x = 0`, which would give `-y`
 * instead of `0.5 - y` for an exactly-zero logit (common right after zero initialisation).
 *
 * @param logits `[B, T]` pre-sigmoid scores.
 * @param labels `[B, T]` float32 labels in {0, 1}.
 * @param taskWeights `T` non-negative weights. Defaults to all 1.
 * @returns scalar loss.
 * @example binaryCrossEntropyWithLogits(tf.tensor2d([[0]]), tf.tensor2d([[1]])) // log 2 = 0.693...
 */
export function binaryCrossEntropyWithLogits(
  logits: tf.Tensor2D,
  labels: tf.Tensor2D,
  taskWeights?: readonly number[],
): tf.Scalar {
  assertTensor("binaryCrossEntropyWithLogits logits", logits, { rank: 2, dtype: "float32" });
  assertTensor("binaryCrossEntropyWithLogits labels", labels, {
    rank: 2,
    dtype: "float32",
    shape: logits.shape,
  });
  const [rows, tasks] = logits.shape;
  if (taskWeights !== undefined && taskWeights.length !== tasks) {
    throw new ConfigError(
      `binaryCrossEntropyWithLogits taskWeights must have ${tasks} entries (one per task), received ${formatValue(taskWeights)}`,
    );
  }
  const count = Math.max(rows * tasks, 1);
  // Weight and label tensors are made outside the customGrad closure (see @mdrec/core gatherRows).
  const weights = taskWeights === undefined ? undefined : tf.tensor2d([...taskWeights], [1, tasks]); // [1, T]
  const loss = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor2D; // [B, T]
    const save = args[1] as tf.GradSaveFunc;
    // Saved tensors are cloned and kept by the tape, so the caller may dispose its labels and
    // the weights tensor is freed below without breaking the backward pass.
    save(weights === undefined ? [x, labels] : [x, labels, weights]);
    const elementwise = tf.add(tf.sub(tf.relu(x), tf.mul(x, labels)), tf.log1p(tf.exp(tf.neg(tf.abs(x))))); // [B, T]
    const weighted = weights === undefined ? elementwise : tf.mul(elementwise, weights); // [B, T]
    return {
      value: tf.div(tf.sum(weighted), count) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const residual = tf.sub(tf.sigmoid(saved[0]!), saved[1]!); // [B, T]
        const scaled = saved[2] === undefined ? residual : tf.mul(residual, saved[2]); // [B, T]
        return tf.mul(scaled, tf.div(dy, count));
      },
    };
  });
  const result = loss(logits) as tf.Scalar;
  weights?.dispose();
  return result;
}
