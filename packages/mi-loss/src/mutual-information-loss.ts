import { assertInteger, assertKnownKeys, assertNumber, ConfigError } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { assertMutualInformationInputs, mutualInformationTerms } from "./mutual-information.js";

/** Arguments of {@link MutualInformationLoss}. */
export interface MutualInformationLossArgs {
  /** Number of domains D. */
  numDomains: number;
  /** Number of experts N (columns of the gate's `probs`). */
  numExperts: number;
  /** lambda, the weight of the whole term in the training loss. Defaults to 0.01. */
  weight?: number;
  /** Weight on H(E) (expert balance). Defaults to 1. */
  expertEntropyWeight?: number;
  /** Weight on H(E|D) (per-domain sharpness). Defaults to 1. */
  conditionalEntropyWeight?: number;
  /**
   * Momentum m in [0, 1) of an exponential moving average of P(e|d) and P(d) across batches.
   * Defaults to 0 (off: batch estimates only).
   */
  movingAverage?: number;
  /** Layer name. */
  name?: string;
}

/** What {@link MutualInformationLoss.compute} returns (all scalars, nats). */
export interface MutualInformationLossOutput {
  /** `weight * -(expertEntropyWeight * H(E) - conditionalEntropyWeight * H(E|D))`: add it to the loss. */
  loss: tf.Scalar;
  /** I(D;E) = H(E) - H(E|D) of the estimate used. */
  mutualInformation: tf.Scalar;
  /** H(E). */
  expertEntropy: tf.Scalar;
  /** H(E|D). */
  conditionalEntropy: tf.Scalar;
}

const MI_LOSS_KEYS = [
  "numDomains",
  "numExperts",
  "weight",
  "expertEntropyWeight",
  "conditionalEntropyWeight",
  "movingAverage",
  "name",
];

/**
 * CESAA's AEA term (Dong et al., 2024): maximise the mutual information I(D;E) between the
 * domain and the expert choice, estimated from the gate's full softmax, by adding
 * `weight * -(a * H(E) - b * H(E|D))` to the loss (a = b = 1 gives `-weight * I(D;E)`).
 *
 * With `movingAverage` m > 0 the layer keeps non-trainable weights `domain_expert_average`
 * `[D, N]` (P(e|d), initially uniform 1/N) and `domain_average` `[D]` (P(d), initially 1/D).
 * In training the estimate is `m * stored + (1 - m) * batch` (gradient only through the batch
 * part) and is written back; domains absent from the batch keep their stored P(e|d) row. At
 * inference the same blend is used but nothing is written. The state is saved with the layer.
 *
 * @example
 * const aea = new MutualInformationLoss({ numDomains: 3, numExperts: 8, weight: 0.01, movingAverage: 0.9 });
 * const { loss, mutualInformation } = aea.compute(routing.probs, batch.domainIds, true);
 */
export class MutualInformationLoss extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecMutualInformationLoss";
  readonly numDomains: number;
  readonly numExperts: number;
  readonly weight: number;
  readonly expertEntropyWeight: number;
  readonly conditionalEntropyWeight: number;
  readonly movingAverage: number;
  /** Input shape seen by `build` (`[[B, N], [B]]`), kept for save/load. */
  builtInputShape: number[][] | null = null;
  private domainExpertAverage: LayerVariable | null = null; // [D, N]
  private domainAverage: LayerVariable | null = null; // [D]

  constructor(args: MutualInformationLossArgs) {
    assertKnownKeys("MutualInformationLoss args", args ?? {}, MI_LOSS_KEYS);
    assertInteger("MutualInformationLoss numDomains", args?.numDomains, 1);
    assertInteger("MutualInformationLoss numExperts", args.numExperts, 1);
    const weight = args.weight ?? 0.01;
    const expertEntropyWeight = args.expertEntropyWeight ?? 1;
    const conditionalEntropyWeight = args.conditionalEntropyWeight ?? 1;
    const movingAverage = args.movingAverage ?? 0;
    assertNumber("MutualInformationLoss weight", weight, { min: 0 });
    assertNumber("MutualInformationLoss expertEntropyWeight", expertEntropyWeight, { min: 0 });
    assertNumber("MutualInformationLoss conditionalEntropyWeight", conditionalEntropyWeight, { min: 0 });
    if (typeof movingAverage !== "number" || !(movingAverage >= 0 && movingAverage < 1)) {
      throw new ConfigError(
        `MutualInformationLoss movingAverage must be a number in [0, 1), received ${String(movingAverage)}`,
      );
    }
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numDomains = args.numDomains;
    this.numExperts = args.numExperts;
    this.weight = weight;
    this.expertEntropyWeight = expertEntropyWeight;
    this.conditionalEntropyWeight = conditionalEntropyWeight;
    this.movingAverage = movingAverage;
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    this.builtInputShape = shapes.map((shape) => [...shape]);
    if (this.movingAverage > 0) {
      this.domainExpertAverage = this.addWeight(
        "domain_expert_average",
        [this.numDomains, this.numExperts],
        "float32",
        initializers.constant({ value: 1 / this.numExperts }),
        undefined,
        false,
      );
      this.domainAverage = this.addWeight(
        "domain_average",
        [this.numDomains],
        "float32",
        initializers.constant({ value: 1 / this.numDomains }),
        undefined,
        false,
      );
    }
    this.built = true;
  }

  override computeOutputShape(_inputShape: number[] | number[][]): number[][] {
    return [[], [], [], []];
  }

  /** Inputs `[probs, domainIds]`; outputs `[loss, mutualInformation, expertEntropy, conditionalEntropy]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor[] {
    const [probs, domainIds] = inputs as [tf.Tensor2D, tf.Tensor1D];
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      const stored =
        this.domainExpertAverage && this.domainAverage
          ? {
              momentum: this.movingAverage,
              conditional: this.domainExpertAverage.read() as tf.Tensor2D,
              domainPrior: this.domainAverage.read() as tf.Tensor1D,
            }
          : undefined;
      const { terms, conditional, domainPrior } = mutualInformationTerms(
        probs,
        domainIds,
        this.numDomains,
        {
          weight: this.weight,
          expertEntropyWeight: this.expertEntropyWeight,
          conditionalEntropyWeight: this.conditionalEntropyWeight,
        },
        stored,
      );
      try {
        if (stored !== undefined && training) {
          this.domainExpertAverage!.write(conditional);
          this.domainAverage!.write(domainPrior);
        }
      } finally {
        tf.dispose([conditional, domainPrior]);
      }
      return tf.unstack(terms); // loss, I(D;E), H(E), H(E|D)
    });
  }

  /**
   * The AEA loss and its parts for one batch.
   * @param probs `[B, numExperts]` float32, the gate's full softmax (`Routing.probs`).
   * @param domainIds int32 `[B]` in `[0, numDomains)`.
   * @param training updates the moving averages (when enabled).
   */
  compute(probs: tf.Tensor2D, domainIds: tf.Tensor1D, training = false): MutualInformationLossOutput {
    assertMutualInformationInputs(this.name, probs, domainIds, this.numDomains, this.numExperts);
    // Once built, `call` directly: Layer.apply's bookkeeping cost more than the term itself.
    const [loss, mutualInformation, expertEntropy, conditionalEntropy] = (
      this.built ? this.call([probs, domainIds], { training }) : this.apply([probs, domainIds], { training })
    ) as tf.Scalar[];
    return {
      loss: loss!,
      mutualInformation: mutualInformation!,
      expertEntropy: expertEntropy!,
      conditionalEntropy: conditionalEntropy!,
    };
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numDomains: this.numDomains,
      numExperts: this.numExperts,
      weight: this.weight,
      expertEntropyWeight: this.expertEntropyWeight,
      conditionalEntropyWeight: this.conditionalEntropyWeight,
      movingAverage: this.movingAverage,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const {
      name,
      numDomains,
      numExperts,
      weight,
      expertEntropyWeight,
      conditionalEntropyWeight,
      movingAverage,
    } = config as unknown as MutualInformationLossArgs;
    return new cls({
      name,
      numDomains,
      numExperts,
      weight,
      expertEntropyWeight,
      conditionalEntropyWeight,
      movingAverage,
    });
  }
}
serialization.registerClass(MutualInformationLoss);
