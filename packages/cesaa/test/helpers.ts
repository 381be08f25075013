// Shared by the CESAA tests: small synthetic data, model factories, weight setters.

import { Cesaa, type CesaaOptions } from "@mdrec/cesaa";
import { type Batch, type FeatureSpec, setGlobalSeed } from "@mdrec/core";
import { takeRows } from "@mdrec/data-loaders";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { firstBatch, syntheticSplits } from "../../models/test/training.js";

/** 8000 synthetic rows (4 domains, 2 planted patterns) split 80/10/10, as in the models' registry test. */
export const splits = syntheticSplits(7, 8000);

/** The first 1024 training rows. */
export const smallTrain = takeRows(
  splits.train,
  Int32Array.from({ length: 1024 }, (_, index) => index),
);

/** Data-dependent base options of the synthetic splits. */
export const baseOptions = {
  features: splits.data.features,
  numDomains: splits.data.numDomains,
  embeddingDim: 8,
};

/** A small CESAA on the synthetic data (S = 1, N = 4, k = 2, tiny widths), seeded. */
export function smallCesaa(extra: Partial<CesaaOptions> = {}, seed = 3): Cesaa {
  setGlobalSeed(seed);
  return new Cesaa({
    ...baseOptions,
    numSharedExperts: 1,
    numSpecificExperts: 4,
    k: 2,
    expertUnits: [8],
    towerUnits: [4],
    seed,
    ...extra,
  });
}

/** `rows` rows of the synthetic training data (the caller disposes them). */
export function sampleBatch(rows = 32): Batch {
  return firstBatch(splits.train, rows);
}

/** Values of a tensor as a plain array (the tensor is not disposed). */
export function values(tensor: tf.Tensor): number[] {
  return Array.from(tensor.dataSync());
}

/** Autodiff gradients of `loss` with respect to `weights`, as arrays (missing gradients are zeros). */
export function gradientValues(loss: () => tf.Scalar, weights: LayerVariable[]): number[][] {
  const variables = weights.map((weight) => weight.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(loss, variables);
  value.dispose();
  const result = variables.map((variable) =>
    grads[variable.name] ? values(grads[variable.name]!) : new Array<number>(variable.size).fill(0),
  );
  tf.dispose(grads);
  return result;
}

/** Overwrites a weight with `values` (row-major, the weight's shape). */
export function setWeight(variable: LayerVariable, values: number[]): void {
  const value = tf.tensor(values, variable.shape as number[]);
  variable.write(value);
  value.dispose();
}

/** The single weight of `weights` whose name contains `part`. */
export function weightNamed(weights: LayerVariable[], part: string): LayerVariable {
  const found = weights.filter((weight) => weight.name.includes(part));
  if (found.length !== 1) {
    throw new Error(
      `expected one weight named *${part}*, found ${found.map((w) => w.name).join(", ") || "none"}`,
    );
  }
  return found[0]!;
}

/** A batch of one numeric field `v` with the given values and domains. */
export function numericBatch(values: number[], domainIds: number[]): Batch {
  return {
    features: { v: tf.tensor1d(values, "float32") },
    domainIds: tf.tensor1d(domainIds, "int32"),
    labels: tf.tensor2d(
      values.map((_, row) => row % 2),
      [values.length, 1],
    ),
  };
}

/** The one numeric feature of {@link numericBatch}. */
export const numericFeature: FeatureSpec[] = [{ kind: "numeric", name: "v" }];
