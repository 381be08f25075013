import { assertInteger, assertKnownKeys, ConfigError, formatValue, MdrecError } from "@mdrec/core";
import { entropy, mutualInformationFromCounts } from "@mdrec/mi-loss";
import { assertNotEmpty, assertNumericArray, type NumericArray, readId } from "./arrays.js";
import { MetricsError } from "./errors.js";

/** Arguments of {@link expertUsageCounts} and {@link expertUtilization}: routing collected on the host. */
export interface RoutingUsageArgs {
  /** Domain id per row: `[B]` integers in `[0, numDomains)`. */
  domainIds: NumericArray;
  /** Chosen experts, `[B * k]` row-major (row `b` uses `indices[b * k .. b * k + k - 1]`). */
  indices: NumericArray;
  /** Mixing weights, `[B * k]` like `indices`, >= 0. Defaults to none: every routing slot counts 1. */
  weights?: NumericArray;
  numDomains: number;
  numExperts: number;
  /** Experts per row, in `[1, numExperts]`. */
  k: number;
}

/** Arguments of {@link expertShare}. */
export interface ExpertShareArgs {
  /** Chosen experts of every routing slot (e.g. `[B * k]`), integers in `[0, numExperts)`. */
  indices: NumericArray;
  /** Weight per slot, like `indices`, >= 0. Defaults to none: every slot counts 1. */
  weights?: NumericArray;
  numExperts: number;
}

const USAGE_KEYS = ["domainIds", "indices", "weights", "numDomains", "numExperts", "k"];
const SHARE_KEYS = ["indices", "weights", "numExperts"];

/** @param what e.g. `"expertShare args"`. */
function assertArgsObject(what: string, args: unknown, keys: readonly string[]): void {
  if (args == null || typeof args !== "object") {
    throw new ConfigError(`${what} must be an object, received ${formatValue(args)}`);
  }
  assertKnownKeys(what, args, keys);
}

/** ` (row r, slot s)` for a `[B * k]` row-major array, empty when there are no rows. */
function slotLocation(index: number, k: number | undefined): string {
  return k === undefined ? "" : ` (row ${Math.floor(index / k)}, slot ${index % k})`;
}

function readWeight(where: string, weights: NumericArray, index: number, k: number | undefined): number {
  const weight = weights[index];
  if (typeof weight !== "number" || !(Number.isFinite(weight) && weight >= 0)) {
    throw new MetricsError(
      `${where}: weights[${index}]${slotLocation(index, k)} must be a finite number >= 0, received ${formatValue(weight)}`,
    );
  }
  return weight;
}

function readExpert(
  where: string,
  indices: NumericArray,
  index: number,
  k: number | undefined,
  numExperts: number,
): number {
  const expert = indices[index];
  if (typeof expert !== "number" || !Number.isInteger(expert) || expert < 0 || expert >= numExperts) {
    throw new MetricsError(
      `${where}: indices[${index}]${slotLocation(index, k)} must be an integer in [0, numExperts=${numExperts}), received ${formatValue(expert)}`,
    );
  }
  return expert;
}

function usageCounts(where: string, args: RoutingUsageArgs): number[][] {
  assertArgsObject(`${where} args`, args, USAGE_KEYS);
  const { domainIds, indices, weights, numDomains, numExperts, k } = args;
  assertInteger("numDomains", numDomains, 1);
  assertInteger("numExperts", numExperts, 1);
  assertInteger("k", k, 1, numExperts, `numExperts=${numExperts}`);
  assertNumericArray(where, "domainIds", domainIds);
  assertNumericArray(where, "indices", indices);
  if (weights !== undefined) assertNumericArray(where, "weights", weights);
  assertNotEmpty(where, domainIds.length);
  const rows = domainIds.length;
  if (indices.length !== rows * k) {
    throw new MetricsError(
      `${where}: indices must have length domainIds.length * k = ${rows} * ${k} = ${rows * k}, received indices.length=${indices.length}`,
    );
  }
  if (weights !== undefined && weights.length !== indices.length) {
    throw new MetricsError(
      `${where}: weights and indices must have the same length, received weights.length=${weights.length} and indices.length=${indices.length}`,
    );
  }
  const counts = Array.from({ length: numDomains }, () => new Array<number>(numExperts).fill(0)); // [D, N]
  for (let row = 0; row < rows; row++) {
    const domainRow = counts[readId(where, "domainIds", domainIds, row, numDomains, "numDomains")]!;
    for (let slot = row * k; slot < row * k + k; slot++) {
      const expert = readExpert(where, indices, slot, k, numExperts);
      domainRow[expert]! += weights === undefined ? 1 : readWeight(where, weights, slot, k);
    }
  }
  return counts;
}

/**
 * Joint domain-expert usage `[numDomains, numExperts]`: entry `(d, e)` counts the routing slots
 * of domain-`d` rows that chose expert `e` (or sums their weights when `weights` are given).
 * Keeps the domain frequencies, so it is the table {@link routingMutualInformation} needs.
 *
 * @throws MetricsError on empty input, wrong lengths, an id out of range or a negative weight
 *   (naming the index, row and slot); ConfigError on invalid sizes or unknown keys.
 * @example
 * expertUsageCounts({ domainIds: [0, 1], indices: [2, 0, 1, 0], numDomains: 2, numExperts: 3, k: 2 })
 * // [[1, 0, 1], [1, 1, 0]]
 */
export function expertUsageCounts(args: RoutingUsageArgs): number[][] {
  return usageCounts("expertUsageCounts", args);
}

/**
 * Expert-utilisation matrix `[numDomains, numExperts]`: `U[d][e]` = share of domain `d`'s
 * routing slots (or routing weight mass when `weights` are given) that goes to expert `e`, i.e.
 * an estimate of `P(e | d)`. Rows sum to 1; a domain without rows (or with zero weight) gets a row
 * of zeros.
 *
 * @throws like {@link expertUsageCounts}.
 * @example
 * expertUtilization({ domainIds: [0, 0, 1], indices: [0, 1, 1], numDomains: 2, numExperts: 2, k: 1 })
 * // [[0.5, 0.5], [0, 1]]
 */
export function expertUtilization(args: RoutingUsageArgs): number[][] {
  const counts = usageCounts("expertUtilization", args);
  return counts.map((row) => {
    const total = row.reduce((sum, value) => sum + value, 0);
    return total > 0 ? row.map((value) => value / total) : row.map(() => 0);
  });
}

/**
 * Domain-expert mutual information in nats from joint usage counts (see
 * {@link expertUsageCounts}): `I(D;E) = sum_{d,e} p(d,e) log(p(d,e) / (p(d) p(e)))`.
 * 0 when every domain uses experts alike; `log(min(D, N))` at most. Pass counts, not the
 * row-normalised utilisation matrix, or every domain is weighted equally.
 *
 * @throws MetricsError on an empty or ragged table, a negative or non-finite entry (naming row,
 *   column and value) or an all-zero table.
 * @example routingMutualInformation([[10, 0], [0, 10]]) // Math.LN2
 */
export function routingMutualInformation(usageCounts: readonly (readonly number[])[]): number {
  try {
    return mutualInformationFromCounts(usageCounts);
  } catch (error) {
    if (error instanceof MdrecError)
      throw new MetricsError(`routingMutualInformation(usageCounts): ${error.message}`);
    throw error;
  }
}

/** Options of {@link usageEntropy}. */
export interface UsageEntropyOptions {
  /** Divide by `log(length)` so the result is in [0, 1] (1 = perfectly balanced). Defaults to false. */
  normalized?: boolean;
}

/**
 * Entropy in nats of an expert-usage vector (a row of the utilisation matrix, or overall usage
 * such as {@link expertShare}), normalised to a distribution first: `H = -sum_e u_e log u_e`.
 * High entropy = balanced load; 0 = one expert takes everything. An all-zero vector (a domain
 * without rows) gives `NaN`. With `normalized`, `H / log(length)` (0 for a single expert).
 *
 * @throws MetricsError on an empty vector or a negative or non-finite entry (naming index and value).
 * @example usageEntropy([0.25, 0.25, 0.25, 0.25], { normalized: true }) // 1
 */
export function usageEntropy(usage: NumericArray, options: UsageEntropyOptions = {}): number {
  const where = "usageEntropy";
  assertArgsObject(`${where} options`, options, ["normalized"]);
  assertNumericArray(where, "usage", usage);
  if (usage.length === 0) throw new MetricsError(`${where}: empty input (usage has length 0)`);
  let total = 0;
  for (let index = 0; index < usage.length; index++) {
    const value = usage[index];
    if (typeof value !== "number" || !(Number.isFinite(value) && value >= 0)) {
      throw new MetricsError(
        `${where}: usage[${index}] must be a finite number >= 0, received ${formatValue(value)}`,
      );
    }
    total += value;
  }
  if (total === 0) return Number.NaN;
  const result = entropy(Float64Array.from(usage));
  if (!options.normalized) return result;
  return usage.length === 1 ? 0 : result / Math.log(usage.length);
}

/**
 * Overall share of routing slots (or of routing weight mass when `weights` are given) per expert,
 * length `numExperts`, summing to 1: `share_e = #{slots routed to e} / #{slots}`. With top-k
 * routing each row contributes k slots. All zeros when every weight is 0.
 *
 * @throws MetricsError on empty input, an index out of range or a negative weight; ConfigError
 *   on an invalid `numExperts` or unknown keys.
 * @example expertShare({ indices: [0, 2, 2, 2], numExperts: 3 }) // [0.25, 0, 0.75]
 */
export function expertShare(args: ExpertShareArgs): number[] {
  const where = "expertShare";
  assertArgsObject(`${where} args`, args, SHARE_KEYS);
  const { indices, weights, numExperts } = args;
  assertInteger("numExperts", numExperts, 1);
  assertNumericArray(where, "indices", indices);
  if (weights !== undefined) assertNumericArray(where, "weights", weights);
  assertNotEmpty(where, indices.length);
  if (weights !== undefined && weights.length !== indices.length) {
    throw new MetricsError(
      `${where}: weights and indices must have the same length, received weights.length=${weights.length} and indices.length=${indices.length}`,
    );
  }
  const usage = new Array<number>(numExperts).fill(0);
  let total = 0;
  for (let slot = 0; slot < indices.length; slot++) {
    const expert = readExpert(where, indices, slot, undefined, numExperts);
    const amount = weights === undefined ? 1 : readWeight(where, weights, slot, undefined);
    usage[expert]! += amount;
    total += amount;
  }
  return total > 0 ? usage.map((value) => value / total) : usage;
}
