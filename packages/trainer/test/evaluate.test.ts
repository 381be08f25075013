import { type Batch, ConfigError, DataError, type FeatureSpec } from "@mdrec/core";
import type { ColumnarDataset } from "@mdrec/data-loaders";
import { evaluateByDomain } from "@mdrec/metrics";
import type { ModelConfig, ModelOutput, MultiDomainModel } from "@mdrec/models";
import { evaluate, predictDataset } from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { afterAll, describe, expect, it } from "vitest";
import { makeDataset, makeModel } from "./helpers.js";

const FEATURES: FeatureSpec[] = [
  { kind: "numeric", name: "logit" },
  { kind: "categorical", name: "expert", vocabularySize: 3 },
];

/**
 * A model with no weights whose outputs are read from the batch: logit = feature "logit",
 * one gate routing each row to expert = feature "expert" with weight 1 (k = 1 of 3 experts).
 */
class FixedModel implements MultiDomainModel {
  readonly name = "fixed";
  readonly numDomains = 2;
  readonly numTasks = 1;
  readonly features = FEATURES;
  call(batch: Batch): ModelOutput {
    return tf.tidy(() => {
      const expert = batch.features.expert!;
      const logits = tf.reshape(batch.features.logit!, [-1, 1]) as tf.Tensor2D; // [B, 1]
      const probs = tf.cast(tf.oneHot(expert, 3), "float32") as tf.Tensor2D; // [B, 3]
      return {
        logits,
        routing: [
          { probs, indices: tf.reshape(expert, [-1, 1]) as tf.Tensor2D, weights: tf.onesLike(logits) },
        ],
        auxLosses: {},
      } as unknown as tf.TensorContainer;
    }) as unknown as ModelOutput;
  }
  predict(batch: Batch): tf.Tensor2D {
    return tf.tidy(() => tf.sigmoid(this.call(batch).logits));
  }
  trainableWeights(): LayerVariable[] {
    return [];
  }
  nonTrainableWeights(): LayerVariable[] {
    return [];
  }
  getConfig(): ModelConfig {
    return { name: this.name, options: { features: FEATURES, numDomains: 2 }, formatVersion: 1 };
  }
  summary() {
    return { name: this.name, parameters: 0 };
  }
  async save(): Promise<void> {}
  dispose(): void {}
}

const logit = (probability: number) => Math.log(probability / (1 - probability));
const probabilities = [0.9, 0.2, 0.6, 0.4, 0.7, 0.3];
const data: ColumnarDataset = {
  features: FEATURES,
  columns: {
    logit: Float32Array.from(probabilities.map(logit)),
    // Domain 0 rows go to expert 0, domain 1 rows to expert 1 (row 5 to expert 2).
    expert: Int32Array.from([0, 0, 0, 1, 1, 2]),
  },
  domainIds: Int32Array.from([0, 0, 0, 1, 1, 1]),
  labels: Float32Array.from([1, 0, 0, 1, 1, 0]),
  numRows: 6,
  numTasks: 1,
  numDomains: 2,
  domainNames: ["home", "search"],
  taskNames: ["click"],
  groupIds: Int32Array.from([7, 7, 8, 8, 9, 9]),
};

const fixed = new FixedModel();
const tiny = makeModel();
afterAll(() => tiny.dispose());

describe("evaluate", () => {
  it("computes overall and per-domain metrics (golden values) and GAUC with groupIds", async () => {
    const result = await evaluate(fixed, data, { batchSize: 4 });
    expect(result.numRows).toBe(6);
    expect(result.domainNames).toEqual(["home", "search"]);
    expect(result.taskNames).toEqual(["click"]);
    // Overall: positives score 0.9, 0.4, 0.7; negatives 0.2, 0.6, 0.3 -> 8 of 9 pairs ordered.
    expect(result.overall.auc).toBeCloseTo(8 / 9, 6);
    expect(result.perDomain.map((domain) => domain.auc)).toEqual([1, 1]);
    expect(result.perDomain.map((domain) => domain.name)).toEqual(["home", "search"]);
    expect(result.overall.logloss).toBeCloseTo(
      -(Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.4) + Math.log(0.7) + Math.log(0.7)) / 6,
      5,
    );
    expect(result.overall.calibration).toBeCloseTo(3.1 / 6 / 0.5, 5);
    // GAUC: users 7 (AUC 1, 2 rows) and 9 (AUC 1, 2 rows) count, user 8 (0.6 neg vs 0.4 pos: AUC 0) too.
    expect(result.overall.gauc).toBeCloseTo((1 * 2 + 0 * 2 + 1 * 2) / 6, 6);
    const reference = evaluateByDomain({
      labels: data.labels,
      scores: await predictDataset(fixed, data),
      domainIds: data.domainIds,
      groupIds: data.groupIds!,
      numDomains: 2,
      domainNames: data.domainNames,
    });
    expect(result.overall).toEqual(reference.overall);
    expect(result.perDomain).toEqual(reference.perDomain);
    expect(result.tasks).toEqual([{ task: "click", overall: result.overall, perDomain: result.perDomain }]);
  });

  it("reports each gate's expert utilisation, load and domain-expert mutual information", async () => {
    const { routing } = await evaluate(fixed, data, { batchSize: 4 });
    expect(routing).toHaveLength(1);
    const gate = routing[0]!;
    expect(gate).toMatchObject({ gate: 0, numExperts: 3, k: 1 });
    expect(gate.utilization).toEqual([
      [1, 0, 0],
      [0, 2 / 3, 1 / 3],
    ]);
    expect(gate.load).toEqual([0.5, 2 / 6, 1 / 6]);
    // I(D;E) = H(E) - H(E|D) with P(e) = (1/2, 1/3, 1/6), H(E|D=0) = 0, H(E|D=1) = H(2/3, 1/3).
    const entropy = (values: number[]) => -values.reduce((sum, p) => sum + (p > 0 ? p * Math.log(p) : 0), 0);
    expect(gate.mutualInformation).toBeCloseTo(
      entropy([1 / 2, 1 / 3, 1 / 6]) - entropy([2 / 3, 1 / 3]) / 2,
      10,
    );
  });

  it("gives the same result for any batch size", async () => {
    const one = await evaluate(tiny, makeDataset(50, 3, { groups: true }), { batchSize: 1 });
    const seven = await evaluate(tiny, makeDataset(50, 3, { groups: true }), { batchSize: 7 });
    const all = await evaluate(tiny, makeDataset(50, 3, { groups: true }));
    expect(seven).toEqual(one);
    expect(all).toEqual(one);
    expect(
      one.routing[0]!.utilization.every((row) => Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-9),
    ).toBe(true);
  });

  it("evaluates every task of multi-task data", async () => {
    const model = makeModel({ numTasks: 2 });
    const result = await evaluate(model, makeDataset(40, 5, { numTasks: 2 }));
    expect(result.tasks.map((task) => task.task)).toEqual(["task_0", "task_1"]);
    expect(result.overall).toBe(result.tasks[0]!.overall);
    expect(result.tasks[1]!.overall.count).toBe(40);
    model.dispose();
  });

  it("predictDataset returns row-major probabilities in row order", async () => {
    const scores = await predictDataset(fixed, data, { batchSize: 4 });
    expect(Array.from(scores).map((score) => Number(score.toFixed(5)))).toEqual(probabilities);
  });

  it("leaks no tensors", async () => {
    const dataset = makeDataset(30, 3);
    await evaluate(tiny, dataset, { batchSize: 8 });
    const before = tf.memory().numTensors;
    await evaluate(tiny, dataset, { batchSize: 8 });
    await predictDataset(tiny, dataset, { batchSize: 8 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it("rejects bad options and data that does not fit the model", async () => {
    await expect(evaluate(fixed, data, { batchsize: 4 } as never)).rejects.toThrow(
      'Unknown key "batchsize" in evaluate options. Did you mean "batchSize"?',
    );
    await expect(evaluate(fixed, data, { batchSize: 0 })).rejects.toThrow(ConfigError);
    await expect(evaluate(fixed, data, { batchSize: 0 })).rejects.toThrow(
      "evaluate options.batchSize must be an integer >= 1, received 0",
    );
    await expect(predictDataset(fixed, data, { batchSize: -1 })).rejects.toThrow(
      "predictDataset options.batchSize must be an integer >= 1, received -1",
    );
    await expect(evaluate(tiny, data)).rejects.toThrow(DataError);
    await expect(evaluate(tiny, data)).rejects.toThrow(
      'model "tiny" feature "user" is not in evaluate data.features (evaluate data has: logit, expert)',
    );
  });
});
