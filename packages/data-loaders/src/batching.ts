import { assertInteger, assertKnownKeys, type Batch, ConfigError, formatValue } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { type ColumnarDataset, gather } from "./dataset.js";
import { seededPermutation } from "./permutation.js";

/** Options of {@link iterateBatches}. */
export interface BatchOptions {
  /** Rows per batch, >= 1. */
  batchSize: number;
  /** Visit rows in a seeded random order. Defaults to false (row order). */
  shuffle?: boolean;
  /** Shuffle seed. Defaults to 0. The order of an epoch depends only on `(seed, epoch)`. */
  seed?: number;
  /** Drop the last batch when it has fewer than `batchSize` rows. Defaults to false. */
  dropLast?: boolean;
  /** Epoch number, selects the shuffle of this epoch. Defaults to 0. */
  epoch?: number;
  /** Skip this many batches of the epoch (resume mid-epoch). Defaults to 0. */
  startBatch?: number;
}

const BATCH_OPTION_KEYS = ["batchSize", "shuffle", "seed", "dropLast", "epoch", "startBatch"];

/**
 * Number of batches of one epoch.
 * @example numBatches(10, 4) // 3; numBatches(10, 4, true) // 2
 */
export function numBatches(numRows: number, batchSize: number, dropLast = false): number {
  assertInteger("numRows", numRows, 0);
  assertInteger("batchSize", batchSize, 1);
  return dropLast ? Math.floor(numRows / batchSize) : Math.ceil(numRows / batchSize);
}

/**
 * Yields the batches of one epoch as tfjs tensors: each feature int32 (categorical) or float32
 * (numeric) `[B]`, `domainIds` int32 `[B]`, `labels` float32 `[B, numTasks]`. A batch's tensors
 * are created when it is requested, so a consumer that stops early leaks nothing; the consumer
 * disposes each batch (`disposeBatch`). Options are validated when called, before the first batch.
 * For data that arrives as a stream of chunks (e.g. {@link streamDataset}), use
 * {@link streamBatches}: its shuffle buffer mixes rows across chunks, its batches span chunk
 * boundaries and it prefetches the next batch.
 *
 * @example
 * for (const batch of iterateBatches(train, { batchSize: 512, shuffle: true, seed: 7, epoch })) {
 *   trainStep(batch);
 *   disposeBatch(batch);
 * }
 */
export function iterateBatches(dataset: ColumnarDataset, options: BatchOptions): Generator<Batch> {
  if (options == null || typeof options !== "object") {
    throw new ConfigError(
      `iterateBatches options must be an object with batchSize, received ${formatValue(options)}`,
    );
  }
  assertKnownKeys("iterateBatches options", options, BATCH_OPTION_KEYS);
  const { batchSize, shuffle = false, seed = 0, dropLast = false, epoch = 0, startBatch = 0 } = options;
  assertInteger("batchSize", batchSize, 1);
  assertInteger("seed", seed, Number.MIN_SAFE_INTEGER);
  assertInteger("epoch", epoch, 0);
  const total = numBatches(dataset.numRows, batchSize, dropLast);
  assertInteger("startBatch", startBatch, 0, total, `numBatches=${total}`);
  if (typeof shuffle !== "boolean")
    throw new ConfigError(`shuffle must be a boolean, received ${formatValue(shuffle)}`);
  if (typeof dropLast !== "boolean")
    throw new ConfigError(`dropLast must be a boolean, received ${formatValue(dropLast)}`);
  for (const spec of dataset.features) {
    if (dataset.columns[spec.name] === undefined) {
      throw new ConfigError(`dataset.columns has no column for feature "${spec.name}"`);
    }
  }
  const order = shuffle ? seededPermutation(dataset.numRows, seed, epoch) : undefined;
  return generateBatches(dataset, order, batchSize, startBatch, total);
}

function* generateBatches(
  dataset: ColumnarDataset,
  order: Int32Array | undefined,
  batchSize: number,
  startBatch: number,
  total: number,
): Generator<Batch> {
  for (let batchIndex = startBatch; batchIndex < total; batchIndex++) {
    const start = batchIndex * batchSize;
    const end = Math.min(start + batchSize, dataset.numRows);
    yield gatherBatch(dataset, order ? order.subarray(start, end) : rangeArray(start, end));
  }
}

/** The columns a batch is gathered from: a dataset, or a buffer with the same layout. */
export type BatchSource = Pick<ColumnarDataset, "features" | "columns" | "domainIds" | "labels" | "numTasks">;

/**
 * Gathers `rows` of `source` (indices trusted) into the tensors of one batch: each feature int32
 * (categorical) or float32 (numeric) `[B]`, `domainIds` int32 `[B]`, `labels` float32
 * `[B, numTasks]`. The tensors own fresh copies, so `source` may be overwritten afterwards.
 */
export function gatherBatch(source: BatchSource, rows: ArrayLike<number>): Batch {
  const { numTasks } = source;
  const size = rows.length;
  const features: Record<string, tf.Tensor1D> = {};
  for (const spec of source.features) {
    const values = gather(source.columns[spec.name]!, rows); // [B]
    features[spec.name] = tf.tensor1d(values, spec.kind === "categorical" ? "int32" : "float32");
  }
  const labels = new Float32Array(size * numTasks); // [B, numTasks] row-major
  for (let position = 0; position < size; position++) {
    const sourceOffset = rows[position]! * numTasks;
    for (let task = 0; task < numTasks; task++)
      labels[position * numTasks + task] = source.labels[sourceOffset + task]!;
  }
  return {
    features,
    domainIds: tf.tensor1d(gather(source.domainIds, rows), "int32"),
    labels: tf.tensor2d(labels, [size, numTasks], "float32"),
  };
}

function rangeArray(start: number, end: number): Int32Array {
  const rows = new Int32Array(end - start);
  for (let index = 0; index < rows.length; index++) rows[index] = start + index;
  return rows;
}

/**
 * The row indices of one epoch in visiting order (what {@link iterateBatches} batches), without
 * creating tensors. Useful for evaluation bookkeeping and tests.
 */
export function epochRowOrder(
  numRows: number,
  options: { shuffle?: boolean; seed?: number; epoch?: number },
): Int32Array {
  const { shuffle = false, seed = 0, epoch = 0 } = options;
  return shuffle ? seededPermutation(numRows, seed, epoch) : rangeArray(0, numRows);
}
