export {
  CHECKPOINT_FORMAT,
  CHECKPOINT_FORMAT_VERSION,
  CHECKPOINT_POINTER_FILE,
  type CheckpointFileEntry,
  type CheckpointInfo,
  type CheckpointManifest,
  type EpochProgress,
  hasCheckpoint,
  type LoadCheckpointWeightsOptions,
  loadCheckpointWeights,
  readCheckpoint,
  type TrainingSettings,
} from "./checkpoint.js";
export {
  type EvaluateOptions,
  type EvaluationResult,
  evaluate,
  predictDataset,
  type RoutingAnalysis,
  type TaskEvaluation,
} from "./evaluate.js";
export type {
  BestEvaluation,
  CheckpointEvent,
  CheckpointReason,
  EpochEndEvent,
  EpochSummary,
  EvaluateEvent,
  EvaluationRecord,
  FitCallbacks,
  FitResult,
  LossValues,
  StepEvent,
} from "./events.js";
export type { DatasetFingerprint } from "./fingerprint.js";
export { fit } from "./fit.js";
export {
  type AcquireLockOptions,
  acquireDirectoryLock,
  type DirectoryLock,
  LOCK_FILE,
  type LockOwner,
} from "./lock.js";
export { binaryCrossEntropyWithLogits } from "./loss.js";
export {
  type EarlyStoppingOptions,
  type FitOptions,
  MONITOR_METRICS,
  type MonitorMetric,
  OPTIMIZER_NAMES,
  type OptimizerName,
} from "./options.js";
export {
  type ConstantSchedule,
  type CosineSchedule,
  type ExponentialSchedule,
  type LearningRateSchedule,
  learningRateAt,
  type ResolvedSchedule,
  resolveSchedule,
  SCHEDULE_KINDS,
  type StepSchedule,
} from "./schedule.js";
