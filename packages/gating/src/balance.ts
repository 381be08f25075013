import { assertInteger, assertKnownKeys, assertNumber, assertTensor, ShapeError } from "@mdrec/core";
import type { Routing } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import { oneHotFloat } from "./one-hot.js";

/**
 * Importance loss of Shazeer et al. (2017): the squared coefficient of variation of the
 * per-expert importance `I_i = sum_b probs[b, i]`, i.e. `Var(I) / Mean(I)^2` (population
 * variance). 0 when every expert gets the same total probability.
 *
 * @param routing uses `probs` `[B, N]`.
 * @example const aux = importanceLoss(gate.route(x, domainIds, true)); // Scalar
 */
export function importanceLoss(routing: Pick<Routing, "probs">): tf.Scalar {
  assertTensor("importanceLoss routing.probs", routing?.probs, { rank: 2, dtype: "float32" });
  return tf.tidy(() => {
    const importance = tf.sum(routing.probs, 0); // [N]
    const { mean, variance } = tf.moments(importance);
    return tf.div(variance, tf.add(tf.square(mean), 1e-10)) as tf.Scalar;
  });
}

/**
 * Load-balancing loss of the Switch Transformer (Fedus et al., 2021): `N * sum_i f_i * P_i`,
 * where `f_i` is the fraction of the `B * k` routing slots assigned to expert i (from
 * `indices`, no gradient) and `P_i` the mean probability of expert i. Its minimum, 1, is
 * reached by uniform routing.
 *
 * @param routing uses `probs` `[B, N]` and `indices` int32 `[B, k]`.
 */
export function switchLoadLoss(routing: Pick<Routing, "probs" | "indices">, numExperts: number): tf.Scalar {
  assertInteger("switchLoadLoss numExperts", numExperts, 1);
  assertTensor("switchLoadLoss routing.probs", routing?.probs, {
    rank: 2,
    dtype: "float32",
    shape: [null, numExperts],
  });
  assertTensor("switchLoadLoss routing.indices", routing.indices, { rank: 2, dtype: "int32" });
  if (routing.indices.shape[0] !== routing.probs.shape[0]) {
    throw new ShapeError(
      `switchLoadLoss routing.indices must have ${routing.probs.shape[0]} rows like routing.probs, received shape [${routing.indices.shape.join(", ")}]`,
    );
  }
  return tf.tidy(() => {
    const slots = routing.indices.size;
    const assigned = tf.sum(oneHotFloat(tf.reshape(routing.indices, [slots]), numExperts), 0); // [N]
    const fraction = tf.div(assigned, Math.max(slots, 1)); // [N]
    const meanProbability = tf.mean(routing.probs, 0); // [N]
    return tf.mul(tf.sum(tf.mul(fraction, meanProbability)), numExperts) as tf.Scalar;
  });
}

/** Coefficients of the load-balance auxiliary losses of a gate (0 or absent = off). */
export interface LoadBalanceOptions {
  /** Weight of {@link importanceLoss}. Defaults to 0. */
  importance?: number;
  /** Weight of {@link switchLoadLoss}. Defaults to 0. */
  load?: number;
}

/** Validates {@link LoadBalanceOptions}, naming the gate. */
export function validateLoadBalance(
  where: string,
  options: LoadBalanceOptions | undefined,
): Required<LoadBalanceOptions> {
  const value = options ?? {};
  assertKnownKeys(`${where} loadBalance`, value, ["importance", "load"]);
  const importance = value.importance ?? 0;
  const load = value.load ?? 0;
  assertNumber(`${where} loadBalance.importance`, importance, { min: 0 });
  assertNumber(`${where} loadBalance.load`, load, { min: 0 });
  return { importance, load };
}

/** The weighted non-zero balance terms for a routing over `numExperts` experts. */
export function weightedBalanceLosses(
  coefficients: Required<LoadBalanceOptions>,
  routing: Pick<Routing, "probs" | "indices">,
  numExperts: number,
): Record<string, tf.Scalar> {
  const losses: Record<string, tf.Scalar> = {};
  if (coefficients.importance > 0) {
    losses.importance = tf.tidy(() => tf.mul(importanceLoss(routing), coefficients.importance) as tf.Scalar);
  }
  if (coefficients.load > 0) {
    losses.load = tf.tidy(() => tf.mul(switchLoadLoss(routing, numExperts), coefficients.load) as tf.Scalar);
  }
  return losses;
}
