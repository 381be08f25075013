import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertTensor,
  disposeLayerWeights,
  gatherRows,
} from "@mdrec/core";
import { oneHotFloat } from "@mdrec/gating";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";

/** Arguments of {@link PartitionedNorm}. */
export interface PartitionedNormArgs {
  /** Number of domains D; domain ids are in `[0, D)`. */
  numDomains: number;
  /** Momentum of the per-domain moving statistics. Defaults to 0.99. */
  momentum?: number;
  /** Added to the variance before the square root. Defaults to 1e-3. */
  epsilon?: number;
  /** Layer name. */
  name?: string;
}

const PARTITIONED_NORM_KEYS = ["numDomains", "momentum", "epsilon", "name"];

/**
 * STAR's partitioned normalisation (Sheng et al., CIKM 2021):
 * `z' = (gamma * gamma_d) (z - mu) / sqrt(var + epsilon) + (beta + beta_d)` for a row of domain d.
 *
 * Training uses the statistics of the rows of the row's own domain in the batch (the paper
 * trains on single-domain batches; with mixed batches the per-domain batch statistics are the
 * equivalent, and they match what inference uses) and updates that domain's moving statistics;
 * domains absent from the batch keep theirs. Inference uses the row's domain's moving statistics.
 * Variances are population (biased) variances. gamma, gamma_d start at 1 and beta, beta_d at 0.
 *
 * @example
 * const norm = new PartitionedNorm({ numDomains: 3 });
 * const normalized = norm.normalize(z, domainIds, true); // [B, units]
 */
export class PartitionedNorm extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecPartitionedNorm";
  readonly numDomains: number;
  readonly momentum: number;
  readonly epsilon: number;
  /** Input shapes seen by `build`, kept for save/load. */
  builtInputShape: number[][] | null = null;
  private gamma!: LayerVariable; // [units]
  private beta!: LayerVariable; // [units]
  private domainGamma!: LayerVariable; // [D, units]
  private domainBeta!: LayerVariable; // [D, units]
  private movingMean!: LayerVariable; // [D, units]
  private movingVariance!: LayerVariable; // [D, units]

  constructor(args: PartitionedNormArgs) {
    assertKnownKeys("PartitionedNorm args", args ?? {}, PARTITIONED_NORM_KEYS);
    assertInteger("PartitionedNorm numDomains", args?.numDomains, 1);
    const momentum = args.momentum ?? 0.99;
    assertNumber("PartitionedNorm momentum", momentum, { min: 0, max: 1 });
    const epsilon = args.epsilon ?? 1e-3;
    assertNumber("PartitionedNorm epsilon", epsilon, { min: 0, exclusiveMin: true });
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numDomains = args.numDomains;
    this.momentum = momentum;
    this.epsilon = epsilon;
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    const units = shapes[0]![shapes[0]!.length - 1];
    assertInteger("PartitionedNorm input last dimension", units, 1);
    this.builtInputShape = shapes.map((shape) => [...shape]);
    const perDomain = [this.numDomains, units];
    this.gamma = this.addWeight("gamma", [units], "float32", initializers.ones());
    this.beta = this.addWeight("beta", [units], "float32", initializers.zeros());
    this.domainGamma = this.addWeight("domain_gamma", perDomain, "float32", initializers.ones());
    this.domainBeta = this.addWeight("domain_beta", perDomain, "float32", initializers.zeros());
    this.movingMean = this.addWeight(
      "moving_mean",
      perDomain,
      "float32",
      initializers.zeros(),
      undefined,
      false,
    );
    this.movingVariance = this.addWeight(
      "moving_variance",
      perDomain,
      "float32",
      initializers.ones(),
      undefined,
      false,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[] {
    return [...((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[])];
  }

  /** Inputs: `[z [B, units], domainIds int32 [B]]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const [z, domainIds] = inputs as [tf.Tensor2D, tf.Tensor1D];
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      const { mean, variance } = training
        ? this.batchStatistics(z, domainIds)
        : {
            mean: this.movingMean.read() as tf.Tensor2D,
            variance: this.movingVariance.read() as tf.Tensor2D,
          };
      const centered = tf.sub(z, gatherRows(mean, domainIds)); // [B, units]
      const scaled = tf.div(centered, tf.sqrt(tf.add(gatherRows(variance, domainIds), this.epsilon))); // [B, units]
      const gamma = tf.mul(this.gamma.read(), gatherRows(this.domainGamma.read() as tf.Tensor2D, domainIds)); // [B, units]
      const beta = tf.add(this.beta.read(), gatherRows(this.domainBeta.read() as tf.Tensor2D, domainIds)); // [B, units]
      return tf.add(tf.mul(gamma, scaled), beta);
    });
  }

  /** Per-domain mean and variance over the batch rows of each domain; updates the moving statistics. */
  private batchStatistics(
    z: tf.Tensor2D,
    domainIds: tf.Tensor1D,
  ): { mean: tf.Tensor2D; variance: tf.Tensor2D } {
    const membership = tf.transpose(oneHotFloat(domainIds, this.numDomains)) as tf.Tensor2D; // [D, B]
    const counts = tf.reshape(tf.sum(membership, 1), [this.numDomains, 1]); // [D, 1]
    const divisor = tf.maximum(counts, 1); // [D, 1]
    const mean = tf.div(tf.matMul(membership, z), divisor) as tf.Tensor2D; // [D, units]
    const squaredDeviation = tf.square(tf.sub(z, gatherRows(mean, domainIds))); // [B, units]
    const variance = tf.div(tf.matMul(membership, squaredDeviation as tf.Tensor2D), divisor) as tf.Tensor2D; // [D, units]
    const present = tf.greater(counts, 0); // [D, 1]
    // Moving statistics are written, not differentiated: the assign is off the loss path.
    const update = (variable: LayerVariable, value: tf.Tensor) => {
      const blended = tf.add(tf.mul(variable.read(), this.momentum), tf.mul(value, 1 - this.momentum));
      variable.write(tf.where(tf.broadcastTo(present, variable.shape as number[]), blended, variable.read()));
    };
    update(this.movingMean, mean);
    update(this.movingVariance, variance);
    return { mean, variance };
  }

  /**
   * Typed forward pass. Builds the layer on first use.
   * @param z `[B, units]` float32.
   * @param domainIds int32 `[B]` in `[0, numDomains)`.
   * @returns `[B, units]`.
   */
  normalize(z: tf.Tensor2D, domainIds: tf.Tensor1D, training = false): tf.Tensor2D {
    assertTensor(`${this.name} input z`, z, { rank: 2, dtype: "float32" });
    assertTensor(`${this.name} domainIds`, domainIds, { rank: 1, dtype: "int32", shape: [z.shape[0]] });
    return this.apply([z, domainIds], { training }) as tf.Tensor2D;
  }

  /** Disposes the weights, also for a layer built by `loadLayer` and never called. */
  override dispose(): ReturnType<layers.Layer["dispose"]> {
    return disposeLayerWeights(this, () => super.dispose());
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numDomains: this.numDomains,
      momentum: this.momentum,
      epsilon: this.epsilon,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, numDomains, momentum, epsilon } = config as unknown as PartitionedNormArgs;
    return new cls({ name, numDomains, momentum, epsilon });
  }
}
serialization.registerClass(PartitionedNorm);
