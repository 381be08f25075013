import { assertIdsInRange, assertInteger, assertKnownKeys, ConfigError, Mlp, nextSeed } from "@mdrec/core";
import type { Routing } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { type LoadBalanceOptions, validateLoadBalance, weightedBalanceLosses } from "./balance.js";
import {
  assertGateInputs,
  ConditionedLinear,
  type ConditioningSettings,
  type DomainConditioning,
  validateConditioning,
} from "./conditioning.js";
import type { Gate } from "./gate.js";

/** Arguments of {@link SoftmaxGate}. */
export interface SoftmaxGateArgs {
  /** Number of experts N the gate mixes. */
  numExperts: number;
  /** How the row's domain enters the gate. Defaults to `"none"`. */
  domainConditioning?: DomainConditioning;
  /** Number of domains; required unless `domainConditioning` is `"none"`. */
  numDomains?: number;
  /** Width of the domain embedding for `"embedding"` conditioning. Defaults to 8. */
  domainEmbeddingDim?: number;
  /** Widths of an optional ReLU MLP applied before the linear logits. Defaults to none. */
  hiddenUnits?: number[];
  /** Weights of the load-balance auxiliary losses. Defaults to none. */
  loadBalance?: LoadBalanceOptions;
  /** Seed of the weight initialisers. Defaults to a draw from the global generator. */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const SOFTMAX_GATE_KEYS = [
  "numExperts",
  "domainConditioning",
  "numDomains",
  "domainEmbeddingDim",
  "hiddenUnits",
  "loadBalance",
  "seed",
  "name",
];

/**
 * The MMoE gate (Ma et al., 2018): `probs = softmax(W h)` over all N experts, where `h` is the
 * gate input (optionally domain-conditioned, optionally through a hidden MLP). Every row uses
 * every expert: `indices[b] = [0, ..., N-1]`, `weights = probs`, `k = N`.
 *
 * @example
 * const gate = new SoftmaxGate({ numExperts: 4, domainConditioning: "per-domain", numDomains: 3 });
 * const routing = gate.route(x, domainIds, true);
 * const mixed = mixExperts(pool.dense(x), routing); // [B, dOut]
 */
export class SoftmaxGate extends layers.Layer implements Gate {
  /** @nocollapse */
  static className = "MdrecSoftmaxGate";
  readonly numExperts: number;
  readonly conditioning: ConditioningSettings;
  readonly hiddenUnits: number[];
  readonly loadBalance: Required<LoadBalanceOptions>;
  readonly seed: number;
  /** Input shape seen by `build` (`[[B, dIn], [B]]`), kept for save/load. */
  builtInputShape: number[][] | null = null;
  private readonly head: ConditionedLinear;
  private readonly hidden: Mlp | null;
  private expertRows: Int32Array = new Int32Array(0); // host [B, N] rows of 0..N-1, grown on demand
  private inputDim: number | null = null;
  private disposingOwnWeights = false;

  constructor(args: SoftmaxGateArgs) {
    assertKnownKeys("SoftmaxGate args", args ?? {}, SOFTMAX_GATE_KEYS);
    assertInteger("SoftmaxGate numExperts", args?.numExperts, 1);
    const conditioning = validateConditioning("SoftmaxGate", args, "none");
    const hiddenUnits = args.hiddenUnits ?? [];
    if (!Array.isArray(hiddenUnits)) {
      throw new ConfigError(
        `SoftmaxGate hiddenUnits must be an array of positive integers, received ${JSON.stringify(hiddenUnits)}`,
      );
    }
    hiddenUnits.forEach((width, index) => {
      assertInteger(`SoftmaxGate hiddenUnits[${index}]`, width, 1);
    });
    const loadBalance = validateLoadBalance("SoftmaxGate", args.loadBalance);
    const seed = args.seed ?? nextSeed();
    assertInteger("SoftmaxGate seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numExperts = args.numExperts;
    this.conditioning = conditioning;
    this.hiddenUnits = [...hiddenUnits];
    this.loadBalance = loadBalance;
    this.seed = seed;
    this.head = new ConditionedLinear(conditioning, args.numExperts);
    this.hidden =
      hiddenUnits.length > 0
        ? new Mlp({ units: hiddenUnits, activation: "relu", seed: seed + 100, name: `${this.name}_hidden` })
        : null;
  }

  /** Every expert is used by every row. */
  get k(): number {
    return this.numExperts;
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    const inputDim = shapes[0]![shapes[0]!.length - 1];
    assertInteger("SoftmaxGate input last dimension", inputDim, 1);
    this.builtInputShape = shapes.map((shape) => [...shape]);
    this.inputDim = inputDim;
    const addWeight = (name: string, shape: number[], initializer: Parameters<typeof this.addWeight>[3]) =>
      this.addWeight(name, shape, "float32", initializer);
    this.head.buildEmbedding(addWeight, this.seed + 1);
    let featureDim = inputDim + this.head.inputExtension;
    if (this.hidden) {
      this.hidden.build([null as unknown as number, featureDim]);
      featureDim = this.hiddenUnits[this.hiddenUnits.length - 1]!;
    }
    this.head.buildKernel(addWeight, featureDim, this.seed);
    this.built = true;
  }

  override get trainableWeights(): LayerVariable[] {
    const own = super.trainableWeights;
    return this.hidden && !this.disposingOwnWeights ? [...own, ...this.hidden.trainableWeights] : own;
  }

  override set trainableWeights(weights: LayerVariable[]) {
    super.trainableWeights = weights;
  }

  override get nonTrainableWeights(): LayerVariable[] {
    const own = super.nonTrainableWeights;
    return this.hidden && !this.disposingOwnWeights ? [...own, ...this.hidden.nonTrainableWeights] : own;
  }

  override set nonTrainableWeights(weights: LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[][] {
    const batch = ((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[])[0]!;
    return [
      [batch, this.numExperts],
      [batch, this.numExperts],
      [batch, this.numExperts],
    ];
  }

  /** Inputs `[x, domainIds]`; outputs `[probs, indices, weights]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor[] {
    const [x, domainIds] = inputs as [tf.Tensor2D, tf.Tensor1D];
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      let features = this.head.conditionInput(x, domainIds); // [B, dIn (+ embedding)]
      if (this.hidden) features = this.hidden.apply(features, { training }) as tf.Tensor2D; // [B, hidden]
      const probs = tf.softmax(this.head.logits(features, domainIds)); // [B, N]
      const indices = tf.tensor2d(this.expertIds(x.shape[0]), [x.shape[0], this.numExperts], "int32"); // [B, N]
      // A separate handle, so disposing `probs` does not dispose `weights`.
      return [probs, indices, tf.clone(probs)];
    });
  }

  // Rows [0..N-1] for `batch` rows, built on the host: uploading them beats a Tile kernel (~1 ms
  // for 4096 rows on wasm) and nothing is kept on the device between calls.
  private expertIds(batch: number): Int32Array {
    const size = batch * this.numExperts;
    if (this.expertRows.length < size) {
      this.expertRows = Int32Array.from({ length: size }, (_, index) => index % this.numExperts);
    }
    return this.expertRows.subarray(0, size);
  }

  /**
   * Routes every row to all experts with softmax weights.
   * @returns `probs` `[B, N]`, `indices` int32 `[B, N]` = `[0..N-1]`, `weights` `[B, N]` = probs.
   */
  route(x: tf.Tensor2D, domainIds: tf.Tensor1D, training = false): Routing {
    assertGateInputs(this.name, x, domainIds, this.inputDim);
    if (this.conditioning.domainConditioning !== "none") {
      assertIdsInRange(`${this.name} domainIds`, domainIds, this.conditioning.numDomains!, "numDomains");
    }
    const [probs, indices, weights] = this.apply([x, domainIds], { training }) as tf.Tensor2D[];
    return { probs: probs!, indices: indices!, weights: weights!, allExperts: true };
  }

  /** Weighted load-balance losses of `routing` (`{}` when `loadBalance` is off). */
  auxiliaryLosses(routing: Routing): Record<string, tf.Scalar> {
    return weightedBalanceLosses(this.loadBalance, routing, this.numExperts);
  }

  override dispose(): ReturnType<layers.Layer["dispose"]> {
    // The base class disposes `this.weights`, which includes the child's: restrict it to our
    // own weights and let the child dispose its own.
    this.disposingOwnWeights = true;
    try {
      const result = super.dispose();
      if (result.refCountAfterDispose === 0) {
        this.hidden?.dispose();
      }
      return result;
    } finally {
      this.disposingOwnWeights = false;
    }
  }

  override getConfig(): serialization.ConfigDict {
    const config: serialization.ConfigDict = {
      ...super.getConfig(),
      numExperts: this.numExperts,
      domainConditioning: this.conditioning.domainConditioning,
      domainEmbeddingDim: this.conditioning.domainEmbeddingDim,
      hiddenUnits: [...this.hiddenUnits],
      loadBalance: { ...this.loadBalance },
      seed: this.seed,
    };
    if (this.conditioning.numDomains !== undefined) config.numDomains = this.conditioning.numDomains;
    return config;
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const {
      name,
      numExperts,
      domainConditioning,
      numDomains,
      domainEmbeddingDim,
      hiddenUnits,
      loadBalance,
      seed,
    } = config as unknown as SoftmaxGateArgs;
    const args: SoftmaxGateArgs = {
      name,
      numExperts,
      domainConditioning,
      domainEmbeddingDim,
      hiddenUnits,
      loadBalance,
      seed,
    };
    if (numDomains != null) args.numDomains = numDomains;
    return new cls(args);
  }
}
serialization.registerClass(SoftmaxGate);
