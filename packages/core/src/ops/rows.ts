import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import { fastKernelsEnabled } from "../kernels/register.js";
import { fastKernelState } from "../kernels/state.js";
import { GATHER_CONCAT, registerGatherConcat, SCATTER_CONCAT } from "../kernels/wasm-slicing.js";
import { assertInteger, assertTensor } from "../validate.js";

registerGatherConcat();

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

/**
 * Gathers rows of several tables and joins them side by side:
 * `concat([gatherRows(tables[0], ids[0]), gatherRows(tables[1], ids[1]), ...], 1)`, the
 * embedding lookup of a batch with one table per field. On `wasm` with mdrec's fast kernels the
 * lookups write straight into the joined output (one kernel, no concat); elsewhere it is
 * exactly the expression above. Gradients are one scatter per table (see {@link gatherRows}).
 *
 * @param tables `[rows_i, width_i]` float32 tables.
 * @param ids int32 `[B]` row ids per table, in `[0, rows_i)` (validate where they enter).
 * @returns `[B, sum of width_i]`.
 * @example
 * const x = gatherConcatRows([userTable, itemTable], [userIds, itemIds]); // [B, dUser + dItem]
 */
export function gatherConcatRows(tables: tf.Tensor2D[], ids: tf.Tensor1D[]): tf.Tensor2D {
  if (!Array.isArray(tables) || !Array.isArray(ids) || tables.length === 0 || tables.length !== ids.length) {
    throw new ShapeError(
      `gatherConcatRows needs one id tensor per table and at least one table, received ${Array.isArray(tables) ? tables.length : typeof tables} tables and ${Array.isArray(ids) ? ids.length : typeof ids} id tensors`,
    );
  }
  tables.forEach((table, index) => {
    assertTensor(`gatherConcatRows tables[${index}]`, table, { rank: 2, dtype: "float32" });
  });
  const batch = ids[0]?.shape[0];
  ids.forEach((column, index) => {
    assertTensor(`gatherConcatRows ids[${index}]`, column, {
      rank: 1,
      dtype: "int32",
      shape: [batch ?? null],
    });
  });
  const fast = tf.getBackend() === "wasm" && fastKernelsEnabled("wasm");
  if (!fast) {
    return tf.tidy(() => {
      const pieces = tables.map((table, index) => gatherRows(table, ids[index]!)); // [B, width_i] each
      return pieces.length === 1 ? pieces[0]! : (tf.concat(pieces, 1) as tf.Tensor2D); // [B, sum]
    });
  }
  const count = tables.length;
  // Decided once for both passes: the add-on's scatter reads the [B] ids as they are, tf.scatterND
  // needs them as [B, 1].
  // Index tensors are created outside the customGrad closure (inside, they broke on wasm).
  const nativeScatter = fastKernelState().nativeGemm !== null;
  const savedIds = nativeScatter ? ids : ids.map((column) => tf.reshape(column, [column.shape[0], 1])); // [B] or [B, 1] each
  const shapes = tables.map((table) => table.shape);
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args[count] as tf.GradSaveFunc)(savedIds);
    const inputs: Record<string, tf.Tensor> = {};
    args.slice(0, count).forEach((table, index) => {
      inputs[`t${index}`] = table as tf.Tensor;
      inputs[`i${index}`] = ids[index]!;
    });
    return {
      value: tf.engine().runKernel(GATHER_CONCAT, inputs, { count }) as tf.Tensor2D, // [B, sum]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        if (nativeScatter) {
          // One pass in the add-on (same sums in the same order as the scatters below).
          const scatterInputs: Record<string, tf.Tensor> = { dy };
          saved.forEach((column, index) => {
            scatterInputs[`i${index}`] = column;
          });
          return tf.engine().runKernel(SCATTER_CONCAT, scatterInputs, {
            tableShapes: shapes.map((shape) => [shape[0], shape[1]]),
          } as unknown as tf.NamedAttrMap) as tf.Tensor[];
        }
        let column = 0;
        return shapes.map((shape, index) => {
          const width = shape[1];
          const piece = tf.slice(dy, [0, column], [dy.shape[0]!, width]); // [B, width_i]
          column += width;
          return tf.scatterND(saved[index]!, piece, shape); // [rows_i, width_i]
        });
      },
    };
  });
  try {
    return lookup(...tables) as tf.Tensor2D;
  } finally {
    if (!nativeScatter) tf.dispose(savedIds); // also when an id is out of range
  }
}
