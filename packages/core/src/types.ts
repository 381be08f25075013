import type * as tf from "@tensorflow/tfjs-core";
import { ConfigError, DataError } from "./errors.js";
import { assertIdsInRange, assertInteger, assertKnownKeys, assertTensor, formatValue } from "./validate.js";

const CATEGORICAL_KEYS = ["kind", "name", "vocabularySize", "embeddingDim"];
const NUMERIC_KEYS = ["kind", "name", "boundaries", "embeddingDim"];

/** A categorical field: integer ids in `[0, vocabularySize)`, looked up in an embedding table. */
export interface CategoricalFeatureSpec {
  kind: "categorical";
  /** Field name, the key in {@link Batch.features}. */
  name: string;
  /** Number of distinct ids, OOV id included. */
  vocabularySize: number;
  /** Embedding width for this field. Defaults to the embedding layer's `embeddingDim`. */
  embeddingDim?: number;
}

/**
 * A numeric field: a float per row, passed through as one input column, or bucketised by
 * `boundaries` (strictly increasing) into `boundaries.length + 1` buckets with an embedding
 * each. Bucket `i` holds values in `[boundaries[i-1], boundaries[i])`: a value equal to a
 * boundary goes to the bucket above it.
 */
export interface NumericFeatureSpec {
  kind: "numeric";
  /** Field name, the key in {@link Batch.features}. */
  name: string;
  /** Sorted bucket boundaries; when set the field is embedded by bucket. */
  boundaries?: number[];
  /** Embedding width when bucketised. Defaults to the embedding layer's `embeddingDim`. */
  embeddingDim?: number;
}

/**
 * Declares one input field of a model.
 * @example
 * const features: FeatureSpec[] = [
 *   { kind: "categorical", name: "user", vocabularySize: 6041 },
 *   { kind: "numeric", name: "age", boundaries: [18, 25, 35, 45, 50, 56] },
 * ];
 */
export type FeatureSpec = CategoricalFeatureSpec | NumericFeatureSpec;

/**
 * One mini-batch. Categorical features are int32 `[B]`, numeric features float32 `[B]`,
 * domain ids int32 `[B]` in `[0, numDomains)`, labels float32 `[B, numTasks]` in [0, 1]
 * (0 or 1 for click labels).
 */
export interface Batch {
  /** One `[B]` column per declared field. */
  features: Record<string, tf.Tensor1D>;
  /** int32 `[B]`, the domain of each row. */
  domainIds: tf.Tensor1D;
  /** float32 `[B, numTasks]`. */
  labels: tf.Tensor2D;
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  for (const tensor of Object.values(batch.features)) tensor.dispose();
  batch.domainIds.dispose();
  batch.labels.dispose();
}

/**
 * Validates a list of feature specs: a non-empty array, unique non-empty names, known keys,
 * positive integer sizes, finite strictly increasing boundaries. Throws {@link ConfigError}
 * naming the entry (`features[2].vocabularySize (field "item")`) and the value received.
 * @param where names the list in messages, e.g. `"FeatureEmbedding features"`.
 */
export function validateFeatureSpecs(features: readonly FeatureSpec[], where = "features"): void {
  if (!Array.isArray(features) || features.length === 0) {
    throw new ConfigError(
      `${where} must be a non-empty array of feature specs, received ${formatValue(features)}`,
    );
  }
  const seen = new Map<string, number>();
  features.forEach((spec, index) => {
    const at = `${where}[${index}]`;
    if (spec === null || typeof spec !== "object") {
      throw new ConfigError(`${at} must be a feature spec object, received ${formatValue(spec)}`);
    }
    if (typeof spec.name !== "string" || spec.name.length === 0) {
      throw new ConfigError(`${at}.name must be a non-empty string, received ${formatValue(spec.name)}`);
    }
    const first = seen.get(spec.name);
    if (first !== undefined) {
      throw new ConfigError(`${at}.name "${spec.name}" is declared twice (also ${where}[${first}])`);
    }
    seen.set(spec.name, index);
    if (spec.kind === "categorical") {
      assertKnownKeys(`${at} (field "${spec.name}")`, spec, CATEGORICAL_KEYS);
      assertInteger(`${at}.vocabularySize (field "${spec.name}")`, spec.vocabularySize, 1);
    } else if (spec.kind === "numeric") {
      assertKnownKeys(`${at} (field "${spec.name}")`, spec, NUMERIC_KEYS);
      if (spec.boundaries !== undefined) {
        const ok =
          Array.isArray(spec.boundaries) &&
          spec.boundaries.every(
            (b: number, i: number, all: number[]) => Number.isFinite(b) && (i === 0 || b > all[i - 1]!),
          );
        if (!ok) {
          throw new ConfigError(
            `${at}.boundaries (field "${spec.name}") must be finite and strictly increasing, received ${formatValue(spec.boundaries)}`,
          );
        }
      }
    } else {
      throw new ConfigError(
        `${at}.kind (field "${spec.name}") must be "categorical" or "numeric", received ${formatValue((spec as { kind?: unknown }).kind)}`,
      );
    }
    if (spec.embeddingDim !== undefined) {
      assertInteger(`${at}.embeddingDim (field "${spec.name}")`, spec.embeddingDim, 1);
    }
  });
}

/**
 * Checks a batch against the model's expectations: every declared feature present with the
 * right rank, dtype and length, no undeclared feature, domain ids in `[0, numDomains)`, labels
 * float32 `[B, numTasks]` with values in [0, 1]. Throws {@link ShapeError} for a wrong tensor
 * and {@link DataError} for wrong contents, naming the field, row and value. Reads the domain
 * ids and labels back from the device (two small syncs).
 */
export function validateBatch(
  batch: Batch,
  expected: { features: readonly FeatureSpec[]; numDomains: number; numTasks: number },
): void {
  if (
    batch === null ||
    typeof batch !== "object" ||
    batch.features === null ||
    typeof batch.features !== "object"
  ) {
    throw new DataError(`batch must be { features, domainIds, labels }, received ${formatValue(batch)}`);
  }
  assertInteger("validateBatch numDomains", expected.numDomains, 1);
  assertInteger("validateBatch numTasks", expected.numTasks, 1);
  assertTensor("batch.domainIds", batch.domainIds, { rank: 1, dtype: "int32" });
  const rows = batch.domainIds.shape[0];
  assertTensor("batch.labels", batch.labels, { rank: 2, dtype: "float32", shape: [rows, expected.numTasks] });
  const declared = new Set(expected.features.map((f) => f.name));
  for (const name of Object.keys(batch.features)) {
    if (!declared.has(name)) {
      throw new DataError(
        `batch.features has field "${name}" that the model does not declare (declared: ${[...declared].join(", ")})`,
      );
    }
  }
  for (const spec of expected.features) {
    const tensor = batch.features[spec.name];
    if (tensor === undefined) {
      throw new DataError(`batch.features is missing field "${spec.name}" declared by the model`);
    }
    assertTensor(`batch.features.${spec.name}`, tensor, {
      rank: 1,
      dtype: spec.kind === "categorical" ? "int32" : "float32",
      shape: [rows],
    });
  }
  assertIdsInRange("batch.domainIds", batch.domainIds, expected.numDomains, "numDomains");
  const labels = batch.labels.dataSync();
  for (let index = 0; index < labels.length; index++) {
    const label = labels[index]!;
    if (!(label >= 0 && label <= 1)) {
      const row = Math.floor(index / expected.numTasks);
      throw new DataError(
        `batch.labels[${row}, ${index % expected.numTasks}] must be in [0, 1], received ${label}`,
      );
    }
  }
}
