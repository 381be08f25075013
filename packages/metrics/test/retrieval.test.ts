import { ConfigError } from "@mdrec/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hitRateAtK, MetricsError, ndcgAtK, recallAtK } from "../src/index.js";

describe("retrieval metrics", () => {
  const ranked = [
    [5, 1, 7, 2],
    [4, 3, 8, 6],
    [9, 9],
  ];
  const relevant = [new Set([1, 2, 9]), [6], []];

  it("matches hand-computed recall, hit rate and NDCG", () => {
    // User 0: hits at positions 1 and 3 of 3 relevant; user 1: hit at position 3 of 1; user 2 skipped.
    expect(recallAtK(ranked, relevant, 4)).toEqual({
      value: (2 / 3 + 1) / 2,
      usersCounted: 2,
      usersSkipped: 1,
    });
    expect(recallAtK(ranked, relevant, 2)).toEqual({ value: 1 / 3 / 2, usersCounted: 2, usersSkipped: 1 });
    expect(hitRateAtK(ranked, relevant, 2)).toEqual({ value: 0.5, usersCounted: 2, usersSkipped: 1 });
    expect(hitRateAtK(ranked, relevant, 4).value).toBe(1);
    const user0 = (1 / Math.log2(3) + 1 / Math.log2(5)) / (1 + 1 / Math.log2(3) + 1 / Math.log2(4));
    const user1 = 1 / Math.log2(5);
    expect(ndcgAtK(ranked, relevant, 4).value).toBeCloseTo((user0 + user1) / 2, 15);
    expect(ndcgAtK([[3, 1]], [[1]], 2).value).toBeCloseTo(1 / Math.log2(3), 15);
    expect(ndcgAtK([[1, 3]], [[1]], 2).value).toBe(1);
  });

  it("counts what a ranked list shorter than k has, and accepts typed arrays", () => {
    expect(recallAtK([new Int32Array([1])], [[1, 2]], 10).value).toBe(0.5);
    expect(ndcgAtK([new Int32Array([1])], [[1, 2]], 10).value).toBeCloseTo(1 / (1 + 1 / Math.log2(3)), 15);
  });

  it("returns NaN with reason when no user has a relevant item", () => {
    expect(recallAtK([[1]], [[]], 1)).toEqual({
      value: Number.NaN,
      usersCounted: 0,
      usersSkipped: 1,
      reason: "no-relevant-items",
    });
  });

  it("stays in [0, 1] with recall <= hit rate (property)", () => {
    const user = fc.tuple(
      fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { maxLength: 10 }),
      fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 6 }),
    );
    fc.assert(
      fc.property(
        fc.array(user, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1, max: 12 }),
        (users, k) => {
          const rankedItems = users.map(([items]) => items);
          const relevantItems = users.map(([, items]) => items);
          const recall = recallAtK(rankedItems, relevantItems, k);
          const hitRate = hitRateAtK(rankedItems, relevantItems, k);
          const ndcg = ndcgAtK(rankedItems, relevantItems, k);
          if (recall.usersCounted === 0) return Number.isNaN(recall.value) && Number.isNaN(ndcg.value);
          return (
            recall.value >= 0 &&
            recall.value <= hitRate.value + 1e-15 &&
            hitRate.value <= 1 &&
            ndcg.value >= 0 &&
            ndcg.value <= 1 + 1e-12
          );
        },
      ),
    );
  });

  it("rejects bad input naming the place and value", () => {
    const check = (call: () => unknown, type: new (message: string) => Error, message: string) => {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    };
    check(
      () => recallAtK([[1], [2]], [[1]], 1),
      MetricsError,
      "recallAtK: rankedItems and relevant must have the same length (one entry per user), received rankedItems.length=2 and relevant.length=1",
    );
    check(() => ndcgAtK([], [], 5), MetricsError, "ndcgAtK: empty input (0 users)");
    check(() => hitRateAtK([[1]], [[1]], 0), ConfigError, "k must be an integer >= 1, received 0");
    check(
      () => recallAtK([[4, 2, 4]], [[4]], 3),
      MetricsError,
      "recallAtK: rankedItems[0] lists item 4 twice in its top 3 (positions 0 and 2)",
    );
    check(
      () => recallAtK([7 as unknown as number[]], [[4]], 3),
      MetricsError,
      "recallAtK: rankedItems[0] must be an array of item ids, received 7",
    );
    check(
      () => recallAtK([[1]], ["x" as unknown as number[]], 3),
      MetricsError,
      'recallAtK: relevant[0] must be a Set or an array of item ids, received "x"',
    );
  });
});
