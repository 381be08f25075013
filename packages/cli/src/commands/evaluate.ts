import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@mdrec/core";
import { loadModel } from "@mdrec/models";
import { evaluate } from "@mdrec/trainer";
import Table from "cli-table3";
import { summariseEvaluation, summariseRouting } from "../compare.js";
import type { CommandContext } from "../context.js";
import { loadData } from "../data.js";
import { parseDataArgument } from "../data-argument.js";
import { UsageError } from "../errors.js";
import { formatInteger, formatMetric } from "../table.js";
import { DEFAULT_DATA } from "./compare.js";
import { TRAINING_DATA_FILE, type TrainingDataRecord } from "./train.js";

async function readTrainingRecord(modelDirectory: string): Promise<TrainingDataRecord | undefined> {
  try {
    return JSON.parse(await readFile(join(modelDirectory, TRAINING_DATA_FILE), "utf8")) as TrainingDataRecord;
  } catch {
    return undefined;
  }
}

/**
 * `mdrec eval --model-dir <dir>`: loads a saved model and evaluates it on the test split of its
 * training data (recorded by `mdrec train`), or of `--data` when given.
 */
export async function runEvaluate(context: CommandContext): Promise<void> {
  const { config } = context;
  if (config.modelDir === undefined) {
    throw new UsageError(
      'mdrec eval needs --model-dir <dir> (a directory written by mdrec train, or config key "modelDir")',
    );
  }
  const modelDirectory = context.resolvePath(config.modelDir);
  const record = await readTrainingRecord(modelDirectory);
  // The training run's data, seed and split unless flags or the config file say otherwise, so the
  // test split is the one the model never saw.
  const given = (key: string) => key in context.sources || record === undefined;
  const dataArgument = given("data") ? (config.data ?? DEFAULT_DATA) : record!.data;
  const schema = given("schema") ? config.schema : record!.schema;
  const seed = given("seed") ? config.seed : record!.seed;
  const split = given("split") ? config.split : record!.split;
  const rows = given("rows") ? config.rows : record!.rows;
  const source = parseDataArgument(dataArgument, schema);
  await context.startBackend();
  const model = await loadModel(modelDirectory);
  try {
    const data = await loadData(source, {
      seed,
      split,
      rows,
      cwd: context.io.cwd,
      encoders: record?.encoders,
    });
    if (data.test.numRows === 0) {
      throw new ConfigError(
        `The test split of ${data.source} is empty (split ${JSON.stringify(split)}); use a split with a test fraction > 0`,
      );
    }
    const evaluation = await evaluate(model, data.test, { batchSize: config.batchSize ?? 4096 });
    const test = summariseEvaluation(evaluation);
    const routing = summariseRouting(evaluation);
    if (config.json) {
      context.emitJson({
        model: model.name,
        data: data.source,
        seed,
        split,
        rows: data.test.numRows,
        test,
        routing,
      });
      return;
    }
    context.print(
      `${model.name} on the test split of ${data.source} (${formatInteger(data.test.numRows)} rows, seed ${seed}):`,
    );
    const table = new Table({
      head: ["slice", "rows", "AUC", "logloss", "calibration", "GAUC"],
      style: { head: [], border: [], "padding-left": 1, "padding-right": 1 },
      chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
      colAligns: ["left", "right", "right", "right", "right", "right"],
    });
    for (const [label, metrics] of [
      ["overall", test.overall] as const,
      ...test.perDomain.map((entry) => [entry.name, entry] as const),
    ]) {
      table.push([
        label,
        formatInteger(metrics.rows),
        formatMetric(metrics.auc),
        formatMetric(metrics.logloss),
        formatMetric(metrics.calibration, 3),
        formatMetric(metrics.gauc),
      ]);
    }
    context.print(table.toString());
    for (const gate of routing) {
      context.print(
        `${gate.gate}: domain-expert mutual information ${gate.mutualInformation.toFixed(4)} nats`,
      );
    }
  } finally {
    model.dispose();
  }
}
