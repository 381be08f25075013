import {
  type Activation,
  assertActivation,
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertTensor,
  blockExpertDense,
  ConfigError,
  denseActivation,
  nextSeed,
  type RoutedPool,
  routedExpertMixture,
  routedExpertPools,
  ShapeError,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { groupSlotsByExpert } from "./dispatch.js";
import type { Routing } from "./routing.js";

/** Arguments of {@link ExpertPool}. */
export interface ExpertPoolArgs {
  /** Number of experts N (at least 1). */
  numExperts: number;
  /** Width of each dense layer of every expert (an MLP `dIn -> units`), e.g. `[256, 128]`. */
  units: number[];
  /** Activation of the hidden layers. Defaults to `"relu"`. */
  activation?: Activation;
  /** Activation of the last layer. Defaults to `activation`. */
  outputActivation?: Activation;
  /** Dropout rate after every layer while training, in [0, 1). Defaults to 0. */
  dropout?: number;
  /** Seed of the weight initialiser. Defaults to a draw from the global generator (`setGlobalSeed`). */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const EXPERT_POOL_KEYS = ["numExperts", "units", "activation", "outputActivation", "dropout", "seed", "name"];

/** What one `dense` or `sparse` call computed. */
export interface DispatchRecord {
  mode: "dense" | "sparse";
  /** Rows in the batch. */
  batchSize: number;
  /** Rows each expert ran on (`batchSize` for every expert in dense mode). */
  rowsPerExpert: number[];
  /** Sum of `rowsPerExpert`: expert evaluations of one row each. */
  totalRowEvaluations: number;
}

/**
 * Counts expert evaluations of an {@link ExpertPool}, so tests and benchmarks can check that
 * sparse dispatch computes only routed rows (`B * k` evaluations instead of `B * N`).
 */
export class ExpertInvocationCounter {
  /** The most recent call, or null before the first. */
  lastDispatch: DispatchRecord | null = null;
  /** Calls since creation or the last {@link ExpertInvocationCounter.reset}. */
  calls = 0;
  /** Rows evaluated per expert, summed over calls. */
  rowsPerExpert: number[];
  /** Sum of `rowsPerExpert`. */
  totalRowEvaluations = 0;

  constructor(readonly numExperts: number) {
    this.rowsPerExpert = new Array<number>(numExperts).fill(0);
  }

  /** Records one call. */
  record(dispatch: DispatchRecord): void {
    this.lastDispatch = dispatch;
    this.calls += 1;
    dispatch.rowsPerExpert.forEach((rows, expert) => {
      this.rowsPerExpert[expert]! += rows;
    });
    this.totalRowEvaluations += dispatch.totalRowEvaluations;
  }

  /** Clears every count. */
  reset(): void {
    this.lastDispatch = null;
    this.calls = 0;
    this.rowsPerExpert.fill(0);
    this.totalRowEvaluations = 0;
  }
}

interface BatchedDense {
  kernel: LayerVariable; // [numExperts, in, out]
  bias: LayerVariable; // [numExperts, out]
}

/**
 * N experts of equal shape (each an MLP `dIn -> units`), stored batched: per dense layer a
 * kernel `[numExperts, in, out]` and a bias `[numExperts, out]`.
 *
 * - {@link ExpertPool.dense} runs every expert on every row (one matmul for all experts in the
 *   first layer, batched matmuls after it) -> `[B, N, dOut]`.
 * - {@link ExpertPool.sparse} runs each expert only on the rows a routing sends to it and
 *   returns the weighted sum `[B, dOut]`; cost scales with `B * k`, not `B * N`.
 *
 * Each expert's initial weights are Glorot-uniform for its own `[in, out]` matrix; biases start at 0.
 *
 * @example
 * const pool = new ExpertPool({ numExperts: 8, units: [64, 32], seed: 1 });
 * const all = pool.dense(x);                                 // [B, 8, 32]
 * const mixed = pool.sparse(x, gate.route(x, domainIds, true), true); // [B, 32]
 */
export class ExpertPool extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecExpertPool";
  readonly units: number[];
  readonly activation: Activation;
  readonly outputActivation: Activation;
  readonly dropout: number;
  readonly seed: number;
  /** Input shape seen by `build`, kept for save/load. */
  builtInputShape: number[] | null = null;
  /** Rows evaluated per expert by the last and all calls. */
  readonly expertInvocations: ExpertInvocationCounter;
  private readonly expertCount: number;
  private inputDim = 0;
  private denseLayers: BatchedDense[] = [];

  constructor(args: ExpertPoolArgs) {
    assertKnownKeys("ExpertPool args", args ?? {}, EXPERT_POOL_KEYS);
    assertInteger("ExpertPool numExperts", args?.numExperts, 1);
    const units = args.units;
    if (!Array.isArray(units) || units.length === 0) {
      throw new ConfigError(
        `ExpertPool units must be a non-empty array of positive integers, received ${JSON.stringify(units)}`,
      );
    }
    units.forEach((width, index) => {
      assertInteger(`ExpertPool units[${index}]`, width, 1);
    });
    const activation = args.activation ?? "relu";
    assertActivation("ExpertPool activation", activation);
    const outputActivation = args.outputActivation ?? activation;
    assertActivation("ExpertPool outputActivation", outputActivation);
    const dropout = args.dropout ?? 0;
    assertNumber("ExpertPool dropout", dropout, { min: 0, max: 0.999 });
    const seed = args.seed ?? nextSeed();
    assertInteger("ExpertPool seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.expertCount = args.numExperts;
    this.units = [...units];
    this.activation = activation;
    this.outputActivation = outputActivation;
    this.dropout = dropout;
    this.seed = seed;
    this.expertInvocations = new ExpertInvocationCounter(args.numExperts);
  }

  /** Number of experts N. */
  get numExperts(): number {
    return this.expertCount;
  }

  /** Width of each expert's output, `units.at(-1)`. */
  get outputDim(): number {
    return this.units[this.units.length - 1]!;
  }

  override build(inputShape: tf.serialization.ConfigDictValue | number[] | number[][]): void {
    const shape = (
      Array.isArray((inputShape as unknown[])[0]) ? (inputShape as number[][])[0] : inputShape
    ) as number[];
    const inputDim = shape[shape.length - 1];
    assertInteger("ExpertPool input last dimension", inputDim, 1);
    this.builtInputShape = [...shape];
    this.inputDim = inputDim;
    let previous = inputDim;
    this.denseLayers = this.units.map((width, index) => {
      const limit = Math.sqrt(6 / (previous + width));
      const layer: BatchedDense = {
        kernel: this.addWeight(
          `kernel_${index}`,
          [this.expertCount, previous, width],
          "float32",
          initializers.randomUniform({ minval: -limit, maxval: limit, seed: this.seed + index }),
        ),
        bias: this.addWeight(`bias_${index}`, [this.expertCount, width], "float32", initializers.zeros()),
      };
      previous = width;
      return layer;
    });
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[] {
    if (Array.isArray(inputShape[0])) return [(inputShape[0] as number[])[0]!, this.outputDim];
    return [(inputShape as number[])[0]!, this.expertCount, this.outputDim];
  }

  /** Inputs: `x` for dense dispatch, `[x, routing.indices, routing.weights]` for sparse. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const training = kwargs?.training === true;
    if (Array.isArray(inputs) && inputs.length === 3) {
      const [x, indices, weights] = inputs as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      return this.runSparse(x, indices, weights, training);
    }
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor2D;
    return this.runDense(x, training);
  }

  /**
   * Runs every expert on every row.
   * @param x `[B, dIn]` float32.
   * @returns `[B, numExperts, outputDim]`.
   */
  dense(x: tf.Tensor2D, training = false): tf.Tensor3D {
    this.assertInput(x);
    return this.apply(x, { training }) as tf.Tensor3D;
  }

  /**
   * Runs each expert only on the rows routed to it and returns
   * `out[b] = sum_j weights[b, j] * E_{indices[b, j]}(x[b])`. Reads `routing.indices` from the
   * device once. Gradients reach `x`, the expert weights and `routing.weights`.
   *
   * @param x `[B, dIn]` float32.
   * @param routing int32 `indices` `[B, k]` in `[0, numExperts)` and `weights` `[B, k]`.
   * @returns `[B, outputDim]`.
   */
  sparse(x: tf.Tensor2D, routing: Pick<Routing, "indices" | "weights">, training = false): tf.Tensor2D {
    this.assertSparseArguments(x, routing);
    return this.apply([x, routing.indices, routing.weights], { training }) as tf.Tensor2D;
  }

  /**
   * The sum of several pools' sparse mixtures of the same rows,
   * `sum_p parts[p].pool.sparse(x, parts[p].routing)` in part order, e.g. CESAA's always-on
   * shared experts plus its top-k specific ones. With the native routed kernels (see
   * `routedExpertPools` in `@mdrec/core`) all pools run in one call whose experts share the
   * threads; the values are those of the separate calls added up. Pools with dropout while
   * training, and pools not built yet (their first call builds them), run one by one.
   *
   * @param x `[B, dIn]` float32, the input of every pool.
   * @param parts one or more `{ pool, routing }`; the pools' outputs have the same width.
   * @returns `[B, outputDim]`.
   * @example
   * const h = ExpertPool.sparseSum(x, [
   *   { pool: shared, routing: { indices: allShared, weights: uniform } },
   *   { pool: specific, routing },
   * ], true);
   */
  static sparseSum(
    x: tf.Tensor2D,
    parts: readonly { pool: ExpertPool; routing: Pick<Routing, "indices" | "weights"> }[],
    training = false,
  ): tf.Tensor2D {
    if (!Array.isArray(parts) || parts.length === 0) {
      throw new ShapeError(
        `ExpertPool.sparseSum parts must be a non-empty array of { pool, routing }, received ${String(parts)}`,
      );
    }
    parts.forEach((part, index) => {
      if (!(part?.pool instanceof ExpertPool)) {
        throw new ShapeError(
          `ExpertPool.sparseSum parts[${index}].pool must be an ExpertPool, received ${String(part?.pool)}`,
        );
      }
      part.pool.assertSparseArguments(x, part.routing);
      const width = parts[0]!.pool.outputDim;
      if (part.pool.outputDim !== width) {
        throw new ShapeError(
          `ExpertPool.sparseSum parts[${index}].pool must have outputDim ${width} like parts[0], received ${part.pool.outputDim}`,
        );
      }
    });
    const oneByOne = parts.some(({ pool }) => !pool.built || (training && pool.dropout > 0));
    if (oneByOne) {
      return tf.tidy(() =>
        parts
          .map(({ pool, routing }) => pool.sparse(x, routing, training))
          .reduce((total, mixture) => tf.add(total, mixture) as tf.Tensor2D),
      );
    }
    return tf.tidy(() =>
      routedExpertPools(
        x,
        parts.map(({ pool, routing }) => pool.routedPool(routing.indices, routing.weights)),
      ),
    );
  }

  private assertSparseArguments(x: tf.Tensor2D, routing: Pick<Routing, "indices" | "weights">): void {
    this.assertInput(x);
    if (routing == null || typeof routing !== "object") {
      throw new ShapeError(
        `${this.name}.sparse routing must be { indices, weights }, received ${String(routing)}`,
      );
    }
    const batch = x.shape[0];
    assertTensor(`${this.name}.sparse routing.indices`, routing.indices, {
      rank: 2,
      dtype: "int32",
      shape: [batch, null],
    });
    assertTensor(`${this.name}.sparse routing.weights`, routing.weights, {
      rank: 2,
      dtype: "float32",
      shape: routing.indices.shape,
    });
  }

  private assertInput(x: tf.Tensor2D): void {
    assertTensor(`${this.name} input x`, x, {
      rank: 2,
      dtype: "float32",
      shape: [null, this.built ? this.inputDim : null],
    });
  }

  private activationOf(index: number): Activation {
    return index === this.denseLayers.length - 1 ? this.outputActivation : this.activation;
  }

  private applyDropout(hidden: tf.Tensor2D, training: boolean): tf.Tensor2D {
    if (!training || this.dropout === 0) return hidden;
    return tf.dropout(hidden, this.dropout, undefined, nextSeed()) as tf.Tensor2D;
  }

  private runDense(x: tf.Tensor2D, training: boolean): tf.Tensor3D {
    const batch = x.shape[0];
    const numExperts = this.expertCount;
    this.expertInvocations.record({
      mode: "dense",
      batchSize: batch,
      rowsPerExpert: new Array<number>(numExperts).fill(batch),
      totalRowEvaluations: batch * numExperts,
    });
    return tf.tidy(() => {
      const first = this.denseLayers[0]!;
      const firstWidth = this.units[0]!;
      // All experts share the input, so the first layer is one plain matmul against the
      // kernels laid side by side; a broadcast batched matmul has no correct gradient in tfjs 4.22.
      const sideBySide = tf.reshape(tf.transpose(first.kernel.read(), [1, 0, 2]), [
        this.inputDim,
        numExperts * firstWidth,
      ]) as tf.Tensor2D; // [dIn, N * units[0]]
      let hidden = denseActivation(
        x,
        sideBySide,
        tf.reshape(first.bias.read(), [numExperts * firstWidth]),
        this.activationOf(0),
      ); // [B, N * units[0]]
      hidden = this.applyDropout(hidden, training);
      // Later layers: each expert on its own column block, no transposes (see blockExpertDense).
      for (let index = 1; index < this.denseLayers.length; index++) {
        const layer = this.denseLayers[index]!;
        hidden = blockExpertDense(
          hidden,
          layer.kernel.read() as tf.Tensor3D,
          layer.bias.read() as tf.Tensor2D,
          this.activationOf(index),
        ); // [B, N * units[index]]
        hidden = this.applyDropout(hidden, training);
      }
      return tf.reshape(hidden, [batch, numExperts, this.outputDim]) as tf.Tensor3D; // [B, N, dOut]
    });
  }

  private runSparse(
    x: tf.Tensor2D,
    indices: tf.Tensor2D,
    weights: tf.Tensor2D,
    training: boolean,
  ): tf.Tensor2D {
    const { layers, entries } = this.routedPool(indices, weights);
    // Dropout sits between the layers, so it takes the composed path.
    const afterLayer =
      training && this.dropout > 0 ? (hidden: tf.Tensor2D) => this.applyDropout(hidden, training) : undefined;
    return routedExpertMixture(x, layers, entries, weights, afterLayer); // [B, dOut]
  }

  // The built pool's layers and the routing grouped by expert (read from the device once),
  // recorded as one sparse invocation.
  private routedPool(indices: tf.Tensor2D, weights: tf.Tensor2D): RoutedPool {
    const [batch, slotsPerRow] = indices.shape as [number, number];
    const numExperts = this.expertCount;
    const entries = groupSlotsByExpert(indices.dataSync(), slotsPerRow, numExperts);
    this.expertInvocations.record({
      mode: "sparse",
      batchSize: batch,
      rowsPerExpert: [...entries.counts],
      totalRowEvaluations: batch * slotsPerRow,
    });
    const layers = this.denseLayers.map((layer, index) => ({
      kernel: layer.kernel.read() as tf.Tensor3D,
      bias: layer.bias.read() as tf.Tensor2D,
      activation: this.activationOf(index),
    }));
    return { layers, entries, weights };
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numExperts: this.expertCount,
      units: [...this.units],
      activation: this.activation,
      outputActivation: this.outputActivation,
      dropout: this.dropout,
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, numExperts, units, activation, outputActivation, dropout, seed } =
      config as unknown as ExpertPoolArgs;
    return new cls({ name, numExperts, units, activation, outputActivation, dropout, seed });
  }
}
serialization.registerClass(ExpertPool);
