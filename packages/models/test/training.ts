// The minimal training loop the model tests use (the real trainer lives in @mdrec/trainer).
import { type Batch, disposeBatch } from "@mdrec/core";
import {
  type ColumnarDataset,
  generateSyntheticDataset,
  iterateBatches,
  type SyntheticDataset,
  splitDataset,
} from "@mdrec/data-loaders";
import { auc } from "@mdrec/metrics";
import type { MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";

/** Small multi-domain data with planted domain-specific patterns, split 80/10/10. */
export function syntheticSplits(
  seed = 7,
  numRows = 8000,
): { data: SyntheticDataset; train: ColumnarDataset; test: ColumnarDataset } {
  const data = generateSyntheticDataset({
    seed,
    numRows,
    numDomains: 4,
    numPatterns: 2,
    numUsers: 300,
    numItems: 200,
    numExtraFields: 1,
    numericFields: 1,
  });
  const { train, test } = splitDataset(data, { fractions: [0.8, 0.1, 0.1], seed });
  return { data, train, test };
}

/** Binary cross-entropy on the logits plus every auxiliary loss. */
export function totalLoss(model: MultiDomainModel, batch: Batch): tf.Scalar {
  const output = model.call(batch, { training: true });
  const taskLoss = tf.losses.sigmoidCrossEntropy(batch.labels, output.logits) as tf.Scalar;
  return Object.values(output.auxLosses).reduce((sum, loss) => tf.add(sum, loss), taskLoss);
}

/** One Adam step; returns the loss. */
export function trainStep(model: MultiDomainModel, optimizer: tf.Optimizer, batch: Batch): number {
  const variables = model.trainableWeights().map((weight) => weight.read() as tf.Variable);
  const loss = optimizer.minimize(() => totalLoss(model, batch), true, variables)!;
  const value = loss.dataSync()[0]!;
  loss.dispose();
  return value;
}

/** Trains with Adam over shuffled batches; returns the mean loss of each epoch. */
export function trainModel(
  model: MultiDomainModel,
  dataset: ColumnarDataset,
  options: { epochs?: number; batchSize?: number; learningRate?: number; seed?: number } = {},
): number[] {
  const { epochs = 2, batchSize = 256, learningRate = 3e-3, seed = 0 } = options;
  const optimizer = tf.train.adam(learningRate);
  const epochLosses: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    let sum = 0;
    let steps = 0;
    for (const batch of iterateBatches(dataset, { batchSize, shuffle: true, seed, epoch })) {
      sum += trainStep(model, optimizer, batch);
      steps += 1;
      disposeBatch(batch);
    }
    epochLosses.push(sum / steps);
  }
  optimizer.dispose();
  return epochLosses;
}

/** Probabilities `[numRows * numTasks]` (row-major) of a whole dataset. */
export function predictDataset(
  model: MultiDomainModel,
  dataset: ColumnarDataset,
  batchSize = 1024,
): Float32Array {
  const result = new Float32Array(dataset.numRows * dataset.numTasks);
  let offset = 0;
  for (const batch of iterateBatches(dataset, { batchSize })) {
    const probabilities = model.predict(batch);
    result.set(probabilities.dataSync(), offset);
    offset += probabilities.size;
    probabilities.dispose();
    disposeBatch(batch);
  }
  return result;
}

/** AUC of task 0 over a dataset. */
export function datasetAuc(model: MultiDomainModel, dataset: ColumnarDataset): number {
  const probabilities = predictDataset(model, dataset);
  const tasks = dataset.numTasks;
  const labels = dataset.labels.filter((_, index) => index % tasks === 0);
  const scores = probabilities.filter((_, index) => index % tasks === 0);
  return auc(labels, scores);
}

/** The first batch of a dataset (the caller disposes it). */
export function firstBatch(dataset: ColumnarDataset, batchSize = 64): Batch {
  const iterator = iterateBatches(dataset, { batchSize });
  const batch = iterator.next().value as Batch;
  iterator.return(undefined);
  return batch;
}
