import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import { iterateBatches, numBatches } from "@mdrec/data-loaders";
import { createModel, getModelInfo, listModels, type MultiDomainModel } from "@mdrec/models";
import { fit } from "@mdrec/trainer";
import type * as tf from "@tensorflow/tfjs-core";
import Table from "cli-table3";
import type { CommandContext } from "../context.js";
import { loadData, type PreparedData } from "../data.js";
import { parseDataArgument } from "../data-argument.js";
import { formatInteger } from "../table.js";
import { DEFAULT_DATA } from "./compare.js";

/** Defaults of `mdrec bench`. */
export const BENCH_DEFAULTS = { batchSize: 1024, warmupSteps: 2 } as const;

/** Throughput of one model. */
export interface BenchResult {
  model: string;
  parameters: number;
  expertsPerRow: number | null;
  totalExperts: number | null;
  /** Training rows per second over the timed steps (after warm-up). */
  trainExamplesPerSecond: number;
  /** Inference rows per second (forward pass and read-back of the probabilities). */
  inferenceExamplesPerSecond: number;
  steps: number;
  batchSize: number;
}

async function inferenceRate(
  model: MultiDomainModel,
  data: PreparedData,
  batchSize: number,
  steps: number,
): Promise<number> {
  const batches = Math.min(steps, numBatches(data.full.numRows, batchSize));
  let rows = 0;
  let seconds = 0;
  let index = 0;
  for (const batch of iterateBatches(data.full, { batchSize })) {
    if (index >= batches + 1) {
      disposeBatch(batch);
      break;
    }
    const started = performance.now();
    let probabilities: tf.Tensor | undefined;
    try {
      probabilities = model.predict(batch);
      await probabilities.data();
    } finally {
      probabilities?.dispose();
      disposeBatch(batch);
    }
    // The first batch warms up kernels and is not timed.
    if (index > 0) {
      seconds += (performance.now() - started) / 1000;
      rows += batch.domainIds.shape[0];
    }
    index++;
  }
  return seconds > 0 ? rows / seconds : Number.NaN;
}

/**
 * Measures training and inference throughput of one model: a short warm-up, then `steps`
 * timed training steps and up to `steps` timed inference batches.
 */
export async function benchModel(
  name: string,
  data: PreparedData,
  options: { steps: number; batchSize: number; seed: number; modelOptions?: Record<string, unknown> },
): Promise<BenchResult> {
  setGlobalSeed(options.seed);
  const model = createModel(name, {
    features: data.train.features,
    numDomains: data.train.numDomains,
    numTasks: data.train.numTasks,
    seed: options.seed,
    ...options.modelOptions,
  });
  try {
    const summary = model.summary();
    // Enough epochs for the steps; maxSteps ends training there.
    const epochs = Math.ceil(
      (options.steps + BENCH_DEFAULTS.warmupSteps) / numBatches(data.train.numRows, options.batchSize),
    );
    const fitOptions = {
      epochs,
      batchSize: options.batchSize,
      seed: options.seed,
      callbacks: { onWarning: () => undefined },
    };
    await fit(model, data.train, { ...fitOptions, maxSteps: BENCH_DEFAULTS.warmupSteps });
    const timed = await fit(model, data.train, { ...fitOptions, maxSteps: options.steps });
    return {
      model: name,
      parameters: summary.parameters,
      expertsPerRow: summary.expertsPerRow ?? null,
      totalExperts: summary.totalExperts ?? null,
      trainExamplesPerSecond: timed.trainExamplesPerSecond,
      inferenceExamplesPerSecond: await inferenceRate(model, data, options.batchSize, options.steps),
      steps: options.steps,
      batchSize: options.batchSize,
    };
  } finally {
    model.dispose();
  }
}

/** `mdrec bench`: training and inference examples/s of each chosen model on the chosen data and backend. */
export async function runBench(context: CommandContext): Promise<void> {
  const { config } = context;
  const models = config.models ?? listModels();
  for (const name of models) getModelInfo(name);
  const source = parseDataArgument(config.data ?? DEFAULT_DATA, config.schema);
  const batchSize = config.batchSize ?? BENCH_DEFAULTS.batchSize;
  const backend = await context.startBackend();
  const data = await loadData(source, {
    seed: config.seed,
    split: config.split,
    rows: config.rows,
    cwd: context.io.cwd,
  });
  context.print(
    `mdrec bench: ${models.join(", ")} on ${data.source}, backend ${backend.name}, batch ${batchSize}, ${config.steps} timed steps per model`,
  );
  const results: BenchResult[] = [];
  for (const name of models) {
    const result = await benchModel(name, data, {
      steps: config.steps,
      batchSize,
      seed: config.seed,
      modelOptions: config.modelOptions[name],
    });
    context.print(
      `[${name}] train ${formatInteger(result.trainExamplesPerSecond)} ex/s, inference ${formatInteger(result.inferenceExamplesPerSecond)} ex/s`,
    );
    results.push(result);
  }
  if (config.json) {
    context.emitJson({ backend: backend.name, data: data.source, batchSize, steps: config.steps, results });
    return;
  }
  const table = new Table({
    head: ["model", "parameters", "experts per row", "train ex/s", "inference ex/s"],
    style: { head: [], border: [], "padding-left": 1, "padding-right": 1 },
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
    colAligns: ["left", "right", "right", "right", "right"],
  });
  for (const result of results) {
    table.push([
      result.model,
      formatInteger(result.parameters),
      result.expertsPerRow === null
        ? "-"
        : `${result.expertsPerRow}${result.totalExperts === null ? "" : ` of ${result.totalExperts}`}`,
      formatInteger(result.trainExamplesPerSecond),
      formatInteger(result.inferenceExamplesPerSecond),
    ]);
  }
  context.print(table.toString());
  context.print("Short measurement; the full benchmark suite is `pnpm bench`.");
}
