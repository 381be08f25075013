import * as tf from "@tensorflow/tfjs-core";
import { assertTensor } from "../validate.js";

/**
 * Gathers rows of `table` (`tf.gather` along axis 0) with a fast backward pass.
 *
 * tfjs's stock gradient of `gather` goes through UnsortedSegmentSum, which takes ~32 s for a
 * 10k-row table on the `cpu` backend and has no kernel on `wasm`. Here the gradient is a
 * single `tf.scatterND`, which sums duplicate indices exactly like the stock gradient.
 *
 * @param table `[rows, ...]` float32 tensor, usually an embedding table or a batch of rows.
 * @param indices int32 `[n]` row ids in `[0, rows)`.
 * @returns `[n, ...]` the selected rows.
 */
export function gatherRows<R extends tf.Rank>(table: tf.Tensor<R>, indices: tf.Tensor1D): tf.Tensor<R> {
  assertTensor("gatherRows indices", indices, { rank: 1, dtype: "int32" });
  // Index tensors must be created outside the customGrad closure (wasm fault, see docs).
  const scatterIndices = tf.reshape(indices, [indices.shape[0], 1]); // [n, 1]
  const tableShape = table.shape;
  const gather = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const source = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([scatterIndices]);
    return {
      value: tf.gather(source, indices), // [n, ...]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0]!, dy, tableShape),
    };
  });
  const result = gather(table) as tf.Tensor<R>;
  scatterIndices.dispose();
  return result;
}

/**
 * Adds each row of `values` into row `indices[i]` of a zero tensor with `numRows` rows
 * (a scatter-add, duplicates summed). Its gradient is a gather, so it is differentiable on
 * every backend (`tf.scatterND` has no registered gradient; `wasm` has no UnsortedSegmentSum).
 *
 * @param values `[n, ...]` rows to add.
 * @param indices int32 `[n]` destination rows in `[0, numRows)`.
 * @returns `[numRows, ...]`.
 */
export function scatterAddRows<R extends tf.Rank>(
  values: tf.Tensor<R>,
  indices: tf.Tensor1D,
  numRows: number,
): tf.Tensor<R> {
  assertTensor("scatterAddRows indices", indices, { rank: 1, dtype: "int32" });
  const scatterIndices = tf.reshape(indices, [indices.shape[0], 1]); // [n, 1]
  const outputShape = [numRows, ...values.shape.slice(1)];
  const scatter = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const rows = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([indices]);
    return {
      value: tf.scatterND(scatterIndices, rows, outputShape), // [numRows, ...]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.gather(dy, saved[0]!),
    };
  });
  const result = scatter(values) as tf.Tensor<R>;
  scatterIndices.dispose();
  return result;
}
