/**
 * Discrete information measures on host arrays (no tensors): entropy of a distribution and the
 * mutual information of a contingency table. `@mdrec/metrics` scores learned routing with them;
 * the AEA loss itself works on tensors elsewhere in this package.
 */

import { ConfigError, formatValue } from "@mdrec/core";

function isNumberArray(value: unknown): value is ArrayLike<number> {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

/**
 * Shannon entropy in nats of a discrete distribution,
 * `H(p) = -sum_i p_i log p_i` with `0 log 0 = 0`.
 *
 * The entries are normalised by their sum first, so unnormalised masses or counts are accepted.
 *
 * @param probabilities non-negative finite entries with a positive sum.
 * @throws ConfigError on an empty array, a negative or non-finite entry (naming its index and
 *   value) or an all-zero array.
 * @example entropy([0.5, 0.5]) // Math.LN2
 */
export function entropy(probabilities: readonly number[] | Float64Array | Float32Array): number {
  if (!isNumberArray(probabilities)) {
    throw new ConfigError(
      `probabilities must be an array of numbers, received ${formatValue(probabilities)}`,
    );
  }
  if (probabilities.length === 0) {
    throw new ConfigError("probabilities must not be empty, received an array of length 0");
  }
  let maximum = 0;
  for (let index = 0; index < probabilities.length; index++) {
    const value = probabilities[index]!;
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new ConfigError(
        `probabilities[${index}] must be a finite number >= 0, received ${formatValue(value)}`,
      );
    }
    if (value > maximum) maximum = value;
  }
  if (maximum === 0) {
    throw new ConfigError(
      `probabilities must have a positive sum, received all zeros (length ${probabilities.length})`,
    );
  }
  // Scaling by the largest entry keeps the sum finite for masses near Number.MAX_VALUE.
  let total = 0;
  for (let index = 0; index < probabilities.length; index++) total += probabilities[index]! / maximum;
  let result = 0;
  for (let index = 0; index < probabilities.length; index++) {
    const probability = probabilities[index]! / maximum / total;
    // A subnormal mass can underflow to 0 here; skipping it avoids 0 * log(0) = NaN.
    if (probability > 0) result -= probability * Math.log(probability);
  }
  // Rounding can leave -1e-17 for a point mass; entropy is never negative.
  return Math.max(0, result);
}

interface TableMarginals {
  /** The largest entry; every other quantity is in units of it so sums cannot overflow. */
  maximum: number;
  rowTotals: Float64Array; // [rows], scaled by 1 / maximum
  columnTotals: Float64Array; // [columns], scaled by 1 / maximum
  total: number; // scaled by 1 / maximum
}

function tableMarginals(table: readonly (readonly number[])[]): TableMarginals {
  if (!Array.isArray(table)) {
    throw new ConfigError(`table must be an array of rows, received ${formatValue(table)}`);
  }
  if (table.length === 0) {
    throw new ConfigError("table must have at least one row, received an empty table");
  }
  const firstRow = table[0];
  if (!isNumberArray(firstRow)) {
    throw new ConfigError(`table[0] must be an array of numbers, received ${formatValue(firstRow)}`);
  }
  const numColumns = firstRow.length;
  if (numColumns === 0) {
    throw new ConfigError("table must have at least one column, received rows of length 0");
  }
  let maximum = 0;
  for (let row = 0; row < table.length; row++) {
    const values = table[row];
    if (!isNumberArray(values)) {
      throw new ConfigError(`table[${row}] must be an array of numbers, received ${formatValue(values)}`);
    }
    if (values.length !== numColumns) {
      throw new ConfigError(
        `table must be rectangular: row ${row} has ${values.length} columns, row 0 has ${numColumns}`,
      );
    }
    for (let column = 0; column < numColumns; column++) {
      const value = values[column]!;
      if (!(Number.isFinite(value) && value >= 0)) {
        throw new ConfigError(
          `table[${row}][${column}] (row ${row}, column ${column}) must be a finite number >= 0, received ${formatValue(value)}`,
        );
      }
      if (value > maximum) maximum = value;
    }
  }
  if (maximum === 0) {
    throw new ConfigError(
      `table must have a positive total mass, received all zeros (${table.length} x ${numColumns})`,
    );
  }
  const rowTotals = new Float64Array(table.length);
  const columnTotals = new Float64Array(numColumns);
  let total = 0;
  for (let row = 0; row < table.length; row++) {
    const values = table[row]!;
    for (let column = 0; column < numColumns; column++) {
      const value = values[column]! / maximum;
      rowTotals[row]! += value;
      columnTotals[column]! += value;
      total += value;
    }
  }
  return { maximum, rowTotals, columnTotals, total };
}

function entropyOfTotals(totals: Float64Array, total: number): number {
  let result = 0;
  for (const value of totals) {
    const probability = value / total;
    if (probability > 0) result -= probability * Math.log(probability);
  }
  return Math.max(0, result);
}

function mutualInformationOfTable(
  table: readonly (readonly number[])[],
  { maximum, rowTotals, columnTotals, total }: TableMarginals,
): number {
  // Logs of the marginal probabilities; a zero-mass row or column is never read.
  const logRow = Array.from(rowTotals, (value) => Math.log(value / total)); // [rows]
  const logColumn = Array.from(columnTotals, (value) => Math.log(value / total)); // [columns]
  let result = 0;
  for (let row = 0; row < table.length; row++) {
    const values = table[row]!;
    for (let column = 0; column < columnTotals.length; column++) {
      const joint = values[column]! / maximum / total;
      // Zero cells contribute 0 log 0 = 0, which also drops rows/columns of zero mass.
      if (joint > 0) result += joint * (Math.log(joint) - logRow[row]! - logColumn[column]!);
    }
  }
  // I(R;C) >= 0; rounding can leave a tiny negative value for an independent table.
  return Math.max(0, result);
}

/**
 * Mutual information in nats between the row variable R and the column variable C of a
 * contingency table of counts or joint masses (rows = domains, columns = experts):
 * `I(R;C) = sum_{r,c} p(r,c) log(p(r,c) / (p(r) p(c)))` with `p(r,c) = table[r][c] / total`.
 * Rows and columns of zero mass are ignored.
 *
 * @throws ConfigError on an empty or ragged table, a negative or non-finite entry (naming its
 *   row, column and value) or an all-zero table.
 * @example mutualInformationFromCounts([[5, 0], [0, 5]]) // Math.LN2
 */
export function mutualInformationFromCounts(table: readonly (readonly number[])[]): number {
  return mutualInformationOfTable(table, tableMarginals(table));
}

/** How {@link normalizedMutualInformation} normalises I(R;C). */
export type MutualInformationNormalization = "sqrt" | "arithmetic";

/**
 * Normalised mutual information in [0, 1] of a contingency table:
 * `"sqrt"` (default): `I(R;C) / sqrt(H(R) H(C))`; `"arithmetic"`: `2 I(R;C) / (H(R) + H(C))`.
 * Returns 0 when either marginal entropy is 0 (a constant variable shares no information).
 * Used to score learned expert usage against planted domain groups.
 *
 * @throws ConfigError like {@link mutualInformationFromCounts}, or on an unknown `method`.
 * @example normalizedMutualInformation([[5, 0], [0, 5]]) // 1
 */
export function normalizedMutualInformation(
  table: readonly (readonly number[])[],
  method: MutualInformationNormalization = "sqrt",
): number {
  if (method !== "sqrt" && method !== "arithmetic") {
    throw new ConfigError(`method must be one of "sqrt", "arithmetic", received ${formatValue(method)}`);
  }
  const marginals = tableMarginals(table);
  const rowEntropy = entropyOfTotals(marginals.rowTotals, marginals.total);
  const columnEntropy = entropyOfTotals(marginals.columnTotals, marginals.total);
  if (rowEntropy === 0 || columnEntropy === 0) return 0;
  const information = mutualInformationOfTable(table, marginals);
  // Written so that tiny positive entropies (subnormal masses) cannot underflow the denominator to 0.
  const ratio =
    method === "sqrt"
      ? information / Math.sqrt(rowEntropy) / Math.sqrt(columnEntropy)
      : (2 * information) / (rowEntropy + columnEntropy);
  // I <= min(H(R), H(C)) <= both normalisers; clamp the last-ulp overshoot.
  return Math.min(1, ratio);
}
