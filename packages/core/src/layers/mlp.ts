import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { ConfigError } from "../errors.js";
import { type Activation, applyActivation, assertActivation } from "../ops/activations.js";
import { denseActivation } from "../ops/dense.js";
import { deriveSeed, nextSeed } from "../random.js";
import { assertInteger, assertKnownKeys, assertNumber, assertTensor, formatValue } from "../validate.js";
import { disposeLayerWeights } from "./dispose.js";

/** Arguments of {@link Mlp}. */
export interface MlpArgs {
  /** Width of each dense layer, e.g. `[256, 128]`. At least one. */
  units: number[];
  /** Activation of the hidden layers. Defaults to `"relu"`. */
  activation?: Activation;
  /** Activation of the last layer. Defaults to `activation`. */
  outputActivation?: Activation;
  /**
   * Dropout rate after every layer's activation while training, in [0, 1). Defaults to 0.
   * Masks are drawn from the global generator (`setGlobalSeed`), so a run is reproducible and
   * its random state fits in a checkpoint (`globalRandomGenerator().getState()`).
   */
  dropout?: number;
  /**
   * Batch normalisation between each dense layer and its activation (epsilon 1e-3): batch
   * statistics while training, moving statistics at inference. Defaults to false.
   */
  batchNorm?: boolean;
  /**
   * Momentum of the batch-norm moving statistics, in [0, 1]:
   * `moving = momentum * moving + (1 - momentum) * batch` after every training call. Defaults to 0.99.
   */
  batchNormMomentum?: number;
  /** Seed of the weight initialisers. Defaults to a draw from the global generator (`setGlobalSeed`). */
  seed?: number;
  /** Layer name (weights are named `<name>/kernel_0`, ...). */
  name?: string;
  /** Whether the weights train. Defaults to true. */
  trainable?: boolean;
}

const MLP_KEYS = [
  "units",
  "activation",
  "outputActivation",
  "dropout",
  "batchNorm",
  "batchNormMomentum",
  "seed",
  "name",
  "trainable",
];

interface DenseWeights {
  kernel: LayerVariable; // [in, out]
  bias: LayerVariable; // [out]
  gamma?: LayerVariable; // [out]
  beta?: LayerVariable; // [out]
  movingMean?: LayerVariable; // [out]
  movingVariance?: LayerVariable; // [out]
}

/**
 * A multi-layer perceptron: `[B, dIn] -> [B, units.at(-1)]`. Each layer is
 * dense -> (batch norm) -> activation -> (dropout while training); Glorot-uniform kernels, zero
 * biases. The building block of experts, towers and gates.
 *
 * @example
 * const mlp = new Mlp({ units: [64, 32], dropout: 0.1 });
 * const y = mlp.forward(tf.randomNormal([8, 16]), true); // [8, 32]
 */
export class Mlp extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecMlp";
  /** Width of each dense layer. */
  readonly units: number[];
  /** Activation of the hidden layers. */
  readonly activation: Activation;
  /** Activation of the last layer. */
  readonly outputActivation: Activation;
  /** Dropout rate while training. */
  readonly dropout: number;
  /** Whether batch norm is on. */
  readonly batchNorm: boolean;
  /** Momentum of the batch-norm moving statistics. */
  readonly batchNormMomentum: number;
  /** Seed of the weight initialisers. */
  readonly seed: number;
  /** Input shape seen by `build`, kept for save/load. */
  builtInputShape: number[] | null = null;
  private dense: DenseWeights[] = [];

  constructor(args: MlpArgs) {
    assertKnownKeys("Mlp args", args ?? {}, MLP_KEYS);
    const units = args?.units;
    if (!Array.isArray(units) || units.length === 0) {
      throw new ConfigError(
        `Mlp units must be a non-empty array of positive integers, received ${formatValue(units)}`,
      );
    }
    units.forEach((width, index) => {
      assertInteger(`Mlp units[${index}]`, width, 1);
    });
    const activation = args.activation ?? "relu";
    assertActivation("Mlp activation", activation);
    const outputActivation = args.outputActivation ?? activation;
    assertActivation("Mlp outputActivation", outputActivation);
    const dropout = args.dropout ?? 0;
    assertNumber("Mlp dropout", dropout, { min: 0, max: 1, exclusiveMax: true });
    const batchNormMomentum = args.batchNormMomentum ?? 0.99;
    assertNumber("Mlp batchNormMomentum", batchNormMomentum, { min: 0, max: 1 });
    const batchNorm = args.batchNorm ?? false;
    if (typeof batchNorm !== "boolean") {
      throw new ConfigError(`Mlp batchNorm must be a boolean, received ${formatValue(batchNorm)}`);
    }
    const seed = args.seed ?? nextSeed();
    assertInteger("Mlp seed", seed, 0, Number.MAX_SAFE_INTEGER);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    if (args.trainable !== undefined) layerArgs.trainable = args.trainable;
    super(layerArgs);
    this.units = [...units];
    this.activation = activation;
    this.outputActivation = outputActivation;
    this.dropout = dropout;
    this.batchNorm = batchNorm;
    this.batchNormMomentum = batchNormMomentum;
    this.seed = seed;
  }

  override build(inputShape: tf.serialization.ConfigDictValue | number[] | number[][]): void {
    const shape = (
      Array.isArray((inputShape as unknown[])[0]) ? (inputShape as number[][])[0] : inputShape
    ) as number[];
    const inputDim = shape[shape.length - 1];
    assertInteger("Mlp input last dimension", inputDim, 1);
    this.builtInputShape = [...shape];
    let previous = inputDim;
    this.dense = this.units.map((width, index) => {
      const weights: DenseWeights = {
        kernel: this.addWeight(
          `kernel_${index}`,
          [previous, width],
          "float32",
          initializers.glorotUniform({ seed: deriveSeed(this.seed, index) }),
        ),
        bias: this.addWeight(`bias_${index}`, [width], "float32", initializers.zeros()),
      };
      if (this.batchNorm) {
        weights.gamma = this.addWeight(`gamma_${index}`, [width], "float32", initializers.ones());
        weights.beta = this.addWeight(`beta_${index}`, [width], "float32", initializers.zeros());
        weights.movingMean = this.addWeight(
          `moving_mean_${index}`,
          [width],
          "float32",
          initializers.zeros(),
          undefined,
          false,
        );
        weights.movingVariance = this.addWeight(
          `moving_variance_${index}`,
          [width],
          "float32",
          initializers.ones(),
          undefined,
          false,
        );
      }
      previous = width;
      return weights;
    });
    this.built = true;
  }

  override computeOutputShape(inputShape: number[]): number[] {
    return [...inputShape.slice(0, -1), this.units[this.units.length - 1]!];
  }

  /** Input `[B, dIn]`; `kwargs.training` turns on dropout and batch statistics. Prefer {@link Mlp.forward}. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      let hidden = x as tf.Tensor2D; // [B, dIn]
      this.dense.forEach((weights, index) => {
        const last = index === this.dense.length - 1;
        const activation = last ? this.outputActivation : this.activation;
        const kernel = weights.kernel.read() as tf.Tensor2D;
        if (weights.gamma) {
          // dense -> batch norm -> activation
          hidden = tf.add(tf.matMul(hidden, kernel), weights.bias.read()) as tf.Tensor2D; // [B, units[i]]
          hidden = applyActivation(this.normalize(hidden, weights, training), activation) as tf.Tensor2D;
        } else {
          hidden = denseActivation(hidden, kernel, weights.bias.read(), activation); // [B, units[i]]
        }
        if (training && this.dropout > 0)
          hidden = tf.dropout(hidden, this.dropout, undefined, nextSeed()) as tf.Tensor2D;
      });
      return hidden;
    });
  }

  /**
   * Typed forward pass. Builds the layer on first use; later calls must keep the same `dIn`.
   * @param x `[B, dIn]` float32.
   * @param training dropout on, batch statistics used and moving statistics updated. Defaults to false.
   * @returns `[B, units.at(-1)]`.
   */
  forward(x: tf.Tensor2D, training = false): tf.Tensor2D {
    const inputDim = this.builtInputShape ? this.builtInputShape[this.builtInputShape.length - 1]! : null;
    assertTensor(`${this.name} input`, x, { rank: 2, dtype: "float32", shape: [null, inputDim] });
    return this.apply(x, { training }) as tf.Tensor2D;
  }

  private normalize(hidden: tf.Tensor2D, weights: DenseWeights, training: boolean): tf.Tensor2D {
    const epsilon = 1e-3;
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (training) {
      const moments = tf.moments(hidden, 0); // [units]
      mean = moments.mean;
      variance = moments.variance;
      const momentum = this.batchNormMomentum;
      // Written like tfjs-layers' BatchNormalization: the assign is recorded by an active tape
      // but is not on the loss path, so it gets no gradient.
      const update = (variable: LayerVariable, value: tf.Tensor) =>
        variable.write(tf.add(tf.mul(variable.read(), momentum), tf.mul(value, 1 - momentum)));
      update(weights.movingMean!, mean);
      update(weights.movingVariance!, variance);
    } else {
      mean = weights.movingMean!.read();
      variance = weights.movingVariance!.read();
    }
    return tf.add(
      tf.mul(tf.div(tf.sub(hidden, mean), tf.sqrt(tf.add(variance, epsilon))), weights.gamma!.read()),
      weights.beta!.read(),
    ) as tf.Tensor2D;
  }

  /** Disposes the weights. Unlike tfjs's `Layer.dispose`, also works on a layer built by `loadLayer` and never called. */
  override dispose(): ReturnType<layers.Layer["dispose"]> {
    return disposeLayerWeights(this, () => super.dispose());
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      units: [...this.units],
      activation: this.activation,
      outputActivation: this.outputActivation,
      dropout: this.dropout,
      batchNorm: this.batchNorm,
      batchNormMomentum: this.batchNormMomentum,
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const {
      name,
      trainable,
      units,
      activation,
      outputActivation,
      dropout,
      batchNorm,
      batchNormMomentum,
      seed,
    } = config as unknown as MlpArgs;
    return new cls({
      name,
      trainable,
      units,
      activation,
      outputActivation,
      dropout,
      batchNorm,
      batchNormMomentum,
      seed,
    });
  }
}
serialization.registerClass(Mlp);
