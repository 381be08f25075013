import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { pickAndMix } from "../src/pick-and-mix.js";

// 2,400 training rows, 4 epochs of batch 100 (96 Adam steps) on cpu: deterministic for the seed.
const small = { numRows: 3000, epochs: 4, batchSize: 100, backend: "cpu" as const };

describe("examples/pick-and-mix", () => {
  it("trains a plain tfjs model around TopKGate + ExpertPool; the MI loss makes domains pick their own experts", async () => {
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const withAea = await pickAndMix({ ...small, miWeight: 1, log: (line) => lines.push(line) });
    const withoutAea = await pickAndMix({ ...small, miWeight: 0, log: () => {} });
    const again = await pickAndMix({ ...small, miWeight: 1, log: () => {} });
    expect(again).toEqual(withAea); // setGlobalSeed(seed) makes the gate noise reproducible
    // The example disposes its variables, layers, optimizer and every batch.
    expect(tf.memory().numTensors).toBe(before);

    // Both learn the click patterns (a constant scorer gets 0.5).
    expect(withAea.auc).toBeGreaterThan(0.6);
    expect(withoutAea.auc).toBeGreaterThan(0.6);
    // Measured on test rows: 0.46 nats with the AEA term, 0.01 without (max log 4 = 1.39).
    expect(withAea.mutualInformation).toBeGreaterThan(withoutAea.mutualInformation + 0.3);
    expect(withAea.mutualInformation).toBeLessThanOrEqual(Math.log(4) + 1e-9);
    for (const shares of withAea.utilization) {
      expect(shares.reduce((sum, share) => sum + share, 0)).toBeCloseTo(1, 5);
    }

    expect(lines[0]).toBe("backend cpu; AEA weight 1");
    expect(
      lines.filter((line) => /^epoch \d: bce \d\.\d{4}, I\(D;E\) of the gate probabilities/.test(line)),
    ).toHaveLength(4);
    expect(lines).toContain(`test AUC ${withAea.auc.toFixed(4)}`);
    expect(lines.at(-1)).toBe(
      `measured domain-expert MI ${withAea.mutualInformation.toFixed(3)} nats (max log 4 = 1.386)`,
    );
  });

  it("runs on the wasm backend too", async () => {
    try {
      const result = await pickAndMix({
        numRows: 600,
        epochs: 1,
        batchSize: 100,
        backend: "wasm",
        log: () => {},
      });
      expect(tf.getBackend()).toBe("wasm");
      expect(result.perDomainAuc).toHaveLength(4);
      expect(Number.isFinite(result.auc)).toBe(true);
    } finally {
      await tf.setBackend("cpu");
    }
  });
});
