import { assertInteger, assertTensor, ShapeError } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import type { Routing } from "./routing.js";

function assertRoutingPair(
  routing: Pick<Routing, "indices" | "weights" | "allExperts">,
  where: string,
): void {
  if (routing == null || typeof routing !== "object") {
    throw new ShapeError(`${where} routing must be { indices, weights }, received ${String(routing)}`);
  }
  assertTensor(`${where} routing.indices`, routing.indices, { rank: 2, dtype: "int32" });
  assertTensor(`${where} routing.weights`, routing.weights, { rank: 2, dtype: "float32" });
  if (routing.indices.shape.join(",") !== routing.weights.shape.join(",")) {
    throw new ShapeError(
      `${where} routing.weights must have the shape of routing.indices [${routing.indices.shape.join(", ")}], received [${routing.weights.shape.join(", ")}]`,
    );
  }
}

/**
 * Scatters a routing's `[B, k]` weights into a dense `[B, numExperts]` matrix:
 * `W[b, i] = sum_j weights[b, j] * [indices[b, j] == i]`. Experts a row did not choose get 0.
 * Built from one-hot products (no masks, no `gather` with batchDims), so it is exact on `wasm`.
 *
 * @example
 * const w = denseWeights({ indices: tf.tensor2d([[2, 0]], [1, 2], "int32"), weights: tf.tensor2d([[0.7, 0.3]]) }, 3);
 * // [[0.3, 0, 0.7]]
 */
export function denseWeights(
  routing: Pick<Routing, "indices" | "weights" | "allExperts">,
  numExperts: number,
): tf.Tensor2D {
  assertRoutingPair(routing, "denseWeights");
  assertInteger("denseWeights numExperts", numExperts, 1);
  // A dense gate's weights are already [B, N] in expert order.
  if (routing.allExperts === true && routing.weights.shape[1] === numExperts)
    return tf.clone(routing.weights);
  return tf.tidy(() => {
    const [batch, slots] = routing.indices.shape as [number, number];
    // int32 one-hot then cast: wasm's OneHot with dtype float32 writes integer bit patterns.
    // tf.oneHot refuses depth 1, so a pool of one expert takes depth 2 and drops the extra column.
    const depth = Math.max(numExperts, 2);
    const oneHot = tf.slice(tf.cast(tf.oneHot(routing.indices, depth), "float32"), 0, [
      batch,
      slots,
      numExperts,
    ]); // [B, k, N]
    const slotWeights = tf.reshape(routing.weights, [batch, slots, 1]); // [B, k, 1]
    return tf.sum(tf.mul(oneHot, slotWeights), 1) as tf.Tensor2D; // [B, N]
  });
}

/**
 * The one weighted sum of expert outputs every model uses:
 * `out[b] = sum_j weights[b, j] * expertOutputs[b, indices[b, j]]`.
 *
 * Computed as a batched matmul of the dense weights `[B, 1, N]` with the outputs `[B, N, d]`;
 * gradients reach both the outputs and `routing.weights`.
 *
 * @param expertOutputs `[B, N, d]`, e.g. from `ExpertPool.dense`.
 * @param routing int32 `indices` `[B, k]` in `[0, N)` and float32 `weights` `[B, k]`.
 * @returns `[B, d]`.
 * @example
 * const mixed = mixExperts(pool.dense(x), gate.route(x, domainIds, training));
 */
export function mixExperts(
  expertOutputs: tf.Tensor3D,
  routing: Pick<Routing, "indices" | "weights" | "allExperts">,
): tf.Tensor2D {
  assertTensor("mixExperts expertOutputs", expertOutputs, { rank: 3, dtype: "float32" });
  assertRoutingPair(routing, "mixExperts");
  const [batch, numExperts, dim] = expertOutputs.shape;
  if (routing.indices.shape[0] !== batch) {
    throw new ShapeError(
      `mixExperts routing.indices must have ${batch} rows (the batch of expertOutputs), received shape [${routing.indices.shape.join(", ")}]`,
    );
  }
  return tf.tidy(() => {
    const weights = tf.reshape(denseWeights(routing, numExperts), [batch, 1, numExperts]) as tf.Tensor3D; // [B, 1, N]
    const mixed = tf.matMul(weights, expertOutputs); // [B, 1, d]
    return tf.reshape(mixed, [batch, dim]) as tf.Tensor2D; // [B, d]
  });
}
