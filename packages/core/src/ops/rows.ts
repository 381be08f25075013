import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import { assertInteger, assertTensor } from "../validate.js";

/**
 * Gathers rows of `table` (`tf.gather` along axis 0) with a fast backward pass.
 *
 * tfjs's stock gradient of `gather` goes through UnsortedSegmentSum, which takes ~32 s for a
 * 10k-row table on the `cpu` backend and has no kernel on `wasm`. Here the gradient is a
 * single `tf.scatterND`, which sums duplicate indices exactly like the stock gradient.
 *
 * @param table `[rows, ...]` float32 tensor, usually an embedding table or a batch of rows.
 * @param indices int32 `[n]` row ids in `[0, rows)` (not range-checked here: validate ids where
 * they enter, as `FeatureEmbedding` does).
 * @returns `[n, ...]` the selected rows.
 * @example
 * const rows = gatherRows(table, tf.tensor1d([0, 2, 2], "int32")); // [3, dim]
 */
export function gatherRows<R extends tf.Rank>(table: tf.Tensor<R>, indices: tf.Tensor1D): tf.Tensor<R> {
  assertTensor("gatherRows table", table, {});
  if (table.rank < 1) throw new ShapeError("gatherRows table must have rank >= 1, received a scalar");
  assertTensor("gatherRows indices", indices, { rank: 1, dtype: "int32" });
  // Index tensors are created outside the customGrad closure: created inside, they broke on wasm.
  const scatterIndices = tf.reshape(indices, [indices.shape[0], 1]); // [n, 1]
  const tableShape = table.shape;
  const gather = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const source = args[0] as tf.Tensor;
    // `save` keeps a clone only while a tape records; the tape disposes it after backprop.
    (args[1] as tf.GradSaveFunc)([scatterIndices]);
    return {
      value: tf.gather(source, indices), // [n, ...]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(saved[0]!, dy, tableShape), // [rows, ...]
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
 * Ids are not range-checked here (that would cost a device sync): an id outside `[0, numRows)`
 * throws on `cpu` but is silently dropped on `wasm`, so validate ids where they enter.
 *
 * @param values `[n, ...]` rows to add.
 * @param indices int32 `[n]` destination rows in `[0, numRows)`.
 * @returns `[numRows, ...]`.
 * @example
 * // rows 0 and 2 of values both land in row 1
 * const summed = scatterAddRows(values, tf.tensor1d([1, 0, 1], "int32"), 3); // [3, ...]
 */
export function scatterAddRows<R extends tf.Rank>(
  values: tf.Tensor<R>,
  indices: tf.Tensor1D,
  numRows: number,
): tf.Tensor<R> {
  assertTensor("scatterAddRows values", values, {});
  if (values.rank < 1) throw new ShapeError("scatterAddRows values must have rank >= 1, received a scalar");
  assertTensor("scatterAddRows indices", indices, { rank: 1, dtype: "int32", shape: [values.shape[0]] });
  assertInteger("scatterAddRows numRows", numRows, 1);
  const scatterIndices = tf.reshape(indices, [indices.shape[0], 1]); // [n, 1]
  const outputShape = [numRows, ...values.shape.slice(1)];
  const scatter = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const rows = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([indices]);
    return {
      value: tf.scatterND(scatterIndices, rows, outputShape), // [numRows, ...]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.gather(dy, saved[0]!), // [n, ...]
    };
  });
  const result = scatter(values) as tf.Tensor<R>;
  scatterIndices.dispose();
  return result;
}
