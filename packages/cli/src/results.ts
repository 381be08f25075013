import { DataError, formatValue } from "@mdrec/core";
import { z } from "zod";

/** Version of the `results.json` layout written by this package. */
export const RESULTS_FORMAT_VERSION = 1;

/** Metrics of one slice of the test set. `null` where undefined (e.g. AUC of a one-class slice). */
export interface MetricSummary {
  /** Rows in the slice. */
  rows: number;
  auc: number | null;
  logloss: number | null;
  /** Mean predicted probability / observed click rate (1 = calibrated). */
  calibration: number | null;
  /** Group (per-user) AUC, when the data has user ids. */
  gauc: number | null;
}

/** Metrics of one domain. */
export interface DomainMetricSummary extends MetricSummary {
  /** Domain id. */
  domain: number;
  /** Domain name. */
  name: string;
}

/** One epoch of a model's training history. */
export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Mean task loss (binary cross-entropy) over the epoch's training steps. */
  trainLoss: number;
  /** Mean of each auxiliary loss (e.g. `mi`, `loadBalance`) over the epoch, as added to the loss. */
  auxLosses: Record<string, number>;
  /** Validation AUC after the epoch. */
  validationAuc: number | null;
  /** Validation logloss after the epoch. */
  validationLogloss: number | null;
  /** Domain-expert mutual information (nats) of the first gate's routing on validation data, MoE models only. */
  domainExpertMi: number | null;
  /** Seconds the epoch took (training and validation). */
  seconds: number;
}

/** How one gate of a MoE model routed the test rows. */
export interface GateRouting {
  /** Gate label, e.g. `"gate 0"`. */
  gate: string;
  /** `[numDomains][numExperts]`: each domain's share of routing weight per expert (rows sum to 1). */
  utilisation: number[][];
  /** Domain-expert mutual information I(D; E) in nats. */
  mutualInformation: number;
}

/** Everything measured for one model. */
export interface ModelResult {
  /** Registry name. */
  name: string;
  /** Trainable parameters. */
  parameters: number;
  /** Experts computed per row (MoE models), else null. */
  expertsPerRow: number | null;
  /** Experts in the model (MoE models), else null. */
  totalExperts: number | null;
  /** Epochs trained. */
  epochs: number;
  /** Epoch whose weights were evaluated (early stopping keeps the best), else null. */
  bestEpoch: number | null;
  /** Training examples per second (training steps only). */
  trainExamplesPerSecond: number;
  /** Seconds spent training (including per-epoch validation). */
  trainSeconds: number;
  /** Seconds for the whole model: building, training, evaluation. */
  wallSeconds: number;
  /** Test-set metrics, overall and per domain. */
  test: { overall: MetricSummary; perDomain: DomainMetricSummary[] };
  /** Per-epoch training history. */
  history: EpochRecord[];
  /** Routing of every gate on the test set; empty for models without gates. */
  routing: GateRouting[];
}

/** Description of the data a run used. */
export interface DatasetSummary {
  /** The `--data` argument, canonical. */
  source: string;
  /** Rows before the split. */
  rows: number;
  /** Rows per part of the split. */
  train: number;
  validation: number;
  test: number;
  /** Domain names by id. */
  domainNames: string[];
  /** Training rows per domain. */
  trainRowsPerDomain: number[];
  /** Click rate of each domain over all rows. */
  domainCtr: number[];
  /** Input fields. */
  features: number;
  /** Task names. */
  taskNames: string[];
}

/** What `mdrec compare` (or `mdrec train`) writes to `results.json`. */
export interface RunResults {
  formatVersion: number;
  /** `"compare"` or `"train"`. */
  kind: "compare" | "train";
  /** Unique id of the run. */
  runId: string;
  /** ISO time the run started. */
  createdAt: string;
  /** Seconds from start to results. */
  totalSeconds: number;
  /** The effective configuration (flags, file and defaults merged). */
  config: Record<string, unknown>;
  /** Versions and machine. */
  environment: {
    mdrec: string;
    tfjs: string;
    node: string;
    platform: string;
    backend: string;
    threads: number;
  };
  dataset: DatasetSummary;
  /** One entry per model, in the order they ran. */
  models: ModelResult[];
}

const nullableNumber = z.number().nullable();
const metricSchema = z.object({
  rows: z.number().int().min(0),
  auc: nullableNumber,
  logloss: nullableNumber,
  calibration: nullableNumber,
  gauc: nullableNumber,
});

/** The zod schema `mdrec report` checks a `results.json` against. */
export const runResultsSchema: z.ZodType<RunResults> = z.object({
  formatVersion: z.literal(RESULTS_FORMAT_VERSION),
  kind: z.enum(["compare", "train"]),
  runId: z.string(),
  createdAt: z.string(),
  totalSeconds: z.number(),
  config: z.record(z.string(), z.unknown()),
  environment: z.object({
    mdrec: z.string(),
    tfjs: z.string(),
    node: z.string(),
    platform: z.string(),
    backend: z.string(),
    threads: z.number(),
  }),
  dataset: z.object({
    source: z.string(),
    rows: z.number().int().min(0),
    train: z.number().int().min(0),
    validation: z.number().int().min(0),
    test: z.number().int().min(0),
    domainNames: z.array(z.string()),
    trainRowsPerDomain: z.array(z.number()),
    domainCtr: z.array(z.number()),
    features: z.number().int().min(0),
    taskNames: z.array(z.string()),
  }),
  models: z
    .array(
      z.object({
        name: z.string(),
        parameters: z.number().int().min(0),
        expertsPerRow: nullableNumber,
        totalExperts: nullableNumber,
        epochs: z.number().int().min(0),
        bestEpoch: nullableNumber,
        trainExamplesPerSecond: z.number(),
        trainSeconds: z.number(),
        wallSeconds: z.number(),
        test: z.object({
          overall: metricSchema,
          perDomain: z.array(metricSchema.extend({ domain: z.number().int().min(0), name: z.string() })),
        }),
        history: z.array(
          z.object({
            epoch: z.number().int().min(1),
            trainLoss: z.number(),
            auxLosses: z.record(z.string(), z.number()),
            validationAuc: nullableNumber,
            validationLogloss: nullableNumber,
            domainExpertMi: nullableNumber,
            seconds: z.number(),
          }),
        ),
        routing: z.array(
          z.object({
            gate: z.string(),
            utilisation: z.array(z.array(z.number())),
            mutualInformation: z.number(),
          }),
        ),
      }),
    )
    .min(1),
});

/**
 * Checks parsed JSON against {@link runResultsSchema}. Throws `DataError` naming the file, the
 * first offending key path and the value found there.
 */
export function parseRunResults(value: unknown, where = "results.json"): RunResults {
  const result = runResultsSchema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issue.path.length
    ? issue.path.map((part) => (typeof part === "number" ? `[${part}]` : `.${String(part)}`)).join("")
    : "(top level)";
  const received =
    issue.code === "invalid_type" && issue.input === undefined
      ? "nothing (missing)"
      : formatValue(issue.input);
  throw new DataError(
    `${where} is not an mdrec results file: ${path.replace(/^\./, "")} ${issue.message.replace(/^Invalid input: /, "")}; received ${received}` +
      (result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more problems)` : ""),
  );
}

/** JSON text of results: numbers that are not finite become null so the file stays valid JSON. */
export function stringifyRunResults(results: RunResults): string {
  return `${JSON.stringify(results, (_key, value) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2)}\n`;
}
