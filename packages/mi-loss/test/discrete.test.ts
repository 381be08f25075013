import { ConfigError } from "@mdrec/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { entropy, mutualInformationFromCounts, normalizedMutualInformation } from "../src/discrete.js";

describe("entropy", () => {
  it("matches hand-computed values in nats", () => {
    expect(entropy([0.5, 0.5])).toBeCloseTo(Math.LN2, 12);
    expect(entropy([1, 0, 0])).toBe(0);
    expect(entropy(new Float64Array([0.25, 0.25, 0.25, 0.25]))).toBeCloseTo(Math.log(4), 12);
    // -(0.75 ln 0.75 + 0.25 ln 0.25)
    expect(entropy([0.75, 0.25])).toBeCloseTo(-(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25)), 12);
  });

  it("normalises unnormalised masses and treats 0 log 0 as 0", () => {
    expect(entropy([3, 1])).toBeCloseTo(entropy([0.75, 0.25]), 12);
    expect(entropy([2, 0, 2])).toBeCloseTo(Math.LN2, 12);
    expect(entropy(new Float32Array([5]))).toBe(0);
  });

  it("is between 0 and log(n) for any distribution", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 12 }),
        (values) => {
          fc.pre(values.some((value) => value > 0));
          const result = entropy(values);
          return result >= 0 && result <= Math.log(values.length) + 1e-12;
        },
      ),
    );
  });

  it("stays finite for subnormal and huge masses", () => {
    expect(entropy([5e-324, 2, 0])).toBeCloseTo(0, 12);
    expect(entropy([Number.MAX_VALUE, Number.MAX_VALUE])).toBeCloseTo(Math.LN2, 12);
    expect(entropy([5e-324, 5e-324])).toBeCloseTo(Math.LN2, 12);
  });

  it("rejects invalid entries naming the index and value", () => {
    expect(() => entropy([0.5, -0.1, 0.6])).toThrow(ConfigError);
    expect(() => entropy([0.5, -0.1, 0.6])).toThrow(
      "probabilities[1] must be a finite number >= 0, received -0.1",
    );
    expect(() => entropy([0.5, Number.NaN])).toThrow(
      "probabilities[1] must be a finite number >= 0, received NaN",
    );
    expect(() => entropy([Number.POSITIVE_INFINITY])).toThrow(
      "probabilities[0] must be a finite number >= 0, received Infinity",
    );
    expect(() => entropy([0, 0, 0])).toThrow(
      "probabilities must have a positive sum, received all zeros (length 3)",
    );
    expect(() => entropy([])).toThrow("probabilities must not be empty, received an array of length 0");
    expect(() => entropy("abc" as unknown as number[])).toThrow(
      'probabilities must be an array of numbers, received "abc"',
    );
  });
});

describe("mutualInformationFromCounts", () => {
  it("is 0 for an independent table", () => {
    // Outer product of [1, 2] and [3, 1, 4]: rows and columns independent.
    expect(
      mutualInformationFromCounts([
        [3, 1, 4],
        [6, 2, 8],
      ]),
    ).toBeCloseTo(0, 14);
    expect(mutualInformationFromCounts([[7]])).toBe(0);
  });

  it("is log D for a uniform identity D x D table", () => {
    for (const size of [2, 3, 8]) {
      const table = Array.from({ length: size }, (_, row) =>
        Array.from({ length: size }, (_, column) => (row === column ? 5 : 0)),
      );
      expect(mutualInformationFromCounts(table)).toBeCloseTo(Math.log(size), 12);
    }
  });

  it("matches hand-computed 2 x 2 tables", () => {
    // p = [[3/8, 1/8], [1/8, 3/8]], marginals 1/2: 2 (3/8) ln(3/2) + 2 (1/8) ln(1/2)
    expect(
      mutualInformationFromCounts([
        [3, 1],
        [1, 3],
      ]),
    ).toBeCloseTo(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), 12);
    // p = [[1/2, 0], [1/4, 1/4]], p(r) = [1/2, 1/2], p(c) = [3/4, 1/4]
    const expected = 0.5 * Math.log(4 / 3) + 0.25 * Math.log(2 / 3) + 0.25 * Math.log(2);
    expect(expected).toBeCloseTo(0.215762, 6);
    expect(
      mutualInformationFromCounts([
        [2, 0],
        [1, 1],
      ]),
    ).toBeCloseTo(expected, 12);
    // Joint masses give the same value as counts.
    expect(
      mutualInformationFromCounts([
        [0.5, 0],
        [0.25, 0.25],
      ]),
    ).toBeCloseTo(expected, 12);
  });

  it("ignores rows and columns of zero mass", () => {
    const base = mutualInformationFromCounts([
      [3, 1],
      [1, 3],
    ]);
    expect(
      mutualInformationFromCounts([
        [3, 1],
        [0, 0],
        [1, 3],
      ]),
    ).toBeCloseTo(base, 14);
    expect(
      mutualInformationFromCounts([
        [3, 0, 1],
        [1, 0, 3],
      ]),
    ).toBeCloseTo(base, 14);
  });

  it("equals H(C) - H(C|R) on random tables", () => {
    const table = fc.array(fc.array(fc.nat(20), { minLength: 3, maxLength: 3 }), {
      minLength: 1,
      maxLength: 5,
    });
    fc.assert(
      fc.property(table, (rows) => {
        const total = rows.flat().reduce((sum, value) => sum + value, 0);
        fc.pre(total > 0);
        const columnTotals = [0, 1, 2].map((column) => rows.reduce((sum, row) => sum + row[column]!, 0));
        let conditional = 0;
        for (const row of rows) {
          const rowTotal = row.reduce((sum, value) => sum + value, 0);
          if (rowTotal > 0) conditional += (rowTotal / total) * entropy(row);
        }
        const expected = entropy(columnTotals) - conditional;
        return Math.abs(mutualInformationFromCounts(rows) - Math.max(0, expected)) < 1e-12;
      }),
    );
  });

  it("stays finite and within [0, log min(R, C)] for subnormal and huge masses", () => {
    expect(
      mutualInformationFromCounts([
        [Number.MAX_VALUE, 0],
        [0, Number.MAX_VALUE],
      ]),
    ).toBeCloseTo(Math.LN2, 12);
    expect(
      mutualInformationFromCounts([
        [5e-324, 0],
        [0, 5e-324],
      ]),
    ).toBeCloseTo(Math.LN2, 12);
    expect(mutualInformationFromCounts([[5e-324]])).toBe(0);
    // Entropies of ~1e-208 once made sqrt(H(R) H(C)) underflow to 0 and the ratio NaN.
    const tiny = [
      [5e-324, 0],
      [1.0389833838388965e-113, 5e-324],
    ];
    expect(normalizedMutualInformation(tiny)).toBeGreaterThanOrEqual(0);
    expect(normalizedMutualInformation(tiny, "arithmetic")).toBeLessThanOrEqual(1);
    const mass = fc.oneof(
      fc.constant(0),
      fc.constant(5e-324),
      fc.constant(Number.MAX_VALUE),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(mass, { minLength: 2, maxLength: 2 }), { minLength: 1, maxLength: 4 }),
        (rows) => {
          fc.pre(rows.flat().some((value) => value > 0));
          const information = mutualInformationFromCounts(rows);
          const normalized = [
            normalizedMutualInformation(rows),
            normalizedMutualInformation(rows, "arithmetic"),
          ];
          return (
            information >= 0 &&
            information <= Math.log(Math.min(rows.length, 2)) + 1e-12 &&
            normalized.every((value) => value >= 0 && value <= 1)
          );
        },
      ),
    );
  });

  it("rejects invalid tables naming the place and value", () => {
    expect(() => mutualInformationFromCounts([[1, 2], [3]])).toThrow(ConfigError);
    expect(() => mutualInformationFromCounts([[1, 2], [3]])).toThrow(
      "table must be rectangular: row 1 has 1 columns, row 0 has 2",
    );
    expect(() =>
      mutualInformationFromCounts([
        [1, 2],
        [3, -4],
      ]),
    ).toThrow("table[1][1] (row 1, column 1) must be a finite number >= 0, received -4");
    expect(() => mutualInformationFromCounts([[Number.NaN, 2]])).toThrow(
      "table[0][0] (row 0, column 0) must be a finite number >= 0, received NaN",
    );
    expect(() => mutualInformationFromCounts([[1, Number.POSITIVE_INFINITY]])).toThrow(
      "table[0][1] (row 0, column 1) must be a finite number >= 0, received Infinity",
    );
    expect(() => mutualInformationFromCounts([])).toThrow(
      "table must have at least one row, received an empty table",
    );
    expect(() => mutualInformationFromCounts([[]])).toThrow(
      "table must have at least one column, received rows of length 0",
    );
    expect(() =>
      mutualInformationFromCounts([
        [0, 0],
        [0, 0],
      ]),
    ).toThrow("table must have a positive total mass, received all zeros (2 x 2)");
    expect(() => mutualInformationFromCounts([[1], "x" as unknown as number[]])).toThrow(
      'table[1] must be an array of numbers, received "x"',
    );
    expect(() => mutualInformationFromCounts(null as unknown as number[][])).toThrow(
      "table must be an array of rows, received null",
    );
  });
});

describe("normalizedMutualInformation", () => {
  it("is 1 for a permutation table and 0 for an independent one", () => {
    expect(
      normalizedMutualInformation([
        [0, 4, 0],
        [0, 0, 2],
        [3, 0, 0],
      ]),
    ).toBeCloseTo(1, 12);
    expect(
      normalizedMutualInformation(
        [
          [0, 4],
          [3, 0],
        ],
        "arithmetic",
      ),
    ).toBeCloseTo(1, 12);
    expect(
      normalizedMutualInformation([
        [3, 1, 4],
        [6, 2, 8],
      ]),
    ).toBeCloseTo(0, 12);
  });

  it("matches the hand-computed 2 x 2 value for both methods", () => {
    const information = 0.5 * Math.log(4 / 3) + 0.25 * Math.log(2 / 3) + 0.25 * Math.log(2);
    const rowEntropy = Math.LN2;
    const columnEntropy = -(0.75 * Math.log(0.75) + 0.25 * Math.log(0.25));
    expect(
      normalizedMutualInformation([
        [2, 0],
        [1, 1],
      ]),
    ).toBeCloseTo(information / Math.sqrt(rowEntropy * columnEntropy), 12);
    expect(
      normalizedMutualInformation(
        [
          [2, 0],
          [1, 1],
        ],
        "arithmetic",
      ),
    ).toBeCloseTo((2 * information) / (rowEntropy + columnEntropy), 12);
  });

  it("is 0 when a marginal entropy is 0", () => {
    expect(normalizedMutualInformation([[3, 5, 1]])).toBe(0);
    expect(normalizedMutualInformation([[3], [5]], "arithmetic")).toBe(0);
  });

  it("rejects an unknown method", () => {
    expect(() => normalizedMutualInformation([[1]], "max" as "sqrt")).toThrow(
      'method must be one of "sqrt", "arithmetic", received "max"',
    );
  });
});
