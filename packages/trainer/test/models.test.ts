import { generateSyntheticDataset, splitDataset, syntheticPresets } from "@mdrec/data-loaders";
import { createModel, listModels } from "@mdrec/models";
import { evaluate, fit } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { readWeights, removeDirectory, stripTimes, temporaryDirectory } from "./helpers.js";

const data = generateSyntheticDataset({ ...syntheticPresets.tiny, numRows: 500, seed: 3 });
const { train, validation } = splitDataset(data, { fractions: [0.7, 0.3, 0], seed: 1 });
const directories: string[] = [];
afterAll(async () => {
  for (const created of directories) await removeDirectory(created);
});

// Small layer widths keep the tests fast; every other option is the model's default.
const SMALL: Record<string, Record<string, unknown>> = { star: { fcnUnits: [16, 8], auxiliaryUnits: [8] } };

function create(name: string) {
  return createModel(name, {
    features: data.features,
    numDomains: data.numDomains,
    embeddingDim: 4,
    seed: 5,
    ...SMALL[name],
  });
}

describe("registry models", () => {
  it("include the shared-bottom baseline", () => {
    expect(listModels()).toContain("shared-bottom");
  });

  it.each(listModels())("%s trains and evaluates, with routing analysis for MoE models", async (name) => {
    const model = create(name);
    const result = await fit(model, train, { validation, epochs: 1, batchSize: 128, learningRate: 0.01 });
    const [epoch] = result.history;
    expect(epoch!.steps).toBe(Math.ceil(train.numRows / 128));
    for (const value of Object.values(epoch!.losses)) expect(Number.isFinite(value)).toBe(true);
    const evaluation = await evaluate(model, validation);
    expect(evaluation).toEqual(epoch!.validation);
    expect(evaluation.perDomain).toHaveLength(data.numDomains);
    expect(evaluation.overall.auc).toBeGreaterThan(0);
    const { totalExperts } = model.summary();
    if (totalExperts === undefined) {
      expect(evaluation.routing).toEqual([]);
    } else {
      expect(evaluation.routing.length).toBeGreaterThan(0);
      for (const gate of evaluation.routing) {
        expect(gate.utilization).toHaveLength(data.numDomains);
        expect(gate.load.reduce((sum, share) => sum + share, 0)).toBeCloseTo(1, 6);
        expect(gate.mutualInformation).toBeGreaterThanOrEqual(0);
      }
    }
    model.dispose();
  });

  it.each(["shared-bottom", "star", "mmoe"].filter((name) => listModels().includes(name)))(
    "%s resumes from a mid-epoch checkpoint exactly like an uninterrupted run",
    async (name) => {
      const options = { validation, epochs: 2, batchSize: 100, learningRate: 0.01, seed: 8 };
      const checkpointDir = await temporaryDirectory();
      directories.push(checkpointDir);
      const first = create(name);
      await fit(first, train, { ...options, checkpointDir, maxSteps: 6 }); // epoch 1, batch 2
      first.dispose();
      const resumed = create(name);
      const resumedResult = await fit(resumed, train, { ...options, checkpointDir, resume: true });
      const reference = create(name);
      const referenceResult = await fit(reference, train, options);
      expect(resumedResult.resumedFromStep).toBe(6);
      expect(stripTimes(resumedResult.history)).toEqual(stripTimes(referenceResult.history));
      expect(readWeights(resumed)).toEqual(readWeights(reference));
      resumed.dispose();
      reference.dispose();
    },
  );
});
