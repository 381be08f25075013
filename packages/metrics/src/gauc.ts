import {
  assertNotEmpty,
  assertNumericArray,
  assertSameLength,
  type NumericArray,
  readGroupId,
  readLabel,
  readScore,
} from "./arrays.js";
import { aucOfSortedScores } from "./auc.js";
import { sortFloat64 } from "./sort.js";

/** A metric averaged over users (groups), with how many users were counted and skipped. */
export interface GroupedMetricResult {
  /** The average, `NaN` when no user could be counted. */
  value: number;
  /** Users (groups) that entered the average. */
  usersCounted: number;
  /** Users (groups) left out because the metric is undefined for them. */
  usersSkipped: number;
  /** Why `value` is `NaN`: `"single-class"` when every user has one class only. */
  reason?: "single-class";
}

/** GAUC of already-validated arrays (labels exactly 0/1, no NaN score, integer group ids). */
export function gaucOfValidRows(
  labels: NumericArray,
  scores: NumericArray,
  groupIds: NumericArray,
): GroupedMetricResult {
  const rowCount = labels.length;
  const denseGroupOf = new Map<number, number>();
  const denseGroups = new Int32Array(rowCount); // [rows] group id -> 0..groups-1 in order of appearance
  const rowsPerGroup = new Int32Array(rowCount + 1);
  const positivesPerGroup = new Int32Array(rowCount + 1);
  for (let index = 0; index < rowCount; index++) {
    const groupId = groupIds[index]!;
    let group = denseGroupOf.get(groupId);
    if (group === undefined) {
      group = denseGroupOf.size;
      denseGroupOf.set(groupId, group);
    }
    denseGroups[index] = group;
    rowsPerGroup[group]!++;
    positivesPerGroup[group]! += labels[index]!;
  }
  const groupCount = denseGroupOf.size;
  // Counting sort of the scores by group, positives first within each group: [rows].
  const groupStart = new Int32Array(groupCount + 1);
  for (let group = 0; group < groupCount; group++)
    groupStart[group + 1] = groupStart[group]! + rowsPerGroup[group]!;
  const positiveCursor = groupStart.slice(0, groupCount);
  const negativeCursor = new Int32Array(groupCount);
  for (let group = 0; group < groupCount; group++) {
    negativeCursor[group] = groupStart[group]! + positivesPerGroup[group]!;
  }
  const grouped = new Float64Array(rowCount);
  for (let index = 0; index < rowCount; index++) {
    const group = denseGroups[index]!;
    if (labels[index] === 1) grouped[positiveCursor[group]!++] = scores[index]!;
    else grouped[negativeCursor[group]!++] = scores[index]!;
  }
  let weightedSum = 0;
  let weight = 0;
  let usersCounted = 0;
  for (let group = 0; group < groupCount; group++) {
    const start = groupStart[group]!;
    const rows = rowsPerGroup[group]!;
    const positives = positivesPerGroup[group]!;
    if (positives === 0 || positives === rows) continue;
    const groupAuc = aucOfSortedScores(
      sortFloat64(grouped.subarray(start, start + positives)),
      sortFloat64(grouped.subarray(start + positives, start + rows)),
    );
    weightedSum += rows * groupAuc;
    weight += rows;
    usersCounted++;
  }
  const usersSkipped = groupCount - usersCounted;
  if (usersCounted === 0) return { value: Number.NaN, usersCounted, usersSkipped, reason: "single-class" };
  return { value: weightedSum / weight, usersCounted, usersSkipped };
}

/**
 * Group AUC: the AUC of each user (group) weighted by the user's impressions (rows),
 * `GAUC = sum_u n_u AUC_u / sum_u n_u`, over users that have both a positive and a negative row.
 * Users with a single class are skipped and counted in `usersSkipped`; when no user qualifies
 * the value is `NaN` with reason `"single-class"`. Each `AUC_u` is exact with ties (see `auc`).
 *
 * @param groupIds one integer user (group) id per row, any range.
 * @throws MetricsError on empty input, different lengths, a label not 0/1, a NaN score or a
 *   non-integer group id.
 * @example gauc([0, 1, 0, 1, 1], [0.1, 0.9, 0.8, 0.2, 0.5], [7, 7, 9, 9, 3])
 *   // { value: 0.5, usersCounted: 2, usersSkipped: 1 }: user 7 has AUC 1, user 9 AUC 0
 */
export function gauc(
  labels: NumericArray,
  scores: NumericArray,
  groupIds: NumericArray,
): GroupedMetricResult {
  const where = "gauc";
  assertNumericArray(where, "labels", labels);
  assertNumericArray(where, "scores", scores);
  assertNumericArray(where, "groupIds", groupIds);
  assertSameLength(where, "labels", labels, "scores", scores);
  assertSameLength(where, "labels", labels, "groupIds", groupIds);
  assertNotEmpty(where, labels.length);
  for (let index = 0; index < labels.length; index++) {
    readLabel(where, labels, index);
    readScore(where, scores, index);
    readGroupId(where, groupIds, index);
  }
  return gaucOfValidRows(labels, scores, groupIds);
}
