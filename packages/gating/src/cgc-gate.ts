import { assertIdsInRange, assertInteger, assertKnownKeys, nextSeed } from "@mdrec/core";
import { denseWeights, type Routing } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { assertGateInputs, ConditionedLinear } from "./conditioning.js";
import type { Gate } from "./gate.js";

/** Arguments of {@link CgcGate}. */
export interface CgcGateArgs {
  /** Number of groups G (domains or tasks), each with its own specific experts and gate matrix. */
  numGroups: number;
  /** Shared experts S, used by every group (integer >= 0). */
  numSharedExperts: number;
  /** Specific experts per group K (integer >= 1). */
  numSpecificExperts: number;
  /** Seed of the weight initialiser. Defaults to a draw from the global generator. */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const CGC_GATE_KEYS = ["numGroups", "numSharedExperts", "numSpecificExperts", "seed", "name"];

/**
 * PLE's customized gate control (Tang et al., 2020) for multi-domain data. The expert pool is
 * laid out `[shared 0..S-1, group 0 specific 0..K-1, group 1 specific ..., ...]`
 * (`S + G * K` experts); a row of group g mixes `[its K specific experts ; the S shared experts]`
 * with `softmax(x W_g)`, one gate matrix per group.
 *
 * `route` returns global expert ids in that layout (`indices` `[B, K + S]`, specific first), the
 * softmax as `weights`, and the dense `[B, S + G * K]` weights as `probs` (0 for experts the
 * row's group cannot use), so `mixExperts(pool.dense(x), routing)` is the CGC mixture. PLE's
 * shared gate of non-final levels is a `SoftmaxGate` over all experts.
 *
 * @example
 * const gate = new CgcGate({ numGroups: 3, numSharedExperts: 1, numSpecificExperts: 2 });
 * const pool = new ExpertPool({ numExperts: gate.totalExperts, units: [64] });
 * const mixed = mixExperts(pool.dense(x), gate.route(x, domainIds, true)); // [B, 64]
 */
export class CgcGate extends layers.Layer implements Gate {
  /** @nocollapse */
  static className = "MdrecCgcGate";
  readonly numGroups: number;
  readonly numSharedExperts: number;
  readonly numSpecificExperts: number;
  readonly seed: number;
  /** Input shape seen by `build` (`[[B, dIn], [B]]`), kept for save/load. */
  builtInputShape: number[][] | null = null;
  private readonly head: ConditionedLinear;
  private specificOffsets: tf.Tensor2D | null = null; // int32 [1, K]: S + 0..K-1
  private sharedIds: tf.Tensor2D | null = null; // int32 [1, S]: 0..S-1
  private inputDim: number | null = null;

  /** Size of the expert pool a CGC gate with these arguments routes into: `S + G * K`. */
  static totalExperts(
    args: Pick<CgcGateArgs, "numGroups" | "numSharedExperts" | "numSpecificExperts">,
  ): number {
    return args.numSharedExperts + args.numGroups * args.numSpecificExperts;
  }

  constructor(args: CgcGateArgs) {
    assertKnownKeys("CgcGate args", args ?? {}, CGC_GATE_KEYS);
    assertInteger("CgcGate numGroups", args?.numGroups, 1);
    assertInteger("CgcGate numSharedExperts", args.numSharedExperts, 0);
    assertInteger("CgcGate numSpecificExperts", args.numSpecificExperts, 1);
    const seed = args.seed ?? nextSeed();
    assertInteger("CgcGate seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numGroups = args.numGroups;
    this.numSharedExperts = args.numSharedExperts;
    this.numSpecificExperts = args.numSpecificExperts;
    this.seed = seed;
    this.head = new ConditionedLinear(
      { domainConditioning: "per-domain", numDomains: args.numGroups, domainEmbeddingDim: 1 },
      this.k,
    );
  }

  /** Size of the expert pool: `numSharedExperts + numGroups * numSpecificExperts`. */
  get totalExperts(): number {
    return CgcGate.totalExperts(this);
  }

  /** {@link Gate.numExperts}: the pool size, {@link CgcGate.totalExperts}. */
  get numExperts(): number {
    return this.totalExperts;
  }

  /** Experts mixed per row: `numSpecificExperts + numSharedExperts`. */
  get k(): number {
    return this.numSpecificExperts + this.numSharedExperts;
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    const inputDim = shapes[0]![shapes[0]!.length - 1];
    assertInteger("CgcGate input last dimension", inputDim, 1);
    this.builtInputShape = shapes.map((shape) => [...shape]);
    this.inputDim = inputDim;
    this.head.buildKernel(
      (name, shape, initializer) => this.addWeight(name, shape, "float32", initializer),
      inputDim,
      this.seed,
    );
    const shared = this.numSharedExperts;
    const specific = this.numSpecificExperts;
    this.specificOffsets = tf.keep(
      tf.reshape(tf.range(shared, shared + specific, 1, "int32"), [1, specific]) as tf.Tensor2D,
    );
    this.sharedIds =
      shared > 0 ? tf.keep(tf.reshape(tf.range(0, shared, 1, "int32"), [1, shared]) as tf.Tensor2D) : null;
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[][] {
    const batch = ((Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[])[0]!;
    return [
      [batch, this.totalExperts],
      [batch, this.k],
      [batch, this.k],
    ];
  }

  /** Inputs `[x, groupIds]`; outputs `[probs, indices, weights]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor[] {
    const [x, groupIds] = inputs as [tf.Tensor2D, tf.Tensor1D];
    return tf.tidy(() => {
      const batch = x.shape[0];
      const weights = tf.softmax(this.head.logits(x, groupIds)); // [B, K + S]
      const groupStart = tf.mul(
        tf.reshape(groupIds, [batch, 1]),
        tf.scalar(this.numSpecificExperts, "int32"),
      ); // [B, 1]
      const specificIds = tf.add(groupStart, this.specificOffsets!); // [B, K]
      const indices = this.sharedIds
        ? tf.concat([specificIds, tf.tile(this.sharedIds, [batch, 1])], 1) // [B, K + S]
        : specificIds;
      const probs = denseWeights({ indices: indices as tf.Tensor2D, weights }, this.totalExperts); // [B, S + G * K]
      return [probs, indices, weights];
    });
  }

  /**
   * Routes each row to its group's specific experts and the shared experts.
   * @param x `[B, dIn]` float32.
   * @param groupIds int32 `[B]` in `[0, numGroups)`.
   */
  route(x: tf.Tensor2D, groupIds: tf.Tensor1D, training = false): Routing {
    assertGateInputs(this.name, x, groupIds, this.inputDim, "groupIds");
    assertIdsInRange(`${this.name} groupIds`, groupIds, this.numGroups, "numGroups");
    const [probs, indices, weights] = this.apply([x, groupIds], { training }) as tf.Tensor2D[];
    return { probs: probs!, indices: indices!, weights: weights! };
  }

  override dispose(): ReturnType<layers.Layer["dispose"]> {
    const result = super.dispose();
    if (result.refCountAfterDispose === 0) {
      this.specificOffsets?.dispose();
      this.sharedIds?.dispose();
      this.specificOffsets = null;
      this.sharedIds = null;
    }
    return result;
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numGroups: this.numGroups,
      numSharedExperts: this.numSharedExperts,
      numSpecificExperts: this.numSpecificExperts,
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, numGroups, numSharedExperts, numSpecificExperts, seed } = config as unknown as CgcGateArgs;
    return new cls({ name, numGroups, numSharedExperts, numSpecificExperts, seed });
  }
}
serialization.registerClass(CgcGate);
