// CESAA learns the planted signal (the registry contract of @mdrec/models, run for "cesaa").
import { setGlobalSeed } from "@mdrec/core";
import "@mdrec/cesaa";
import { createModel, modelPreset } from "@mdrec/models";
import { describe, expect, it } from "vitest";
import { datasetAuc, trainModel } from "../../models/test/training.js";
import { baseOptions, splits } from "./helpers.js";

// The threshold of the models' parametrised registry test (packages/models/test/models.test.ts):
// 2 epochs of the tiny preset on 6.4k rows. A domain-blind constant scores 0.5, the Bayes-optimal
// scorer about 0.83.
const AUC_THRESHOLD = 0.62;

describe("Cesaa training", () => {
  it(`trains with a seed to held-out AUC > ${AUC_THRESHOLD} (tiny preset, registry protocol)`, () => {
    setGlobalSeed(11);
    const model = createModel("cesaa", { ...modelPreset("cesaa", "tiny"), ...baseOptions, seed: 3 });
    const before = datasetAuc(model, splits.test);
    const losses = trainModel(model, splits.train, { epochs: 2, seed: 5 });
    const after = datasetAuc(model, splits.test);
    expect(losses[1]).toBeLessThan(losses[0]!);
    expect(after).toBeGreaterThan(AUC_THRESHOLD);
    expect(after).toBeGreaterThan(before);
    model.dispose();
  });
});
