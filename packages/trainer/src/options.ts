import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  ConfigError,
  formatValue,
} from "@mdrec/core";
import type { ColumnarDataset } from "@mdrec/data-loaders";
import type { FitCallbacks } from "./events.js";
import type { LearningRateSchedule } from "./schedule.js";

/** Optimizers {@link fit} can create. */
export const OPTIMIZER_NAMES = ["adam", "adagrad", "sgd", "rmsprop"] as const;

/** One of {@link OPTIMIZER_NAMES}. */
export type OptimizerName = (typeof OPTIMIZER_NAMES)[number];

/** Validation metrics that early stopping and best-weight tracking can monitor. */
export const MONITOR_METRICS = ["auc", "logloss"] as const;

/** One of {@link MONITOR_METRICS}: `auc` is maximised, `logloss` minimised. */
export type MonitorMetric = (typeof MONITOR_METRICS)[number];

/** Options of early stopping. */
export interface EarlyStoppingOptions {
  /**
   * Validation metric to monitor, the mean over tasks of the overall value. Defaults to `"auc"`
   * (maximised); `"logloss"` is minimised.
   */
  metric?: MonitorMetric;
  /** Evaluations without improvement before training stops. Defaults to 4. */
  patience?: number;
  /** Smallest change that counts as an improvement, >= 0. Defaults to 0. */
  minDelta?: number;
}

/** Options of {@link fit}. Every key is optional. */
export interface FitOptions {
  /** Data evaluated after every epoch (or every `evaluateEvery` steps), `batchSize` rows per pass. */
  validation?: ColumnarDataset;
  /** Passes over the training data. Defaults to 10. */
  epochs?: number;
  /** Rows per training step. Defaults to 1024 (Scenario-Wise-Rec uses 4096). */
  batchSize?: number;
  /**
   * Defaults to `"adam"` (beta1 0.9, beta2 0.999, epsilon 1e-8, as torch). `"rmsprop"`: decay 0.9,
   * no momentum, epsilon 1e-8. `"adagrad"`: initial accumulator 0.1. `"sgd"`: plain gradient steps.
   */
  optimizer?: OptimizerName;
  /** Base learning rate, > 0. Defaults to 1e-3. */
  learningRate?: number;
  /** Learning-rate schedule. Defaults to `{ kind: "constant" }`. */
  schedule?: LearningRateSchedule;
  /**
   * L2 penalty added to the gradient (`g + weightDecay * w`) of every trainable weight, like
   * torch's `Adam(weight_decay=...)`: coupled L2, not AdamW's decoupled decay. Applied after
   * gradient clipping, as in torch. Defaults to 0.
   */
  weightDecay?: number;
  /** Clip the global gradient norm to this value (torch's `clip_grad_norm_`). Defaults to no clipping. */
  gradientClip?: number;
  /**
   * Weight of each task's binary cross-entropy, length `numTasks`, finite and >= 0; the task loss
   * is the mean over rows and tasks of `taskWeights[t] * bce`. Defaults to all 1.
   */
  taskWeights?: number[];
  /** Stop when the validation metric stops improving. Needs `validation`. */
  earlyStopping?: EarlyStoppingOptions;
  /**
   * Put the weights of the best evaluation back into the model when training ends. Needs
   * `validation`. Defaults to true when `earlyStopping` is set, false otherwise.
   */
  restoreBestWeights?: boolean;
  /** Directory for checkpoints and the run lock. Defaults to no checkpoints. */
  checkpointDir?: string;
  /** Also checkpoint every this many steps (checkpoints are always written at each epoch end). Needs `checkpointDir`. */
  checkpointEvery?: number;
  /**
   * Continue from the last checkpoint in `checkpointDir` (start fresh, with a warning, when it holds
   * none). When false, a `checkpointDir` that already holds a checkpoint is refused. Defaults to false.
   */
  resume?: boolean;
  /** JSON stored verbatim in every checkpoint (the CLI keeps encoders and vocabularies here). */
  checkpointExtra?: unknown;
  /** Seeds the batch order and the global generator (dropout, gate noise). Defaults to 42. */
  seed?: number;
  /** When to evaluate `validation`: `"epoch"` (default) or every N steps. */
  evaluateEvery?: "epoch" | number;
  /** Stop after this many steps in total (resumed steps included). Defaults to no limit. */
  maxSteps?: number;
  /**
   * Steps between two reads of the loss (each read is one device sync), NaN/Inf checks and
   * `onStep` events. Defaults to 1: every step is checked.
   */
  logEvery?: number;
  /** Progress callbacks; each may return a promise, which is awaited. */
  callbacks?: FitCallbacks;
}

/** {@link FitOptions} with defaults filled in. */
export interface ResolvedFitOptions {
  validation: ColumnarDataset | undefined;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerName;
  learningRate: number;
  schedule: LearningRateSchedule | undefined;
  weightDecay: number;
  gradientClip: number | undefined;
  taskWeights: number[] | undefined;
  earlyStopping: Required<EarlyStoppingOptions> | undefined;
  monitor: MonitorMetric;
  minDelta: number;
  restoreBestWeights: boolean;
  checkpointDir: string | undefined;
  checkpointEvery: number | undefined;
  resume: boolean;
  checkpointExtra: unknown;
  seed: number;
  evaluateEvery: "epoch" | number;
  maxSteps: number | undefined;
  logEvery: number;
  callbacks: FitCallbacks;
}

const FIT_KEYS = [
  "validation",
  "epochs",
  "batchSize",
  "optimizer",
  "learningRate",
  "schedule",
  "weightDecay",
  "gradientClip",
  "taskWeights",
  "earlyStopping",
  "restoreBestWeights",
  "checkpointDir",
  "checkpointEvery",
  "resume",
  "checkpointExtra",
  "seed",
  "evaluateEvery",
  "maxSteps",
  "logEvery",
  "callbacks",
];
const EARLY_STOPPING_KEYS = ["metric", "patience", "minDelta"];
const CALLBACK_KEYS = ["onStep", "onEpochEnd", "onEvaluate", "onCheckpoint", "onWarning"];

const WHERE = "fit options";

function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== "boolean")
    throw new ConfigError(`${name} must be a boolean, received ${formatValue(value)}`);
}

/**
 * Validates {@link FitOptions} against the model's task count and fills the defaults. Every error
 * is a `ConfigError` naming the key and the value received.
 */
export function resolveFitOptions(options: FitOptions, numTasks: number): ResolvedFitOptions {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ConfigError(`${WHERE} must be an object, received ${formatValue(options)}`);
  }
  assertKnownKeys(WHERE, options, FIT_KEYS);
  const key = (name: string) => `${WHERE}.${name}`;

  const epochs = options.epochs ?? 10;
  assertInteger(key("epochs"), epochs, 1);
  const batchSize = options.batchSize ?? 1024;
  assertInteger(key("batchSize"), batchSize, 1);
  const optimizer = options.optimizer ?? "adam";
  assertOneOf(key("optimizer"), optimizer, OPTIMIZER_NAMES);
  const learningRate = options.learningRate ?? 1e-3;
  assertNumber(key("learningRate"), learningRate, { min: 0, exclusiveMin: true });
  const weightDecay = options.weightDecay ?? 0;
  assertNumber(key("weightDecay"), weightDecay, { min: 0 });
  if (options.gradientClip !== undefined) {
    assertNumber(key("gradientClip"), options.gradientClip, { min: 0, exclusiveMin: true });
  }
  const seed = options.seed ?? 42;
  assertInteger(key("seed"), seed, 0, 4294967295);
  if (options.maxSteps !== undefined) assertInteger(key("maxSteps"), options.maxSteps, 1);
  const logEvery = options.logEvery ?? 1;
  assertInteger(key("logEvery"), logEvery, 1);

  let taskWeights: number[] | undefined;
  if (options.taskWeights !== undefined) {
    const weights = options.taskWeights;
    if (!Array.isArray(weights) || weights.length !== numTasks) {
      throw new ConfigError(
        `${key("taskWeights")} must be an array of numTasks=${numTasks} numbers, received ${formatValue(weights)}`,
      );
    }
    weights.forEach((weight, index) => {
      assertNumber(`${key("taskWeights")}[${index}]`, weight, { min: 0 });
    });
    if (weights.every((weight) => weight === 0)) {
      throw new ConfigError(
        `${key("taskWeights")} must have a positive entry, received ${formatValue(weights)}`,
      );
    }
    taskWeights = [...weights];
  }

  const validation = options.validation;
  if (validation !== undefined && (validation === null || typeof validation !== "object")) {
    throw new ConfigError(
      `${key("validation")} must be a ColumnarDataset, received ${formatValue(validation)}`,
    );
  }
  const needsValidation = (name: string) => {
    if (validation === undefined) {
      throw new ConfigError(
        `${key(name)} needs ${key("validation")} (a ColumnarDataset to evaluate on), which is not set`,
      );
    }
  };

  let earlyStopping: Required<EarlyStoppingOptions> | undefined;
  if (options.earlyStopping !== undefined) {
    const early = options.earlyStopping;
    if (early === null || typeof early !== "object") {
      throw new ConfigError(`${key("earlyStopping")} must be an object, received ${formatValue(early)}`);
    }
    assertKnownKeys(key("earlyStopping"), early, EARLY_STOPPING_KEYS);
    const metric = early.metric ?? "auc";
    assertOneOf(`${key("earlyStopping")}.metric`, metric, MONITOR_METRICS);
    const patience = early.patience ?? 4;
    assertInteger(`${key("earlyStopping")}.patience`, patience, 1);
    const minDelta = early.minDelta ?? 0;
    assertNumber(`${key("earlyStopping")}.minDelta`, minDelta, { min: 0 });
    needsValidation("earlyStopping");
    earlyStopping = { metric, patience, minDelta };
  }
  const restoreBestWeights = options.restoreBestWeights ?? earlyStopping !== undefined;
  assertBoolean(key("restoreBestWeights"), restoreBestWeights);
  if (options.restoreBestWeights === true) needsValidation("restoreBestWeights");

  const evaluateEvery = options.evaluateEvery ?? "epoch";
  if (evaluateEvery !== "epoch") {
    if (typeof evaluateEvery === "string") assertOneOf(key("evaluateEvery"), evaluateEvery, ["epoch"]);
    assertInteger(key("evaluateEvery"), evaluateEvery, 1);
  }
  if (options.evaluateEvery !== undefined) needsValidation("evaluateEvery");

  const checkpointDir = options.checkpointDir;
  if (checkpointDir !== undefined && (typeof checkpointDir !== "string" || checkpointDir.length === 0)) {
    throw new ConfigError(
      `${key("checkpointDir")} must be a non-empty path, received ${formatValue(checkpointDir)}`,
    );
  }
  const needsCheckpointDir = (name: string) => {
    if (checkpointDir === undefined)
      throw new ConfigError(`${key(name)} needs ${key("checkpointDir")}, which is not set`);
  };
  if (options.checkpointEvery !== undefined) {
    assertInteger(key("checkpointEvery"), options.checkpointEvery, 1);
    needsCheckpointDir("checkpointEvery");
  }
  const resume = options.resume ?? false;
  assertBoolean(key("resume"), resume);
  if (resume) needsCheckpointDir("resume");
  if (options.checkpointExtra !== undefined) {
    needsCheckpointDir("checkpointExtra");
    let text: string | undefined;
    try {
      text = JSON.stringify(options.checkpointExtra);
    } catch (error) {
      throw new ConfigError(
        `${key("checkpointExtra")} must be JSON-serialisable: ${(error as Error).message}`,
      );
    }
    if (text === undefined) {
      throw new ConfigError(
        `${key("checkpointExtra")} must be JSON-serialisable, received ${typeof options.checkpointExtra}`,
      );
    }
  }

  const callbacks = options.callbacks ?? {};
  if (callbacks === null || typeof callbacks !== "object") {
    throw new ConfigError(
      `${key("callbacks")} must be an object of functions, received ${formatValue(callbacks)}`,
    );
  }
  assertKnownKeys(key("callbacks"), callbacks, CALLBACK_KEYS);
  for (const [name, callback] of Object.entries(callbacks)) {
    if (callback !== undefined && typeof callback !== "function") {
      throw new ConfigError(
        `${key("callbacks")}.${name} must be a function, received ${formatValue(callback)}`,
      );
    }
  }

  return {
    validation,
    epochs,
    batchSize,
    optimizer,
    learningRate,
    schedule: options.schedule,
    weightDecay,
    gradientClip: options.gradientClip,
    taskWeights,
    earlyStopping,
    monitor: earlyStopping?.metric ?? "auc",
    minDelta: earlyStopping?.minDelta ?? 0,
    restoreBestWeights,
    checkpointDir,
    checkpointEvery: options.checkpointEvery,
    resume,
    checkpointExtra: options.checkpointExtra,
    seed,
    evaluateEvery,
    maxSteps: options.maxSteps,
    logEvery,
    callbacks,
  };
}
