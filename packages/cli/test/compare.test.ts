import "@tensorflow/tfjs-backend-wasm";
import { ConfigError } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import { compareModels } from "../src/compare.js";
import { loadData } from "../src/data.js";
import { parseDataArgument } from "../src/data-argument.js";
import type { ModelResult } from "../src/results.js";

const budget = { epochs: 1, batchSize: 128 };

async function tinyData(seed = 3) {
  return loadData(parseDataArgument("synthetic:tiny"), { seed, split: [0.8, 0.1, 0.1], rows: 400 });
}

// Everything but the timings, which differ between runs.
function measured(result: ModelResult) {
  const { trainExamplesPerSecond, trainSeconds, wallSeconds, history, ...rest } = result;
  return { ...rest, history: history.map(({ seconds, ...record }) => record) };
}

afterAll(async () => {
  await tf.setBackend("cpu");
});

describe("compareModels", () => {
  it("gives identical results for the same seed, and different ones for another seed", async () => {
    const data = await tinyData();
    const first = await compareModels({ ...budget, data, models: ["shared-bottom"], seed: 9 });
    const second = await compareModels({ ...budget, data, models: ["shared-bottom"], seed: 9 });
    expect(measured(second[0]!)).toEqual(measured(first[0]!));
    const other = await compareModels({ ...budget, data, models: ["shared-bottom"], seed: 10 });
    expect(other[0]!.test.overall.logloss).not.toBe(first[0]!.test.overall.logloss);
    expect(first[0]!.test.perDomain.map((entry) => entry.name)).toEqual([
      "domain_0",
      "domain_1",
      "domain_2",
      "domain_3",
    ]);
    expect(first[0]!.routing).toEqual([]);
  });

  it("reports routing for a gated model and matches between the wasm and cpu backends", async () => {
    const data = await tinyData();
    const onCpu = await compareModels({ ...budget, data, models: ["mmoe"], seed: 4 });
    await tf.setBackend("wasm");
    await tf.ready();
    const onWasm = await compareModels({ ...budget, data, models: ["mmoe"], seed: 4 });
    await tf.setBackend("cpu");
    const cpu = onCpu[0]!;
    const wasm = onWasm[0]!;
    expect(cpu.routing.length).toBeGreaterThan(0);
    const utilisation = cpu.routing[0]!.utilisation;
    expect(utilisation).toHaveLength(4);
    for (const row of utilisation) expect(row.reduce((sum, share) => sum + share, 0)).toBeCloseTo(1, 5);
    expect(cpu.history[0]!.domainExpertMi).not.toBeNull();
    expect(wasm.test.overall.logloss!).toBeCloseTo(cpu.test.overall.logloss!, 4);
    expect(wasm.test.overall.auc!).toBeCloseTo(cpu.test.overall.auc!, 3);
    expect(wasm.routing[0]!.mutualInformation).toBeCloseTo(cpu.routing[0]!.mutualInformation, 4);
  });

  it("refuses an unknown model before training any", async () => {
    const data = await tinyData();
    await expect(compareModels({ ...budget, data, models: ["shared-bottom", "nope"] })).rejects.toThrow(
      ConfigError,
    );
    await expect(compareModels({ ...budget, data, models: ["nope"] })).rejects.toThrow(
      /Unknown model "nope"\..*Known models: /,
    );
  });
});
