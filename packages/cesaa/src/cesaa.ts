import { ExpertPool, mixExperts, type Routing } from "@mdrec/experts";
import { SoftmaxGate, TopKGate } from "@mdrec/gating";
import { MutualInformationLoss } from "@mdrec/mi-loss";
import { type DomainTowers, type ExpertCounts, type ModelOutput, MultiDomainModelBase } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { type CesaaOptions, type ResolvedCesaaOptions, resolveCesaaOptions } from "./options.js";

/**
 * CESAA (Dong et al., 2024, "Adaptive Conditional Expert Selection Network for Multi-domain
 * Recommendation"): conditional expert selection (CES) plus adaptive expert aggregation (AEA).
 *
 * ```
 * x        = embed(batch)                                   // [B, inputDim]
 * shared   = mean_s Es_s(x)   (or a learned softmax mix)    // [B, d]
 * routing  = TopKGate.route(x, d)                           // l = W_g [x ; emb(d)] (+ noise), top k of N
 * specific = sum_{i in topk} w_i E_i(x)                     // sparse: only the k chosen experts run
 * h        = shared + specific
 * logits   = Tower_d(h)
 * aux.mi   = lambda * -I(D;E)  from routing.probs           // AEA
 * ```
 * With S = 0 shared experts, h = specific. Every block comes from `@mdrec/experts`,
 * `@mdrec/gating`, `@mdrec/mi-loss` and `@mdrec/models`.
 *
 * @example
 * const model = new Cesaa({ features, numDomains: 4, numSharedExperts: 2, numSpecificExperts: 8, k: 2, seed: 1 });
 * const { logits, routing, auxLosses } = model.call(batch, { training: true });
 */
export class Cesaa extends MultiDomainModelBase<CesaaOptions> {
  declare readonly options: ResolvedCesaaOptions;
  /** The S domain-shared experts (null when S = 0). */
  readonly sharedExperts: ExpertPool | null;
  /** Mixes the shared experts when `sharedMixing` is `"learned"`. */
  readonly sharedGate: SoftmaxGate | null;
  /** The N domain-specific experts the CES gate chooses from. */
  readonly specificExperts: ExpertPool;
  /** The CES gate: domain-conditioned noisy top-k over the specific experts. */
  readonly gate: TopKGate;
  /** The AEA term (null when `mi.weight` is 0). */
  readonly aea: MutualInformationLoss | null;
  private readonly towers: DomainTowers;

  constructor(options: CesaaOptions) {
    super("cesaa", resolveCesaaOptions(options));
    const { numSharedExperts, numSpecificExperts, k, expertUnits, activation, dropout, numDomains } =
      this.options;
    const { gate, mi, sharedMixing, loadBalance } = this.options;
    const pool = (numExperts: number, name: string) =>
      this.track(
        new ExpertPool({ numExperts, units: expertUnits, activation, dropout, seed: this.childSeed(), name }),
      );
    this.sharedExperts = numSharedExperts > 0 ? pool(numSharedExperts, "cesaa/shared_experts") : null;
    this.sharedGate =
      numSharedExperts > 0 && sharedMixing === "learned"
        ? this.track(
            new SoftmaxGate({
              numExperts: numSharedExperts,
              seed: this.childSeed(),
              name: "cesaa/shared_gate",
            }),
          )
        : null;
    this.specificExperts = pool(numSpecificExperts, "cesaa/specific_experts");
    this.gate = this.track(
      new TopKGate({
        numExperts: numSpecificExperts,
        k,
        noise: gate.noise,
        renormalize: gate.renormalize,
        domainConditioning: gate.domainConditioning,
        numDomains,
        domainEmbeddingDim: gate.domainEmbeddingDim,
        loadBalance,
        seed: this.childSeed(),
        name: "cesaa/ces_gate",
      }),
    );
    // With lambda = 0 the term is never computed, so no untrained state is kept or saved.
    this.aea =
      mi.weight > 0
        ? this.track(
            new MutualInformationLoss({
              numDomains,
              numExperts: numSpecificExperts,
              weight: mi.weight,
              expertEntropyWeight: mi.expertEntropyWeight,
              conditionalEntropyWeight: mi.conditionalEntropyWeight,
              movingAverage: mi.movingAverage,
              name: "cesaa/aea",
            }),
          )
        : null;
    this.towers = this.createTowers(this.options);
  }

  /** `S + k` experts per row with sparse dispatch (`S + N` with dense); `S + N` in total. */
  protected override expertCounts(): ExpertCounts {
    const { numSharedExperts, numSpecificExperts, k, dispatch } = this.options;
    return {
      expertsPerRow: numSharedExperts + (dispatch === "sparse" ? k : numSpecificExperts),
      totalExperts: numSharedExperts + numSpecificExperts,
    };
  }

  /**
   * `output.routing[0]` is the CES gate's routing over the N specific experts; with
   * `sharedMixing: "learned"` the shared gate's routing over the S shared experts follows.
   */
  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const routing = this.gate.route(x, domainIds, training); // indices [B, k] over N specific experts
    const sparse = this.options.dispatch === "sparse";
    const allRouting: Routing[] = [routing];
    // The specific experts' mixture on its own: each expert on its rows, or all on every row.
    const specificMixture = (): tf.Tensor2D =>
      sparse
        ? this.specificExperts.sparse(x, routing, training)
        : mixExperts(this.specificExperts.dense(x, training), routing); // [B, d]
    let h: tf.Tensor2D; // [B, d]
    if (this.sharedExperts) {
      const sharedRouting = this.sharedGate
        ? this.sharedGate.route(x, domainIds, training)
        : uniformRouting(x.shape[0], this.sharedExperts.numExperts);
      if (this.sharedGate) allRouting.push(sharedRouting as Routing);
      // Every row routes to all S shared experts: the routed pool computes sum_s w_s Es_s(x)
      // in one pass (each expert on one thread), the same sum as mixing all S dense outputs.
      // With sparse dispatch both pools run in one call, their experts sharing the threads.
      if (sparse) {
        h = ExpertPool.sparseSum(
          x,
          [
            { pool: this.specificExperts, routing },
            { pool: this.sharedExperts, routing: sharedRouting },
          ],
          training,
        );
      } else {
        const specific = specificMixture(); // first, as before: dropout draws its seeds in order
        const shared = this.sharedExperts.sparse(x, sharedRouting, training); // [B, d]
        h = tf.add(shared, specific) as tf.Tensor2D;
      }
    } else {
      h = specificMixture();
    }
    const logits = this.towers.forward(h, domainIds, training); // [B, numTasks]
    const auxLosses = this.gate.auxiliaryLosses(routing);
    if (this.aea) auxLosses.mi = this.aea.compute(routing.probs, domainIds, training).loss;
    return { logits, routing: allRouting, auxLosses };
  }
}

/** Every row mixes all `numExperts` experts with weight `1 / numExperts`: the mean of their outputs. */
function uniformRouting(rows: number, numExperts: number): Pick<Routing, "indices" | "weights"> {
  // Written on the host: range / tile kernels here ran on every training step, on the tape.
  const indices = new Int32Array(rows * numExperts);
  for (let slot = 0; slot < indices.length; slot++) indices[slot] = slot % numExperts;
  return {
    indices: tf.tensor2d(indices, [rows, numExperts], "int32"), // [B, S]
    weights: tf.fill([rows, numExperts], 1 / numExperts) as tf.Tensor2D, // [B, S]
  };
}
