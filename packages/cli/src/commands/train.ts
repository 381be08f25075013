import { join, relative } from "node:path";
import { writeFileAtomic } from "@mdrec/core";
import type { DatasetEncodersJSON } from "@mdrec/data-loaders";
import { getModelInfo } from "@mdrec/models";
import { trainAndEvaluate } from "../compare.js";
import { type CommandContext, environmentSummary, newRunId } from "../context.js";
import { loadData } from "../data.js";
import { parseDataArgument } from "../data-argument.js";
import { openOutputDirectory } from "../output-dir.js";
import { RESULTS_FORMAT_VERSION, type RunResults } from "../results.js";
import { renderComparisonTable } from "../table.js";
import { DEFAULT_DATA, describeBudget, RECORDED_KEYS, trainingBudget } from "./compare.js";
import { recordedConfig, writeRunOutputs } from "./outputs.js";

/** Defaults of `mdrec train`. */
export const TRAIN_DEFAULTS = {
  epochs: 5,
  batchSize: 512,
  learningRate: 1e-3,
  earlyStopping: { metric: "auc", patience: 1 },
  out: "mdrec-out/train",
} as const;

/** Name of the file beside a saved model that records the data it was trained on (read by `mdrec eval`). */
export const TRAINING_DATA_FILE = "training-data.json";

/** What {@link TRAINING_DATA_FILE} holds. */
export interface TrainingDataRecord {
  data: string;
  schema?: string;
  seed: number;
  split: [number, number, number];
  rows?: number;
  /** Encoders fitted on the training rows (file sources), so evaluation uses the training vocabulary. */
  encoders?: DatasetEncodersJSON;
}

/** `mdrec train`: trains one model, evaluates it on the test split, saves it and writes the results. */
export async function runTrain(context: CommandContext): Promise<void> {
  const { config } = context;
  const started = performance.now();
  const createdAt = new Date();
  getModelInfo(config.model);
  const dataArgument = config.data ?? DEFAULT_DATA;
  const source = parseDataArgument(dataArgument, config.schema);
  const budget = trainingBudget(config, TRAIN_DEFAULTS);
  const outPath = context.resolvePath(config.out ?? TRAIN_DEFAULTS.out);
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
      `mdrec train: ${config.model} on ${data.source} (${data.train.numRows} train / ${data.validation.numRows} validation / ${data.test.numRows} test rows), ` +
        `${describeBudget(budget)}, seed ${config.seed}`,
    );
    const modelDirectory = join(outPath, "model");
    const record: TrainingDataRecord = { data: dataArgument, seed: config.seed, split: config.split };
    if (config.schema !== undefined) record.schema = context.resolvePath(config.schema);
    if (config.rows !== undefined) record.rows = config.rows;
    if (data.encoders !== undefined) record.encoders = data.encoders;
    const result = await trainAndEvaluate(config.model, config.modelOptions[config.model] ?? {}, {
      ...budget,
      data,
      seed: config.seed,
      progress: context.progress(),
      onTrained: async (model) => {
        await model.save(modelDirectory);
        await writeFileAtomic(
          join(modelDirectory, TRAINING_DATA_FILE),
          `${JSON.stringify(record, null, 2)}\n`,
        );
      },
    });
    const runResults: RunResults = {
      formatVersion: RESULTS_FORMAT_VERSION,
      kind: "train",
      runId: newRunId(createdAt),
      createdAt: createdAt.toISOString(),
      totalSeconds: (performance.now() - started) / 1000,
      config: recordedConfig(
        {
          ...config,
          ...budget,
          data: dataArgument,
          earlyStopping: budget.earlyStopping ?? false,
          // Only the trained model's options matter to this run.
          modelOptions: config.modelOptions[config.model]
            ? { [config.model]: config.modelOptions[config.model] }
            : undefined,
        },
        RECORDED_KEYS.filter((key) => key !== "models"),
      ),
      environment: environmentSummary(backend, config.threads),
      dataset: data.summary,
      models: [result],
    };
    await writeRunOutputs(directory, runResults);
    const shown = relative(context.io.cwd, outPath) || ".";
    if (config.json) context.emitJson(runResults);
    else {
      context.print();
      context.print(renderComparisonTable(runResults).trimEnd());
    }
    context.print(
      `\nModel: ${join(shown, "model")} (mdrec eval --model-dir ${join(shown, "model")}). Report: ${join(shown, "report.html")}.`,
    );
  } finally {
    await directory.release();
  }
}
