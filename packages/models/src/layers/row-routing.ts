import type { Routing } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";

/**
 * Routes every row to exactly one expert with weight 1, e.g. to its domain's tower or to its
 * domain's slice of a star-topology layer: `mixExperts(outputs, rowRouting(ids))` selects
 * `outputs[b, ids[b]]`, and `pool.sparse(x, rowRouting(ids))` runs expert `ids[b]` on row b only.
 *
 * @param expertIds int32 `[B]` expert of each row.
 * @returns int32 `indices` `[B, 1]` and float32 `weights` `[B, 1]` of ones.
 */
export function rowRouting(expertIds: tf.Tensor1D): Pick<Routing, "indices" | "weights"> {
  const rows = expertIds.shape[0];
  return {
    indices: tf.reshape(expertIds, [rows, 1]) as tf.Tensor2D, // [B, 1]
    weights: tf.ones([rows, 1]) as tf.Tensor2D, // [B, 1]
  };
}
