import { ConfigError, SeededRandom } from "@mdrec/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  aucWithReason,
  calibrationWithReason,
  DomainMetricsAccumulator,
  evaluateByDomain,
  gauc,
  logloss,
  MetricsError,
} from "../src/index.js";
import { randomChunks, randomPredictions } from "./helpers.js";

function randomDomainData(rows: number, seed: number, numDomains: number) {
  const { labels, scores } = randomPredictions(rows, seed, { levels: 30 });
  const random = new SeededRandom(seed + 1);
  const domainIds = new Int32Array(rows);
  const groupIds = new Float64Array(rows);
  for (let index = 0; index < rows; index++) {
    // Domain numDomains - 1 stays empty.
    domainIds[index] = random.nextInt(numDomains - 1);
    groupIds[index] = random.nextInt(40) - 5;
  }
  return { labels, scores, domainIds, groupIds };
}

describe("evaluateByDomain", () => {
  it("matches hand-computed values", () => {
    const { overall, perDomain } = evaluateByDomain({
      labels: [1, 0, 1, 0],
      scores: [0.9, 0.2, 0.4, 0.6],
      domainIds: [0, 0, 1, 1],
      numDomains: 2,
      domainNames: ["home", "search"],
    });
    expect(overall.count).toBe(4);
    expect(overall.positives).toBe(2);
    // Positives {0.9, 0.4} vs negatives {0.2, 0.6}: 0.9 beats both, 0.4 beats 0.2.
    expect(overall.auc).toBe(0.75);
    expect(overall.labelRate).toBe(0.5);
    expect(overall.meanPrediction).toBeCloseTo(0.525, 15);
    expect(overall.calibration).toBeCloseTo(1.05, 15);
    expect(perDomain[0]).toMatchObject({ domainId: 0, name: "home", count: 2, positives: 1, auc: 1 });
    expect(perDomain[0]!.logloss).toBeCloseTo((-Math.log(0.9) - Math.log(0.8)) / 2, 15);
    expect(perDomain[0]!.calibration).toBeCloseTo(1.1, 15);
    expect(perDomain[1]).toMatchObject({ domainId: 1, name: "search", auc: 0 });
    expect(perDomain[1]!.logloss).toBeCloseTo((-Math.log(0.4) - Math.log(0.4)) / 2, 15);
    expect(overall.gauc).toBeUndefined();
  });

  it("gives empty and single-class domains NaN with a reason, never throwing", () => {
    const { perDomain } = evaluateByDomain({
      labels: [1, 0, 0, 0],
      scores: [0.9, 0.2, 0.4, 0.6],
      domainIds: [0, 0, 1, 1],
      numDomains: 3,
      groupIds: [1, 1, 2, 2],
    });
    expect(perDomain[1]).toMatchObject({ count: 2, positives: 0, aucReason: "single-class" });
    expect(perDomain[1]!.auc).toBeNaN();
    expect(perDomain[1]!.calibration).toBeNaN();
    expect(perDomain[1]!.calibrationReason).toBe("no-positives");
    expect(perDomain[1]!.gaucReason).toBe("single-class");
    expect(perDomain[1]!.logloss).toBeCloseTo((-Math.log(0.6) - Math.log(0.4)) / 2, 15);
    expect(perDomain[2]).toEqual({
      domainId: 2,
      count: 0,
      positives: 0,
      auc: Number.NaN,
      aucReason: "empty",
      gauc: Number.NaN,
      gaucReason: "empty",
      gaucUsersCounted: 0,
      gaucUsersSkipped: 0,
      logloss: Number.NaN,
      calibration: Number.NaN,
      calibrationReason: "empty",
      meanPrediction: Number.NaN,
      labelRate: Number.NaN,
    });
  });

  it("equals the standalone metrics overall and on each domain's rows, bit for bit", () => {
    const numDomains = 4;
    const { labels, scores, domainIds, groupIds } = randomDomainData(3000, 7, numDomains);
    const { overall, perDomain } = evaluateByDomain({ labels, scores, domainIds, numDomains, groupIds });
    const expectSame = (
      set: (typeof perDomain)[number] | typeof overall,
      subsetLabels: ArrayLike<number>,
      subsetScores: ArrayLike<number>,
      subsetGroups: ArrayLike<number>,
    ) => {
      const aucResult = aucWithReason(subsetLabels, subsetScores);
      expect(set.auc).toBe(aucResult.value);
      expect(set.logloss).toBe(logloss(subsetLabels, subsetScores));
      expect(set.calibration).toBe(calibrationWithReason(subsetLabels, subsetScores).value);
      const gaucResult = gauc(subsetLabels, subsetScores, subsetGroups);
      expect(set.gauc).toBe(gaucResult.value);
      expect(set.gaucUsersCounted).toBe(gaucResult.usersCounted);
      expect(set.gaucUsersSkipped).toBe(gaucResult.usersSkipped);
      expect(set.count).toBe(subsetLabels.length);
    };
    expectSame(overall, labels, scores, groupIds);
    for (let domain = 0; domain < numDomains - 1; domain++) {
      const rows = Array.from(domainIds.keys()).filter((index) => domainIds[index] === domain);
      expectSame(
        perDomain[domain]!,
        rows.map((index) => labels[index]!),
        rows.map((index) => scores[index]!),
        rows.map((index) => groupIds[index]!),
      );
    }
    expect(perDomain[numDomains - 1]!.count).toBe(0);
  });

  it("rejects bad input naming the place and value", () => {
    const base = { labels: [1, 0, 1], scores: [0.9, 0.2, 0.4], domainIds: [0, 1, 1], numDomains: 2 };
    const check = (call: () => unknown, type: new (message: string) => Error, message: string) => {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    };
    check(
      () => evaluateByDomain({ ...base, labels: [], scores: [], domainIds: [] }),
      MetricsError,
      "evaluateByDomain: empty input (0 rows)",
    );
    check(
      () => evaluateByDomain({ ...base, domainIds: [0, 1] }),
      MetricsError,
      "evaluateByDomain: labels and domainIds must have the same length, received labels.length=3 and domainIds.length=2",
    );
    check(
      () => evaluateByDomain({ ...base, domainIds: [0, 2, 1] }),
      MetricsError,
      "evaluateByDomain: domainIds[1] must be an integer in [0, numDomains=2), received 2",
    );
    check(
      () => evaluateByDomain({ ...base, domainIds: [0, -1, 1] }),
      MetricsError,
      "evaluateByDomain: domainIds[1] must be an integer in [0, numDomains=2), received -1",
    );
    check(
      () => evaluateByDomain({ ...base, labels: [1, 0, 3] }),
      MetricsError,
      "evaluateByDomain: labels[2] must be 0 or 1, received 3",
    );
    check(
      () => evaluateByDomain({ ...base, scores: [0.9, 1.2, 0.4] }),
      MetricsError,
      "evaluateByDomain: scores[1] must be a probability in [0, 1], received 1.2",
    );
    check(
      () => evaluateByDomain({ ...base, groupIds: [1, 2] }),
      MetricsError,
      "evaluateByDomain: labels and groupIds must have the same length, received labels.length=3 and groupIds.length=2",
    );
    check(
      () => evaluateByDomain({ ...base, numDomains: 0 }),
      ConfigError,
      "numDomains must be an integer >= 1, received 0",
    );
    check(
      () => evaluateByDomain({ ...base, domainNames: ["a"] }),
      ConfigError,
      'domainNames must be an array of numDomains=2 names, received ["a"]',
    );
    check(
      () => evaluateByDomain({ ...base, domainNames: ["a", 7 as unknown as string] }),
      ConfigError,
      "domainNames[1] must be a string, received 7",
    );
    check(
      () => evaluateByDomain({ ...base, numDomain: 2 } as unknown as Parameters<typeof evaluateByDomain>[0]),
      ConfigError,
      'Unknown key "numDomain" in evaluateByDomain args. Did you mean "numDomains"?',
    );
    check(
      () => evaluateByDomain({ ...base, epsilon: -1 }),
      ConfigError,
      "epsilon must be a finite number > 0 and <= 0.5, received -1",
    );
  });
});

describe("DomainMetricsAccumulator", () => {
  it("equals evaluateByDomain for random chunkings, with and without groups", () => {
    const numDomains = 3;
    const { labels, scores, domainIds, groupIds } = randomDomainData(2500, 31, numDomains);
    for (const withGroups of [false, true]) {
      const expected = evaluateByDomain({
        labels,
        scores,
        domainIds,
        numDomains,
        domainNames: ["a", "b", "c"],
        ...(withGroups ? { groupIds } : {}),
      });
      for (const seed of [4, 5]) {
        const accumulator = new DomainMetricsAccumulator({ numDomains, domainNames: ["a", "b", "c"] });
        for (const [start, end] of randomChunks(labels.length, seed, 400)) {
          accumulator.add(
            labels.subarray(start, end),
            scores.subarray(start, end),
            domainIds.subarray(start, end),
            withGroups ? groupIds.subarray(start, end) : undefined,
          );
          if (seed === 5 && accumulator.count > 0) accumulator.result();
        }
        expect(accumulator.result()).toEqual(expected);
      }
    }
  });

  it("equals the batch result on small random data (property)", () => {
    const row = fc.tuple(
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 0, max: 2 }),
    );
    fc.assert(
      fc.property(
        fc.array(row, { minLength: 1, maxLength: 50 }),
        fc.array(fc.nat(50), { maxLength: 4 }),
        (rows, cuts) => {
          const labels = rows.map(([label]) => label);
          const scores = rows.map(([, level]) => level / 4);
          const domainIds = rows.map(([, , domain]) => domain);
          const groupIds = rows.map((_, index) => index % 3);
          const bounds = [
            0,
            ...cuts.map((cut) => Math.min(cut, rows.length)).sort((a, b) => a - b),
            rows.length,
          ];
          const accumulator = new DomainMetricsAccumulator({ numDomains: 3 });
          for (let part = 0; part + 1 < bounds.length; part++) {
            const [start, end] = [bounds[part], bounds[part + 1]];
            accumulator.add(
              labels.slice(start, end),
              scores.slice(start, end),
              domainIds.slice(start, end),
              groupIds.slice(start, end),
            );
          }
          expect(accumulator.result()).toEqual(
            evaluateByDomain({ labels, scores, domainIds, groupIds, numDomains: 3 }),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it("rejects a bad batch whole and keeps its state", () => {
    const accumulator = new DomainMetricsAccumulator({ numDomains: 2 });
    accumulator.add([1, 0], [0.8, 0.3], [0, 1]);
    const before = accumulator.result();
    expect(() => accumulator.add([1, 0, 1], [0.8, 0.3, 0.5], [0, 1, 5])).toThrow(
      "DomainMetricsAccumulator.add: domainIds[2] must be an integer in [0, numDomains=2), received 5",
    );
    expect(() => accumulator.add([1], [0.8], [0], [3])).toThrow(
      "DomainMetricsAccumulator.add: groupIds must be passed in every call or in none; the first call did not pass them but call 2 does",
    );
    expect(accumulator.count).toBe(2);
    expect(accumulator.result()).toEqual(before);

    const grouped = new DomainMetricsAccumulator({ numDomains: 1 });
    grouped.add([1], [0.5], [0], [9]);
    expect(() => grouped.add([0], [0.5], [0])).toThrow(
      "DomainMetricsAccumulator.add: groupIds must be passed in every call or in none; the first call passed them but call 2 does not",
    );
  });

  it("reports empty input and resets", () => {
    const accumulator = new DomainMetricsAccumulator({ numDomains: 2 });
    expect(() => accumulator.result()).toThrow(MetricsError);
    expect(() => accumulator.result()).toThrow(
      "DomainMetricsAccumulator.result: empty input (no rows added)",
    );
    accumulator.add([1, 0], [0.6, 0.4], [1, 1], [1, 1]);
    expect(accumulator.result().perDomain[1]!.gauc).toBe(1);
    accumulator.reset();
    expect(accumulator.count).toBe(0);
    accumulator.add([0, 1], [0.6, 0.4], [0, 0]);
    const { overall } = accumulator.result();
    expect(overall.auc).toBe(0);
    expect(overall.gauc).toBeUndefined();
  });

  it("validates its arguments", () => {
    expect(() => new DomainMetricsAccumulator({ numDomains: 1.5 })).toThrow(
      "numDomains must be an integer >= 1, received 1.5",
    );
    expect(() => new DomainMetricsAccumulator({ numDomains: 2, epsilonn: 1 } as never)).toThrow(
      'Unknown key "epsilonn" in DomainMetricsAccumulator args. Did you mean "epsilon"?',
    );
    expect(() => new DomainMetricsAccumulator(undefined as never)).toThrow(
      "DomainMetricsAccumulator args must be an object, received undefined",
    );
  });
});
