import {
  type Batch,
  CheckpointError,
  disposeBatch,
  globalRandomGenerator,
  ShapeError,
  setGlobalSeed,
  TrainingError,
} from "@mdrec/core";
import { type ColumnarDataset, iterateBatches, numBatches } from "@mdrec/data-loaders";
import type { MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import {
  assertSameModel,
  assignModelWeights,
  type EpochProgress,
  encodeModelWeights,
  hasCheckpoint,
  type LoadedCheckpoint,
  loadCheckpointFiles,
  modelVariables,
  type TrainingSettings,
  writeCheckpoint,
} from "./checkpoint.js";
import { assertModel, checkDatasetForModel } from "./dataset-check.js";
import { evaluate } from "./evaluate.js";
import type {
  BestEvaluation,
  CheckpointReason,
  EpochSummary,
  EvaluationRecord,
  FitCallbacks,
  FitResult,
  LossValues,
} from "./events.js";
import { type DatasetFingerprint, datasetFingerprint, diffJson } from "./fingerprint.js";
import { acquireDirectoryLock, type DirectoryLock } from "./lock.js";
import { binaryCrossEntropyWithLogits } from "./loss.js";
import {
  createOptimizer,
  encodeOptimizerState,
  restoreOptimizerState,
  setOptimizerLearningRate,
} from "./optimizer.js";
import { type FitOptions, type ResolvedFitOptions, resolveFitOptions } from "./options.js";
import { learningRateAt, type ResolvedSchedule, resolveSchedule } from "./schedule.js";

/** Names the trainer gives the task loss and the sum; a model's auxiliary losses may not use them. */
const TOTAL = "total";
const TASK_LOSS = "bce";

/** A step whose losses are still on the device. */
interface PendingStep {
  step: number;
  epoch: number;
  batchInEpoch: number;
  rows: number;
  learningRate: number;
  seconds: number;
  names: string[];
  values: tf.Tensor1D; // [names.length]
}

function now(): number {
  return performance.now() / 1000;
}

function emptyProgress(): EpochProgress {
  return { lossSums: {}, steps: 0, examples: 0, seconds: 0, learningRate: 0 };
}

/**
 * Trains a model. Each step runs the model in training mode on one batch, minimises
 * `bce + sum(auxLosses)` (binary cross-entropy with logits over all tasks plus every auxiliary
 * loss the model reports; each part is logged by name) and updates the weights with the chosen
 * optimizer, learning-rate schedule, gradient clipping and weight decay.
 *
 * Validation data is evaluated after every epoch (or every `evaluateEvery` steps) for early
 * stopping and best-weight tracking. With `checkpointDir`, the run holds a lock on the directory
 * and writes atomic checkpoints (weights, optimizer state, RNG state, data position, history)
 * at every epoch end and every `checkpointEvery` steps; `resume: true` continues from the last
 * one and, on cpu, ends with exactly the weights and metrics of an uninterrupted run.
 *
 * A NaN or infinite loss stops training with a `TrainingError` naming the step, epoch and batch;
 * no checkpoint is written after it, so the last good one stays intact.
 *
 * Seeds the global generator of `@mdrec/core` with `seed` (or restores its checkpointed state).
 *
 * @example
 * const result = await fit(model, train, { validation, epochs: 5, batchSize: 4096, earlyStopping: { metric: "auc" } });
 * console.log(result.history.map((epoch) => epoch.validation?.overall.auc), result.bestEpoch);
 */
export async function fit(
  model: MultiDomainModel,
  train: ColumnarDataset,
  options: FitOptions = {},
): Promise<FitResult> {
  const started = now();
  assertModel(model, "fit model");
  const resolved = resolveFitOptions(options, model.numTasks);
  checkDatasetForModel(model, train, "train");
  if (resolved.validation) checkDatasetForModel(model, resolved.validation, "fit options.validation");
  const run = new TrainingRun(model, train, resolved, started);
  return run.execute();
}

/** The state of one `fit` call. */
class TrainingRun {
  private readonly callbacks: FitCallbacks;
  private readonly warn: (message: string) => void;
  private readonly batchesPerEpoch: number;
  private readonly plannedSteps: number;
  private readonly variables: tf.Variable[];
  private readonly optimizer: tf.Optimizer;
  private readonly dataset: DatasetFingerprint | undefined;
  private schedule: ResolvedSchedule;
  private extra: unknown;

  private step = 0;
  private epoch = 0;
  private nextBatch = 0;
  private progress = emptyProgress();
  private history: EpochSummary[] = [];
  private evaluations: EvaluationRecord[] = [];
  private best: BestEvaluation | undefined;
  private evaluationsWithoutImprovement = 0;
  private stoppedEarly = false;
  private bestWeights: tf.Tensor[] | undefined;
  private resumedFromStep: number | undefined;
  private lastCheckpoint: { step: number; path: string } | undefined;
  private pending: PendingStep[] = [];
  private sessionSteps = 0;
  private sessionExamples = 0;
  private sessionSeconds = 0;

  constructor(
    private readonly model: MultiDomainModel,
    private readonly train: ColumnarDataset,
    private readonly options: ResolvedFitOptions,
    private readonly started: number,
  ) {
    this.callbacks = options.callbacks;
    this.warn = options.callbacks.onWarning ?? ((message: string) => console.warn(message));
    this.batchesPerEpoch = numBatches(train.numRows, options.batchSize);
    this.plannedSteps = Math.min(
      options.maxSteps ?? Number.POSITIVE_INFINITY,
      options.epochs * this.batchesPerEpoch,
    );
    this.schedule = resolveSchedule(options.schedule, this.plannedSteps, "fit options.schedule");
    this.variables = model.trainableWeights().map((weight) => weight.read() as tf.Variable);
    if (this.variables.length === 0) {
      throw new TrainingError(`model "${model.name}" has no trainable weights`);
    }
    this.optimizer = createOptimizer(options.optimizer, options.learningRate);
    this.dataset = options.checkpointDir === undefined ? undefined : datasetFingerprint(train);
    this.extra = options.checkpointExtra;
  }

  async execute(): Promise<FitResult> {
    const directory = this.options.checkpointDir;
    let lock: DirectoryLock | undefined;
    try {
      if (directory !== undefined) {
        lock = await acquireDirectoryLock(directory, { onWarning: this.warn });
        await this.initialiseFromDirectory(directory);
      } else {
        setGlobalSeed(this.options.seed);
      }
      await this.trainEpochs();
      const restoredBestWeights = this.restoreBestWeights();
      return {
        history: this.history,
        evaluations: this.evaluations,
        bestEpoch: this.best?.epoch,
        bestStep: this.best?.step,
        bestMetric: this.best?.value,
        stoppedEarly: this.stoppedEarly,
        restoredBestWeights,
        steps: this.step,
        resumedFromStep: this.resumedFromStep,
        trainExamplesPerSecond: this.sessionSeconds > 0 ? this.sessionExamples / this.sessionSeconds : 0,
        wallSeconds: now() - this.started,
      };
    } finally {
      for (const entry of this.pending) entry.values.dispose();
      this.pending = [];
      if (this.bestWeights) tf.dispose(this.bestWeights);
      this.optimizer.dispose();
      await lock?.release();
    }
  }

  private settings(): TrainingSettings {
    const { options } = this;
    return {
      optimizer: options.optimizer,
      learningRate: options.learningRate,
      schedule: (options.schedule ?? null) as TrainingSettings["schedule"],
      resolvedSchedule: this.schedule,
      weightDecay: options.weightDecay,
      gradientClip: options.gradientClip ?? null,
      taskWeights: options.taskWeights ?? null,
      batchSize: options.batchSize,
      seed: options.seed,
      monitor: options.monitor,
      earlyStopping: options.earlyStopping ?? null,
      restoreBestWeights: options.restoreBestWeights,
      evaluateEvery: options.evaluateEvery,
    };
  }

  private async initialiseFromDirectory(directory: string): Promise<void> {
    const exists = await hasCheckpoint(directory);
    if (exists && !this.options.resume) {
      throw new CheckpointError(
        `${directory} already holds a checkpoint; pass resume: true to continue that run, or use an empty directory`,
      );
    }
    const loaded = exists ? await loadCheckpointFiles(directory) : undefined;
    if (loaded === undefined) {
      if (this.options.resume)
        this.warn(`resume: ${directory} holds no checkpoint yet; starting from scratch`);
      setGlobalSeed(this.options.seed);
      return;
    }
    await this.restore(loaded);
  }

  private async restore(loaded: LoadedCheckpoint): Promise<void> {
    const { manifest, path } = loaded;
    assertSameModel(manifest, this.model, path);
    const { resolvedSchedule: _saved, ...savedSettings } = manifest.training;
    const { resolvedSchedule: _current, ...currentSettings } = this.settings();
    const settingDifferences = diffJson(savedSettings, currentSettings, "this run");
    if (settingDifferences.length > 0) {
      throw new CheckpointError(
        `${path} was written by a run with different training options (only epochs, maxSteps, checkpointEvery, logEvery, callbacks, validation and checkpointExtra may change on resume): ${settingDifferences.join("; ")}`,
      );
    }
    const dataDifferences = diffJson(manifest.dataset, this.dataset, "this run");
    if (dataDifferences.length > 0) {
      throw new CheckpointError(`${path} was trained on different data: ${dataDifferences.join("; ")}`);
    }
    assignModelWeights(this.model, loaded.model, path);
    await restoreOptimizerState(this.optimizer, loaded.optimizer, this.variables.length, path);
    setGlobalSeed(this.options.seed);
    globalRandomGenerator().setState(manifest.randomState);
    if (loaded.best) {
      const values = tf.io.decodeWeights(loaded.best.data, loaded.best.specs);
      this.bestWeights = loaded.best.specs.map((spec) => values[spec.name]!);
    }
    this.schedule = manifest.training.resolvedSchedule;
    this.step = manifest.step;
    this.epoch = manifest.epoch;
    this.nextBatch = manifest.nextBatch;
    this.progress = manifest.epochProgress;
    this.history = manifest.history;
    this.evaluations = manifest.evaluations;
    this.best = manifest.best ?? undefined;
    this.evaluationsWithoutImprovement = manifest.evaluationsWithoutImprovement;
    this.stoppedEarly = manifest.stoppedEarly;
    this.extra = this.options.checkpointExtra ?? manifest.extra;
    this.resumedFromStep = manifest.step;
    this.lastCheckpoint = { step: manifest.step, path };
  }

  private reachedMaxSteps(): boolean {
    return this.options.maxSteps !== undefined && this.step >= this.options.maxSteps;
  }

  private async trainEpochs(): Promise<void> {
    const { options } = this;
    while (this.epoch < options.epochs && !this.stoppedEarly && !this.reachedMaxSteps()) {
      const epoch = this.epoch;
      const batches = iterateBatches(this.train, {
        batchSize: options.batchSize,
        shuffle: true,
        seed: options.seed,
        epoch,
        startBatch: this.nextBatch,
      });
      for (const batch of batches) {
        const batchInEpoch = this.nextBatch;
        await this.trainOneStep(batch, epoch, batchInEpoch);
        const lastOfEpoch = this.nextBatch === this.batchesPerEpoch;
        const evaluationDue =
          typeof options.evaluateEvery === "number" && this.step % options.evaluateEvery === 0;
        const checkpointDue =
          options.checkpointEvery !== undefined && this.step % options.checkpointEvery === 0 && !lastOfEpoch;
        if (
          this.pending.length >= options.logEvery ||
          lastOfEpoch ||
          evaluationDue ||
          checkpointDue ||
          this.reachedMaxSteps()
        ) {
          await this.flush();
        }
        if (evaluationDue) await this.evaluateValidation();
        if (!lastOfEpoch && (this.stoppedEarly || this.reachedMaxSteps())) break;
        if (checkpointDue) await this.checkpoint("interval");
      }
      if (this.nextBatch === this.batchesPerEpoch) {
        await this.endEpoch(epoch);
      } else {
        await this.endPartialEpoch(epoch);
        return;
      }
    }
  }

  private async trainOneStep(batch: Batch, epoch: number, batchInEpoch: number): Promise<void> {
    const learningRate = learningRateAt(this.schedule, this.options.learningRate, this.step);
    setOptimizerLearningRate(this.optimizer, learningRate);
    const rows = batch.domainIds.shape[0];
    const stepStarted = now();
    let result: { names: string[]; values: tf.Tensor1D };
    try {
      result = this.computeStep(batch);
    } finally {
      disposeBatch(batch);
    }
    const seconds = now() - stepStarted;
    this.step += 1;
    this.nextBatch = batchInEpoch + 1;
    this.pending.push({ step: this.step, epoch, batchInEpoch, rows, learningRate, seconds, ...result });
  }

  /** One optimizer step; returns the loss parts `[total, bce, ...aux]` still on the device. */
  private computeStep(batch: Batch): { names: string[]; values: tf.Tensor1D } {
    const { options, variables } = this;
    const names: string[] = [TOTAL, TASK_LOSS];
    const values = tf.tidy(() => {
      let parts: tf.Scalar[] = [];
      try {
        const { value, grads } = tf.variableGrads(() => {
          const output = this.model.call(batch, { training: true });
          const taskLoss = binaryCrossEntropyWithLogits(output.logits, batch.labels, options.taskWeights);
          let total = taskLoss;
          const auxiliary: tf.Scalar[] = [];
          for (const [name, loss] of Object.entries(output.auxLosses)) {
            if (name === TOTAL || name === TASK_LOSS) {
              throw new TrainingError(
                `model "${this.model.name}" reports an auxiliary loss named "${name}", which the trainer uses for its own loss; rename it`,
              );
            }
            if (loss?.rank !== 0) {
              throw new ShapeError(
                `model "${this.model.name}" auxiliary loss "${name}" must be a scalar, received shape [${loss?.shape?.join(", ")}]`,
              );
            }
            names.push(name);
            auxiliary.push(loss);
            total = tf.add(total, loss);
          }
          // Kept so the parts survive the gradient tape's scope; disposed below.
          parts = [taskLoss, ...auxiliary].map((part) => tf.keep(part));
          return total;
        }, variables);
        let gradients = variables.map((variable) => grads[variable.name]); // undefined: no path to the loss
        if (options.gradientClip !== undefined) gradients = clipByGlobalNorm(gradients, options.gradientClip);
        if (options.weightDecay > 0) {
          gradients = gradients.map((gradient, index) =>
            gradient === undefined
              ? undefined
              : tf.add(gradient, tf.mul(variables[index]!, options.weightDecay)),
          );
        }
        // One entry per variable, in a fixed order: tfjs optimizers index their slots by position,
        // and skip (like torch) the variables whose gradient is missing.
        this.optimizer.applyGradients(
          variables.map((variable, index) => ({
            name: variable.name,
            tensor: gradients[index] as tf.Tensor,
          })),
        );
        return tf.stack([value, ...parts]) as tf.Tensor1D; // [names.length]
      } finally {
        tf.dispose(parts);
      }
    });
    return { names, values };
  }

  /** Reads the pending losses with one device sync, checks them and reports progress. */
  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    // On asynchronous backends the device finishes the steps while we wait here, so the wait
    // counts as training time.
    const readStarted = now();
    let host: Float32Array;
    try {
      const joined =
        pending.length === 1 ? pending[0]!.values : tf.concat(pending.map((entry) => entry.values));
      host = (await joined.data()) as Float32Array;
      if (joined !== pending[0]!.values) joined.dispose();
    } finally {
      for (const entry of pending) entry.values.dispose();
    }
    const interval: LossValues = {};
    let offset = 0;
    for (const entry of pending) {
      const losses: LossValues = {};
      entry.names.forEach((name, index) => {
        losses[name] = host[offset + index]!;
      });
      offset += entry.names.length;
      if (Object.values(losses).some((value) => !Number.isFinite(value)))
        throw this.divergence(entry, losses);
      for (const [name, value] of Object.entries(losses)) {
        this.progress.lossSums[name] = (this.progress.lossSums[name] ?? 0) + value * entry.rows;
        interval[name] = (interval[name] ?? 0) + value / pending.length;
      }
      this.progress.steps += 1;
      this.progress.examples += entry.rows;
      this.progress.seconds += entry.seconds;
      this.progress.learningRate = entry.learningRate;
      this.sessionSteps += 1;
      this.sessionExamples += entry.rows;
      this.sessionSeconds += entry.seconds;
    }
    const readSeconds = now() - readStarted;
    this.progress.seconds += readSeconds;
    this.sessionSeconds += readSeconds;
    const last = pending[pending.length - 1]!;
    if (this.callbacks.onStep) {
      const secondsPerStep = this.sessionSeconds / this.sessionSteps;
      await this.callbacks.onStep({
        step: last.step,
        epoch: last.epoch,
        batchInEpoch: last.batchInEpoch,
        batchesPerEpoch: this.batchesPerEpoch,
        plannedSteps: this.plannedSteps,
        losses: interval,
        learningRate: last.learningRate,
        examplesPerSecond: this.sessionSeconds > 0 ? this.sessionExamples / this.sessionSeconds : 0,
        elapsedSeconds: now() - this.started,
        etaSeconds: Math.max(0, this.plannedSteps - last.step) * secondsPerStep,
      });
    }
  }

  private divergence(entry: PendingStep, losses: LossValues): TrainingError {
    const parts = Object.entries(losses)
      .map(([name, value]) => `${name}=${value}`)
      .join(", ");
    const kept =
      this.lastCheckpoint !== undefined
        ? `the last good checkpoint (step ${this.lastCheckpoint.step}, ${this.lastCheckpoint.path}) is intact`
        : this.options.checkpointDir !== undefined
          ? "no checkpoint had been written yet"
          : "no checkpointDir was set";
    return new TrainingError(
      `Loss is not finite at step ${entry.step} (epoch ${entry.epoch}, batch ${entry.batchInEpoch} of ${this.batchesPerEpoch}): ${parts}. Training stopped; ${kept}. Lower the learning rate, set gradientClip, or check the data.`,
    );
  }

  /** Evaluates the validation data, updates best and early-stopping state, and reports it. */
  private async evaluateValidation(): Promise<EvaluationRecord | undefined> {
    const { validation, monitor, minDelta, earlyStopping } = this.options;
    if (validation === undefined) return undefined;
    const result = await evaluate(this.model, validation, { batchSize: this.options.batchSize });
    const perTask = result.tasks.map((task) => task.overall[monitor]);
    const monitored = perTask.reduce((sum, value) => sum + value, 0) / perTask.length;
    const previous = this.best?.value;
    const improved =
      Number.isFinite(monitored) &&
      (previous === undefined ||
        (monitor === "auc" ? monitored > previous + minDelta : monitored < previous - minDelta));
    if (improved) {
      this.best = { metric: monitor, value: monitored, epoch: this.epoch, step: this.step };
      this.evaluationsWithoutImprovement = 0;
      if (this.options.restoreBestWeights) this.snapshotBestWeights();
    } else {
      this.evaluationsWithoutImprovement += 1;
      if (earlyStopping !== undefined && this.evaluationsWithoutImprovement >= earlyStopping.patience) {
        this.stoppedEarly = true;
      }
    }
    const record: EvaluationRecord = { step: this.step, epoch: this.epoch, result, monitored };
    this.evaluations.push(record);
    await this.callbacks.onEvaluate?.({
      step: this.step,
      epoch: this.epoch,
      result,
      monitored,
      improved,
      best: this.best,
    });
    return record;
  }

  private snapshotBestWeights(): void {
    if (this.bestWeights) tf.dispose(this.bestWeights);
    this.bestWeights = modelVariables(this.model).map((variable) => tf.keep(variable.read().clone()));
  }

  private restoreBestWeights(): boolean {
    if (!this.options.restoreBestWeights || this.bestWeights === undefined) return false;
    const variables = modelVariables(this.model);
    this.bestWeights.forEach((value, index) => {
      variables[index]!.write(value);
    });
    return true;
  }

  private summarise(epoch: number, partial: boolean): EpochSummary {
    const { progress } = this;
    const losses: LossValues = {};
    for (const [name, sum] of Object.entries(progress.lossSums)) {
      losses[name] = progress.examples > 0 ? sum / progress.examples : Number.NaN;
    }
    const summary: EpochSummary = {
      epoch,
      steps: progress.steps,
      examples: progress.examples,
      losses,
      learningRate: progress.learningRate,
      seconds: progress.seconds,
      examplesPerSecond: progress.seconds > 0 ? progress.examples / progress.seconds : 0,
    };
    if (partial) summary.partial = true;
    return summary;
  }

  private async endEpoch(epoch: number): Promise<void> {
    const { options } = this;
    const evaluationStarted = now();
    let record: EvaluationRecord | undefined;
    if (options.evaluateEvery === "epoch") {
      record = await this.evaluateValidation();
    } else {
      const latest = this.evaluations[this.evaluations.length - 1];
      if (latest?.step === this.step) record = latest;
    }
    const summary = this.summarise(epoch, false);
    if (record) {
      summary.validation = record.result;
      if (options.evaluateEvery === "epoch") summary.evaluationSeconds = now() - evaluationStarted;
    }
    this.history.push(summary);
    this.epoch = epoch + 1;
    this.nextBatch = 0;
    this.progress = emptyProgress();
    const finished = this.epoch >= options.epochs || this.stoppedEarly || this.reachedMaxSteps();
    await this.checkpoint(finished ? "final" : "epoch");
    await this.reportEpoch(summary);
  }

  /** Training stopped inside an epoch (maxSteps, or early stopping on a step-based evaluation). */
  private async endPartialEpoch(epoch: number): Promise<void> {
    let record: EvaluationRecord | undefined;
    const latest = this.evaluations[this.evaluations.length - 1];
    if (latest?.step === this.step) record = latest;
    if (this.stoppedEarly) {
      const summary = this.summarise(epoch, true);
      if (record) summary.validation = record.result;
      this.history.push(summary);
      await this.checkpoint("final");
      await this.reportEpoch(summary);
      return;
    }
    // maxSteps: checkpoint the mid-epoch position first, as an interruption would, so that a
    // resume with a larger budget continues this epoch; then evaluate what was trained.
    await this.checkpoint("final");
    const evaluationStarted = now();
    if (record === undefined && this.options.evaluateEvery === "epoch")
      record = await this.evaluateValidation();
    const summary = this.summarise(epoch, true);
    if (record) {
      summary.validation = record.result;
      summary.evaluationSeconds = now() - evaluationStarted;
    }
    this.history.push(summary);
    await this.reportEpoch(summary);
  }

  private async reportEpoch(summary: EpochSummary): Promise<void> {
    if (!this.callbacks.onEpochEnd) return;
    const event: Parameters<NonNullable<FitCallbacks["onEpochEnd"]>>[0] = {
      epoch: summary.epoch,
      trainLoss: summary.losses[TOTAL] ?? Number.NaN,
      summary,
    };
    if (summary.validation) event.validation = summary.validation;
    if (this.best) event.best = this.best;
    if (this.stoppedEarly) event.stopped = true;
    await this.callbacks.onEpochEnd(event);
  }

  private async checkpoint(reason: CheckpointReason): Promise<void> {
    const directory = this.options.checkpointDir;
    if (directory === undefined) return;
    await this.flush();
    const model = await encodeModelWeights(this.model);
    const optimizer = await encodeOptimizerState(this.optimizer);
    const variables = modelVariables(this.model);
    const best = this.bestWeights
      ? await tf.io.encodeWeights(
          this.bestWeights.map((tensor, index) => ({ name: `${index}:${variables[index]!.name}`, tensor })),
        )
      : undefined;
    const path = await writeCheckpoint(
      directory,
      {
        step: this.step,
        epoch: this.epoch,
        nextBatch: this.nextBatch,
        modelConfig: this.model.getConfig(),
        training: this.settings(),
        dataset: this.dataset!,
        randomState: globalRandomGenerator().getState(),
        trainableWeights: this.variables.length,
        epochProgress: this.progress,
        best: this.best ?? null,
        evaluationsWithoutImprovement: this.evaluationsWithoutImprovement,
        stoppedEarly: this.stoppedEarly,
        history: this.history,
        evaluations: this.evaluations,
        extra: this.extra ?? null,
      },
      best ? { model, optimizer, best } : { model, optimizer },
    );
    this.lastCheckpoint = { step: this.step, path };
    await this.callbacks.onCheckpoint?.({
      step: this.step,
      epoch: this.epoch,
      nextBatch: this.nextBatch,
      path,
      reason,
    });
  }
}

/** Scales the gradients so their global L2 norm is at most `maxNorm` (torch's `clip_grad_norm_`). */
function clipByGlobalNorm(gradients: (tf.Tensor | undefined)[], maxNorm: number): (tf.Tensor | undefined)[] {
  const present = gradients.filter((gradient): gradient is tf.Tensor => gradient !== undefined);
  if (present.length === 0) return gradients;
  const norm = tf.sqrt(tf.addN(present.map((gradient) => tf.sum(tf.square(gradient))))); // []
  const scale = tf.minimum(1, tf.div(maxNorm, tf.add(norm, 1e-6))); // []
  return gradients.map((gradient) => (gradient === undefined ? undefined : tf.mul(gradient, scale)));
}
