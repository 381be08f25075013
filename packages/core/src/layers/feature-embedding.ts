import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { DataError } from "../errors.js";
import { gatherRows } from "../ops/rows.js";
import { nextSeed } from "../random.js";
import { type FeatureSpec, validateFeatureSpecs } from "../types.js";
import { assertInteger, assertKnownKeys, assertNumber, assertTensor } from "../validate.js";

/** Arguments of {@link FeatureEmbedding}. */
export interface FeatureEmbeddingArgs {
  /** The input fields, in the order their columns appear in the output. */
  features: FeatureSpec[];
  /** Default embedding width for categorical and bucketised fields. Defaults to 16. */
  embeddingDim?: number;
  /**
   * Half-width of the uniform initialiser of the tables (Keras' `Embedding` default). Defaults to 0.05.
   */
  initScale?: number;
  /** Check that every categorical id is in `[0, vocabularySize)` (one device sync per call). Defaults to true. */
  validateIds?: boolean;
  /** Seed of the table initialiser. Defaults to a draw from the global generator. */
  seed?: number;
  /** Layer name. */
  name?: string;
}

const FEATURE_EMBEDDING_KEYS = ["features", "embeddingDim", "initScale", "validateIds", "seed", "name"];

/**
 * Turns a batch's feature columns into one dense input `[B, inputDim]`: each categorical field
 * is looked up in its own embedding table, each numeric field is either passed through as one
 * column or bucketised and embedded; the pieces are concatenated in `features` order.
 * Embedding gradients use a scatter (see `gatherRows`), fast on `cpu` and available on `wasm`.
 *
 * @example
 * const embedding = new FeatureEmbedding({ features: [
 *   { kind: "categorical", name: "user", vocabularySize: 1000 },
 *   { kind: "numeric", name: "age" },
 * ], embeddingDim: 8 });
 * const x = embedding.embed(batch.features); // [B, 9]
 */
export class FeatureEmbedding extends layers.Layer {
  /** @nocollapse */
  static className = "MdrecFeatureEmbedding";
  readonly features: FeatureSpec[];
  readonly embeddingDim: number;
  readonly initScale: number;
  readonly validateIds: boolean;
  readonly seed: number;
  /** Width of the concatenated output. */
  readonly outputDim: number;
  builtInputShape: number[][] | null = null;
  private tables = new Map<string, LayerVariable>(); // field -> [vocabulary, dim]
  private boundaryTensors = new Map<string, tf.Tensor2D>(); // field -> [1, boundaries]

  constructor(args: FeatureEmbeddingArgs) {
    assertKnownKeys("FeatureEmbedding args", args ?? {}, FEATURE_EMBEDDING_KEYS);
    validateFeatureSpecs(args?.features, "FeatureEmbedding features");
    const embeddingDim = args.embeddingDim ?? 16;
    assertInteger("FeatureEmbedding embeddingDim", embeddingDim, 1);
    const initScale = args.initScale ?? 0.05;
    assertNumber("FeatureEmbedding initScale", initScale, { min: 0, exclusiveMin: true });
    const seed = args.seed ?? nextSeed();
    assertInteger("FeatureEmbedding seed", seed, 0);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    super(layerArgs);
    this.features = args.features.map((spec) => ({ ...spec }));
    this.embeddingDim = embeddingDim;
    this.initScale = initScale;
    this.validateIds = args.validateIds ?? true;
    this.seed = seed;
    this.outputDim = this.features.reduce((sum, spec) => sum + this.widthOf(spec), 0);
  }

  private widthOf(spec: FeatureSpec): number {
    if (spec.kind === "numeric" && spec.boundaries === undefined) return 1;
    return spec.embeddingDim ?? this.embeddingDim;
  }

  override build(inputShape: number[] | number[][]): void {
    this.builtInputShape = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as number[][];
    this.features.forEach((spec, index) => {
      const rows =
        spec.kind === "categorical" ? spec.vocabularySize : spec.boundaries ? spec.boundaries.length + 1 : 0;
      if (rows === 0) return;
      this.tables.set(
        spec.name,
        this.addWeight(
          `embedding_${spec.name}`,
          [rows, this.widthOf(spec)],
          "float32",
          initializers.randomUniform({ minval: -this.initScale, maxval: this.initScale, seed: this.seed + index }),
        ),
      );
      if (spec.kind === "numeric" && spec.boundaries) {
        this.boundaryTensors.set(spec.name, tf.keep(tf.tensor2d([spec.boundaries], [1, spec.boundaries.length])));
      }
    });
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[] {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
    return [first[0]!, this.outputDim];
  }

  /** Inputs: one `[B]` tensor per field, in `features` order. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const columns = Array.isArray(inputs) ? inputs : [inputs];
    return tf.tidy(() => {
      const pieces = this.features.map((spec, index) => {
        const column = columns[index] as tf.Tensor1D; // [B]
        const table = this.tables.get(spec.name);
        if (spec.kind === "categorical") return gatherRows(table!.read() as tf.Tensor2D, column); // [B, dim]
        const values = tf.reshape(column, [-1, 1]) as tf.Tensor2D; // [B, 1]
        if (!table) return values;
        // bucket id = number of boundaries <= value
        const bucketIds = tf.sum(
          tf.cast(tf.greaterEqual(values, this.boundaryTensors.get(spec.name)!), "int32"),
          1,
        ) as tf.Tensor1D; // [B]
        return gatherRows(table.read() as tf.Tensor2D, bucketIds); // [B, dim]
      });
      return pieces.length === 1 ? pieces[0]! : tf.concat(pieces, 1); // [B, outputDim]
    });
  }

  /**
   * Embeds a batch's feature record. Validates presence, rank, dtype and id ranges.
   * @returns `[B, outputDim]` float32.
   */
  embed(features: Record<string, tf.Tensor1D>): tf.Tensor2D {
    const columns = this.features.map((spec) => {
      const column = features[spec.name];
      if (column === undefined) {
        throw new DataError(
          `FeatureEmbedding: feature "${spec.name}" is missing from the batch (received fields: ${Object.keys(features).join(", ") || "none"})`,
        );
      }
      assertTensor(`feature "${spec.name}"`, column, {
        rank: 1,
        dtype: spec.kind === "categorical" ? "int32" : "float32",
      });
      return column;
    });
    if (this.validateIds) this.checkIds(columns);
    return this.apply(columns) as tf.Tensor2D;
  }

  private checkIds(columns: tf.Tensor1D[]): void {
    const categorical = this.features
      .map((spec, index) => ({ spec, column: columns[index]! }))
      .filter((entry) => entry.spec.kind === "categorical");
    if (categorical.length === 0) return;
    const ranges = tf.tidy(() =>
      tf.stack(categorical.map((entry) => tf.stack([tf.min(entry.column), tf.max(entry.column)]))),
    ); // [fields, 2]
    const values = ranges.dataSync();
    ranges.dispose();
    categorical.forEach((entry, index) => {
      const spec = entry.spec as Extract<FeatureSpec, { kind: "categorical" }>;
      const low = values[2 * index]!;
      const high = values[2 * index + 1]!;
      if (low < 0 || high >= spec.vocabularySize) {
        const bad = low < 0 ? low : high;
        throw new DataError(
          `feature "${spec.name}" has id ${bad} outside [0, vocabularySize=${spec.vocabularySize})`,
        );
      }
    });
  }

  override dispose(): ReturnType<layers.Layer["dispose"]> {
    for (const tensor of this.boundaryTensors.values()) tensor.dispose();
    this.boundaryTensors.clear();
    return super.dispose();
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      features: this.features as unknown as serialization.ConfigDictValue,
      embeddingDim: this.embeddingDim,
      initScale: this.initScale,
      validateIds: this.validateIds,
      seed: this.seed,
    };
  }

  /** @nocollapse */
  static override fromConfig<T extends serialization.Serializable>(
    cls: serialization.SerializableConstructor<T>,
    config: serialization.ConfigDict,
  ): T {
    const { name, features, embeddingDim, initScale, validateIds, seed } = config as unknown as FeatureEmbeddingArgs;
    return new cls({ name, features, embeddingDim, initScale, validateIds, seed });
  }
}
serialization.registerClass(FeatureEmbedding);
