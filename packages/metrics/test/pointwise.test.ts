import { ConfigError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import { calibration, calibrationWithReason, logloss, MetricsError } from "../src/index.js";

describe("logloss", () => {
  it("matches hand-computed values", () => {
    expect(logloss([1, 0], [0.8, 0.4])).toBeCloseTo((-Math.log(0.8) - Math.log(0.6)) / 2, 15);
    expect(logloss(new Uint8Array([1, 1, 0]), new Float64Array([0.5, 0.5, 0.5]))).toBeCloseTo(Math.LN2, 15);
  });

  it("clips probabilities to [epsilon, 1 - epsilon]", () => {
    expect(logloss([1], [0])).toBeCloseTo(-Math.log(1e-7), 12);
    expect(logloss([0], [1])).toBeCloseTo(-Math.log(1e-7), 6);
    expect(logloss([1, 0], [0, 1], 1e-3)).toBeCloseTo(-Math.log(1e-3), 9);
    expect(logloss([1], [1])).toBeCloseTo(-Math.log(1 - 1e-7), 15);
    expect(Number.isFinite(logloss([1], [0], 0.5))).toBe(true);
  });

  it("rejects bad input naming the place and value", () => {
    const check = (call: () => unknown, type: new (message: string) => Error, message: string) => {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    };
    check(() => logloss([], []), MetricsError, "logloss: empty input (0 rows)");
    check(
      () => logloss([1, 0], [0.5]),
      MetricsError,
      "logloss: labels and scores must have the same length, received labels.length=2 and scores.length=1",
    );
    check(
      () => logloss([1, 0], [0.5, 1.5]),
      MetricsError,
      "logloss: scores[1] must be a probability in [0, 1], received 1.5",
    );
    check(
      () => logloss([1], [-0.1]),
      MetricsError,
      "logloss: scores[0] must be a probability in [0, 1], received -0.1",
    );
    check(
      () => logloss([1], [Number.NaN]),
      MetricsError,
      "logloss: scores[0] must be a probability in [0, 1], received NaN",
    );
    check(() => logloss([2], [0.5]), MetricsError, "logloss: labels[0] must be 0 or 1, received 2");
    check(
      () => logloss([1], [0.5], 0),
      ConfigError,
      "epsilon must be a finite number > 0 and <= 0.5, received 0",
    );
    check(
      () => logloss([1], [0.5], 0.7),
      ConfigError,
      "epsilon must be a finite number > 0 and <= 0.5, received 0.7",
    );
  });
});

describe("calibration", () => {
  it("is mean prediction / mean label", () => {
    expect(calibration([1, 0, 0, 0], [0.5, 0.2, 0.2, 0.1])).toBeCloseTo(1, 15);
    expect(calibration([1, 0], [0.9, 0.5])).toBeCloseTo(1.4, 15);
    expect(calibrationWithReason([1, 1], [0.25, 0.25])).toEqual({ value: 0.25 });
  });

  it("returns NaN with reason when the mean label is 0", () => {
    expect(calibrationWithReason([0, 0], [0.1, 0.2])).toEqual({ value: Number.NaN, reason: "no-positives" });
    expect(calibration([0], [0.3])).toBeNaN();
  });

  it("rejects bad input naming the place and value", () => {
    expect(() => calibration([], [])).toThrow("calibration: empty input (0 rows)");
    expect(() => calibration([1], [2])).toThrow(
      "calibration: scores[0] must be a probability in [0, 1], received 2",
    );
    expect(() => calibration([1, 0], [0.2])).toThrow(
      "calibration: labels and scores must have the same length, received labels.length=2 and scores.length=1",
    );
    expect(() => calibration([true as unknown as number], [0.2])).toThrow(
      "calibration: labels[0] must be 0 or 1, received true",
    );
  });
});
