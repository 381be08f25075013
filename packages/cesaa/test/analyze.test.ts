import { analyzeRouting, Cesaa } from "@mdrec/cesaa";
import { ConfigError, disposeBatch } from "@mdrec/core";
import { iterateBatches } from "@mdrec/data-loaders";
import { createModel } from "@mdrec/models";
import { expectClose } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { numericBatch, numericFeature, setWeight, smallCesaa, splits, weightNamed } from "./helpers.js";

/**
 * A CESAA whose gate routes by domain only: 2 domains, N = 3 specific experts, k = 2.
 * Gate logits = emb(d): domain 0 -> [2, 1, -5] (experts 0, 1), domain 1 -> [-5, 1, 2] (experts 2, 1).
 */
function domainRoutedModel(): Cesaa {
  const model = new Cesaa({
    features: numericFeature,
    numDomains: 2,
    numSharedExperts: 1,
    numSpecificExperts: 3,
    k: 2,
    expertUnits: [2],
    towerUnits: [],
    gate: { domainEmbeddingDim: 3 },
    seed: 4,
  });
  model.trainableWeights();
  // rows [x ; emb_0 ; emb_1 ; emb_2] -> 3 expert logits: x gets no weight, the embedding passes through.
  setWeight(weightNamed(model.gate.weights, "gate_kernel"), [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
  setWeight(weightNamed(model.gate.weights, "domain_embedding"), [2, 1, -5, -5, 1, 2]);
  return model;
}

describe("analyzeRouting", () => {
  it("golden: utilisation, MI from counts, rows per expert on hand-set routing", () => {
    const model = domainRoutedModel();
    // Two batches, domains [0, 0] and [0, 1]: slot counts d0 = [3, 3, 0], d1 = [0, 1, 1].
    const batches = [numericBatch([0.5, -1], [0, 0]), numericBatch([2, 3], [0, 1])];
    const result = analyzeRouting(model, batches);
    expect(result.rows).toBe(4);
    expectClose(result.utilization.flat(), [0.5, 0.5, 0, 0, 0.5, 0.5], 1e-12);
    // 8 slots: expert 0 -> 3, expert 1 -> 4, expert 2 -> 1.
    expectClose(result.rowsPerExpert, [3 / 8, 4 / 8, 1 / 8], 1e-12);
    // p(d, e) = counts / 8, p(d) = [6/8, 2/8], p(e) = [3/8, 4/8, 1/8]:
    // I = 3/8 log((3/8) / (6/8 * 3/8)) + 3/8 log(1) + 1/8 log(1) + 1/8 log((1/8) / (2/8 * 1/8))
    const mutualInformation = (3 / 8) * Math.log(4 / 3) + (1 / 8) * Math.log(4);
    expect(result.mutualInformation).toBeCloseTo(mutualInformation, 12);
    const entropyOf = (p: number[]) => -p.reduce((sum, value) => sum + value * Math.log(value), 0);
    const normalized =
      mutualInformation / Math.sqrt(entropyOf([6 / 8, 2 / 8]) * entropyOf([3 / 8, 4 / 8, 1 / 8]));
    expect(result.normalizedMutualInformation).toBeCloseTo(normalized, 12);
    // The batches were disposed (the default).
    expect(batches[0]!.domainIds.isDisposed).toBe(true);
    model.dispose();
  });

  it("uses inference mode (no gate noise), keeps batches on request and leaks nothing", () => {
    const model = smallCesaa();
    const batches = [...iterateBatches(splits.test, { batchSize: 256 })];
    analyzeRouting(model, batches, { disposeBatches: false }); // warm-up builds the model
    const before = tf.memory().numTensors;
    const first = analyzeRouting(model, batches, { disposeBatches: false });
    const second = analyzeRouting(model, batches, { disposeBatches: false });
    expect(tf.memory().numTensors).toBe(before);
    expect(second).toEqual(first);
    expect(first.rows).toBe(splits.test.numRows);
    expect(first.utilization).toHaveLength(4);
    first.utilization.forEach((row) => {
      expect(row.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 12);
    });
    expect(first.rowsPerExpert.reduce((sum, value) => sum + value, 0)).toBeCloseTo(1, 12);
    expect(first.mutualInformation).toBeGreaterThanOrEqual(0);
    expect(first.mutualInformation).toBeLessThanOrEqual(Math.log(4) + 1e-12);
    batches.forEach(disposeBatch);
    model.dispose();
  });

  it("analyses the shared gate of learned mixing with options.gate = 1", () => {
    const model = smallCesaa({ sharedMixing: "learned", numSharedExperts: 3 });
    const result = analyzeRouting(model, iterateBatches(splits.test, { batchSize: 512 }), { gate: 1 });
    expect(result.rowsPerExpert).toHaveLength(3);
    expect(result.utilization[0]).toEqual([1 / 3, 1 / 3, 1 / 3]); // dense gate: every row uses all 3
    model.dispose();
  });

  it("refuses a gate the model does not report, bad options and no rows", () => {
    const model = smallCesaa();
    expect(() => analyzeRouting(model, iterateBatches(splits.test, { batchSize: 512 }), { gate: 1 })).toThrow(
      new ConfigError(
        'analyzeRouting options.gate must be in [0, 1) (the gates model "cesaa" reports), received 1',
      ),
    );
    expect(() => analyzeRouting(model, [], { gate: -1 })).toThrow(
      new ConfigError("analyzeRouting options.gate must be an integer >= 0, received -1"),
    );
    expect(() => analyzeRouting(model, [], { gates: 0 } as never)).toThrow(
      new ConfigError('Unknown key "gates" in analyzeRouting options. Did you mean "gate"?'),
    );
    expect(() => analyzeRouting(model, [], { disposeBatches: "yes" } as never)).toThrow(
      new ConfigError('analyzeRouting options.disposeBatches must be a boolean, received "yes"'),
    );
    expect(() => analyzeRouting(model, [])).toThrow(
      new ConfigError("analyzeRouting batches must hold at least one row"),
    );
    const shared = createModel("shared-bottom", { features: numericFeature, numDomains: 2, seed: 1 });
    const single = numericBatch([1], [0]);
    expect(() => analyzeRouting(shared, [single])).toThrow(
      new ConfigError('analyzeRouting: model "shared-bottom" reports no routing (it has no gates)'),
    );
    expect(single.domainIds.isDisposed).toBe(true); // disposed even when the analysis fails
    shared.dispose();
    model.dispose();
  });
});
