import * as tf from "@tensorflow/tfjs-core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AucAccumulator, auc, aucWithReason, MetricsError } from "../src/index.js";
import { RADIX_THRESHOLD, radixSortFloat64, sortFloat64 } from "../src/sort.js";
import { bruteForceAuc, randomChunks, randomPredictions, rankAuc } from "./helpers.js";

describe("auc", () => {
  it("matches hand-computed values", () => {
    // Positive 0.35 beats 0.1 only, 0.8 beats both negatives: 3 of 4 pairs.
    expect(auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])).toBe(0.75);
    expect(auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4])).toBe(1);
    expect(auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4])).toBe(0);
  });

  it("gives ties half a pair (average rank)", () => {
    expect(auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
    // Positive 0.2 ties negative 0.2 (0.5) and beats 0.1 (1); 0.7 beats both (2): 3.5 / 4.
    expect(auc([0, 1, 1, 0], [0.2, 0.2, 0.7, 0.1])).toBe(0.875);
    // -0 and +0 are the same score.
    expect(auc([0, 1], [-0, 0])).toBe(0.5);
  });

  it("accepts logits, infinities and every host array type", () => {
    expect(auc([0, 1, 0, 1], [Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, -3, 2])).toBe(1);
    const labels = [1, 0, 1, 0, 0];
    const scores = [0.9, 0.3, 0.2, 0.25, 0.6];
    const expected = bruteForceAuc(labels, scores);
    expect(auc(new Uint8Array(labels), new Float32Array(scores))).toBe(
      bruteForceAuc(labels, Array.from(new Float32Array(scores))),
    );
    expect(auc(new Int32Array(labels), new Float64Array(scores))).toBe(expected);
    expect(auc(new Float32Array(labels), scores)).toBe(expected);
  });

  it("equals brute-force pairwise AUC on random data with many ties", () => {
    const rows = fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: -3, max: 3 })), {
      minLength: 1,
      maxLength: 60,
    });
    fc.assert(
      fc.property(rows, fc.constantFrom(1, 0.25, 1e-300), (pairs, scale) => {
        const labels = pairs.map(([label]) => label);
        const scores = pairs.map(([, level]) => level * scale);
        const result = aucWithReason(labels, scores);
        if (labels.every((label) => label === labels[0])) {
          return Number.isNaN(result.value) && result.reason === "single-class";
        }
        return result.value === bruteForceAuc(labels, scores) && result.reason === undefined;
      }),
      { numRuns: 300 },
    );
  });

  it("equals the average-rank reference above the radix-sort threshold", () => {
    const { labels, scores } = randomPredictions(3 * RADIX_THRESHOLD, 11, { levels: 50 });
    expect(auc(labels, scores)).toBe(rankAuc(labels, scores));
    const continuous = randomPredictions(3 * RADIX_THRESHOLD, 12);
    expect(auc(continuous.labels, continuous.scores)).toBe(rankAuc(continuous.labels, continuous.scores));
  });

  it("returns NaN with reason single-class instead of throwing", () => {
    expect(aucWithReason([1, 1, 1], [0.1, 0.2, 0.3])).toEqual({ value: Number.NaN, reason: "single-class" });
    expect(aucWithReason([0], [0.1])).toEqual({ value: Number.NaN, reason: "single-class" });
    expect(auc([0, 0], [0.1, 0.2])).toBeNaN();
  });

  it("rejects bad input naming the place and value", () => {
    const check = (call: () => unknown, message: string) => {
      expect(call).toThrow(MetricsError);
      expect(call).toThrow(message);
    };
    check(() => auc([], []), "auc: empty input (0 rows)");
    check(
      () => auc([0, 1, 0], [0.1, 0.2]),
      "auc: labels and scores must have the same length, received labels.length=3 and scores.length=2",
    );
    check(() => auc([0, 2, 1], [0.1, 0.2, 0.3]), "auc: labels[1] must be 0 or 1, received 2");
    check(() => auc([0, 1, 0.5], [0.1, 0.2, 0.3]), "auc: labels[2] must be 0 or 1, received 0.5");
    check(() => auc([0, Number.NaN], [0.1, 0.2]), "auc: labels[1] must be 0 or 1, received NaN");
    check(
      () => auc([0, 1, 1], [0.1, 0.2, Number.NaN]),
      "auc: scores[2] must be a number (not NaN), received NaN",
    );
    check(
      () => auc("01" as unknown as number[], [0.1, 0.2]),
      'auc: labels must be an array or typed array of numbers, received "01"',
    );
    const tensor = tf.tensor1d([0.1, 0.2]);
    check(
      () => auc([0, 1], tensor as unknown as number[]),
      "auc: scores must be an array or typed array of numbers, received a tf.Tensor (call tensor.dataSync() first)",
    );
    tensor.dispose();
    const caught = (() => {
      try {
        auc([0, 3], [0.1, 0.2]);
      } catch (error) {
        return error;
      }
    })();
    expect(caught).toBeInstanceOf(MetricsError);
    expect((caught as MetricsError).code).toBe("INVALID_METRIC_INPUT");
  });
});

describe("sortFloat64", () => {
  it("radix sort orders exactly like the native sort, special values included", () => {
    const values = new Float64Array(2 * RADIX_THRESHOLD + 7);
    const specials = [
      -0,
      0,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.MIN_VALUE,
      -Number.MIN_VALUE,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      1,
      -1,
    ];
    const { scores } = randomPredictions(values.length, 5);
    for (let index = 0; index < values.length; index++) {
      values[index] =
        index % 13 === 0 ? specials[index % specials.length]! : (scores[index]! - 0.4) * 10 ** (index % 7);
    }
    const expected = values.slice().sort();
    const radix = radixSortFloat64(values.slice());
    const dispatched = sortFloat64(values.slice());
    const firstMismatch = (sorted: Float64Array) =>
      sorted.findIndex((value, index) => !Object.is(value, expected[index]));
    expect(firstMismatch(radix)).toBe(-1);
    expect(firstMismatch(dispatched)).toBe(-1);
  });

  it("sorts a subarray view in place without touching the rest", () => {
    const buffer = new Float64Array([9, 3, 1, 2, -5, 0]);
    radixSortFloat64(buffer.subarray(1, 5));
    expect(Array.from(buffer)).toEqual([9, -5, 1, 2, 3, 0]);
  });
});

describe("AucAccumulator", () => {
  it("equals the batch AUC for any chunking, with reads in between", () => {
    const { labels, scores } = randomPredictions(4000, 21, { levels: 20 });
    const expected = auc(labels, scores);
    for (const seed of [1, 2, 3]) {
      const accumulator = new AucAccumulator();
      for (const [start, end] of randomChunks(labels.length, seed, 700)) {
        accumulator.add(labels.subarray(start, end), scores.subarray(start, end));
        if (accumulator.count > 0 && seed === 2) {
          const sliceAuc = aucWithReason(labels.subarray(0, end), scores.subarray(0, end));
          expect(accumulator.valueWithReason()).toEqual(sliceAuc);
        }
      }
      expect(accumulator.value()).toBe(expected);
      expect(accumulator.count).toBe(labels.length);
      expect(accumulator.positives).toBe(labels.reduce((sum, label) => sum + label, 0));
    }
  });

  it("matches the batch AUC on random chunked data (property)", () => {
    const data = fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 4 })), {
      minLength: 2,
      maxLength: 80,
    });
    fc.assert(
      fc.property(data, fc.array(fc.nat(80), { maxLength: 6 }), (pairs, cuts) => {
        const labels = pairs.map(([label]) => label);
        const scores = pairs.map(([, level]) => level / 4);
        const bounds = [
          0,
          ...cuts.map((cut) => Math.min(cut, labels.length)).sort((a, b) => a - b),
          labels.length,
        ];
        const accumulator = new AucAccumulator();
        for (let part = 0; part + 1 < bounds.length; part++) {
          accumulator.add(
            labels.slice(bounds[part], bounds[part + 1]),
            scores.slice(bounds[part], bounds[part + 1]),
          );
          if (part === 1 && accumulator.count > 0) accumulator.valueWithReason();
        }
        const batch = aucWithReason(labels, scores);
        const streamed = accumulator.valueWithReason();
        return Object.is(streamed.value, batch.value) && streamed.reason === batch.reason;
      }),
      { numRuns: 200 },
    );
  });

  it("reports single-class and empty states, and resets", () => {
    const accumulator = new AucAccumulator();
    expect(() => accumulator.value()).toThrow("AucAccumulator.value: empty input (no rows added)");
    accumulator.add([], []);
    expect(accumulator.count).toBe(0);
    accumulator.add([1, 1], [0.3, 0.4]);
    expect(accumulator.valueWithReason()).toEqual({ value: Number.NaN, reason: "single-class" });
    accumulator.add([0], [0.35]);
    expect(accumulator.value()).toBe(0.5);
    accumulator.reset();
    expect(accumulator.count).toBe(0);
    expect(() => accumulator.value()).toThrow(MetricsError);
  });

  it("rejects a bad batch whole, naming the index within the batch", () => {
    const accumulator = new AucAccumulator();
    accumulator.add([0, 1], [0.2, 0.8]);
    expect(() => accumulator.add([1, 0, 7], [0.1, 0.2, 0.3])).toThrow(
      "AucAccumulator.add: labels[2] must be 0 or 1, received 7",
    );
    expect(() => accumulator.add([1], [0.1, 0.2])).toThrow(
      "AucAccumulator.add: labels and scores must have the same length, received labels.length=1 and scores.length=2",
    );
    expect(() => accumulator.add([1], [Number.NaN])).toThrow(
      "AucAccumulator.add: scores[0] must be a number (not NaN), received NaN",
    );
    expect(accumulator.count).toBe(2);
    expect(accumulator.value()).toBe(1);
  });
});
