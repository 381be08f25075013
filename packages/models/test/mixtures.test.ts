import { type Batch, disposeBatch } from "@mdrec/core";
import { Mmoe, Ple } from "@mdrec/models";
import { expectClose } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { values } from "./support.js";
import { syntheticSplits, trainStep } from "./training.js";

const { data } = syntheticSplits(13, 200);
const base = { features: data.features, numDomains: 3, embeddingDim: 4 };

/** The same feature row repeated in domains 0, 1, 2, 1, labels for `numTasks` tasks. */
function sameRowEveryDomain(numTasks = 1): Batch {
  const features: Record<string, tf.Tensor1D> = {};
  for (const spec of data.features) {
    const value = spec.kind === "categorical" ? 1 : 0.5;
    features[spec.name] = tf.fill(
      [4],
      value,
      spec.kind === "categorical" ? "int32" : "float32",
    ) as tf.Tensor1D;
  }
  return {
    features,
    domainIds: tf.tensor1d([0, 1, 2, 1], "int32"),
    labels: tf.tensor2d(
      [1, 0, 1, 0].flatMap((label) => new Array<number>(numTasks).fill(label)),
      [4, numTasks],
    ),
  };
}

describe("MMoE", () => {
  it("gates per (domain, task): one routing per task over all N experts, differing by domain", () => {
    const model = new Mmoe({ ...base, numTasks: 2, numExperts: 5, seed: 1 });
    const batch = sameRowEveryDomain(2);
    tf.tidy(() => {
      const output = model.call(batch, { training: false });
      expect(output.routing).toHaveLength(2);
      for (const routing of output.routing) {
        expect(routing.probs.shape).toEqual([4, 5]);
        expect(values(routing.indices)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
        expectClose(values(tf.sum(routing.probs, 1)), [1, 1, 1, 1], 1e-6);
        const probs = values(routing.probs);
        // identical features, different domains -> different gates; same domain -> same gate
        expect(probs.slice(0, 5)).not.toEqual(probs.slice(5, 10));
        expect(probs.slice(5, 10)).toEqual(probs.slice(15, 20));
      }
      expect(values(output.routing[0]!.probs)).not.toEqual(values(output.routing[1]!.probs));
    });
    expect(model.summary()).toMatchObject({ name: "mmoe", expertsPerRow: 5, totalExperts: 5 });
    disposeBatch(batch);
    model.dispose();
  });
});

describe("PLE", () => {
  it("routes each row to its domain's specific experts plus the shared ones (CGC)", () => {
    const model = new Ple({ ...base, numSharedExperts: 1, numSpecificExperts: 2, seed: 2 });
    const batch = sameRowEveryDomain();
    tf.tidy(() => {
      const [cgc] = model.call(batch, { training: false }).routing;
      expect(cgc!.probs.shape).toEqual([4, 1 + 3 * 2]);
      // pool layout [shared, domain 0 x2, domain 1 x2, domain 2 x2]
      expect(values(cgc!.indices)).toEqual([1, 2, 0, 3, 4, 0, 5, 6, 0, 3, 4, 0]);
      const probs = values(cgc!.probs);
      const usable = [
        [0, 1, 2],
        [0, 3, 4],
        [0, 5, 6],
        [0, 3, 4],
      ];
      usable.forEach((experts, row) => {
        for (let expert = 0; expert < 7; expert++) {
          const p = probs[row * 7 + expert]!;
          if (experts.includes(expert)) expect(p).toBeGreaterThan(0);
          else expect(p).toBe(0);
        }
      });
    });
    expect(model.summary()).toMatchObject({ name: "ple", expertsPerRow: 7, totalExperts: 7 });
    disposeBatch(batch);
    model.dispose();
  });

  it("stacks levels with a shared gate on non-final levels, with and without shared experts, for two tasks", () => {
    for (const numSharedExperts of [0, 2]) {
      const model = new Ple({
        ...base,
        numTasks: 2,
        numLevels: 3,
        numSharedExperts,
        numSpecificExperts: 1,
        seed: 3,
      });
      const batch = sameRowEveryDomain(2);
      const perLevel = numSharedExperts + 2 * 3 * 1;
      tf.tidy(() => {
        const output = model.call(batch, { training: true });
        expect(output.logits.shape).toEqual([4, 2]);
        // per level: one CGC routing per task; plus a shared gate on the two non-final levels
        expect(output.routing).toHaveLength(3 * 2 + 2);
        expect(output.routing[2]!.probs.shape).toEqual([4, perLevel]);
      });
      expect(model.summary()).toMatchObject({ expertsPerRow: 3 * perLevel, totalExperts: 3 * perLevel });
      const optimizer = tf.train.adam(1e-2);
      const losses = Array.from({ length: 4 }, () => trainStep(model, optimizer, batch));
      expect(losses[3]).toBeLessThan(losses[0]!);
      optimizer.dispose();
      disposeBatch(batch);
      model.dispose();
    }
  });
});
