import * as tf from "@tensorflow/tfjs-core";

/** What {@link selectTopK} returns. */
export interface TopKSelection {
  /** int32 `[B, k]`: the k largest logits of each row, largest first (ties: lower index first). */
  indices: tf.Tensor2D;
  /** `[B, k]`: softmax over the kept logits (`renormalize`), else the kept `probs`. */
  weights: tf.Tensor2D;
}

// Row-major [B, k] indices of the k largest values per row: largest first, ties to the lower
// index, NaN below every number (a row of NaNs keeps its first k columns).
function largestPerRow(values: Float32Array, rows: number, columns: number, k: number): Int32Array {
  const indices = new Int32Array(rows * k);
  const keptValues = new Float64Array(k); // the kept values of the current row, largest first
  for (let row = 0; row < rows; row++) {
    const base = row * columns;
    const kept = row * k;
    let filled = 0;
    for (let column = 0; column < columns; column++) {
      let value = values[base + column]!;
      if (Number.isNaN(value)) value = Number.NEGATIVE_INFINITY;
      // Insert among the kept ones; equal values stay behind earlier columns.
      let position = filled;
      while (position > 0 && keptValues[position - 1]! < value) position--;
      if (position >= k) continue;
      for (let shift = Math.min(filled, k - 1); shift > position; shift--) {
        indices[kept + shift] = indices[kept + shift - 1]!;
        keptValues[shift] = keptValues[shift - 1]!;
      }
      indices[kept + position] = column;
      keptValues[position] = value;
      if (filled < k) filled++;
    }
  }
  return indices;
}

/**
 * The k largest logits of each row and their mixing weights, selected on the host in one pass
 * instead of TopK, one-hot products and a second softmax on the device (and their gradients):
 * for a 1024 x 16 batch that is 2 ops instead of ~20.
 *
 * The indices are piecewise constant in the logits (gradient zero). With `renormalize` the
 * weights are `softmax(logits[b, indices[b]])` and their gradient reaches `logits` only:
 * `dlogits[b, i_j] = w_j (dw_j - sum_m w_m dw_m)`; otherwise they are `probs[b, indices[b]]` and
 * the gradient `dprobs[b, i_j] = dw_j` reaches `probs` only.
 *
 * @param logits `[B, N]` float32.
 * @param probs `[B, N]` softmax of `logits` (read only without `renormalize`).
 * @param k kept experts per row, in `[1, N]` (checked by the gate).
 * @param renormalize whether the weights are a softmax over the kept logits.
 */
export function selectTopK(
  logits: tf.Tensor2D,
  probs: tf.Tensor2D,
  k: number,
  renormalize: boolean,
): TopKSelection {
  const [rows, columns] = logits.shape;
  const logitValues = logits.dataSync() as Float32Array;
  const chosen = largestPerRow(logitValues, rows, columns, k); // [B, k]
  const source = renormalize ? logits : probs;
  const sourceValues = renormalize ? logitValues : (probs.dataSync() as Float32Array);
  const kept = new Float32Array(rows * k); // [B, k]
  for (let row = 0; row < rows; row++) {
    const base = row * k;
    if (!renormalize) {
      for (let slot = 0; slot < k; slot++)
        kept[base + slot] = sourceValues[row * columns + chosen[base + slot]!]!;
      continue;
    }
    // Softmax over the kept logits; the first is the largest.
    const largest = sourceValues[row * columns + chosen[base]!]!;
    let total = 0;
    for (let slot = 0; slot < k; slot++) {
      const weight = Math.exp(sourceValues[row * columns + chosen[base + slot]!]! - largest);
      kept[base + slot] = weight;
      total += weight;
    }
    for (let slot = 0; slot < k; slot++) kept[base + slot] = kept[base + slot]! / total;
  }
  const select = tf.customGrad((..._inputs: (tf.Tensor | tf.GradSaveFunc)[]) => {
    return {
      value: tf.tensor2d(kept, [rows, k]),
      gradFunc: (dy: tf.Tensor) => {
        const upstream = dy.dataSync() as Float32Array; // [B, k]
        const gradient = new Float32Array(rows * columns); // [B, N]
        for (let row = 0; row < rows; row++) {
          const base = row * k;
          let weighted = 0;
          if (renormalize)
            for (let slot = 0; slot < k; slot++) weighted += kept[base + slot]! * upstream[base + slot]!;
          for (let slot = 0; slot < k; slot++) {
            const target = row * columns + chosen[base + slot]!;
            gradient[target] = renormalize
              ? kept[base + slot]! * (upstream[base + slot]! - weighted)
              : upstream[base + slot]!;
          }
        }
        return tf.tensor2d(gradient, [rows, columns]);
      },
    };
  });
  return {
    indices: tf.tensor2d(chosen, [rows, k], "int32"),
    weights: select(source) as tf.Tensor2D,
  };
}
