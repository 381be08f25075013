import {
  type Batch,
  ConfigError,
  disposeBatch,
  FeatureEmbedding,
  type FeatureSpec,
  SeededRandom,
  ShapeError,
  validateBatch,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable, layers } from "@tensorflow/tfjs-layers";
import { MODEL_FORMAT_VERSION, saveModel } from "./checkpoint.js";
import { DomainTowers } from "./layers/domain-towers.js";
import type { BaseModelOptions, ModelConfig, ModelOutput, ModelSummary, MultiDomainModel } from "./model.js";
import type { MlpOptions, Resolved, TowerOptions } from "./options.js";

/** Expert counts reported by MoE models in {@link ModelSummary}. */
export interface ExpertCounts {
  /** Experts computed per row. */
  expertsPerRow: number;
  /** Experts in the model. */
  totalExperts: number;
}

/**
 * The shared machinery of every mdrec model: the feature embedding, batch validation,
 * `predict`, weight lists, `summary`, `getConfig`, `save` and `dispose`. A subclass creates its
 * blocks in the constructor (registering each with {@link track}) and implements only
 * {@link forward}, the model's equation on the embedded input.
 *
 * Blocks are built by a forward pass on a two-row dummy batch the first time their weights are
 * needed (`trainableWeights()`, `summary()`, `save()`), so the weight lists are complete before
 * the first training step.
 *
 * @example
 * class Linear extends MultiDomainModelBase<BaseModelOptions> {
 *   private readonly towers: DomainTowers;
 *   constructor(options: BaseModelOptions) {
 *     super("linear", resolveOptions("linear options", options, {}));
 *     this.towers = this.track(new DomainTowers({ numDomains: this.numDomains, units: [], seed: this.childSeed() }));
 *   }
 *   protected forward(x, domainIds) {
 *     return { logits: this.towers.forward([x], domainIds), routing: [], auxLosses: {} };
 *   }
 * }
 */
export abstract class MultiDomainModelBase<Options extends BaseModelOptions = BaseModelOptions>
  implements MultiDomainModel
{
  /** Registry name. */
  readonly name: string;
  /** Full options, defaults filled in (what `getConfig()` reports). */
  readonly options: Resolved<Options>;
  /** Embeds the batch's feature columns into `x` `[B, inputDim]`. */
  readonly embedding: FeatureEmbedding;
  private readonly blocks: layers.Layer[] = [];
  private readonly seeds: SeededRandom;
  private disposed = false;

  /**
   * @param name the registry name the model is created under.
   * @param options validated options with defaults (see `resolveOptions`).
   */
  protected constructor(name: string, options: Resolved<Options>) {
    this.name = name;
    this.options = options;
    this.seeds = new SeededRandom(options.seed);
    this.embedding = this.track(
      new FeatureEmbedding({
        features: options.features,
        embeddingDim: options.embeddingDim,
        seed: this.childSeed(),
        name: `${name}/embedding`,
      }),
    );
  }

  get numDomains(): number {
    return this.options.numDomains;
  }

  get numTasks(): number {
    return this.options.numTasks;
  }

  get features(): readonly FeatureSpec[] {
    return this.options.features;
  }

  /** Width of the embedded input `x`. */
  get inputDim(): number {
    return this.embedding.outputDim;
  }

  /**
   * The model's equation: logits `[B, numTasks]` (plus routing and auxiliary losses) from the
   * embedded input. Runs inside `tf.tidy`; return only tensors the caller should receive.
   * @param x `[B, inputDim]` embedded features.
   * @param domainIds int32 `[B]`, already checked to be in `[0, numDomains)`.
   */
  protected abstract forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput;

  /** Expert counts for {@link summary}; MoE models override it. */
  protected expertCounts(): ExpertCounts | undefined {
    return undefined;
  }

  /** Registers a block whose weights belong to the model (in weight-list order). */
  protected track<L extends layers.Layer>(layer: L): L {
    this.blocks.push(layer);
    return layer;
  }

  /** Creates and tracks the model's output towers from its {@link TowerOptions}. */
  protected createTowers(options: Resolved<TowerOptions & MlpOptions>): DomainTowers {
    return this.track(
      new DomainTowers({
        numDomains: this.numDomains,
        numTasks: this.numTasks,
        units: options.towerUnits,
        mode: options.towerMode,
        activation: options.activation,
        domainEmbeddingDim: this.options.embeddingDim,
        seed: this.childSeed(),
        name: `${this.name}/towers`,
      }),
    );
  }

  /** A seed for the next block, drawn from the model's own generator so equal seeds give equal models. */
  protected childSeed(): number {
    return this.seeds.nextSeed();
  }

  /**
   * Forward pass. Validates the batch (fields, dtypes, shapes, domain ids in range).
   * Tensors in the output belong to the caller.
   */
  call(batch: Batch, options: { training: boolean }): ModelOutput {
    this.assertUsable();
    if (typeof options?.training !== "boolean") {
      throw new ConfigError(
        `${this.name}.call options.training must be a boolean, received ${JSON.stringify(options?.training)}`,
      );
    }
    validateBatch(batch, this);
    const output = this.forwardBatch(batch, options.training);
    const rows = batch.domainIds.shape[0];
    const [outputRows, outputTasks] = output.logits.shape;
    if (output.logits.rank !== 2 || outputRows !== rows || outputTasks !== this.numTasks) {
      const shape = output.logits.shape;
      tf.dispose(output as unknown as tf.TensorContainer);
      throw new ShapeError(
        `${this.name} forward must return logits [${rows}, ${this.numTasks}], returned [${shape.join(", ")}]`,
      );
    }
    return output;
  }

  /** Probabilities `[B, numTasks]` (sigmoid of the logits) in inference mode. */
  predict(batch: Batch): tf.Tensor2D {
    return tf.tidy(() => tf.sigmoid(this.call(batch, { training: false }).logits));
  }

  /** Variables the optimizer updates (the embedding first, then blocks in creation order). */
  trainableWeights(): LayerVariable[] {
    this.ensureBuilt();
    return this.blocks.flatMap((block) => block.trainableWeights);
  }

  /** Saved state that is not trained (moving statistics). */
  nonTrainableWeights(): LayerVariable[] {
    this.ensureBuilt();
    return this.blocks.flatMap((block) => block.nonTrainableWeights);
  }

  /** JSON that, with the weights, reconstructs the model: `createModel(config.name, config.options)`. */
  getConfig(): ModelConfig {
    return {
      name: this.name,
      options: structuredClone(this.options) as ModelConfig["options"],
      formatVersion: MODEL_FORMAT_VERSION,
    };
  }

  /** Parameter count and, for MoE models, expert counts. */
  summary(): ModelSummary {
    const parameters = this.trainableWeights().reduce(
      (sum, weight) => sum + weight.shape.reduce((product: number, size) => product * (size ?? 1), 1),
      0,
    );
    return { name: this.name, parameters, ...this.expertCounts() };
  }

  /** Saves config and weights atomically to `directory` (reload with `loadModel`). */
  async save(directory: string): Promise<void> {
    this.assertUsable();
    await saveModel(this, directory);
  }

  /** Frees every variable. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    // A block that was never built holds no tensors, and tfjs refuses to dispose it.
    for (const block of this.blocks) if (block.built) block.dispose();
  }

  private forwardBatch(batch: Batch, training: boolean): ModelOutput {
    return tf.tidy(() => {
      const x = this.embedding.embed(batch.features); // [B, inputDim]
      return this.forward(x, batch.domainIds, training) as unknown as tf.TensorContainer;
    }) as unknown as ModelOutput;
  }

  private ensureBuilt(): void {
    this.assertUsable();
    if (this.blocks.every((block) => block.built)) return;
    const batch = this.dummyBatch();
    try {
      tf.dispose(this.forwardBatch(batch, false) as unknown as tf.TensorContainer);
    } finally {
      disposeBatch(batch);
    }
  }

  /** Two rows of zeros (domains 0 and 1) that shape every block. */
  private dummyBatch(): Batch {
    const rows = 2;
    const features: Record<string, tf.Tensor1D> = {};
    for (const spec of this.features) {
      features[spec.name] = tf.zeros([rows], spec.kind === "categorical" ? "int32" : "float32");
    }
    return {
      features,
      domainIds: tf.tensor1d([0, Math.min(1, this.numDomains - 1)], "int32"),
      labels: tf.zeros([rows, this.numTasks]),
    };
  }

  private assertUsable(): void {
    if (this.disposed) throw new ConfigError(`Model "${this.name}" has been disposed`);
  }
}
