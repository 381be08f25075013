import { assertInteger, assertTensor, DataError, ShapeError } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";

/** Floor inside every log, so empty domains and zero probabilities stay finite (no NaN). */
export const LOG_EPSILON = 1e-10;

/** H(E), H(E|D) and I(D;E) in nats, as scalars. */
export interface DomainExpertEntropies {
  /** I(D;E) = H(E) - H(E|D). */
  mutualInformation: tf.Scalar;
  /** H(E) = -sum_e P(e) log P(e). */
  expertEntropy: tf.Scalar;
  /** H(E|D) = -sum_d P(d) sum_e P(e|d) log P(e|d). */
  conditionalEntropy: tf.Scalar;
}

/** Per-batch estimates of P(d) and P(e|d). */
export interface DomainExpertStatistics {
  /** P(d) `[D]`: domain frequency in the batch. */
  domainPrior: tf.Tensor1D;
  /** P(e|d) `[D, N]`: mean probs over the batch rows of domain d (zeros for absent domains). */
  conditional: tf.Tensor2D;
  /** `[D]` 1 for domains with rows in the batch, else 0. */
  present: tf.Tensor1D;
}

/** Validates the inputs shared by every function of this module. */
export function assertMutualInformationInputs(
  where: string,
  probs: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  numDomains: number,
  numExperts?: number,
): void {
  assertTensor(`${where} probs`, probs, { rank: 2, dtype: "float32", shape: [null, numExperts ?? null] });
  assertTensor(`${where} domainIds`, domainIds, { rank: 1, dtype: "int32" });
  if (domainIds.shape[0] !== probs.shape[0]) {
    throw new ShapeError(
      `${where} domainIds must have shape [${probs.shape[0]}] (one per row of probs), received [${domainIds.shape.join(", ")}]`,
    );
  }
  const ids = domainIds.dataSync();
  for (let row = 0; row < ids.length; row++) {
    const id = ids[row]!;
    if (!(id >= 0 && id < numDomains)) {
      throw new DataError(
        `${where} domainIds[${row}] must be in [0, numDomains=${numDomains}), received ${id}`,
      );
    }
  }
}

/**
 * Batch estimates of P(d) and P(e|d). Per-domain sums are one matmul of a domain-major
 * indicator `[D, B]` with `probs` `[B, N]` (no segment sum, no transposed matmul).
 */
export function domainExpertStatistics(
  probs: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  numDomains: number,
): DomainExpertStatistics {
  return tf.tidy(() => {
    const batch = probs.shape[0];
    const domainRange = tf.reshape(tf.range(0, numDomains, 1, "int32"), [numDomains, 1]); // [D, 1]
    const membership = tf.cast(tf.equal(domainRange, tf.reshape(domainIds, [1, batch])), "float32"); // [D, B]
    const counts = tf.sum(membership, 1); // [D]
    const sums = tf.matMul(membership as tf.Tensor2D, probs); // [D, N]
    const present = tf.cast(tf.greater(counts, 0), "float32") as tf.Tensor1D; // [D]
    const conditional = tf.div(sums, tf.reshape(tf.maximum(counts, 1), [numDomains, 1])) as tf.Tensor2D; // [D, N]
    const domainPrior = tf.div(counts, Math.max(batch, 1)) as tf.Tensor1D; // [D]
    return { domainPrior, conditional, present };
  });
}

/**
 * H(E), H(E|D) and I(D;E) from P(d) `[D]` and P(e|d) `[D, N]`, with P(e) = sum_d P(d) P(e|d).
 * Domains with P(d) = 0 contribute 0.
 */
export function entropiesFromDistributions(
  domainPrior: tf.Tensor1D,
  conditional: tf.Tensor2D,
): DomainExpertEntropies {
  return tf.tidy(() => {
    const numDomains = domainPrior.shape[0];
    const prior = tf.reshape(domainPrior, [1, numDomains]) as tf.Tensor2D; // [1, D]
    const marginal = tf.matMul(prior, conditional); // [1, N]: P(e)
    const plogp = (p: tf.Tensor) => tf.mul(p, tf.log(tf.clipByValue(p, LOG_EPSILON, Number.MAX_VALUE)));
    const expertEntropy = tf.neg(tf.sum(plogp(marginal))) as tf.Scalar;
    const perDomain = tf.sum(plogp(conditional), 1); // [D]
    const conditionalEntropy = tf.neg(tf.sum(tf.mul(domainPrior, perDomain))) as tf.Scalar;
    const mutualInformation = tf.sub(expertEntropy, conditionalEntropy) as tf.Scalar;
    return { mutualInformation, expertEntropy, conditionalEntropy };
  });
}

/**
 * H(E), H(E|D) and I(D;E) (nats) of the gate's full softmax on one batch, differentiable
 * w.r.t. `probs`: P(e|d) = mean of `probs` over the rows of domain d, P(d) = domain frequency,
 * P(e) = sum_d P(d) P(e|d). Domains absent from the batch contribute 0. Reads `domainIds`
 * back once to check their range.
 *
 * @param probs `[B, N]` float32, rows are distributions over experts (`Routing.probs`).
 * @param domainIds int32 `[B]` in `[0, numDomains)`.
 * @example
 * const { mutualInformation, expertEntropy, conditionalEntropy } = domainExpertEntropies(routing.probs, domainIds, 3);
 */
export function domainExpertEntropies(
  probs: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  numDomains: number,
): DomainExpertEntropies {
  assertInteger("domainExpertEntropies numDomains", numDomains, 1);
  assertMutualInformationInputs("domainExpertEntropies", probs, domainIds, numDomains);
  return tf.tidy(() => {
    const { domainPrior, conditional } = domainExpertStatistics(probs, domainIds, numDomains);
    return { ...entropiesFromDistributions(domainPrior, conditional) };
  });
}

/**
 * I(D;E) in nats between the domain and the expert choice on one batch (see
 * {@link domainExpertEntropies}); maximise it (loss `-lambda * I`) to make each domain
 * concentrate on its own experts.
 *
 * @example
 * const mi = domainExpertMutualInformation(routing.probs, batch.domainIds, 3); // Scalar, nats
 */
export function domainExpertMutualInformation(
  probs: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  numDomains: number,
): tf.Scalar {
  const { mutualInformation, expertEntropy, conditionalEntropy } = domainExpertEntropies(
    probs,
    domainIds,
    numDomains,
  );
  expertEntropy.dispose();
  conditionalEntropy.dispose();
  return mutualInformation;
}
