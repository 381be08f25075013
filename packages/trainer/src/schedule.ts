import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  ConfigError,
  formatValue,
} from "@mdrec/core";

/** Kinds of {@link LearningRateSchedule}. */
export const SCHEDULE_KINDS = ["constant", "step", "cosine", "exponential"] as const;

/** Common fields of every schedule. */
interface ScheduleBase {
  /**
   * Linear warm-up over the first `warmupSteps` steps: step `s` uses
   * `learningRate * (s + 1) / warmupSteps`; the decay starts after the warm-up. Defaults to 0.
   */
  warmupSteps?: number;
}

/** The base learning rate for every step (after the warm-up). */
export interface ConstantSchedule extends ScheduleBase {
  kind: "constant";
}

/** `learningRate * gamma ^ floor(t / stepSize)`, `t` = steps after the warm-up. */
export interface StepSchedule extends ScheduleBase {
  kind: "step";
  /** Steps between two decays, >= 1. */
  stepSize: number;
  /** Factor applied at each decay, in (0, 1]. Defaults to 0.1. */
  gamma?: number;
}

/**
 * Cosine annealing from `learningRate` to `minLearningRate` over `totalSteps` (warm-up included):
 * `min + (learningRate - min) * (1 + cos(pi * t / (totalSteps - warmupSteps))) / 2`, then `min`.
 */
export interface CosineSchedule extends ScheduleBase {
  kind: "cosine";
  /** Length of the schedule in steps. Defaults to the run's planned steps (epochs x batches, or maxSteps). */
  totalSteps?: number;
  /** Final learning rate, >= 0. Defaults to 0. */
  minLearningRate?: number;
}

/** `learningRate * decayRate ^ (t / decaySteps)`, a smooth exponential decay. */
export interface ExponentialSchedule extends ScheduleBase {
  kind: "exponential";
  /** Factor per `decaySteps` steps, in (0, 1]. */
  decayRate: number;
  /** Steps over which the learning rate is multiplied by `decayRate`. Defaults to 1. */
  decaySteps?: number;
}

/** How the learning rate changes with the step count. */
export type LearningRateSchedule = ConstantSchedule | StepSchedule | CosineSchedule | ExponentialSchedule;

/** A schedule with every default filled in (what checkpoints store). */
export type ResolvedSchedule =
  | { kind: "constant"; warmupSteps: number }
  | { kind: "step"; warmupSteps: number; stepSize: number; gamma: number }
  | { kind: "cosine"; warmupSteps: number; totalSteps: number; minLearningRate: number }
  | { kind: "exponential"; warmupSteps: number; decayRate: number; decaySteps: number };

const KEYS: Record<LearningRateSchedule["kind"], string[]> = {
  constant: ["kind", "warmupSteps"],
  step: ["kind", "warmupSteps", "stepSize", "gamma"],
  cosine: ["kind", "warmupSteps", "totalSteps", "minLearningRate"],
  exponential: ["kind", "warmupSteps", "decayRate", "decaySteps"],
};

/**
 * Validates a schedule and fills its defaults.
 * @param plannedSteps the run's planned number of steps (default `totalSteps` of a cosine schedule).
 * @param where names the schedule in error messages.
 */
export function resolveSchedule(
  schedule: LearningRateSchedule | undefined,
  plannedSteps: number,
  where = "schedule",
): ResolvedSchedule {
  if (schedule === undefined) return { kind: "constant", warmupSteps: 0 };
  if (schedule === null || typeof schedule !== "object") {
    throw new ConfigError(
      `${where} must be an object like { kind: "cosine" }, received ${formatValue(schedule)}`,
    );
  }
  assertOneOf(`${where}.kind`, schedule.kind, SCHEDULE_KINDS);
  assertKnownKeys(`${where} (kind "${schedule.kind}")`, schedule, KEYS[schedule.kind]);
  const warmupSteps = schedule.warmupSteps ?? 0;
  assertInteger(`${where}.warmupSteps`, warmupSteps, 0);
  switch (schedule.kind) {
    case "constant":
      return { kind: "constant", warmupSteps };
    case "step": {
      assertInteger(`${where}.stepSize`, schedule.stepSize, 1);
      const gamma = schedule.gamma ?? 0.1;
      assertNumber(`${where}.gamma`, gamma, { min: 0, max: 1, exclusiveMin: true });
      return { kind: "step", warmupSteps, stepSize: schedule.stepSize, gamma };
    }
    case "cosine": {
      const totalSteps = schedule.totalSteps ?? Math.max(plannedSteps, warmupSteps + 1);
      assertInteger(`${where}.totalSteps`, totalSteps, warmupSteps + 1, Number.POSITIVE_INFINITY);
      const minLearningRate = schedule.minLearningRate ?? 0;
      assertNumber(`${where}.minLearningRate`, minLearningRate, { min: 0 });
      return { kind: "cosine", warmupSteps, totalSteps, minLearningRate };
    }
    case "exponential": {
      assertNumber(`${where}.decayRate`, schedule.decayRate, { min: 0, max: 1, exclusiveMin: true });
      const decaySteps = schedule.decaySteps ?? 1;
      assertInteger(`${where}.decaySteps`, decaySteps, 1);
      return { kind: "exponential", warmupSteps, decayRate: schedule.decayRate, decaySteps };
    }
  }
}

/**
 * The learning rate of the step with 0-based index `step` (the number of steps already taken).
 *
 * @example
 * learningRateAt({ kind: "step", warmupSteps: 0, stepSize: 10, gamma: 0.5 }, 0.1, 25) // 0.1 * 0.5^2 = 0.025
 */
export function learningRateAt(schedule: ResolvedSchedule, learningRate: number, step: number): number {
  if (step < schedule.warmupSteps) return (learningRate * (step + 1)) / schedule.warmupSteps;
  const t = step - schedule.warmupSteps; // steps after the warm-up
  switch (schedule.kind) {
    case "constant":
      return learningRate;
    case "step":
      return learningRate * schedule.gamma ** Math.floor(t / schedule.stepSize);
    case "cosine": {
      const span = schedule.totalSteps - schedule.warmupSteps;
      const progress = Math.min(t, span) / span;
      const { minLearningRate } = schedule;
      return minLearningRate + ((learningRate - minLearningRate) * (1 + Math.cos(Math.PI * progress))) / 2;
    }
    case "exponential":
      return learningRate * schedule.decayRate ** (t / schedule.decaySteps);
  }
}
