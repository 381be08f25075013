import type { EvaluationResult } from "./evaluate.js";
import type { MonitorMetric } from "./options.js";

/**
 * Loss values by name: `bce` (the task loss), one entry per auxiliary loss the model reports
 * (`mi`, `importance`, ...), and `total` (their sum, what the optimizer minimises).
 */
export type LossValues = Record<string, number>;

/** Sent to `onStep` every `logEvery` steps. */
export interface StepEvent {
  /** Steps completed in the whole run (resumed steps included); 1 after the first step. */
  step: number;
  /** 0-based epoch of the step. */
  epoch: number;
  /** 0-based index of the step's batch within its epoch. */
  batchInEpoch: number;
  batchesPerEpoch: number;
  /** Steps the run will take if it does not stop early. */
  plannedSteps: number;
  /** Mean over the steps since the previous event (the step itself when `logEvery` is 1). */
  losses: LossValues;
  /** Learning rate of the step. */
  learningRate: number;
  /** Training rows per second in this session (evaluation and checkpoint time excluded). */
  examplesPerSecond: number;
  /** Seconds since `fit` was called. */
  elapsedSeconds: number;
  /** Estimated seconds of training left, from this session's seconds per step. */
  etaSeconds: number;
}

/** The best evaluation so far. */
export interface BestEvaluation {
  metric: MonitorMetric;
  /** Mean over tasks of the overall metric. */
  value: number;
  /** 0-based epoch during which the evaluation happened. */
  epoch: number;
  /** Steps completed at the evaluation. */
  step: number;
}

/** Sent to `onEvaluate` after each evaluation of the validation data. */
export interface EvaluateEvent {
  step: number;
  epoch: number;
  result: EvaluationResult;
  /** The monitored value of this evaluation (NaN when undefined, e.g. one class only). */
  monitored: number;
  /** True when this evaluation is the new best. */
  improved: boolean;
  best: BestEvaluation | undefined;
}

/** One epoch of the training history. */
export interface EpochSummary {
  /** 0-based epoch. */
  epoch: number;
  /** Steps (batches) trained in the epoch. */
  steps: number;
  /** Rows trained in the epoch (the dataset size for a full epoch). */
  examples: number;
  /** Row-weighted mean of each loss over the epoch's batches. */
  losses: LossValues;
  /** Learning rate of the epoch's last step. */
  learningRate: number;
  /** Validation result at the end of the epoch, when evaluated there. */
  validation?: EvaluationResult;
  /** Training seconds of the epoch (evaluation and checkpoints excluded), summed over resumed sessions. */
  seconds: number;
  examplesPerSecond: number;
  /** Seconds spent evaluating at the end of the epoch. */
  evaluationSeconds?: number;
  /** True when `maxSteps` stopped training inside this epoch. */
  partial?: boolean;
}

/** Sent to `onEpochEnd`. */
export interface EpochEndEvent {
  epoch: number;
  /** Mean total loss of the epoch. */
  trainLoss: number;
  summary: EpochSummary;
  validation?: EvaluationResult;
  best?: BestEvaluation;
  /** True when early stopping ends training after this epoch. */
  stopped?: boolean;
}

/** Why a checkpoint was written. */
export type CheckpointReason = "interval" | "epoch" | "final";

/** Sent to `onCheckpoint` after a checkpoint is committed. */
export interface CheckpointEvent {
  step: number;
  /** Data position the checkpoint resumes from: 0-based epoch and next batch index. */
  epoch: number;
  nextBatch: number;
  /** Directory of the committed checkpoint. */
  path: string;
  reason: CheckpointReason;
}

/** Callbacks of {@link fit}. Each may return a promise, which `fit` awaits. */
export interface FitCallbacks {
  onStep?: (event: StepEvent) => void | Promise<void>;
  onEpochEnd?: (event: EpochEndEvent) => void | Promise<void>;
  onEvaluate?: (event: EvaluateEvent) => void | Promise<void>;
  onCheckpoint?: (event: CheckpointEvent) => void | Promise<void>;
  /** Non-fatal notices (stale lock taken over, nothing to resume). Defaults to `console.warn`. */
  onWarning?: (message: string) => void;
}

/** One evaluation of the validation data during training. */
export interface EvaluationRecord {
  step: number;
  epoch: number;
  result: EvaluationResult;
  monitored: number;
}

/** What {@link fit} returns. */
export interface FitResult {
  /** One entry per epoch trained, resumed epochs included. */
  history: EpochSummary[];
  /** Every evaluation of the validation data, in order. */
  evaluations: EvaluationRecord[];
  /** 0-based epoch of the best evaluation, or undefined without validation. */
  bestEpoch: number | undefined;
  /** Step of the best evaluation. */
  bestStep: number | undefined;
  /** Monitored value of the best evaluation (see `EarlyStoppingOptions.metric`). */
  bestMetric: number | undefined;
  /** True when early stopping ended training. */
  stoppedEarly: boolean;
  /** True when the model now holds the weights of the best evaluation. */
  restoredBestWeights: boolean;
  /** Steps completed in the whole run. */
  steps: number;
  /** The step the run resumed from, when it resumed from a checkpoint. */
  resumedFromStep: number | undefined;
  /** Training rows per second in this session (evaluation and checkpoint time excluded). */
  trainExamplesPerSecond: number;
  /** Seconds of this `fit` call. */
  wallSeconds: number;
}
