import { assertInteger, assertKnownKeys, ConfigError, disposeBatch, formatValue } from "@mdrec/core";
import { type ColumnarDataset, iterateBatches } from "@mdrec/data-loaders";
import {
  type DomainMetricSet,
  DomainMetricsAccumulator,
  expertUsageCounts,
  type MetricSet,
  routingMutualInformation,
} from "@mdrec/metrics";
import type { MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { checkDatasetForModel } from "./dataset-check.js";

/** Metrics of one task. */
export interface TaskEvaluation {
  /** Task name from the dataset. */
  task: string;
  overall: MetricSet;
  /** One entry per domain id of the dataset. */
  perDomain: DomainMetricSet[];
}

/** How one gate of the model routed the evaluated rows. */
export interface RoutingAnalysis {
  /** Position of the gate in the model output's `routing` list. */
  gate: number;
  numExperts: number;
  /** Experts chosen per row. */
  k: number;
  /**
   * `[numDomains, numExperts]` share of each domain's routing-weight mass that went to each
   * expert (an estimate of P(e | d)); rows sum to 1, a domain without rows is all zeros.
   * Weighted by the mixing weights so dense gates (k = N) are informative too.
   */
  utilization: number[][];
  /** Domain-expert mutual information I(D; E) in nats from the weight-mass counts (0 = domains route alike). */
  mutualInformation: number;
  /** Overall share of routing-weight mass per expert, length `numExperts` (the load). */
  load: number[];
}

/** What {@link evaluate} returns. Every value is a function of the weights and the data only. */
export interface EvaluationResult {
  numRows: number;
  domainNames: string[];
  taskNames: string[];
  /** Overall metrics of the first task (the only one in single-task data). */
  overall: MetricSet;
  /** Per-domain metrics of the first task. */
  perDomain: DomainMetricSet[];
  /** Overall and per-domain metrics of every task; GAUC included when the data has `groupIds`. */
  tasks: TaskEvaluation[];
  /** One entry per gate for MoE models; empty for models without gates. */
  routing: RoutingAnalysis[];
}

/** Options of {@link evaluate} and {@link predictDataset}. */
export interface EvaluateOptions {
  /** Rows per forward pass. Defaults to 4096. */
  batchSize?: number;
}

const EVALUATE_KEYS = ["batchSize"];

function resolveBatchSize(options: EvaluateOptions, where: string): number {
  if (options === null || typeof options !== "object") {
    throw new ConfigError(`${where} options must be an object, received ${formatValue(options)}`);
  }
  assertKnownKeys(`${where} options`, options, EVALUATE_KEYS);
  const batchSize = options.batchSize ?? 4096;
  assertInteger(`${where} options.batchSize`, batchSize, 1);
  return batchSize;
}

interface RoutingTotals {
  numExperts: number;
  k: number;
  counts: Float64Array; // [numDomains * numExperts]
}

/**
 * Evaluates a model on a dataset in inference mode: overall and per-domain AUC, logloss,
 * calibration (GAUC when the data has `groupIds`) for every task, and, for each gate the model
 * reports, the expert-utilisation matrix and the domain-expert mutual information accumulated
 * over the whole dataset.
 *
 * @example
 * const result = await evaluate(model, test, { batchSize: 4096 });
 * console.log(result.overall.auc, result.perDomain.map((domain) => domain.auc), result.routing[0]?.mutualInformation);
 */
export async function evaluate(
  model: MultiDomainModel,
  data: ColumnarDataset,
  options: EvaluateOptions = {},
): Promise<EvaluationResult> {
  const batchSize = resolveBatchSize(options, "evaluate");
  checkDatasetForModel(model, data, "evaluate data");
  const { numTasks, numDomains } = data;
  const accumulators = data.taskNames.map(
    () => new DomainMetricsAccumulator({ numDomains, domainNames: data.domainNames }),
  );
  const routing: RoutingTotals[] = [];
  let row = 0;
  for (const batch of iterateBatches(data, { batchSize })) {
    let outputs: tf.Tensor[];
    const gateSizes: number[] = []; // experts each gate chooses from
    try {
      outputs = tf.tidy(() => {
        const output = model.call(batch, { training: false });
        const kept: tf.Tensor[] = [tf.sigmoid(output.logits)]; // [B, T]
        for (const gate of output.routing) {
          gateSizes.push(gate.probs.shape[1]);
          kept.push(gate.indices, gate.weights); // [B, k] each
        }
        return kept;
      });
    } finally {
      disposeBatch(batch);
    }
    try {
      const values = await Promise.all(outputs.map((tensor) => tensor.data()));
      const rows = outputs[0]!.shape[0]!;
      const domainIds = data.domainIds.subarray(row, row + rows);
      const groupIds = data.groupIds?.subarray(row, row + rows);
      const probabilities = values[0] as Float32Array; // [B * T]
      for (let task = 0; task < numTasks; task++) {
        const labels = new Float32Array(rows);
        const scores = new Float32Array(rows);
        for (let index = 0; index < rows; index++) {
          labels[index] = data.labels[(row + index) * numTasks + task]!;
          scores[index] = probabilities[index * numTasks + task]!;
        }
        accumulators[task]!.add(labels, scores, domainIds, groupIds);
      }
      gateSizes.forEach((numExperts, gate) => {
        const k = outputs[1 + 2 * gate]!.shape[1]!;
        routing[gate] ??= { numExperts, k, counts: new Float64Array(numDomains * numExperts) };
        const totals = routing[gate]!;
        const counts = expertUsageCounts({
          domainIds,
          indices: values[1 + 2 * gate] as Int32Array,
          weights: values[2 + 2 * gate] as Float32Array,
          numDomains,
          numExperts,
          k,
        }); // [D, N]
        counts.forEach((line, domain) => {
          line.forEach((value, expert) => {
            totals.counts[domain * numExperts + expert]! += value;
          });
        });
      });
      row += rows;
    } finally {
      tf.dispose(outputs);
    }
  }
  const tasks = accumulators.map((accumulator, task) => {
    const { overall, perDomain } = accumulator.result();
    return { task: data.taskNames[task]!, overall, perDomain };
  });
  return {
    numRows: data.numRows,
    domainNames: [...data.domainNames],
    taskNames: [...data.taskNames],
    overall: tasks[0]!.overall,
    perDomain: tasks[0]!.perDomain,
    tasks,
    routing: routing.map((totals, gate) => analyseRouting(totals, gate, numDomains)),
  };
}

function analyseRouting(totals: RoutingTotals, gate: number, numDomains: number): RoutingAnalysis {
  const { numExperts, k } = totals;
  const table = Array.from({ length: numDomains }, (_, domain) =>
    Array.from(totals.counts.subarray(domain * numExperts, (domain + 1) * numExperts)),
  ); // [D, N]
  const utilization = table.map((line) => {
    const sum = line.reduce((total, value) => total + value, 0);
    return sum > 0 ? line.map((value) => value / sum) : line.map(() => 0);
  });
  const mass = table.reduce((total, line) => total + line.reduce((sum, value) => sum + value, 0), 0);
  const load = Array.from({ length: numExperts }, (_, expert) =>
    mass > 0 ? table.reduce((sum, line) => sum + line[expert]!, 0) / mass : 0,
  );
  return {
    gate,
    numExperts,
    k,
    utilization,
    mutualInformation: mass > 0 ? routingMutualInformation(table) : 0,
    load,
  };
}

/**
 * Predicted probabilities for every row of `data` in inference mode, row-major
 * `[numRows * numTasks]` (row `r`, task `t` at `r * numTasks + t`).
 *
 * @example const scores = await predictDataset(model, test); // Float32Array
 */
export async function predictDataset(
  model: MultiDomainModel,
  data: ColumnarDataset,
  options: EvaluateOptions = {},
): Promise<Float32Array> {
  const batchSize = resolveBatchSize(options, "predictDataset");
  checkDatasetForModel(model, data, "predictDataset data");
  const result = new Float32Array(data.numRows * data.numTasks);
  let offset = 0;
  for (const batch of iterateBatches(data, { batchSize })) {
    let probabilities: tf.Tensor;
    try {
      probabilities = model.predict(batch);
    } finally {
      disposeBatch(batch);
    }
    const values = await probabilities.data();
    probabilities.dispose();
    result.set(values as Float32Array, offset);
    offset += values.length;
  }
  return result;
}
