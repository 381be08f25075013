import { assertInteger, assertKnownKeys, ConfigError, formatValue } from "@mdrec/core";
import {
  assertNotEmpty,
  assertNumericArray,
  assertSameLength,
  GrowableArray,
  type NumericArray,
  readGroupId,
  readId,
  readLabel,
  readProbability,
} from "./arrays.js";
import { aucOfSortedScores, type MetricReason, type MetricResult, SortedScores } from "./auc.js";
import { MetricsError } from "./errors.js";
import { type GroupedMetricResult, gaucOfValidRows } from "./gauc.js";
import {
  assertEpsilon,
  type CalibrationReason,
  calibrationFromSums,
  DEFAULT_LOGLOSS_EPSILON,
  rowLogloss,
} from "./pointwise.js";
import { sortFloat64 } from "./sort.js";

/**
 * The metrics of one slice of rows (all rows, or one domain). Undefined values are `NaN` with a
 * reason: `"empty"` for a slice without rows, `"single-class"` for AUC/GAUC on one class,
 * `"no-positives"` for calibration without positives.
 */
export interface MetricSet {
  /** Rows in the slice. */
  count: number;
  /** Rows with label 1. */
  positives: number;
  /** Exact ROC AUC (see `auc`). */
  auc: number;
  aucReason?: MetricReason;
  /** Impression-weighted per-user AUC (see `gauc`); present when `groupIds` were given. */
  gauc?: number;
  gaucReason?: MetricReason;
  /** Users that entered the GAUC average; present when `groupIds` were given. */
  gaucUsersCounted?: number;
  /** Users skipped by GAUC (one class only); present when `groupIds` were given. */
  gaucUsersSkipped?: number;
  /** Mean clipped binary cross-entropy (see `logloss`). */
  logloss: number;
  /** `meanPrediction / labelRate` (see `calibration`). */
  calibration: number;
  calibrationReason?: CalibrationReason;
  /** Mean predicted probability. */
  meanPrediction: number;
  /** Share of rows with label 1. */
  labelRate: number;
}

/** The {@link MetricSet} of one domain. */
export interface DomainMetricSet extends MetricSet {
  /** Domain id, the index in `perDomain`. */
  domainId: number;
  /** The domain's name when `domainNames` were given. */
  name?: string;
}

/** Overall and per-domain metrics, as returned by {@link evaluateByDomain}. */
export interface DomainMetrics {
  overall: MetricSet;
  /** One entry per domain id `0..numDomains-1`, domains without rows included (count 0). */
  perDomain: DomainMetricSet[];
}

/** Arguments of {@link DomainMetricsAccumulator}. */
export interface DomainMetricsAccumulatorArgs {
  /** Number of domains; domain ids are integers in `[0, numDomains)`. */
  numDomains: number;
  /** Display names, one per domain. Defaults to none. */
  domainNames?: readonly string[];
  /** Probability clipping of logloss, in (0, 0.5]. Defaults to 1e-7. */
  epsilon?: number;
}

/** Arguments of {@link evaluateByDomain}. */
export interface EvaluateByDomainArgs extends DomainMetricsAccumulatorArgs {
  /** 0/1 per row. */
  labels: NumericArray;
  /** Predicted probability in [0, 1] per row. */
  scores: NumericArray;
  /** Domain id per row. */
  domainIds: NumericArray;
  /** User (group) id per row; adds GAUC to every metric set. Defaults to none. */
  groupIds?: NumericArray;
}

const ACCUMULATOR_KEYS = ["numDomains", "domainNames", "epsilon"];
const EVALUATE_KEYS = [...ACCUMULATOR_KEYS, "labels", "scores", "domainIds", "groupIds"];

interface RowsForGroups {
  labels: GrowableArray<Uint8Array>;
  scores: GrowableArray<Float64Array>;
  groupIds: GrowableArray<Float64Array>;
  domainIds: GrowableArray<Int32Array>;
}

function emptyMetricSet(withGroups: boolean): MetricSet {
  const set: MetricSet = {
    count: 0,
    positives: 0,
    auc: Number.NaN,
    aucReason: "empty",
    logloss: Number.NaN,
    calibration: Number.NaN,
    calibrationReason: "empty",
    meanPrediction: Number.NaN,
    labelRate: Number.NaN,
  };
  if (withGroups) {
    Object.assign(set, { gauc: Number.NaN, gaucReason: "empty", gaucUsersCounted: 0, gaucUsersSkipped: 0 });
  }
  return set;
}

function metricSet(
  count: number,
  positives: number,
  predictionSum: number,
  loglossSum: number,
  aucResult: MetricResult,
  gaucResult: GroupedMetricResult | undefined,
): MetricSet {
  const calibrationResult = calibrationFromSums(predictionSum, positives, count);
  const set: MetricSet = {
    count,
    positives,
    auc: aucResult.value,
    logloss: loglossSum / count,
    calibration: calibrationResult.value,
    meanPrediction: predictionSum / count,
    labelRate: positives / count,
  };
  if (aucResult.reason !== undefined) set.aucReason = aucResult.reason;
  if (calibrationResult.reason !== undefined) set.calibrationReason = calibrationResult.reason;
  if (gaucResult !== undefined) {
    set.gauc = gaucResult.value;
    if (gaucResult.reason !== undefined) set.gaucReason = gaucResult.reason;
    set.gaucUsersCounted = gaucResult.usersCounted;
    set.gaucUsersSkipped = gaucResult.usersSkipped;
  }
  return set;
}

function aucOfClasses(positives: Float64Array, negatives: Float64Array): MetricResult {
  if (positives.length === 0 || negatives.length === 0) return { value: Number.NaN, reason: "single-class" };
  return { value: aucOfSortedScores(positives, negatives) };
}

/**
 * Streaming per-domain evaluation: add predictions batch by batch, then read overall and
 * per-domain AUC, logloss, calibration, mean prediction and label rate (and GAUC when `groupIds`
 * are passed to `add`). `result()` equals {@link evaluateByDomain} on the concatenated batches
 * exactly, whatever the chunking. Keeps every score (8 bytes per row; with `groupIds` 29 bytes).
 *
 * @example
 * const accumulator = new DomainMetricsAccumulator({ numDomains: 2, domainNames: ["home", "search"] });
 * accumulator.add([1, 0, 1], [0.9, 0.2, 0.6], [0, 0, 1]);
 * accumulator.add([0], [0.3], [1]);
 * accumulator.result().perDomain[1].auc; // 1
 */
export class DomainMetricsAccumulator {
  /** Number of domains. */
  readonly numDomains: number;
  private readonly domainNames: readonly string[] | undefined;
  private readonly epsilon: number;
  private readonly domainCounts: Float64Array; // [numDomains]
  private readonly domainPositives: Float64Array; // [numDomains]
  private readonly domainPredictionSums: Float64Array; // [numDomains]
  private readonly domainLoglossSums: Float64Array; // [numDomains]
  private readonly positiveScores: SortedScores[]; // [numDomains]
  private readonly negativeScores: SortedScores[]; // [numDomains]
  private totalCount = 0;
  private totalPositives = 0;
  private totalPredictionSum = 0;
  private totalLoglossSum = 0;
  private addCalls = 0;
  private groupRows: RowsForGroups | undefined;

  constructor(args: DomainMetricsAccumulatorArgs) {
    if (args == null || typeof args !== "object") {
      throw new ConfigError(`DomainMetricsAccumulator args must be an object, received ${formatValue(args)}`);
    }
    assertKnownKeys("DomainMetricsAccumulator args", args, ACCUMULATOR_KEYS);
    const { numDomains, domainNames, epsilon = DEFAULT_LOGLOSS_EPSILON } = args;
    assertInteger("numDomains", numDomains, 1);
    if (domainNames !== undefined) {
      if (!Array.isArray(domainNames) || domainNames.length !== numDomains) {
        throw new ConfigError(
          `domainNames must be an array of numDomains=${numDomains} names, received ${formatValue(domainNames)}`,
        );
      }
      domainNames.forEach((name, index) => {
        if (typeof name !== "string") {
          throw new ConfigError(`domainNames[${index}] must be a string, received ${formatValue(name)}`);
        }
      });
    }
    assertEpsilon(epsilon);
    this.numDomains = numDomains;
    this.domainNames = domainNames === undefined ? undefined : [...domainNames];
    this.epsilon = epsilon;
    this.domainCounts = new Float64Array(numDomains);
    this.domainPositives = new Float64Array(numDomains);
    this.domainPredictionSums = new Float64Array(numDomains);
    this.domainLoglossSums = new Float64Array(numDomains);
    this.positiveScores = Array.from({ length: numDomains }, () => new SortedScores());
    this.negativeScores = Array.from({ length: numDomains }, () => new SortedScores());
  }

  /** Number of rows added. */
  get count(): number {
    return this.totalCount;
  }

  /**
   * Adds one batch. Either every call passes `groupIds` or none does. A batch with an invalid
   * row is rejected whole and leaves the accumulator unchanged.
   * @param scores predicted probabilities in [0, 1].
   * @param domainIds integer domain ids in `[0, numDomains)`.
   * @throws MetricsError on different lengths, a label not 0/1, a score outside [0, 1], a domain
   *   id out of range, a non-integer group id (index within the batch), or `groupIds` given in
   *   some calls only.
   */
  add(labels: NumericArray, scores: NumericArray, domainIds: NumericArray, groupIds?: NumericArray): void {
    this.addRows("DomainMetricsAccumulator.add", labels, scores, domainIds, groupIds);
  }

  /**
   * Overall and per-domain metrics of every row added, equal to {@link evaluateByDomain} on the
   * concatenation of the batches.
   * @throws MetricsError when nothing was added.
   */
  result(): DomainMetrics {
    return this.resultFor("DomainMetricsAccumulator.result");
  }

  /** @internal */
  addRows(
    where: string,
    labels: NumericArray,
    scores: NumericArray,
    domainIds: NumericArray,
    groupIds: NumericArray | undefined,
  ): void {
    assertNumericArray(where, "labels", labels);
    assertNumericArray(where, "scores", scores);
    assertNumericArray(where, "domainIds", domainIds);
    if (groupIds !== undefined) assertNumericArray(where, "groupIds", groupIds);
    assertSameLength(where, "labels", labels, "scores", scores);
    assertSameLength(where, "labels", labels, "domainIds", domainIds);
    if (groupIds !== undefined) assertSameLength(where, "labels", labels, "groupIds", groupIds);
    const withGroups = groupIds !== undefined;
    if (this.addCalls > 0 && withGroups !== (this.groupRows !== undefined)) {
      throw new MetricsError(
        `${where}: groupIds must be passed in every call or in none; the first call ${withGroups ? "did not pass them" : "passed them"} but call ${this.addCalls + 1} ${withGroups ? "does" : "does not"}`,
      );
    }
    const numDomains = this.numDomains;
    const batchPositives = new Int32Array(numDomains);
    const batchCounts = new Int32Array(numDomains);
    for (let index = 0; index < labels.length; index++) {
      const label = readLabel(where, labels, index);
      readProbability(where, scores, index);
      const domain = readId(where, "domainIds", domainIds, index, numDomains, "numDomains");
      if (groupIds !== undefined) readGroupId(where, groupIds, index);
      batchCounts[domain]!++;
      batchPositives[domain]! += label;
    }
    if (this.addCalls === 0 && withGroups) {
      this.groupRows = {
        labels: new GrowableArray(Uint8Array),
        scores: new GrowableArray(Float64Array),
        groupIds: new GrowableArray(Float64Array),
        domainIds: new GrowableArray(Int32Array),
      };
    }
    this.addCalls++;

    const positiveData: Float64Array[] = [];
    const negativeData: Float64Array[] = [];
    const positiveCursor = new Int32Array(numDomains);
    const negativeCursor = new Int32Array(numDomains);
    for (let domain = 0; domain < numDomains; domain++) {
      positiveCursor[domain] = this.positiveScores[domain]!.length;
      negativeCursor[domain] = this.negativeScores[domain]!.length;
      positiveData.push(this.positiveScores[domain]!.reserve(batchPositives[domain]!));
      negativeData.push(this.negativeScores[domain]!.reserve(batchCounts[domain]! - batchPositives[domain]!));
    }
    const epsilon = this.epsilon;
    // Sums run in row order, so they match the batch functions bit for bit.
    for (let index = 0; index < labels.length; index++) {
      const label = labels[index]!;
      const score = scores[index]!;
      const domain = domainIds[index]!;
      const loss = rowLogloss(label, score, epsilon);
      this.domainPredictionSums[domain]! += score;
      this.domainLoglossSums[domain]! += loss;
      this.totalPredictionSum += score;
      this.totalLoglossSum += loss;
      if (label === 1) positiveData[domain]![positiveCursor[domain]!++] = score;
      else negativeData[domain]![negativeCursor[domain]!++] = score;
    }
    for (let domain = 0; domain < numDomains; domain++) {
      const positives = batchPositives[domain]!;
      this.positiveScores[domain]!.commit(positives);
      this.negativeScores[domain]!.commit(batchCounts[domain]! - positives);
      this.domainCounts[domain]! += batchCounts[domain]!;
      this.domainPositives[domain]! += positives;
      this.totalPositives += positives;
    }
    this.totalCount += labels.length;

    const rows = this.groupRows;
    if (rows !== undefined && groupIds !== undefined) {
      const start = rows.labels.length;
      const rowLabels = rows.labels.reserve(labels.length);
      const rowScores = rows.scores.reserve(labels.length);
      const rowGroups = rows.groupIds.reserve(labels.length);
      const rowDomains = rows.domainIds.reserve(labels.length);
      for (let index = 0; index < labels.length; index++) {
        rowLabels[start + index] = labels[index]!;
        rowScores[start + index] = scores[index]!;
        rowGroups[start + index] = groupIds[index]!;
        rowDomains[start + index] = domainIds[index]!;
      }
      for (const array of [rows.labels, rows.scores, rows.groupIds, rows.domainIds])
        array.length += labels.length;
    }
  }

  /** @internal */
  resultFor(where: string): DomainMetrics {
    if (this.totalCount === 0) throw new MetricsError(`${where}: empty input (no rows added)`);
    const numDomains = this.numDomains;
    const domainGauc = this.groupRows === undefined ? undefined : this.gaucPerDomain(this.groupRows);
    const perDomain: DomainMetricSet[] = [];
    const sortedPositives: Float64Array[] = [];
    const sortedNegatives: Float64Array[] = [];
    for (let domain = 0; domain < numDomains; domain++) {
      const count = this.domainCounts[domain]!;
      let set: MetricSet;
      if (count === 0) {
        set = emptyMetricSet(this.groupRows !== undefined);
      } else {
        const positives = this.positiveScores[domain]!.sorted();
        const negatives = this.negativeScores[domain]!.sorted();
        sortedPositives.push(positives);
        sortedNegatives.push(negatives);
        set = metricSet(
          count,
          this.domainPositives[domain]!,
          this.domainPredictionSums[domain]!,
          this.domainLoglossSums[domain]!,
          aucOfClasses(positives, negatives),
          domainGauc?.[domain],
        );
      }
      const entry: DomainMetricSet = { domainId: domain, ...set };
      if (this.domainNames !== undefined) entry.name = this.domainNames[domain]!;
      perDomain.push(entry);
    }
    const overallGauc =
      this.groupRows === undefined
        ? undefined
        : gaucOfValidRows(
            this.groupRows.labels.view(),
            this.groupRows.scores.view(),
            this.groupRows.groupIds.view(),
          );
    const overall = metricSet(
      this.totalCount,
      this.totalPositives,
      this.totalPredictionSum,
      this.totalLoglossSum,
      aucOfClasses(sortedConcatenation(sortedPositives), sortedConcatenation(sortedNegatives)),
      overallGauc,
    );
    return { overall, perDomain };
  }

  private gaucPerDomain(rows: RowsForGroups): (GroupedMetricResult | undefined)[] {
    const labels = rows.labels.view();
    const scores = rows.scores.view();
    const groupIds = rows.groupIds.view();
    const domainIds = rows.domainIds.view();
    const results: (GroupedMetricResult | undefined)[] = [];
    // Counting sort of the row indices by domain, keeping row order within a domain: [rows].
    const domainStart = new Int32Array(this.numDomains + 1);
    for (const domain of domainIds) domainStart[domain + 1]!++;
    for (let domain = 0; domain < this.numDomains; domain++) domainStart[domain + 1]! += domainStart[domain]!;
    const cursor = domainStart.slice(0, this.numDomains);
    const order = new Int32Array(domainIds.length);
    for (let index = 0; index < domainIds.length; index++) order[cursor[domainIds[index]!]!++] = index;
    for (let domain = 0; domain < this.numDomains; domain++) {
      const rowsOfDomain = order.subarray(domainStart[domain]!, domainStart[domain + 1]!);
      if (rowsOfDomain.length === 0) {
        results.push(undefined);
        continue;
      }
      const domainLabels = new Uint8Array(rowsOfDomain.length);
      const domainScores = new Float64Array(rowsOfDomain.length);
      const domainGroups = new Float64Array(rowsOfDomain.length);
      rowsOfDomain.forEach((row, position) => {
        domainLabels[position] = labels[row]!;
        domainScores[position] = scores[row]!;
        domainGroups[position] = groupIds[row]!;
      });
      results.push(gaucOfValidRows(domainLabels, domainScores, domainGroups));
    }
    return results;
  }

  /** Forgets every row (keeps `numDomains`, names and epsilon). */
  reset(): void {
    this.domainCounts.fill(0);
    this.domainPositives.fill(0);
    this.domainPredictionSums.fill(0);
    this.domainLoglossSums.fill(0);
    for (const scores of [...this.positiveScores, ...this.negativeScores]) scores.clear();
    this.totalCount = 0;
    this.totalPositives = 0;
    this.totalPredictionSum = 0;
    this.totalLoglossSum = 0;
    this.addCalls = 0;
    this.groupRows = undefined;
  }
}

function sortedConcatenation(parts: readonly Float64Array[]): Float64Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const all = new Float64Array(length);
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return sortFloat64(all);
}

/**
 * Overall and per-domain metrics in one call: for all rows and for each domain `d` in
 * `[0, numDomains)`, AUC (exact, ties averaged), logloss (clipped), calibration
 * (`mean p / mean y`), mean prediction, label rate, and GAUC when `groupIds` are given.
 * Domains without rows get `count: 0` and `NaN` metrics with reason `"empty"`; single-class
 * slices get `NaN` AUC with reason `"single-class"`. Never throws for those.
 *
 * @throws MetricsError on empty input, different lengths (naming both), a label not 0/1, a score
 *   outside [0, 1], a domain id out of range (naming index and value); ConfigError on invalid
 *   `numDomains`, `domainNames`, `epsilon` or an unknown key.
 * @example
 * const { overall, perDomain } = evaluateByDomain({
 *   labels: [1, 0, 1, 0], scores: [0.9, 0.2, 0.4, 0.6], domainIds: [0, 0, 1, 1], numDomains: 2,
 * });
 * // overall.auc 0.75, perDomain[0].auc 1, perDomain[1].auc 0
 */
export function evaluateByDomain(args: EvaluateByDomainArgs): DomainMetrics {
  const where = "evaluateByDomain";
  if (args == null || typeof args !== "object") {
    throw new ConfigError(`evaluateByDomain args must be an object, received ${formatValue(args)}`);
  }
  assertKnownKeys("evaluateByDomain args", args, EVALUATE_KEYS);
  const { labels, scores, domainIds, groupIds, ...options } = args;
  const accumulator = new DomainMetricsAccumulator(options);
  assertNumericArray(where, "labels", labels);
  assertNotEmpty(where, labels.length);
  accumulator.addRows(where, labels, scores, domainIds, groupIds);
  return accumulator.resultFor(where);
}
