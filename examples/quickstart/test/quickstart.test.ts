import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { quickstart } from "../src/quickstart.js";

describe("examples/quickstart", () => {
  it("trains CESAA on tiny synthetic data, prints per-domain AUC and the routing MI, and leaks nothing", async () => {
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const result = await quickstart({
      preset: "tiny",
      epochs: 1,
      batchSize: 64,
      backend: "cpu",
      log: (line) => lines.push(line),
    });
    expect(tf.memory().numTensors).toBe(before);
    // A constant scorer gets 0.5; one epoch (25 Adam steps) of CESAA reaches about 0.69 here.
    expect(result.overallAuc).toBeGreaterThan(0.6);
    expect(result.domains.map((domain) => domain.name)).toEqual([
      "domain_0",
      "domain_1",
      "domain_2",
      "domain_3",
    ]);
    for (const domain of result.domains) expect(domain.rows).toBeGreaterThan(0);
    expect(result.mutualInformation).toBeGreaterThanOrEqual(0);
    expect(result.mutualInformation).toBeLessThanOrEqual(Math.log(4) + 1e-9);
    expect(lines[0]).toMatch(/^mdrec backend: cpu \(requested by option prefer/);
    expect(lines).toContain(
      `overall AUC ${result.overallAuc.toFixed(4)}; domain-expert MI of the CES gate ${result.mutualInformation.toFixed(3)} nats`,
    );
    expect(lines.filter((line) => line.startsWith("epoch "))).toHaveLength(1);
    expect(lines.some((line) => /^domain_2 +\d+ rows {2}AUC \d\.\d{4}$/.test(line))).toBe(true);
  });
});
