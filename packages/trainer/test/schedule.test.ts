import { ConfigError } from "@mdrec/core";
import { type LearningRateSchedule, learningRateAt, resolveSchedule } from "@mdrec/trainer";
import { describe, expect, it } from "vitest";

const rate = (schedule: LearningRateSchedule | undefined, step: number, learningRate = 0.1, planned = 100) =>
  learningRateAt(resolveSchedule(schedule, planned), learningRate, step);

describe("learning-rate schedules", () => {
  it("constant (the default), with a linear warm-up", () => {
    expect(rate(undefined, 0)).toBe(0.1);
    expect(rate(undefined, 5000)).toBe(0.1);
    const warm = { kind: "constant", warmupSteps: 4 } as const;
    const warmSteps = [0, 1, 2, 3, 4, 10];
    const warmRates = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
    for (const [index, step] of warmSteps.entries())
      expect(rate(warm, step)).toBeCloseTo(warmRates[index]!, 12);
  });

  it("step decay, counted after the warm-up", () => {
    const schedule = { kind: "step", stepSize: 10, gamma: 0.5 } as const;
    const steps = [0, 9, 10, 25];
    const rates = [0.1, 0.1, 0.05, 0.025];
    for (const [index, step] of steps.entries()) expect(rate(schedule, step)).toBeCloseTo(rates[index]!, 12);
    const warm = { kind: "step", stepSize: 1, gamma: 0.5, warmupSteps: 2 } as const;
    for (const [step, expected] of [0.05, 0.1, 0.1, 0.05].entries())
      expect(rate(warm, step)).toBeCloseTo(expected, 12);
    expect(resolveSchedule({ kind: "step", stepSize: 3 }, 10)).toEqual({
      kind: "step",
      warmupSteps: 0,
      stepSize: 3,
      gamma: 0.1,
    });
  });

  it("cosine from the base rate to minLearningRate over totalSteps (default: the planned steps)", () => {
    const schedule = { kind: "cosine", totalSteps: 10, minLearningRate: 0.01 } as const;
    expect(rate(schedule, 0, 0.11)).toBeCloseTo(0.11, 12);
    expect(rate(schedule, 5, 0.11)).toBeCloseTo(0.06, 12);
    expect(rate(schedule, 10, 0.11)).toBeCloseTo(0.01, 12);
    expect(rate(schedule, 20, 0.11)).toBeCloseTo(0.01, 12);
    expect(resolveSchedule({ kind: "cosine" }, 40)).toEqual({
      kind: "cosine",
      warmupSteps: 0,
      totalSteps: 40,
      minLearningRate: 0,
    });
    // With warm-up, the cosine spans totalSteps - warmupSteps.
    const warm = { kind: "cosine", totalSteps: 12, warmupSteps: 2 } as const;
    expect(rate(warm, 7)).toBeCloseTo(0.05, 12);
  });

  it("exponential decay", () => {
    const schedule = { kind: "exponential", decayRate: 0.5, decaySteps: 2 } as const;
    expect(rate(schedule, 2)).toBeCloseTo(0.05, 12);
    expect(rate(schedule, 3)).toBeCloseTo(0.1 * 0.5 ** 1.5, 12);
    expect(resolveSchedule({ kind: "exponential", decayRate: 0.9 }, 10)).toMatchObject({ decaySteps: 1 });
  });

  it("rejects invalid schedules naming the key and the value", () => {
    const expectError = (schedule: unknown, message: string) => {
      expect(() => resolveSchedule(schedule as LearningRateSchedule, 10)).toThrow(ConfigError);
      expect(() => resolveSchedule(schedule as LearningRateSchedule, 10)).toThrow(message);
    };
    expectError(
      { kind: "linear" },
      'schedule.kind must be one of "constant", "step", "cosine", "exponential", received "linear"',
    );
    expectError(
      { kind: "step", stepsize: 3 },
      'Unknown key "stepsize" in schedule (kind "step"). Did you mean "stepSize"?',
    );
    expectError({ kind: "step", stepSize: 0 }, "schedule.stepSize must be an integer >= 1, received 0");
    expectError(
      { kind: "step", stepSize: 2, gamma: 0 },
      "schedule.gamma must be a finite number > 0 and <= 1, received 0",
    );
    expectError(
      { kind: "exponential", decayRate: Number.NaN },
      "schedule.decayRate must be a finite number > 0 and <= 1, received NaN",
    );
    expectError(
      { kind: "cosine", totalSteps: 3, warmupSteps: 3 },
      "schedule.totalSteps must be an integer >= 4, received 3",
    );
    expectError(
      { kind: "constant", warmupSteps: -1 },
      "schedule.warmupSteps must be an integer >= 0, received -1",
    );
    expectError("cosine", 'schedule must be an object like { kind: "cosine" }, received "cosine"');
  });
});
