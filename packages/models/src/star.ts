import { assertNumber, FeatureEmbedding, Mlp } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { MultiDomainModelBase } from "./base.js";
import { PartitionedNorm } from "./layers/partitioned-norm.js";
import { StarFcn } from "./layers/star-fcn.js";
import type { BaseModelOptions, ModelOutput } from "./model.js";
import { assertMlpOptions, assertUnits, MLP_DEFAULTS, type MlpOptions, resolveOptions } from "./options.js";

/** Options of {@link Star}. */
export interface StarOptions extends BaseModelOptions, MlpOptions {
  /**
   * Hidden widths of the star-topology FCN; a last star layer with one linear output per task
   * is appended. Defaults to `[128, 64, 32]` (the Scenario-Wise-Rec setting).
   */
  fcnUnits?: number[];
  /** Momentum of the partitioned normalisation's per-domain moving statistics. Defaults to 0.99. */
  normMomentum?: number;
  /** Hidden widths of the auxiliary network; `[]` makes it linear. Defaults to `[32]`. */
  auxiliaryUnits?: number[];
  /**
   * Feed the auxiliary network `[x ; domain embedding]` instead of the domain embedding alone.
   * Defaults to false (the domain indicator only, as in the paper without domain-level features).
   */
  auxiliaryUsesFeatures?: boolean;
}

/**
 * STAR (Sheng et al., CIKM 2021): partitioned normalisation of the embedded input, a
 * star-topology FCN whose domain-d weights are `W_shared * W_d` and `b_shared + b_d`, and an
 * auxiliary network on the domain indicator whose logit is added:
 * `logit = StarFcn_d(PN_d(x)) + Aux(emb(d))`.
 *
 * @example
 * const model = new Star({ features, numDomains: 3, fcnUnits: [64, 32], seed: 1 });
 */
export class Star extends MultiDomainModelBase<StarOptions> {
  private readonly norm: PartitionedNorm;
  private readonly fcn: StarFcn;
  private readonly domainEmbedding: FeatureEmbedding;
  private readonly auxiliary: Mlp;

  constructor(options: StarOptions) {
    const where = "star options";
    super(
      "star",
      resolveOptions(where, options, {
        fcnUnits: [128, 64, 32],
        normMomentum: 0.99,
        auxiliaryUnits: [32],
        auxiliaryUsesFeatures: false,
        ...MLP_DEFAULTS,
      }),
    );
    const { fcnUnits, normMomentum, auxiliaryUnits, activation, dropout, numDomains, numTasks } =
      this.options;
    assertUnits(`${where}.fcnUnits`, fcnUnits, true);
    assertUnits(`${where}.auxiliaryUnits`, auxiliaryUnits, true);
    assertNumber(`${where}.normMomentum`, normMomentum, { min: 0, max: 1 });
    assertMlpOptions(where, this.options);
    this.norm = this.track(new PartitionedNorm({ numDomains, momentum: normMomentum, name: "star/norm" }));
    this.fcn = this.track(
      new StarFcn({
        numDomains,
        units: [...fcnUnits, numTasks],
        activation,
        outputActivation: "linear",
        dropout,
        seed: this.childSeed(),
        name: "star/fcn",
      }),
    );
    this.domainEmbedding = this.track(
      new FeatureEmbedding({
        features: [{ kind: "categorical", name: "domain", vocabularySize: numDomains }],
        embeddingDim: this.options.embeddingDim,
        validateIds: false,
        seed: this.childSeed(),
        name: "star/domain_embedding",
      }),
    );
    this.auxiliary = this.track(
      new Mlp({
        units: [...auxiliaryUnits, numTasks],
        activation,
        outputActivation: "linear",
        seed: this.childSeed(),
        name: "star/auxiliary",
      }),
    );
  }

  /** The star-topology FCN, e.g. to inspect a domain's effective weights. */
  get starFcn(): StarFcn {
    return this.fcn;
  }

  /** The partitioned normalisation of the embedded input. */
  get partitionedNorm(): PartitionedNorm {
    return this.norm;
  }

  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const normalized = this.norm.normalize(x, domainIds, training); // [B, inputDim]
    const main = this.fcn.forward(normalized, domainIds, training); // [B, T]
    const domain = this.domainEmbedding.embed({ domain: domainIds }); // [B, embeddingDim]
    const auxiliaryInput = this.options.auxiliaryUsesFeatures ? tf.concat([x, domain], 1) : domain; // [B, e (+ inputDim)]
    const auxiliary = this.auxiliary.forward(auxiliaryInput as tf.Tensor2D, training); // [B, T]
    return { logits: tf.add(main, auxiliary), routing: [], auxLosses: {} };
  }
}
