import { setGlobalSeed } from "@mdrec/core";
import { createModel, getModelInfo, listModels, type MultiDomainModel } from "@mdrec/models";
import {
  type EpochSummary,
  type EvaluationResult,
  evaluate,
  type FitOptions,
  type FitResult,
  fit,
  type OptimizerName,
} from "@mdrec/trainer";
import type { EarlyStoppingConfig } from "./config.js";
import type { PreparedData } from "./data.js";
import type { ProgressReporter } from "./progress.js";
import type { DomainMetricSummary, EpochRecord, GateRouting, MetricSummary, ModelResult } from "./results.js";

/** Training budget and settings shared by every model of a comparison. */
export interface TrainingBudget {
  /** Epochs per model. */
  epochs: number;
  /** Rows per training step. */
  batchSize: number;
  /** Defaults to the trainer's (1e-3). */
  learningRate?: number;
  /** Defaults to the trainer's (`"adam"`). */
  optimizer?: string;
  /** Defaults to the trainer's (0). */
  weightDecay?: number;
  /** Defaults to no clipping. */
  gradientClip?: number;
  /** Defaults to none: every model trains `epochs` epochs. */
  earlyStopping?: EarlyStoppingConfig;
  /** Rows per evaluation forward pass. Defaults to 4096. */
  evaluationBatchSize?: number;
}

/** Options of {@link compareModels}. */
export interface CompareOptions extends TrainingBudget {
  /** Data, already split (see `loadData`). */
  data: PreparedData;
  /** Registry names. Defaults to every registered model. */
  models?: string[];
  /** Seed of every model's initialisation, batch order and noise. Defaults to 42. */
  seed?: number;
  /** Extra `createModel` options per model name. */
  modelOptions?: Record<string, Record<string, unknown>>;
  /** Progress display. Defaults to none. */
  progress?: ProgressReporter;
}

/** Options of {@link trainAndEvaluate}: one model. */
export interface TrainModelOptions extends TrainingBudget {
  data: PreparedData;
  seed: number;
  progress?: ProgressReporter;
  /** Called with the trained model before it is disposed (e.g. to save it). */
  onTrained?: (model: MultiDomainModel) => Promise<void>;
}

function finiteOrNull(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : value;
}

type MetricLike = EvaluationResult["overall"];

function metricSummary(metrics: MetricLike): MetricSummary {
  return {
    rows: metrics.count,
    auc: finiteOrNull(metrics.auc),
    logloss: finiteOrNull(metrics.logloss),
    calibration: finiteOrNull(metrics.calibration),
    gauc: finiteOrNull(metrics.gauc),
  };
}

/** Test metrics of an evaluation in the results-file layout. */
export function summariseEvaluation(evaluation: EvaluationResult): {
  overall: MetricSummary;
  perDomain: DomainMetricSummary[];
} {
  return {
    overall: metricSummary(evaluation.overall),
    perDomain: evaluation.perDomain.map((entry) => ({
      ...metricSummary(entry),
      domain: entry.domainId,
      name: entry.name ?? evaluation.domainNames[entry.domainId] ?? `domain_${entry.domainId}`,
    })),
  };
}

/** Routing analyses of an evaluation in the results-file layout. */
export function summariseRouting(evaluation: EvaluationResult): GateRouting[] {
  return evaluation.routing.map((analysis) => ({
    gate: `gate ${analysis.gate}`,
    utilisation: analysis.utilization,
    mutualInformation: analysis.mutualInformation,
  }));
}

function epochRecord(summary: EpochSummary): EpochRecord {
  const auxLosses: Record<string, number> = {};
  for (const [name, value] of Object.entries(summary.losses)) {
    if (name !== "bce" && name !== "total") auxLosses[name] = value;
  }
  const validation = summary.validation;
  return {
    epoch: summary.epoch + 1,
    trainLoss: summary.losses.bce ?? summary.losses.total ?? Number.NaN,
    auxLosses,
    validationAuc: finiteOrNull(validation?.overall.auc),
    validationLogloss: finiteOrNull(validation?.overall.logloss),
    domainExpertMi: finiteOrNull(validation?.routing[0]?.mutualInformation),
    seconds: summary.seconds + (summary.evaluationSeconds ?? 0),
  };
}

function describeEpoch(name: string, epochs: number, summary: EpochSummary): string {
  const parts = Object.entries(summary.losses)
    .filter(([loss]) => loss !== "total")
    .map(([loss, value]) => `${loss} ${value.toFixed(4)}`);
  const validation = summary.validation;
  const mi = validation?.routing[0]?.mutualInformation;
  const metrics = validation
    ? ` | validation AUC ${validation.overall.auc.toFixed(4)} logloss ${validation.overall.logloss.toFixed(4)}${mi !== undefined ? ` MI ${mi.toFixed(3)}` : ""}`
    : "";
  return `[${name}] epoch ${summary.epoch + 1}/${epochs}: loss ${(summary.losses.total ?? Number.NaN).toFixed(4)} (${parts.join(", ")})${metrics} (${summary.seconds.toFixed(1)} s, ${Math.round(summary.examplesPerSecond)} ex/s)`;
}

/**
 * Trains one registered model on `data.train` (validating on `data.validation` after each epoch)
 * and evaluates it on `data.test`. The model is disposed before returning.
 */
export async function trainAndEvaluate(
  name: string,
  modelOptions: Record<string, unknown>,
  options: TrainModelOptions,
): Promise<ModelResult> {
  const started = performance.now();
  const { data, progress } = options;
  // The same seed before every model: equal initial randomness, batch order and noise.
  setGlobalSeed(options.seed);
  const model = createModel(name, {
    features: data.train.features,
    numDomains: data.train.numDomains,
    numTasks: data.train.numTasks,
    seed: options.seed,
    ...modelOptions,
  });
  try {
    const summary = model.summary();
    const fitOptions: FitOptions = {
      validation: data.validation,
      epochs: options.epochs,
      batchSize: options.batchSize,
      seed: options.seed,
      callbacks: {
        onStep: (event) => {
          progress?.step({
            step: event.step,
            totalSteps: event.plannedSteps,
            epoch: event.epoch + 1,
            epochs: options.epochs,
            loss: event.losses.total ?? Number.NaN,
            examplesPerSecond: event.examplesPerSecond,
            etaSeconds: event.etaSeconds,
          });
        },
        onEpochEnd: (event) => progress?.line(describeEpoch(name, options.epochs, event.summary)),
        onWarning: (message) => progress?.line(`[${name}] warning: ${message}`),
      },
    };
    if (options.learningRate !== undefined) fitOptions.learningRate = options.learningRate;
    if (options.optimizer !== undefined) fitOptions.optimizer = options.optimizer as OptimizerName;
    if (options.weightDecay !== undefined) fitOptions.weightDecay = options.weightDecay;
    if (options.gradientClip !== undefined) fitOptions.gradientClip = options.gradientClip;
    if (options.earlyStopping !== undefined) fitOptions.earlyStopping = { ...options.earlyStopping };
    const trainStarted = performance.now();
    progress?.begin(name, Math.ceil(data.train.numRows / options.batchSize) * options.epochs);
    let result: FitResult;
    try {
      result = await fit(model, data.train, fitOptions);
    } finally {
      progress?.end();
    }
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    const evaluation = await evaluate(model, data.test, { batchSize: options.evaluationBatchSize ?? 4096 });
    await options.onTrained?.(model);
    return {
      name,
      parameters: summary.parameters,
      expertsPerRow: summary.expertsPerRow ?? null,
      totalExperts: summary.totalExperts ?? null,
      epochs: result.history.length,
      bestEpoch: result.bestEpoch === undefined ? null : result.bestEpoch + 1,
      trainExamplesPerSecond: result.trainExamplesPerSecond,
      trainSeconds,
      wallSeconds: (performance.now() - started) / 1000,
      test: summariseEvaluation(evaluation),
      history: result.history.map(epochRecord),
      routing: summariseRouting(evaluation),
    };
  } finally {
    model.dispose();
  }
}

/**
 * Trains and evaluates each model with the same data, split, seed and budget, one after the
 * other, and returns one {@link ModelResult} per model (the CLI's `compare` wraps them in a
 * results file with the run's config and environment).
 *
 * @example
 * const data = await loadData(parseDataArgument("synthetic:tiny"), { seed: 1, split: [0.8, 0.1, 0.1] });
 * const models = await compareModels({ data, models: ["mmoe", "cesaa"], epochs: 1, batchSize: 256 });
 * console.table(models.map((model) => ({ name: model.name, auc: model.test.overall.auc })));
 */
export async function compareModels(options: CompareOptions): Promise<ModelResult[]> {
  const names = options.models ?? listModels();
  // Unknown names fail before any model trains, listing the registered ones.
  for (const name of names) getModelInfo(name);
  const results: ModelResult[] = [];
  for (const name of names) {
    results.push(
      await trainAndEvaluate(name, options.modelOptions?.[name] ?? {}, {
        ...options,
        seed: options.seed ?? 42,
      }),
    );
  }
  return results;
}
