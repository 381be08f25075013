import { join, relative } from "node:path";
import { getModelInfo, listModels } from "@mdrec/models";
import { compareModels, type TrainingBudget } from "../compare.js";
import type { EarlyStoppingConfig } from "../config.js";
import { type CommandContext, environmentSummary, newRunId } from "../context.js";
import { loadData } from "../data.js";
import { parseDataArgument } from "../data-argument.js";
import { openOutputDirectory } from "../output-dir.js";
import { RESULTS_FORMAT_VERSION, type RunResults } from "../results.js";
import { renderComparisonTable } from "../table.js";
import { recordedConfig, writeRunOutputs } from "./outputs.js";

/**
 * Budget of `mdrec compare` when the config does not set one: up to 5 epochs with early stopping
 * on validation AUC (patience 1, best weights kept), so each model trains to its own best epoch
 * under the same rule. On the embedded synthetic data most models peak at epoch 2 (their id
 * embeddings then overfit) and STAR later; all five finish in well under 3 minutes on 2 cores
 * with the wasm backend (25 s for 2 epochs of all five on an idle 2-core machine).
 */
export const COMPARE_DEFAULTS = {
  data: "synthetic",
  epochs: 5,
  batchSize: 512,
  learningRate: 1e-3,
  earlyStopping: { metric: "auc", patience: 1 },
  out: "mdrec-out/compare",
} as const;

/** Data of every command but `compare` when the config names none: the embedded synthetic set. */
export const DEFAULT_DATA = "synthetic";

/** Config keys written into the results of `compare` and `train`. */
export const RECORDED_KEYS = [
  "data",
  "schema",
  "rows",
  "split",
  "seed",
  "models",
  "model",
  "epochs",
  "batchSize",
  "learningRate",
  "optimizer",
  "weightDecay",
  "gradientClip",
  "earlyStopping",
  "modelOptions",
] as const;

/** The training budget a config asks for, with a command's defaults. */
export function trainingBudget(
  config: CommandContext["config"],
  defaults: { epochs: number; batchSize: number; learningRate: number; earlyStopping: EarlyStoppingConfig },
): TrainingBudget {
  return {
    epochs: config.epochs ?? defaults.epochs,
    batchSize: config.batchSize ?? defaults.batchSize,
    learningRate: config.learningRate ?? defaults.learningRate,
    optimizer: config.optimizer,
    weightDecay: config.weightDecay,
    gradientClip: config.gradientClip,
    earlyStopping:
      config.earlyStopping === false ? undefined : { ...(config.earlyStopping ?? defaults.earlyStopping) },
  };
}

/** `up to 5 epochs (early stopping on validation auc, patience 1), batch 512, learning rate 0.001`. */
export function describeBudget(budget: TrainingBudget): string {
  const epochs = `${budget.epochs} epoch${budget.epochs === 1 ? "" : "s"}`;
  const stopping = budget.earlyStopping
    ? `up to ${epochs} (early stopping on validation ${budget.earlyStopping.metric}, patience ${budget.earlyStopping.patience})`
    : epochs;
  return `${stopping}, batch ${budget.batchSize}, learning rate ${budget.learningRate ?? 0.001}`;
}

/** `mdrec compare`: trains every chosen model with the same data, seed and budget; one table, three files. */
export async function runCompare(context: CommandContext): Promise<void> {
  const { config } = context;
  const started = performance.now();
  const createdAt = new Date();
  const models = config.models ?? listModels();
  for (const name of models) getModelInfo(name);
  const dataArgument = config.data ?? COMPARE_DEFAULTS.data;
  const source = parseDataArgument(dataArgument, config.schema);
  const budget = trainingBudget(config, COMPARE_DEFAULTS);
  const outPath = context.resolvePath(config.out ?? COMPARE_DEFAULTS.out);
  const runId = newRunId(createdAt);
  const backend = await context.startBackend();
  const directory = await openOutputDirectory(outPath, {
    overwrite: config.overwrite,
    cwd: context.io.cwd,
    onWarning: (message) => context.print(`warning: ${message}`),
  });
  try {
    const data = await loadData(source, {
      seed: config.seed,
      split: config.split,
      rows: config.rows,
      cwd: context.io.cwd,
    });
    for (const warning of data.warnings) context.print(`warning: ${warning}`);
    context.print(
      `mdrec compare: ${models.join(", ")} on ${data.source} (${data.train.numRows} train / ${data.validation.numRows} validation / ${data.test.numRows} test rows, ${data.full.numDomains} domains), ` +
        `${describeBudget(budget)}, seed ${config.seed}`,
    );
    const results = await compareModels({
      ...budget,
      data,
      models,
      seed: config.seed,
      modelOptions: config.modelOptions,
      progress: context.progress(),
    });
    const runResults: RunResults = {
      formatVersion: RESULTS_FORMAT_VERSION,
      kind: "compare",
      runId,
      createdAt: createdAt.toISOString(),
      totalSeconds: (performance.now() - started) / 1000,
      config: recordedConfig(
        { ...config, ...budget, models, data: dataArgument, earlyStopping: budget.earlyStopping ?? false },
        RECORDED_KEYS.filter((key) => key !== "model"),
      ),
      environment: environmentSummary(backend, config.threads),
      dataset: data.summary,
      models: results,
    };
    await writeRunOutputs(directory, runResults);
    const shown = relative(context.io.cwd, outPath) || ".";
    if (config.json) {
      context.emitJson(runResults);
    } else {
      context.print();
      context.print(renderComparisonTable(runResults).trimEnd());
    }
    context.print(
      `\nReport: ${join(shown, "report.html")} (open it in a browser); also ${join(shown, "results.json")} and ${join(shown, "results.md")}. ` +
        `Total ${runResults.totalSeconds.toFixed(1)} s.`,
    );
  } finally {
    await directory.release();
  }
}
