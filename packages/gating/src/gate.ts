import type { Routing } from "@mdrec/experts";
import type * as tf from "@tensorflow/tfjs-core";

/**
 * A gate routes each row to experts of one pool. Every gate in this package implements it, and
 * every model consumes it the same way: `mixExperts(pool.dense(x), routing)` or
 * `pool.sparse(x, routing)`.
 */
export interface Gate {
  /** Size of the expert pool the routing's indices refer to. */
  readonly numExperts: number;
  /** Experts chosen per row (`routing.indices.shape[1]`). */
  readonly k: number;
  /**
   * @param x `[B, dIn]` float32 gate input.
   * @param domainIds int32 `[B]` domain (or group) of each row.
   * @param training enables training-only behaviour (noise, dropout).
   */
  route(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): Routing;
}
