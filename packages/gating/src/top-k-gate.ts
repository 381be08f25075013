import {
  assertIdsInRange,
  assertInteger,
  assertKnownKeys,
  ConfigError,
  nextSeed,
  noisyGateLogits,
  standardNormal,
} from "@mdrec/core";
import type { Routing } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
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
import { selectTopK } from "./top-k.js";

/** Arguments of {@link TopKGate}. */
export interface TopKGateArgs {
  /** Number of experts N to choose from. */
  numExperts: number;
  /** Experts kept per row, an integer in [1, numExperts]. Defaults to 2. */
  k?: number;
  /** Add `N(0, 1) * softplus(W_n x)` to the logits while training. Defaults to true. */
  noise?: boolean;
  /**
   * Mixing weights = softmax over the k kept logits (true), or the full-softmax values of the
   * kept experts, not summing to 1 (false, Mod-Squad style). Defaults to true.
   */
  renormalize?: boolean;
  /** How the row's domain enters the gate. Defaults to `"embedding"`. */
  domainConditioning?: DomainConditioning;
  /** Number of domains; required unless `domainConditioning` is `"none"`. */
  numDomains?: number;
  /** Width of the domain embedding for `"embedding"` conditioning. Defaults to 8. */
  domainEmbeddingDim?: number;
  /** Weights of the load-balance auxiliary losses. Defaults to none. */
  loadBalance?: LoadBalanceOptions;
  /** Seed of the weight initialisers. Defaults to a draw from the global generator. */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const TOP_K_GATE_KEYS = [
  "numExperts",
  "k",
  "noise",
  "renormalize",
  "domainConditioning",
  "numDomains",
  "domainEmbeddingDim",
  "loadBalance",
  "seed",
  "name",
];

/**
 * Noisy top-k gate (Shazeer et al., 2017), domain-conditioned as CESAA's CES gate:
 * `l = W_g [x ; emb(d)]`, plus `N(0, 1) * softplus(W_n x)` while training (noise drawn with
 * `nextSeed()`, so `setGlobalSeed` makes it reproducible); the k largest logits per row are kept.
 *
 * - `probs` `[B, N]` is the softmax over all N logits, the noisy ones while training (the AEA
 *   and balance losses see what the routing saw) and the clean ones at inference.
 * - `indices` int32 `[B, k]`, largest first.
 * - `weights` `[B, k]`: softmax over the kept logits (`renormalize`), else the kept `probs`.
 *
 * `W_g` starts Glorot-uniform, `W_n` at zero (as in the paper), so the initial noise scale is
 * softplus(0) ~ 0.69.
 *
 * @example
 * const gate = new TopKGate({ numExperts: 8, k: 2, numDomains: 3 });
 * const routing = gate.route(x, domainIds, true);
 * const h = pool.sparse(x, routing, true); // only 2 experts per row run
 */
export class TopKGate extends layers.Layer implements Gate {
  /** @nocollapse */
  static className = "MdrecTopKGate";
  readonly numExperts: number;
  readonly k: number;
  readonly noise: boolean;
  readonly renormalize: boolean;
  readonly conditioning: ConditioningSettings;
  readonly loadBalance: Required<LoadBalanceOptions>;
  readonly seed: number;
  /** Input shape seen by `build` (`[[B, dIn], [B]]`), kept for save/load. */
  builtInputShape: number[][] | null = null;
  private readonly head: ConditionedLinear;
  private noiseKernel: LayerVariable | null = null; // [dIn, N]
  private inputDim: number | null = null;

  constructor(args: TopKGateArgs) {
    assertKnownKeys("TopKGate args", args ?? {}, TOP_K_GATE_KEYS);
    assertInteger("TopKGate numExperts", args?.numExperts, 1);
    const k = args.k ?? 2;
    assertInteger("TopKGate k", k, 1, args.numExperts, `numExperts=${args.numExperts}`);
    const noise = args.noise ?? true;
    const renormalize = args.renormalize ?? true;
    for (const [name, value] of [
      ["noise", noise],
      ["renormalize", renormalize],
    ] as const) {
      if (typeof value !== "boolean")
        throw new ConfigError(`TopKGate ${name} must be a boolean, received ${JSON.stringify(value)}`);
    }
    const conditioning = validateConditioning("TopKGate", args, "embedding");
    const loadBalance = validateLoadBalance("TopKGate", args.loadBalance);
    const seed = args.seed ?? nextSeed();
    assertInteger("TopKGate seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numExperts = args.numExperts;
    this.k = k;
    this.noise = noise;
    this.renormalize = renormalize;
    this.conditioning = conditioning;
    this.loadBalance = loadBalance;
    this.seed = seed;
    this.head = new ConditionedLinear(conditioning, args.numExperts);
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    const inputDim = shapes[0]![shapes[0]!.length - 1];
    assertInteger("TopKGate input last dimension", inputDim, 1);
    this.builtInputShape = shapes.map((shape) => [...shape]);
    this.inputDim = inputDim;
    const addWeight = (name: string, shape: number[], initializer: Parameters<typeof this.addWeight>[3]) =>
      this.addWeight(name, shape, "float32", initializer);
    this.head.buildEmbedding(addWeight, this.seed + 1);
    this.head.buildKernel(addWeight, inputDim + this.head.inputExtension, this.seed);
    if (this.noise)
      this.noiseKernel = addWeight("noise_kernel", [inputDim, this.numExperts], initializers.zeros());
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[][] {
    const batch = ((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[])[0]!;
    return [
      [batch, this.numExperts],
      [batch, this.k],
      [batch, this.k],
    ];
  }

  /** Inputs `[x, domainIds]`; outputs `[probs, indices, weights]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor[] {
    const [x, domainIds] = inputs as [tf.Tensor2D, tf.Tensor1D];
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      const batch = x.shape[0];
      let logits = this.head.logits(this.head.conditionInput(x, domainIds), domainIds); // [B, N]
      if (training && this.noiseKernel) {
        const noiseLogits = tf.matMul(x, this.noiseKernel.read() as tf.Tensor2D) as tf.Tensor2D; // [B, N]
        const noise = standardNormal([batch, this.numExperts], nextSeed()) as tf.Tensor2D; // [B, N]
        logits = noisyGateLogits(logits, noiseLogits, noise); // logits + noise * softplus(noiseLogits)
      }
      const probs = tf.softmax(logits); // [B, N]
      const { indices, weights } = selectTopK(logits, probs, this.k, this.renormalize); // [B, k] each
      return [probs, indices, weights];
    });
  }

  /**
   * Routes each row to its k best experts.
   * @param x `[B, dIn]` float32.
   * @param domainIds int32 `[B]` in `[0, numDomains)` (ignored with `domainConditioning: "none"`).
   */
  route(x: tf.Tensor2D, domainIds: tf.Tensor1D, training = false): Routing {
    assertGateInputs(this.name, x, domainIds, this.inputDim);
    if (this.conditioning.domainConditioning !== "none") {
      assertIdsInRange(`${this.name} domainIds`, domainIds, this.conditioning.numDomains!, "numDomains");
    }
    const [probs, indices, weights] = this.apply([x, domainIds], { training }) as tf.Tensor2D[];
    return { probs: probs!, indices: indices!, weights: weights! };
  }

  /** Weighted load-balance losses of `routing` (`{}` when `loadBalance` is off). */
  auxiliaryLosses(routing: Routing): Record<string, tf.Scalar> {
    return weightedBalanceLosses(this.loadBalance, routing, this.numExperts);
  }

  override getConfig(): serialization.ConfigDict {
    const config: serialization.ConfigDict = {
      ...super.getConfig(),
      numExperts: this.numExperts,
      k: this.k,
      noise: this.noise,
      renormalize: this.renormalize,
      domainConditioning: this.conditioning.domainConditioning,
      domainEmbeddingDim: this.conditioning.domainEmbeddingDim,
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
    const saved = config as unknown as TopKGateArgs;
    const args: TopKGateArgs = {
      name: saved.name,
      numExperts: saved.numExperts,
      k: saved.k,
      noise: saved.noise,
      renormalize: saved.renormalize,
      domainConditioning: saved.domainConditioning,
      domainEmbeddingDim: saved.domainEmbeddingDim,
      loadBalance: saved.loadBalance,
      seed: saved.seed,
    };
    if (saved.numDomains != null) args.numDomains = saved.numDomains;
    return new cls(args);
  }
}
serialization.registerClass(TopKGate);
