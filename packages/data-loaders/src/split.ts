import {
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  ConfigError,
  DataError,
  formatValue,
  nearestKey,
} from "@mdrec/core";
import { type ColumnarDataset, domainCounts, takeRows } from "./dataset.js";
import { seededPermutation } from "./permutation.js";

/** Options of {@link splitDataset}. */
export interface SplitOptions {
  /** Train, validation and test fractions, each >= 0, summing to 1. Defaults to `[0.8, 0.1, 0.1]`. */
  fractions?: [number, number, number];
  /** Seed of the random split. Defaults to 42. */
  seed?: number;
  /** `"random"` (default) or `"time"`: the earliest rows by `timeColumn` train, the latest test. */
  by?: "random" | "time";
  /** Column of `dataset.columns` holding the time of each row (required by `by: "time"`). */
  timeColumn?: string;
  /**
   * Per-user leave-last-out on this column (e.g. `"user_id"`, or `"groupIds"` for
   * `dataset.groupIds`): each user's last row (by `timeColumn`, else row order) goes to test,
   * the one before to validation, the rest to train. Users with one row stay in train; users with
   * two rows give one to train and one to test. `fractions` and `by` do not apply.
   */
  leaveLastOutBy?: string;
  /** What a domain without rows in train or validation triggers. Defaults to `"warn"`. */
  onEmptyDomain?: "warn" | "error";
}

/** Result of {@link splitDataset}. */
export interface DatasetSplits {
  train: ColumnarDataset;
  validation: ColumnarDataset;
  test: ColumnarDataset;
  /** One message per domain that has no rows in train, validation or test, with the counts. */
  warnings: string[];
}

const SPLIT_KEYS = ["fractions", "seed", "by", "timeColumn", "leaveLastOutBy", "onEmptyDomain"];

/**
 * Splits a dataset into train, validation and test. Rows keep their original relative order
 * inside each part. Warns (or fails with `onEmptyDomain: "error"`) when a domain present in the
 * data gets no rows in one of the parts, since its per-domain metrics become undefined.
 *
 * @example const { train, validation, test, warnings } = splitDataset(dataset, { seed: 1 });
 */
export function splitDataset(dataset: ColumnarDataset, options: SplitOptions = {}): DatasetSplits {
  const parts = splitRowIndices(dataset, options);
  return splitByRowIndices(dataset, parts, options.onEmptyDomain ?? "warn");
}

/**
 * Takes the rows of each part (from {@link splitRowIndices}) and checks that every domain has rows
 * in every part: a warning with the counts per empty domain, or `DataError` under `"error"`.
 */
export function splitByRowIndices(
  dataset: ColumnarDataset,
  parts: { train: Int32Array; validation: Int32Array; test: Int32Array },
  onEmptyDomain: "warn" | "error" = "warn",
): DatasetSplits {
  const trainCounts = countByDomain(dataset, parts.train);
  const validationCounts = countByDomain(dataset, parts.validation);
  const testCounts = countByDomain(dataset, parts.test);
  const totals = domainCounts(dataset);
  const warnings: string[] = [];
  for (let domain = 0; domain < dataset.numDomains; domain++) {
    const empty = [
      ["train", trainCounts[domain]!],
      ["validation", validationCounts[domain]!],
      ["test", testCounts[domain]!],
    ].filter(([, count]) => count === 0);
    if (empty.length === 0) continue;
    const name = dataset.domainNames[domain] ?? String(domain);
    const counts = `train ${trainCounts[domain]}, validation ${validationCounts[domain]}, test ${testCounts[domain]} of ${totals[domain]} rows`;
    warnings.push(
      `domain ${domain} ("${name}") has no rows in ${empty.map(([part]) => part).join(" and ")} (${counts}); its per-domain metrics there are undefined`,
    );
  }
  if (onEmptyDomain === "error" && warnings.length > 0) {
    throw new DataError(`split leaves a domain without rows: ${warnings.join("; ")}`);
  }
  return {
    train: takeRows(dataset, parts.train),
    validation: takeRows(dataset, parts.validation),
    test: takeRows(dataset, parts.test),
    warnings,
  };
}

/**
 * The row indices of each part of {@link splitDataset} (ascending), without copying data. Loaders
 * use it to fit encoders on training rows only.
 */
export function splitRowIndices(
  dataset: Pick<ColumnarDataset, "numRows" | "columns" | "groupIds">,
  options: SplitOptions = {},
): { train: Int32Array; validation: Int32Array; test: Int32Array } {
  if (options == null || typeof options !== "object") {
    throw new ConfigError(`splitDataset options must be an object, received ${formatValue(options)}`);
  }
  assertKnownKeys("splitDataset options", options, SPLIT_KEYS);
  const { seed = 42, by = "random", timeColumn, leaveLastOutBy, onEmptyDomain = "warn" } = options;
  assertInteger("seed", seed, Number.MIN_SAFE_INTEGER);
  assertOneOf("by", by, ["random", "time"]);
  assertOneOf("onEmptyDomain", onEmptyDomain, ["warn", "error"]);
  const time = timeColumn === undefined ? undefined : lookupColumn(dataset, timeColumn, "timeColumn");
  if (leaveLastOutBy !== undefined) {
    if (options.fractions !== undefined || options.by !== undefined) {
      throw new ConfigError(
        `leaveLastOutBy="${leaveLastOutBy}" splits each user's last rows; remove ${options.fractions !== undefined ? "fractions" : "by"} (received ${formatValue(options.fractions ?? options.by)})`,
      );
    }
    return leaveLastOut(dataset.numRows, lookupColumn(dataset, leaveLastOutBy, "leaveLastOutBy"), time);
  }
  const fractions = options.fractions ?? [0.8, 0.1, 0.1];
  const valid =
    Array.isArray(fractions) &&
    fractions.length === 3 &&
    fractions.every(
      (fraction) => typeof fraction === "number" && Number.isFinite(fraction) && fraction >= 0,
    ) &&
    Math.abs(fractions[0] + fractions[1] + fractions[2] - 1) < 1e-6;
  if (!valid) {
    throw new ConfigError(
      `fractions must be three numbers >= 0 summing to 1, received ${formatValue(fractions)}`,
    );
  }
  const { numRows } = dataset;
  const trainCount = Math.round(fractions[0] * numRows);
  const validationCount = Math.min(numRows - trainCount, Math.round(fractions[1] * numRows));
  let order: Int32Array;
  if (by === "time") {
    if (time === undefined)
      throw new ConfigError(`by="time" needs timeColumn, received ${formatValue(timeColumn)}`);
    order = new Int32Array(numRows);
    for (let row = 0; row < numRows; row++) order[row] = row;
    // Ties keep row order so the split is deterministic.
    order.sort((a, b) => time[a]! - time[b]! || a - b);
  } else {
    order = seededPermutation(numRows, seed, 0);
  }
  const sortedPart = (start: number, end: number) => order.slice(start, end).sort();
  return {
    train: sortedPart(0, trainCount),
    validation: sortedPart(trainCount, trainCount + validationCount),
    test: sortedPart(trainCount + validationCount, numRows),
  };
}

function lookupColumn(
  dataset: Pick<ColumnarDataset, "numRows" | "columns" | "groupIds">,
  name: string,
  option: string,
): Int32Array | Float32Array {
  if (name === "groupIds" && dataset.groupIds !== undefined) return dataset.groupIds;
  const column = dataset.columns[name];
  if (column === undefined) {
    const known = [...Object.keys(dataset.columns), ...(dataset.groupIds ? ["groupIds"] : [])];
    const suggestion = nearestKey(name, known);
    throw new ConfigError(
      `${option}="${name}" is not a column of the dataset${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; columns: ${known.join(", ")}`,
    );
  }
  return column;
}

function leaveLastOut(
  numRows: number,
  users: Int32Array | Float32Array,
  time: Int32Array | Float32Array | undefined,
): { train: Int32Array; validation: Int32Array; test: Int32Array } {
  const order = new Int32Array(numRows);
  for (let row = 0; row < numRows; row++) order[row] = row;
  order.sort((a, b) => users[a]! - users[b]! || (time ? time[a]! - time[b]! : 0) || a - b);
  const part = new Uint8Array(numRows); // 0 train, 1 validation, 2 test
  let start = 0;
  while (start < numRows) {
    let end = start + 1;
    while (end < numRows && users[order[end]!] === users[order[start]!]) end++;
    const count = end - start;
    if (count >= 2) part[order[end - 1]!] = 2;
    if (count >= 3) part[order[end - 2]!] = 1;
    start = end;
  }
  const collect = (which: number) => {
    let count = 0;
    for (let row = 0; row < numRows; row++) if (part[row] === which) count++;
    const rows = new Int32Array(count);
    let position = 0;
    for (let row = 0; row < numRows; row++) if (part[row] === which) rows[position++] = row;
    return rows;
  };
  return { train: collect(0), validation: collect(1), test: collect(2) };
}

function countByDomain(dataset: ColumnarDataset, rows: Int32Array): number[] {
  const counts = new Array<number>(dataset.numDomains).fill(0);
  for (const row of rows) counts[dataset.domainIds[row]!]!++;
  return counts;
}
