import * as tf from "@tensorflow/tfjs-core";
import { ConfigError, DataError } from "./errors.js";
import { assertInteger, assertTensor } from "./validate.js";

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
 * `boundaries` (sorted ascending) into `boundaries.length + 1` buckets with an embedding each.
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

/** Declares one input field of a model. */
export type FeatureSpec = CategoricalFeatureSpec | NumericFeatureSpec;

/**
 * One mini-batch. Categorical features are int32 `[B]`, numeric features float32 `[B]`,
 * domain ids int32 `[B]` in `[0, numDomains)`, labels float32 `[B, numTasks]` in {0, 1}.
 */
export interface Batch {
  features: Record<string, tf.Tensor1D>;
  domainIds: tf.Tensor1D;
  labels: tf.Tensor2D;
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  for (const tensor of Object.values(batch.features)) tensor.dispose();
  batch.domainIds.dispose();
  batch.labels.dispose();
}

/** Validates a list of feature specs (unique names, positive sizes, sorted boundaries). */
export function validateFeatureSpecs(features: readonly FeatureSpec[], where = "features"): void {
  if (!Array.isArray(features) || features.length === 0) {
    throw new ConfigError(`${where} must be a non-empty array of feature specs, received ${JSON.stringify(features)}`);
  }
  const seen = new Set<string>();
  features.forEach((spec, index) => {
    const at = `${where}[${index}]`;
    if (spec == null || typeof spec.name !== "string" || spec.name.length === 0) {
      throw new ConfigError(`${at}.name must be a non-empty string, received ${JSON.stringify(spec?.name)}`);
    }
    if (seen.has(spec.name)) throw new ConfigError(`${at}.name "${spec.name}" is declared twice`);
    seen.add(spec.name);
    if (spec.kind === "categorical") {
      assertInteger(`${at}.vocabularySize (field "${spec.name}")`, spec.vocabularySize, 1);
    } else if (spec.kind === "numeric") {
      if (spec.boundaries !== undefined) {
        const ok =
          Array.isArray(spec.boundaries) &&
          spec.boundaries.every((b: number, i: number, all: number[]) => Number.isFinite(b) && (i === 0 || b > all[i - 1]!));
        if (!ok) {
          throw new ConfigError(
            `${at}.boundaries (field "${spec.name}") must be finite and strictly increasing, received ${JSON.stringify(spec.boundaries)}`,
          );
        }
      }
    } else {
      throw new ConfigError(
        `${at}.kind must be "categorical" or "numeric", received ${JSON.stringify((spec as { kind?: unknown }).kind)}`,
      );
    }
    if (spec.embeddingDim !== undefined) assertInteger(`${at}.embeddingDim`, spec.embeddingDim, 1);
  });
}

/**
 * Checks a batch against the model's expectations: every declared feature present with the
 * right rank and dtype, no undeclared feature, domain ids in range, labels `[B, numTasks]`.
 * Reads the domain ids back from the device (one small sync).
 */
export function validateBatch(
  batch: Batch,
  expected: { features: readonly FeatureSpec[]; numDomains: number; numTasks: number },
): void {
  if (batch == null || typeof batch !== "object" || batch.features == null) {
    throw new DataError(`batch must be { features, domainIds, labels }, received ${String(batch)}`);
  }
  assertTensor("batch.domainIds", batch.domainIds, { rank: 1, dtype: "int32" });
  const rows = batch.domainIds.shape[0];
  assertTensor("batch.labels", batch.labels, { rank: 2, shape: [rows, expected.numTasks] });
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
  const domainIds = batch.domainIds.dataSync();
  for (let row = 0; row < domainIds.length; row++) {
    const id = domainIds[row]!;
    if (id < 0 || id >= expected.numDomains) {
      throw new DataError(
        `batch.domainIds[${row}] must be in [0, numDomains=${expected.numDomains}), received ${id}`,
      );
    }
  }
}
