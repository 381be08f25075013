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
  /** `[D]` rows of each domain in the batch. */
  counts: tf.Tensor1D;
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
    const counts = tf.sum(membership, 1) as tf.Tensor1D; // [D]
    const sums = tf.matMul(membership as tf.Tensor2D, probs); // [D, N]
    const present = tf.cast(tf.greater(counts, 0), "float32") as tf.Tensor1D; // [D]
    const conditional = tf.div(sums, tf.reshape(tf.maximum(counts, 1), [numDomains, 1])) as tf.Tensor2D; // [D, N]
    const domainPrior = tf.div(counts, Math.max(batch, 1)) as tf.Tensor1D; // [D]
    return { domainPrior, conditional, present, counts };
  });
}

/** The entropies with the pieces the closed-form gradient of {@link mutualInformationTerms} reuses. */
interface EntropyParts extends DomainExpertEntropies {
  /** P(e) `[1, N]`. */
  marginal: tf.Tensor2D;
  /** log max(P(e), eps) `[1, N]`. */
  logMarginal: tf.Tensor;
  /** log max(P(e|d), eps) `[D, N]`. */
  logConditional: tf.Tensor;
}

/** {@link entropiesFromDistributions} and its intermediate tensors (no tidy: the caller's scope owns them). */
function entropyParts(domainPrior: tf.Tensor1D, conditional: tf.Tensor2D): EntropyParts {
  const numDomains = domainPrior.shape[0];
  const prior = tf.reshape(domainPrior, [1, numDomains]) as tf.Tensor2D; // [1, D]
  const marginal = tf.matMul(prior, conditional) as tf.Tensor2D; // [1, N]: P(e)
  const logOf = (p: tf.Tensor) => tf.log(tf.clipByValue(p, LOG_EPSILON, Number.MAX_VALUE));
  const logMarginal = logOf(marginal); // [1, N]
  const logConditional = logOf(conditional); // [D, N]
  const expertEntropy = tf.neg(tf.sum(tf.mul(marginal, logMarginal))) as tf.Scalar;
  const perDomain = tf.sum(tf.mul(conditional, logConditional), 1); // [D]
  const conditionalEntropy = tf.neg(tf.sum(tf.mul(domainPrior, perDomain))) as tf.Scalar;
  const mutualInformation = tf.sub(expertEntropy, conditionalEntropy) as tf.Scalar;
  return { mutualInformation, expertEntropy, conditionalEntropy, marginal, logMarginal, logConditional };
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
    const { mutualInformation, expertEntropy, conditionalEntropy } = entropyParts(domainPrior, conditional);
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

/** Weights of the AEA objective: `loss = weight * -(expertEntropyWeight * H(E) - conditionalEntropyWeight * H(E|D))`. */
export interface MutualInformationCoefficients {
  weight: number;
  expertEntropyWeight: number;
  conditionalEntropyWeight: number;
}

/** Stored estimates blended into the batch ones (the moving average of `MutualInformationLoss`). */
export interface MutualInformationBlend {
  /** Momentum m in [0, 1): estimate = m * stored + (1 - m) * batch. */
  momentum: number;
  /** Stored P(e|d) `[D, N]`, kept for domains absent from the batch. */
  conditional: tf.Tensor2D;
  /** Stored P(d) `[D]`. */
  domainPrior: tf.Tensor1D;
}

/** What {@link mutualInformationTerms} returns. */
export interface MutualInformationTerms {
  /** `[loss, I(D;E), H(E), H(E|D)]`, differentiable w.r.t. `probs`. */
  terms: tf.Tensor1D;
  /** P(e|d) `[D, N]` used (after blending), not differentiable. */
  conditional: tf.Tensor2D;
  /** P(d) `[D]` used (after blending). */
  domainPrior: tf.Tensor1D;
}

/**
 * The AEA loss with I(D;E), H(E) and H(E|D) as one differentiable op with a closed-form
 * gradient: the same values as {@link domainExpertStatistics} plus
 * {@link entropiesFromDistributions} (and the blend of `MutualInformationLoss`), without the
 * ~100 recorded ops and saved copies of autodiff through them (measured in CESAA's training
 * step, 3 domains x 18 experts: the AEA term cost 2.5-3.3 ms with autodiff, ~1.4 ms with this).
 *
 * With Q = P(e|d) used, pi = P(d) used, P(e) = sum_d pi_d Q[d, e] and f(p) = p log max(p, eps),
 * for a row b of domain d with c_d rows in the batch, dQ[d, e] / dprobs[b, e] = (1 - m) / c_d, so
 * for any alpha H(E) + beta H(E|D):
 *   d / dprobs[b, e] = -pi_d (1 - m) / c_d * (alpha f'(P(e)) + beta f'(Q[d, e])),
 *   f'(p) = log max(p, eps) + [p >= eps]  (the gradient of tfjs's clipByValue is 0 below eps).
 *
 * Internal to this package (not exported from its index): the caller owns and disposes the
 * returned `conditional` and `domainPrior`, which live outside any `tf.tidy`.
 *
 * @param probs `[B, N]` float32 rows of the gate's softmax.
 * @param domainIds int32 `[B]` in `[0, numDomains)` (validated by the caller).
 */
export function mutualInformationTerms(
  probs: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  numDomains: number,
  coefficients: MutualInformationCoefficients,
  blend?: MutualInformationBlend,
): MutualInformationTerms {
  const momentum = blend?.momentum ?? 0;
  const { weight, expertEntropyWeight, conditionalEntropyWeight } = coefficients;
  let conditional: tf.Tensor2D | null = null;
  let domainPrior: tf.Tensor1D | null = null;
  const fused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const rows = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    // Recorded ops stop here: what follows runs once, untaped.
    const batchEstimates = domainExpertStatistics(rows, domainIds, numDomains);
    let used = batchEstimates.conditional; // Q [D, N]
    let prior = batchEstimates.domainPrior; // pi [D]
    if (blend !== undefined) {
      const present = tf.reshape(batchEstimates.present, [numDomains, 1]); // [D, 1]
      const blended = tf.add(tf.mul(blend.conditional, momentum), tf.mul(used, 1 - momentum));
      used = tf.add(tf.mul(blended, present), tf.mul(blend.conditional, tf.sub(1, present))) as tf.Tensor2D; // absent: stored row
      prior = tf.add(tf.mul(blend.domainPrior, momentum), tf.mul(prior, 1 - momentum)) as tf.Tensor1D;
    }
    const parts = entropyParts(prior, used);
    const loss = tf.mul(
      tf.neg(
        tf.sub(
          tf.mul(parts.expertEntropy, expertEntropyWeight),
          tf.mul(parts.conditionalEntropy, conditionalEntropyWeight),
        ),
      ),
      weight,
    );
    conditional = tf.keep(used);
    domainPrior = tf.keep(prior);
    const derivative = (p: tf.Tensor, logP: tf.Tensor) =>
      tf.add(logP, tf.cast(tf.greaterEqual(p, LOG_EPSILON), "float32")); // f'(p)
    // pi_d (1 - m) / c_d per domain [D, 1] (0 for absent domains, which have no rows anyway).
    const rowScale = tf.div(
      tf.mul(tf.reshape(prior, [numDomains, 1]), 1 - momentum),
      tf.reshape(tf.maximum(batchEstimates.counts, 1), [numDomains, 1]),
    );
    save([
      derivative(parts.marginal, parts.logMarginal),
      derivative(used, parts.logConditional),
      rowScale,
      domainIds,
    ]);
    return {
      value: tf.stack([
        loss,
        parts.mutualInformation,
        parts.expertEntropy,
        parts.conditionalEntropy,
      ]) as tf.Tensor1D, // [4]
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [marginalDerivative, conditionalDerivative, scale, savedIds] = saved as [
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor1D,
        ];
        // alpha, beta: the weights of H(E) and H(E|D) in dy . [loss, I, H(E), H(E|D)].
        const alpha = tf.sum(tf.mul(dy, tf.tensor1d([-weight * expertEntropyWeight, 1, 1, 0])));
        const beta = tf.sum(tf.mul(dy, tf.tensor1d([weight * conditionalEntropyWeight, -1, 0, 1])));
        const perDomainGradient = tf.neg(
          tf.mul(scale, tf.add(tf.mul(alpha, marginalDerivative), tf.mul(beta, conditionalDerivative))),
        ); // [D, N]
        return tf.gather(perDomainGradient, savedIds) as tf.Tensor2D; // [B, N]: row b takes its domain's row
      },
    };
  });
  const terms = fused(probs) as tf.Tensor1D;
  return { terms, conditional: conditional!, domainPrior: domainPrior! };
}
