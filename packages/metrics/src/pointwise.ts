import { assertNumber } from "@mdrec/core";
import {
  assertNotEmpty,
  assertNumericArray,
  assertSameLength,
  type NumericArray,
  readLabel,
  readProbability,
} from "./arrays.js";

/** Default probability clipping of {@link logloss}. */
export const DEFAULT_LOGLOSS_EPSILON = 1e-7;

/** Why a calibration is `NaN`: no positive labels (mean label 0), or no rows. */
export type CalibrationReason = "no-positives" | "empty";

/** A calibration value, `NaN` with a reason when the mean label is 0. */
export interface CalibrationResult {
  value: number;
  reason?: CalibrationReason;
}

/** Throws unless `epsilon` is a valid clipping bound in (0, 0.5]. */
export function assertEpsilon(epsilon: unknown): asserts epsilon is number {
  assertNumber("epsilon", epsilon, { min: 0, max: 0.5, exclusiveMin: true });
}

/** Binary cross-entropy of one row with `p` clipped to `[epsilon, 1 - epsilon]`. */
export function rowLogloss(label: number, probability: number, epsilon: number): number {
  const clipped = Math.min(Math.max(probability, epsilon), 1 - epsilon);
  return label === 1 ? -Math.log(clipped) : -Math.log(1 - clipped);
}

/** `meanPrediction / labelRate` from running sums; shared so batch and streaming values agree bit for bit. */
export function calibrationFromSums(
  predictionSum: number,
  positives: number,
  count: number,
): CalibrationResult {
  if (count === 0) return { value: Number.NaN, reason: "empty" };
  if (positives === 0) return { value: Number.NaN, reason: "no-positives" };
  return { value: predictionSum / count / (positives / count) };
}

/**
 * Mean binary cross-entropy (log loss) in nats,
 * `-(1/n) sum_i [y_i log p_i + (1 - y_i) log(1 - p_i)]` with `p_i` clipped to
 * `[epsilon, 1 - epsilon]` so a confident wrong prediction costs `-log(epsilon)`, not Infinity.
 *
 * @param scores predicted probabilities in [0, 1] (apply a sigmoid to logits first).
 * @param epsilon clipping bound in (0, 0.5]. Defaults to 1e-7.
 * @throws MetricsError on empty input, different lengths, a label not 0/1 or a score outside [0, 1];
 *   ConfigError on an invalid `epsilon`.
 * @example logloss([1, 0], [0.8, 0.4]) // (-log 0.8 - log 0.6) / 2 = 0.367...
 */
export function logloss(
  labels: NumericArray,
  scores: NumericArray,
  epsilon = DEFAULT_LOGLOSS_EPSILON,
): number {
  const where = "logloss";
  assertEpsilon(epsilon);
  assertNumericArray(where, "labels", labels);
  assertNumericArray(where, "scores", scores);
  assertSameLength(where, "labels", labels, "scores", scores);
  assertNotEmpty(where, labels.length);
  let sum = 0;
  for (let index = 0; index < labels.length; index++) {
    sum += rowLogloss(readLabel(where, labels, index), readProbability(where, scores, index), epsilon);
  }
  return sum / labels.length;
}

/**
 * Calibration with its reason when undefined: `{ value: NaN, reason: "no-positives" }` when every
 * label is 0. See {@link calibration}.
 */
export function calibrationWithReason(labels: NumericArray, scores: NumericArray): CalibrationResult {
  const where = "calibration";
  assertNumericArray(where, "labels", labels);
  assertNumericArray(where, "scores", scores);
  assertSameLength(where, "labels", labels, "scores", scores);
  assertNotEmpty(where, labels.length);
  let predictionSum = 0;
  let positives = 0;
  for (let index = 0; index < labels.length; index++) {
    positives += readLabel(where, labels, index);
    predictionSum += readProbability(where, scores, index);
  }
  return calibrationFromSums(predictionSum, positives, labels.length);
}

/**
 * Calibration ratio `mean(p) / mean(y)`: 1 is calibrated, above 1 over-predicts.
 * `NaN` when every label is 0 (see {@link calibrationWithReason}).
 *
 * @param scores predicted probabilities in [0, 1].
 * @throws MetricsError on empty input, different lengths, a label not 0/1 or a score outside [0, 1].
 * @example calibration([1, 0, 0, 0], [0.5, 0.2, 0.2, 0.1]) // mean prediction 0.25 / label rate 0.25 = 1
 */
export function calibration(labels: NumericArray, scores: NumericArray): number {
  return calibrationWithReason(labels, scores).value;
}
