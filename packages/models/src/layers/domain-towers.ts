import {
  type Activation,
  assertActivation,
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  assertTensor,
  deriveSeed,
  disposeLayerWeights,
  FeatureEmbedding,
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
  "seed",
  "name",
];

/**
 * The output towers of multi-domain models: `[B, dIn]` (one input, or one per task) -> logits
 * `[B, numTasks]`.
 *
 * The towers are the experts of an `ExpertPool` (MLPs `[...units, 1]`, tower (d, t) is expert
 * `d * numTasks + t`) and each row is routed with weight 1 to its own tower, so sparse dispatch
 * computes each tower only on its own domain's rows. In shared mode the pool holds one tower per
 * task and the input gets the row's domain embedding appended.
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
      const rows = domainIds.shape[0];
      const domainColumns = this.domainEmbedding?.embed({ domain: domainIds }); // [B, domainEmbeddingDim]
      const logits = Array.from({ length: this.numTasks }, (_, task) => {
        const x = taskInputs.length === 1 ? taskInputs[0]! : taskInputs[task]!; // [B, dIn]
        const towerInput = domainColumns ? tf.concat([x, domainColumns], 1) : x; // [B, dIn (+ e)]
        const towerIds = domainColumns
          ? tf.fill([rows], task, "int32")
          : tf.add(tf.mul(domainIds, tf.scalar(this.numTasks, "int32")), tf.scalar(task, "int32")); // [B] tower (d, t) = d * T + t
        return this.pool.sparse(towerInput as tf.Tensor2D, rowRouting(towerIds as tf.Tensor1D), training); // [B, 1]
      });
      return logits.length === 1 ? logits[0]! : tf.concat(logits, 1); // [B, T]
    });
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
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, numDomains, numTasks, units, mode, activation, domainEmbeddingDim, seed } =
      config as unknown as DomainTowersArgs;
    return new cls({ name, numDomains, numTasks, units, mode, activation, domainEmbeddingDim, seed });
  }
}
serialization.registerClass(DomainTowers);
