import {
  type Activation,
  assertActivation,
  assertIdsInRange,
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  assertTensor,
  deriveSeed,
  disposeLayerWeights,
  FeatureEmbedding,
  gatherRows,
  nativeRoutedExpertsAvailable,
  nextSeed,
  ShapeError,
} from "@mdrec/core";
import { ExpertPool } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { assertUnits } from "../options.js";
import { rowRouting } from "./row-routing.js";

/** How {@link DomainTowers} assigns towers to rows. */
export type TowerMode = "per-domain" | "shared";

/** How {@link DomainTowers} brings rows to their towers; see the class doc comment. */
export type TowerDispatch = "auto" | "sparse" | "dense";

// The "auto" rule (see DomainTowers), measured on wasm: dense while the extra first-layer units
// a dense call computes per logit stay within this budget...
const AUTO_DENSE_MAX_EXTRA_UNITS = 128;
// ...and a logit needs at most this many towers run (each costs a block product per layer).
const AUTO_DENSE_MAX_HIDDEN_TOWERS = 6;
// Linear towers have no block products: only their one output column per tower counts.
const AUTO_DENSE_MAX_LINEAR_TOWERS = 48;

/** Arguments of {@link DomainTowers}. */
export interface DomainTowersArgs {
  /** Number of domains D; domain ids are in `[0, D)`. */
  numDomains: number;
  /** Number of tasks T (one logit each). Defaults to 1. */
  numTasks?: number;
  /** Hidden widths of each tower; a 1-unit linear output layer is appended. `[]` = linear towers. Defaults to `[8]`. */
  units?: number[];
  /**
   * `"per-domain"`: D * T towers, a row of domain d uses tower (d, t) for task t.
   * `"shared"`: T towers fed `[x ; domain embedding]`. Defaults to `"per-domain"`.
   */
  mode?: TowerMode;
  /** Hidden activation. Defaults to `"relu"`. */
  activation?: Activation;
  /** Width of the domain embedding in shared mode. Defaults to 8. */
  domainEmbeddingDim?: number;
  /**
   * `"sparse"`: each tower runs only on its own rows (gather, per-tower matmuls, scatter).
   * `"dense"`: every tower runs on every row and each row keeps its own tower's logit.
   * `"auto"`: dense when that is cheaper, by the rule in the {@link DomainTowers} doc comment.
   * Defaults to `"auto"`.
   */
  dispatch?: TowerDispatch;
  /** Seed of the weight initialisers. Defaults to a draw from the global generator. */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const DOMAIN_TOWERS_KEYS = [
  "numDomains",
  "numTasks",
  "units",
  "mode",
  "activation",
  "domainEmbeddingDim",
  "dispatch",
  "seed",
  "name",
];

/**
 * The output towers of multi-domain models: `[B, dIn]` (one input, or one per task) -> logits
 * `[B, numTasks]`.
 *
 * The towers are the experts of an `ExpertPool` (MLPs `[...units, 1]`, tower (d, t) is expert
 * `d * numTasks + t`). In shared mode the pool holds one tower per task and the input gets the
 * row's domain embedding appended. Rows reach their towers in one of two ways (`dispatch`):
 * - sparse: each row is routed with weight 1 to its own tower and `ExpertPool.sparse` runs each
 *   tower only on its rows (row gather, per-tower matmuls, scatter back);
 * - dense: `ExpertPool.dense` runs every tower on every row (one matmul for all first layers)
 *   and one row gather keeps each row's own logits. Both give the same logits and gradients
 *   up to float rounding.
 *
 * `"auto"` goes sparse whenever `routedExpertMixture` runs natively (`wasm` with the native GEMM,
 * relu or linear towers): one call forward and one backward for all towers, measured 1.7-6.6x
 * faster than dense (forward and backward of 1024 rows, 3-10 domains, `[8]` to `[128, 64]`
 * towers). Elsewhere it goes dense when `towersPerLogit <= 6` (48 for linear towers, `units: []`) and
 * `(towersPerLogit - 1) * units[0] <= 128`. `towersPerLogit` is how many towers a dense call runs
 * for each logit it keeps: `numDomains` per domain (`numDomains * numTasks` with one input per
 * task), 1 shared (`numTasks` with one input per task). Why: sparse dispatch pays a fixed gather
 * and scatter of the `[B, dIn]` rows and runs small per-tower matmuls; dense dispatch pays for
 * the extra towers, one wide first-layer GEMM column per unit plus a per-tower block product in
 * every later layer. Measured on wasm with the composed sparse path (dIn = 128, forward of 4096 rows and forward+backward of
 * 1024): dense is 1.2-3.5x faster for 3 domains with `[8]`, `[32]` or linear towers, about even
 * at 6 domains `[8]`/`[16]`, 5 domains `[32]`, 2 domains `[256]` and ~50 linear towers, and
 * 1.1-2.6x slower beyond (9 domains `[8]`, 3 domains `[128, 64]`, 10 domains `[64]`).
 *
 * @example
 * const towers = new DomainTowers({ numDomains: 4, units: [8], seed: 1 });
 * const logits = towers.forward(h, domainIds); // [B, 1]
 */
export class DomainTowers extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecDomainTowers";
  readonly numDomains: number;
  readonly numTasks: number;
  readonly units: number[];
  readonly mode: TowerMode;
  readonly activation: Activation;
  readonly domainEmbeddingDim: number;
  /** The requested dispatch; {@link DomainTowers.denseDispatchFor} says what runs. */
  readonly dispatch: TowerDispatch;
  readonly seed: number;
  /** Input shapes seen by `build`, kept for save/load. */
  builtInputShape: number[][] | null = null;
  /** The towers, one expert each. */
  readonly pool: ExpertPool;
  /** Domain embedding appended to the input in shared mode. */
  readonly domainEmbedding: FeatureEmbedding | null;

  constructor(args: DomainTowersArgs) {
    assertKnownKeys("DomainTowers args", args ?? {}, DOMAIN_TOWERS_KEYS);
    assertInteger("DomainTowers numDomains", args?.numDomains, 1);
    const numTasks = args.numTasks ?? 1;
    assertInteger("DomainTowers numTasks", numTasks, 1);
    const units = args.units ?? [8];
    assertUnits("DomainTowers units", units, true);
    const mode = args.mode ?? "per-domain";
    assertOneOf("DomainTowers mode", mode, ["per-domain", "shared"]);
    const activation = args.activation ?? "relu";
    assertActivation("DomainTowers activation", activation);
    const domainEmbeddingDim = args.domainEmbeddingDim ?? 8;
    assertInteger("DomainTowers domainEmbeddingDim", domainEmbeddingDim, 1);
    const dispatch = args.dispatch ?? "auto";
    assertOneOf("DomainTowers dispatch", dispatch, ["auto", "sparse", "dense"]);
    const seed = args.seed ?? nextSeed();
    assertInteger("DomainTowers seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.numDomains = args.numDomains;
    this.numTasks = numTasks;
    this.units = [...units];
    this.mode = mode;
    this.activation = activation;
    this.domainEmbeddingDim = domainEmbeddingDim;
    this.dispatch = dispatch;
    this.seed = seed;
    const towersPerTask = mode === "per-domain" ? this.numDomains : 1;
    this.pool = new ExpertPool({
      numExperts: towersPerTask * numTasks,
      units: [...units, 1],
      activation,
      outputActivation: "linear",
      seed: deriveSeed(seed, 0),
      name: `${this.name}/towers`,
    });
    this.domainEmbedding =
      mode === "shared"
        ? new FeatureEmbedding({
            features: [{ kind: "categorical", name: "domain", vocabularySize: this.numDomains }],
            embeddingDim: domainEmbeddingDim,
            seed: deriveSeed(seed, 1),
            name: `${this.name}/domain_embedding`,
          })
        : null;
  }

  /** Number of towers: `numDomains * numTasks` per domain, `numTasks` shared. */
  get numTowers(): number {
    return this.pool.numExperts;
  }

  /**
   * Whether a call with one input shared by all tasks runs every tower on every row (true) or
   * each tower on its own rows only; {@link DomainTowers.denseDispatchFor} for any input count.
   */
  get denseDispatch(): boolean {
    return this.denseDispatchFor(1);
  }

  /**
   * Whether a call with `inputCount` inputs (1, or one per task) dispatches densely: `dispatch`
   * when it is `"dense"` or `"sparse"`, else the `"auto"` rule of the class doc comment.
   */
  denseDispatchFor(inputCount: number): boolean {
    assertInteger("DomainTowers denseDispatchFor inputCount", inputCount, 1);
    if (this.dispatch !== "auto") return this.dispatch === "dense";
    // The native routed kernels run each tower (hidden layers, then the linear logit) on its own
    // rows in one call each way.
    if (nativeRoutedExpertsAvailable([this.activation, "linear"])) return false;
    // With one input per task, a dense call runs all towers on each task's input.
    const towersPerLogit = inputCount === 1 ? this.numTowers / this.numTasks : this.numTowers;
    const linear = this.units.length === 0;
    const firstLayerWidth = linear ? 1 : this.units[0]!;
    const maxTowers = linear ? AUTO_DENSE_MAX_LINEAR_TOWERS : AUTO_DENSE_MAX_HIDDEN_TOWERS;
    return (
      towersPerLogit <= maxTowers && (towersPerLogit - 1) * firstLayerWidth <= AUTO_DENSE_MAX_EXTRA_UNITS
    );
  }

  override build(inputShape: number[] | number[][]): void {
    const shapes = inputShape as number[][];
    if (!Array.isArray(shapes[0]) || shapes.length < 2) {
      throw new ShapeError(
        `DomainTowers inputs must be [x, domainIds] or [x_0, ..., x_{T-1}, domainIds], received shapes ${JSON.stringify(inputShape)}`,
      );
    }
    const inputDim = shapes[0]![shapes[0]!.length - 1];
    assertInteger("DomainTowers input last dimension", inputDim, 1);
    this.builtInputShape = shapes.map((shape) => [...shape]);
    const extra = this.domainEmbedding ? this.domainEmbeddingDim : 0;
    this.pool.build([null as unknown as number, inputDim + extra]);
    this.domainEmbedding?.build([[null as unknown as number]]);
    this.built = true;
  }

  override get trainableWeights(): LayerVariable[] {
    return [...this.pool.trainableWeights, ...(this.domainEmbedding?.trainableWeights ?? [])];
  }

  override get nonTrainableWeights(): LayerVariable[] {
    return [...this.pool.nonTrainableWeights, ...(this.domainEmbedding?.nonTrainableWeights ?? [])];
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[] {
    return [(inputShape as number[][])[0]![0]!, this.numTasks];
  }

  /** Inputs: `[x, domainIds]` (x shared by all tasks) or `[x_0, ..., x_{T-1}, domainIds]`. */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const list = inputs as tf.Tensor[];
    const domainIds = list[list.length - 1] as tf.Tensor1D;
    const taskInputs = list.slice(0, -1) as tf.Tensor2D[];
    const training = kwargs?.training === true;
    return tf.tidy(() => {
      const domainColumns = this.domainEmbedding?.embed({ domain: domainIds }); // [B, domainEmbeddingDim]
      const towerInputs = taskInputs.map((x) =>
        domainColumns ? (tf.concat([x, domainColumns], 1) as tf.Tensor2D) : x,
      ); // per input [B, dIn (+ e)]
      return this.denseDispatchFor(taskInputs.length)
        ? this.denseLogits(towerInputs, domainIds, training)
        : this.sparseLogits(towerInputs, domainIds, training);
    });
  }

  /** Tower of task `task` for each row: `d * numTasks + task` per domain, `task` shared. */
  private towerIdsOf(domainIds: tf.Tensor1D, task: number): tf.Tensor1D {
    if (this.domainEmbedding) return tf.fill([domainIds.shape[0]], task, "int32") as tf.Tensor1D; // [B]
    if (this.numTasks === 1) return domainIds; // [B]: tower d is domain d's (no kernels on the tape)
    return tf.add(
      tf.mul(domainIds, tf.scalar(this.numTasks, "int32")),
      tf.scalar(task, "int32"),
    ) as tf.Tensor1D; // [B]
  }

  /** Every tower on every row; each row keeps its own towers' logits. */
  private denseLogits(towerInputs: tf.Tensor2D[], domainIds: tf.Tensor1D, training: boolean): tf.Tensor2D {
    const rows = domainIds.shape[0];
    const tasks = this.numTasks;
    const outputs = towerInputs.map((towerInput) => this.pool.dense(towerInput, training)); // per input [B, numTowers, 1]
    if (this.domainEmbedding) {
      // Shared mode: tower t is task t's, the same for every row.
      if (outputs.length === 1) return tf.reshape(outputs[0]!, [rows, tasks]) as tf.Tensor2D; // [B, T]
      const logits = outputs.map((output, task) =>
        tf.reshape(tf.slice(output, [0, task, 0], [rows, 1, 1]), [rows, 1]),
      ); // [B, 1] each
      return tf.concat(logits, 1) as tf.Tensor2D; // [B, T]
    }
    // Tower (d, t) is expert d * T + t, so row b * D + d of [B * D, T] holds domain d's logits
    // for row b: one row gather selects them, cheaper than a one-hot product on wasm.
    const ownRows = tf.add(
      tf.mul(tf.range(0, rows, 1, "int32"), tf.scalar(this.numDomains, "int32")),
      domainIds,
    ) as tf.Tensor1D; // [B]
    const own = outputs.map((output) =>
      gatherRows(tf.reshape(output, [rows * this.numDomains, tasks]) as tf.Tensor2D, ownRows),
    ); // per input [B, T]
    if (own.length === 1) return own[0]!;
    const logits = own.map((taskLogits, task) => tf.slice(taskLogits, [0, task], [rows, 1])); // [B, 1] each
    return tf.concat(logits, 1) as tf.Tensor2D; // [B, T]
  }

  /** Each tower only on its own rows (gather, per-tower matmuls, scatter). */
  private sparseLogits(towerInputs: tf.Tensor2D[], domainIds: tf.Tensor1D, training: boolean): tf.Tensor2D {
    const logits = Array.from({ length: this.numTasks }, (_, task) => {
      const towerInput = towerInputs.length === 1 ? towerInputs[0]! : towerInputs[task]!; // [B, dIn (+ e)]
      return this.pool.sparse(towerInput, rowRouting(this.towerIdsOf(domainIds, task)), training); // [B, 1]
    });
    return (logits.length === 1 ? logits[0]! : tf.concat(logits, 1)) as tf.Tensor2D; // [B, T]
  }

  /**
   * Typed forward pass. Builds the layer on first use.
   * @param x `[B, dIn]` shared by all tasks, or one `[B, dIn]` per task.
   * @param domainIds int32 `[B]` in `[0, numDomains)`.
   * @returns logits `[B, numTasks]`.
   */
  forward(x: tf.Tensor2D | tf.Tensor2D[], domainIds: tf.Tensor1D, training = false): tf.Tensor2D {
    const taskInputs = Array.isArray(x) ? x : [x];
    if (taskInputs.length !== 1 && taskInputs.length !== this.numTasks) {
      throw new ShapeError(
        `${this.name} needs one input or one per task (numTasks=${this.numTasks}), received ${taskInputs.length}`,
      );
    }
    taskInputs.forEach((input, index) => {
      assertTensor(`${this.name} input ${index}`, input, {
        rank: 2,
        dtype: "float32",
        shape: taskInputs[0]!.shape,
      });
    });
    assertTensor(`${this.name} domainIds`, domainIds, {
      rank: 1,
      dtype: "int32",
      shape: [taskInputs[0]!.shape[0]],
    });
    // Dense dispatch would give an out-of-range row a zero logit instead of failing.
    assertIdsInRange(`${this.name} domainIds`, domainIds, this.numDomains, "numDomains");
    return this.apply([...taskInputs, domainIds], { training }) as tf.Tensor2D;
  }

  /** Disposes every tower and the domain embedding (its `weights` are theirs). */
  override dispose(): ReturnType<layers.Layer["dispose"]> {
    return disposeLayerWeights(this, () => super.dispose());
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      numDomains: this.numDomains,
      numTasks: this.numTasks,
      units: [...this.units],
      mode: this.mode,
      activation: this.activation,
      domainEmbeddingDim: this.domainEmbeddingDim,
      dispatch: this.dispatch,
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, numDomains, numTasks, units, mode, activation, domainEmbeddingDim, dispatch, seed } =
      config as unknown as DomainTowersArgs;
    // Configs saved before `dispatch` existed have no key: they get the default, "auto".
    return new cls({
      name,
      numDomains,
      numTasks,
      units,
      mode,
      activation,
      domainEmbeddingDim,
      dispatch: dispatch ?? "auto",
      seed,
    });
  }
}
serialization.registerClass(DomainTowers);
