import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import { modelPreset, Star } from "@mdrec/models";
import { expectClose } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, values } from "./support.js";
import { firstBatch, syntheticSplits, trainModel } from "./training.js";

const { data, train } = syntheticSplits(11, 2000);

function weightNamed(weights: LayerVariable[], pattern: RegExp): LayerVariable {
  const found = weights.find((weight) => pattern.test(weight.name));
  if (!found) throw new Error(`no weight matches ${pattern}: ${weights.map((w) => w.name).join(", ")}`);
  return found;
}

describe("STAR", () => {
  let model: Star;

  beforeAll(() => {
    setGlobalSeed(1);
    model = new Star({
      ...(modelPreset("star", "tiny") as { fcnUnits: number[]; auxiliaryUnits: number[] }),
      features: data.features,
      numDomains: data.numDomains,
      embeddingDim: 4,
      normMomentum: 0.9,
      seed: 2,
    });
    trainModel(model, train, { epochs: 1, batchSize: 128, learningRate: 1e-2 });
  });

  afterAll(() => model.dispose());

  it("learns different effective weights W_shared * W_d, b_shared + b_d per domain", () => {
    model.starFcn.units.forEach((_, layer) => {
      const first = model.starFcn.domainWeights(layer, 0);
      const second = model.starFcn.domainWeights(layer, 1);
      const kernelGap = Math.max(...values(tf.abs(tf.sub(first.kernel, second.kernel))));
      const biasGap = Math.max(...values(tf.abs(tf.sub(first.bias, second.bias))));
      expect(kernelGap).toBeGreaterThan(1e-3);
      expect(biasGap).toBeGreaterThan(1e-4);
      tf.dispose([first.kernel, first.bias, second.kernel, second.bias]);
    });
  });

  it("normalises with each domain's own moving statistics at inference", () => {
    const norm = model.partitionedNorm;
    const movingMean = weightNamed(norm.nonTrainableWeights, /moving_mean/);
    const means = values(movingMean.read());
    const width = means.length / data.numDomains;
    // every domain collected its own statistics during training
    expect(means.slice(0, width)).not.toEqual(means.slice(width, 2 * width));
    const batch = firstBatch(train, 64);
    const domains = values(batch.domainIds);
    const before = run(() => model.predict(batch));
    const original = tf.clone(movingMean.read());
    // shift only domain 1's moving mean: only domain-1 rows may change
    const shift = Array.from({ length: data.numDomains }, (_, domain) =>
      new Array<number>(width).fill(domain === 1 ? 3 : 0),
    );
    movingMean.write(tf.add(original, tf.tensor2d(shift)));
    const after = run(() => model.predict(batch));
    domains.forEach((domain, row) => {
      if (domain === 1) expect(Math.abs(after[row]! - before[row]!)).toBeGreaterThan(1e-6);
      else expect(after[row]).toBe(before[row]);
    });
    expect(domains.filter((domain) => domain === 1).length).toBeGreaterThan(0);
    // training mode uses batch statistics, which the moving statistics do not affect
    const training = () => run(() => model.call(batch, { training: true }).logits);
    const momentum = model.partitionedNorm.momentum;
    expect(momentum).toBe(0.9);
    movingMean.write(original);
    const withOriginal = training();
    movingMean.write(tf.add(original, 5));
    expect(training()).toEqual(withOriginal);
    movingMean.write(original);
    disposeBatch(batch);
  });

  it("adds the auxiliary network's logit to the main logit", () => {
    const batch = firstBatch(train, 16);
    const before = run(() => model.call(batch, { training: false }).logits);
    const auxiliaryBias = weightNamed(model.trainableWeights(), /auxiliary.*bias_1/);
    const original = tf.clone(auxiliaryBias.read());
    auxiliaryBias.write(tf.add(original, 1.5));
    const after = run(() => model.call(batch, { training: false }).logits);
    expectClose(
      after.map((value, index) => value - before[index]!),
      before.map(() => 1.5),
      1e-5,
    );
    auxiliaryBias.write(original);
    disposeBatch(batch);
  });
});
