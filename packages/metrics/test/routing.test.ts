import { ConfigError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import {
  expertShare,
  expertUsageCounts,
  expertUtilization,
  MetricsError,
  routingMutualInformation,
  usageEntropy,
} from "../src/index.js";

describe("expertUsageCounts / expertUtilization", () => {
  it("counts routing slots per domain and expert", () => {
    // Row 0 (domain 0) -> experts 2, 0; row 1 (domain 1) -> experts 1, 0.
    const args = {
      domainIds: [0, 1],
      indices: new Int32Array([2, 0, 1, 0]),
      numDomains: 2,
      numExperts: 3,
      k: 2,
    };
    expect(expertUsageCounts(args)).toEqual([
      [1, 0, 1],
      [1, 1, 0],
    ]);
    expect(expertUtilization(args)).toEqual([
      [0.5, 0, 0.5],
      [0.5, 0.5, 0],
    ]);
  });

  it("uses weight mass when weights are given, and zeros for empty domains", () => {
    const args = {
      domainIds: new Int32Array([0, 0, 2]),
      indices: [0, 1, 1, 0, 1, 0],
      weights: new Float32Array([0.75, 0.25, 0.5, 0.5, 1, 0]),
      numDomains: 3,
      numExperts: 2,
      k: 2,
    };
    expect(expertUsageCounts(args)).toEqual([
      [1.25, 0.75],
      [0, 0],
      [0, 1],
    ]);
    const utilization = expertUtilization(args);
    expect(utilization[0]![0]).toBeCloseTo(0.625, 15);
    expect(utilization[0]![1]).toBeCloseTo(0.375, 15);
    expect(utilization[1]).toEqual([0, 0]);
    expect(utilization[2]).toEqual([0, 1]);
  });

  it("rejects bad input naming the place and value", () => {
    const base = { domainIds: [0, 1], indices: [0, 1, 2, 3], numDomains: 2, numExperts: 4, k: 2 };
    const check = (call: () => unknown, type: new (message: string) => Error, message: string) => {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    };
    check(
      () => expertUsageCounts({ ...base, indices: [0, 1, 2] }),
      MetricsError,
      "expertUsageCounts: indices must have length domainIds.length * k = 2 * 2 = 4, received indices.length=3",
    );
    check(
      () => expertUtilization({ ...base, indices: [0, 1, 4, 3] }),
      MetricsError,
      "expertUtilization: indices[2] (row 1, slot 0) must be an integer in [0, numExperts=4), received 4",
    );
    check(
      () => expertUsageCounts({ ...base, weights: [1, 1, -0.5, 1] }),
      MetricsError,
      "expertUsageCounts: weights[2] (row 1, slot 0) must be a finite number >= 0, received -0.5",
    );
    check(
      () => expertUsageCounts({ ...base, weights: [1, 1, 1] }),
      MetricsError,
      "expertUsageCounts: weights and indices must have the same length, received weights.length=3 and indices.length=4",
    );
    check(
      () => expertUsageCounts({ ...base, domainIds: [0, 3] }),
      MetricsError,
      "expertUsageCounts: domainIds[1] must be an integer in [0, numDomains=2), received 3",
    );
    check(
      () => expertUsageCounts({ ...base, domainIds: [], indices: [] }),
      MetricsError,
      "expertUsageCounts: empty input (0 rows)",
    );
    check(
      () => expertUsageCounts({ ...base, k: 5 }),
      ConfigError,
      "k must be an integer in [1, numExperts=4], received 5",
    );
    check(
      () => expertUsageCounts({ ...base, numExpert: 4 } as never),
      ConfigError,
      'Unknown key "numExpert" in expertUsageCounts args. Did you mean "numExperts"?',
    );
  });
});

describe("routingMutualInformation", () => {
  it("is log D for a one-to-one domain -> expert routing and 0 for shared usage", () => {
    const planted = expertUsageCounts({
      domainIds: [0, 0, 1, 1, 2, 2],
      indices: [0, 0, 2, 2, 1, 1],
      numDomains: 3,
      numExperts: 3,
      k: 1,
    });
    expect(routingMutualInformation(planted)).toBeCloseTo(Math.log(3), 12);
    const shared = expertUsageCounts({
      domainIds: [0, 0, 1, 1],
      indices: [0, 1, 0, 1],
      numDomains: 2,
      numExperts: 2,
      k: 1,
    });
    expect(routingMutualInformation(shared)).toBeCloseTo(0, 14);
    // Hand-computed: p = [[3/8, 1/8], [1/8, 3/8]].
    expect(
      routingMutualInformation([
        [3, 1],
        [1, 3],
      ]),
    ).toBeCloseTo(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), 12);
  });

  it("rejects an invalid table naming the argument and place", () => {
    expect(() => routingMutualInformation([[1, 2], [3]])).toThrow(MetricsError);
    expect(() => routingMutualInformation([[1, -2]])).toThrow(
      "routingMutualInformation(usageCounts): table[0][1] (row 0, column 1) must be a finite number >= 0, received -2",
    );
  });
});

describe("usageEntropy", () => {
  it("matches hand-computed values", () => {
    expect(usageEntropy([0.25, 0.25, 0.25, 0.25])).toBeCloseTo(Math.log(4), 14);
    expect(usageEntropy([0.25, 0.25, 0.25, 0.25], { normalized: true })).toBeCloseTo(1, 14);
    expect(usageEntropy(new Int32Array([3, 1]))).toBeCloseTo(
      -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)),
      14,
    );
    expect(usageEntropy([0, 1, 0])).toBe(0);
    expect(usageEntropy([5], { normalized: true })).toBe(0);
  });

  it("gives NaN for an all-zero row (a domain without rows)", () => {
    expect(usageEntropy([0, 0, 0])).toBeNaN();
  });

  it("rejects bad input naming the place and value", () => {
    expect(() => usageEntropy([0.5, -0.5])).toThrow(MetricsError);
    expect(() => usageEntropy([0.5, -0.5])).toThrow(
      "usageEntropy: usage[1] must be a finite number >= 0, received -0.5",
    );
    expect(() => usageEntropy([])).toThrow("usageEntropy: empty input (usage has length 0)");
    expect(() => usageEntropy([1], { normalised: true } as never)).toThrow(
      'Unknown key "normalised" in usageEntropy options. Did you mean "normalized"?',
    );
  });
});

describe("expertShare", () => {
  it("is the share of routing slots (or weight) per expert", () => {
    expect(expertShare({ indices: [0, 2, 2, 2], numExperts: 3 })).toEqual([0.25, 0, 0.75]);
    expect(expertShare({ indices: new Int32Array([0, 1]), weights: [3, 1], numExperts: 2 })).toEqual([
      0.75, 0.25,
    ]);
    expect(expertShare({ indices: [0, 1], weights: [0, 0], numExperts: 2 })).toEqual([0, 0]);
  });

  it("rejects bad input naming the place and value", () => {
    expect(() => expertShare({ indices: [0, 3], numExperts: 3 })).toThrow(
      "expertShare: indices[1] must be an integer in [0, numExperts=3), received 3",
    );
    expect(() => expertShare({ indices: [], numExperts: 3 })).toThrow("expertShare: empty input (0 rows)");
    expect(() => expertShare({ indices: [0], weights: [Number.NaN], numExperts: 3 })).toThrow(
      "expertShare: weights[0] must be a finite number >= 0, received NaN",
    );
    expect(() => expertShare({ indices: [0], numExperts: 0 })).toThrow(ConfigError);
  });
});
