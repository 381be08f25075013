import type * as tf from "@tensorflow/tfjs-core";

/**
 * How a gate routes each row to experts. Produced by every gate in `@mdrec/gating`, consumed
 * by `ExpertPool.sparse`, `mixExperts` and the routing losses and metrics.
 *
 * Dense gates (softmax over all N experts) report `k = N` with `indices[b] = [0, ..., N-1]`.
 */
export interface Routing {
  /** `[B, N]` full softmax over the experts the gate can choose; feeds the MI and balance losses. */
  probs: tf.Tensor2D;
  /** int32 `[B, k]` chosen expert ids in `[0, numExperts)` of the pool the routing refers to. */
  indices: tf.Tensor2D;
  /** `[B, k]` mixing weight of each chosen expert. */
  weights: tf.Tensor2D;
  /**
   * Set by dense gates: every row routes to all N experts in order (`indices[b] = [0..N-1]`), so
   * `weights` already is the dense `[B, N]` weight matrix and consumers such as `mixExperts` skip
   * the one-hot scatter. Leave unset when that does not hold.
   */
  allExperts?: boolean;
}

/** Disposes the tensors of a routing. */
export function disposeRouting(routing: Routing): void {
  routing.probs.dispose();
  routing.indices.dispose();
  routing.weights.dispose();
}
