import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";
import type { LayerArgs } from "@tensorflow/tfjs-layers/dist/engine/topology";
import type { Kwargs } from "@tensorflow/tfjs-layers/dist/types";
import { ConfigError, DataError, ShapeError } from "../errors.js";
import { gatherConcatRows, gatherRows } from "../ops/rows.js";
import { deriveSeed, nextSeed } from "../random.js";
import { type CategoricalFeatureSpec, type FeatureSpec, validateFeatureSpecs } from "../types.js";
import { assertInteger, assertKnownKeys, assertNumber, assertTensor, formatValue } from "../validate.js";
import { disposeLayerWeights } from "./dispose.js";

/** Arguments of {@link FeatureEmbedding}. */
export interface FeatureEmbeddingArgs {
  /** The input fields, in the order their columns appear in the output. */
  features: FeatureSpec[];
  /** Default embedding width for categorical and bucketised fields. Defaults to 16. */
  embeddingDim?: number;
  /** Half-width of the uniform initialiser of the tables (Keras' `Embedding` default). Defaults to 0.05. */
  initScale?: number;
  /**
   * In {@link FeatureEmbedding.embed}, check that every categorical id is in
   * `[0, vocabularySize)` and every numeric value is finite (each column read once, checked on
   * the host).
   * Defaults to true.
   */
  validateIds?: boolean;
  /** Seed of the table initialisers. Defaults to a draw from the global generator (`setGlobalSeed`). */
  seed?: number;
  /** Layer name. */
  name?: string;
  /** Whether the tables train. Defaults to true. */
  trainable?: boolean;
}

function copySpec(spec: FeatureSpec): FeatureSpec {
  return spec.kind === "numeric" && spec.boundaries
    ? { ...spec, boundaries: [...spec.boundaries] }
    : { ...spec };
}

const FEATURE_EMBEDDING_KEYS = [
  "features",
  "embeddingDim",
  "initScale",
  "validateIds",
  "seed",
  "name",
  "trainable",
];

/**
 * Turns a batch's feature columns into one dense input `[B, outputDim]`: each categorical field
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
  /** The input fields (a copy of the argument). */
  readonly features: FeatureSpec[];
  /** Default embedding width. */
  readonly embeddingDim: number;
  /** Half-width of the uniform table initialiser. */
  readonly initScale: number;
  /** Whether `embed` checks ids and numeric values. */
  readonly validateIds: boolean;
  /** Seed of the table initialisers. */
  readonly seed: number;
  /** Width of the concatenated output. */
  readonly outputDim: number;
  /** Input shapes seen by `build` (one `[B]` per field), kept for save/load. */
  builtInputShape: number[][] | null = null;
  private tables = new Map<string, LayerVariable>(); // field -> [rows, width]

  constructor(args: FeatureEmbeddingArgs) {
    assertKnownKeys("FeatureEmbedding args", args ?? {}, FEATURE_EMBEDDING_KEYS);
    validateFeatureSpecs(args?.features, "FeatureEmbedding features");
    const embeddingDim = args.embeddingDim ?? 16;
    assertInteger("FeatureEmbedding embeddingDim", embeddingDim, 1);
    const initScale = args.initScale ?? 0.05;
    assertNumber("FeatureEmbedding initScale", initScale, { min: 0, exclusiveMin: true });
    const validateIds = args.validateIds ?? true;
    if (typeof validateIds !== "boolean") {
      throw new ConfigError(
        `FeatureEmbedding validateIds must be a boolean, received ${formatValue(validateIds)}`,
      );
    }
    const seed = args.seed ?? nextSeed();
    assertInteger("FeatureEmbedding seed", seed, 0, Number.MAX_SAFE_INTEGER);
    const layerArgs: LayerArgs = {};
    if (args.name !== undefined) layerArgs.name = args.name;
    if (args.trainable !== undefined) layerArgs.trainable = args.trainable;
    super(layerArgs);
    this.features = args.features.map(copySpec);
    this.embeddingDim = embeddingDim;
    this.initScale = initScale;
    this.validateIds = validateIds;
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
      const scale = this.initScale;
      this.tables.set(
        spec.name,
        this.addWeight(
          `embedding_${spec.name}`,
          [rows, this.widthOf(spec)],
          "float32",
          initializers.randomUniform({ minval: -scale, maxval: scale, seed: deriveSeed(this.seed, index) }),
        ),
      );
    });
    this.built = true;
  }

  override computeOutputShape(inputShape: number[] | number[][]): number[] {
    const first = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as number[];
    return [first[0]!, this.outputDim];
  }

  /** Inputs: one `[B]` tensor per field, in `features` order. Prefer {@link FeatureEmbedding.embed}. */
  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: Kwargs): tf.Tensor {
    const columns = Array.isArray(inputs) ? inputs : [inputs];
    if (columns.length !== this.features.length) {
      throw new ShapeError(
        `${this.name} expects ${this.features.length} input columns (${this.features.map((f) => f.name).join(", ")}), received ${columns.length}`,
      );
    }
    return tf.tidy(() => {
      // Each field is a table lookup (categorical, bucketised numeric) or its raw value [B, 1].
      const pieces = this.features.map((spec, index) => {
        const column = columns[index] as tf.Tensor1D; // [B]
        const table = this.tables.get(spec.name);
        if (spec.kind === "categorical") return { table: table!.read() as tf.Tensor2D, ids: column };
        const values = tf.reshape(column, [-1, 1]) as tf.Tensor2D; // [B, 1]
        if (!table || !spec.boundaries) return values;
        // A per-call constant instead of a tensor kept from build: nothing outlives the call, and
        // it is created on whichever backend is active now.
        const boundaries = tf.tensor2d([spec.boundaries], [1, spec.boundaries.length]); // [1, boundaries]
        // bucket id = number of boundaries <= value
        const bucketIds = tf.sum(tf.cast(tf.greaterEqual(values, boundaries), "int32"), 1) as tf.Tensor1D; // [B]
        return { table: table.read() as tf.Tensor2D, ids: bucketIds };
      });
      const lookups = pieces.filter(
        (piece): piece is { table: tf.Tensor2D; ids: tf.Tensor1D } => "table" in piece,
      );
      if (lookups.length === pieces.length) {
        // All lookups: one joined gather (a single kernel on wasm) instead of gathers + concat.
        return gatherConcatRows(
          lookups.map((lookup) => lookup.table),
          lookups.map((lookup) => lookup.ids),
        ); // [B, outputDim]
      }
      const parts = pieces.map((piece) => ("table" in piece ? gatherRows(piece.table, piece.ids) : piece)); // [B, width] each
      return parts.length === 1 ? parts[0]! : tf.concat(parts, 1); // [B, outputDim]
    });
  }

  /**
   * Embeds a batch's feature record (extra fields are ignored). Checks presence, rank, dtype
   * and equal lengths of the declared fields ({@link ShapeError} / {@link DataError}), and, with
   * `validateIds`, id ranges and finite numeric values ({@link DataError} naming field, row, value).
   * @returns `[B, outputDim]` float32.
   */
  embed(features: Record<string, tf.Tensor1D>): tf.Tensor2D {
    if (features === null || typeof features !== "object") {
      throw new DataError(
        `${this.name}: features must be a record of [B] tensors, received ${formatValue(features)}`,
      );
    }
    let rows: number | undefined;
    let firstName = "";
    const columns = this.features.map((spec) => {
      const column = features[spec.name];
      if (column === undefined) {
        throw new DataError(
          `${this.name}: feature "${spec.name}" is missing from the batch (received fields: ${Object.keys(features).join(", ") || "none"})`,
        );
      }
      assertTensor(`feature "${spec.name}"`, column, {
        rank: 1,
        dtype: spec.kind === "categorical" ? "int32" : "float32",
      });
      if (rows === undefined) {
        rows = column.shape[0];
        firstName = spec.name;
      } else if (column.shape[0] !== rows) {
        throw new ShapeError(
          `feature "${spec.name}" has ${column.shape[0]} rows but feature "${firstName}" has ${rows}`,
        );
      }
      return column;
    });
    if (this.validateIds && rows! > 0) this.checkValues(columns);
    return this.apply(columns) as tf.Tensor2D;
  }

  private checkValues(columns: tf.Tensor1D[]): void {
    // Each column read once and checked on the host, with no device kernel: kernels here ran on
    // every training step and were recorded on the gradient tape (a stack alone saved a copy of
    // every column), which cost more than the checks. Ids are read as int32 (no float cast: ids
    // past 2^24 would round).
    const categorical = this.features.flatMap((spec, index) => (spec.kind === "categorical" ? [index] : []));
    const numeric = this.features.flatMap((spec, index) => (spec.kind === "categorical" ? [] : [index]));
    for (const index of categorical) {
      const spec = this.features[index] as CategoricalFeatureSpec;
      const ids = columns[index]!.dataSync() as Int32Array; // [B]
      for (let row = 0; row < ids.length; row++) {
        const id = ids[row]!;
        if (id < 0 || id >= spec.vocabularySize) {
          throw new DataError(
            `feature "${spec.name}" has id ${id} at row ${row}, outside [0, vocabularySize=${spec.vocabularySize})`,
          );
        }
      }
    }
    for (const index of numeric) {
      const values = columns[index]!.dataSync() as Float32Array; // [B]
      for (let row = 0; row < values.length; row++) {
        const value = values[row]!;
        if (!Number.isFinite(value)) {
          throw new DataError(
            `feature "${this.features[index]!.name}" has a non-finite value ${value} at row ${row}`,
          );
        }
      }
    }
  }

  /** Disposes the tables. Unlike tfjs's `Layer.dispose`, also works on a layer built by `loadLayer` and never called. */
  override dispose(): ReturnType<layers.Layer["dispose"]> {
    return disposeLayerWeights(this, () => super.dispose());
  }

  override getConfig(): serialization.ConfigDict {
    return {
      ...super.getConfig(),
      features: this.features.map(copySpec) as unknown as serialization.ConfigDictValue,
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
    const { name, trainable, features, embeddingDim, initScale, validateIds, seed } =
      config as unknown as FeatureEmbeddingArgs;
    return new cls({ name, trainable, features, embeddingDim, initScale, validateIds, seed });
  }
}
serialization.registerClass(FeatureEmbedding);
