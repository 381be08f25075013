import { assertInteger, formatValue } from "@mdrec/core";
import { isNumericArray } from "./arrays.js";
import { MetricsError } from "./errors.js";

/** The relevant items of one user: a set or an array of item ids. */
export type RelevantItems = ReadonlySet<number> | readonly number[];

/** A retrieval metric averaged over users that have at least one relevant item. */
export interface RetrievalResult {
  /** The average over counted users, `NaN` when none has a relevant item. */
  value: number;
  /** Users with at least one relevant item. */
  usersCounted: number;
  /** Users without relevant items, left out of the average. */
  usersSkipped: number;
  /** Why `value` is `NaN`. */
  reason?: "no-relevant-items";
}

/** Scores one user from the positions (0-based, < k) of its relevant items in the top k. */
type UserScore = (hitPositions: readonly number[], relevantCount: number, k: number) => number;

function averageOverUsers(
  where: string,
  rankedItems: readonly ArrayLike<number>[],
  relevant: readonly RelevantItems[],
  k: number,
  score: UserScore,
): RetrievalResult {
  if (!Array.isArray(rankedItems)) {
    throw new MetricsError(
      `${where}: rankedItems must be an array (one ranked list per user), received ${formatValue(rankedItems)}`,
    );
  }
  if (!Array.isArray(relevant)) {
    throw new MetricsError(
      `${where}: relevant must be an array (one entry per user), received ${formatValue(relevant)}`,
    );
  }
  if (rankedItems.length !== relevant.length) {
    throw new MetricsError(
      `${where}: rankedItems and relevant must have the same length (one entry per user), received rankedItems.length=${rankedItems.length} and relevant.length=${relevant.length}`,
    );
  }
  if (rankedItems.length === 0) throw new MetricsError(`${where}: empty input (0 users)`);
  assertInteger("k", k, 1);
  let sum = 0;
  let usersCounted = 0;
  const hitPositions: number[] = [];
  const seen = new Map<number, number>();
  for (let user = 0; user < rankedItems.length; user++) {
    const ranked = rankedItems[user];
    const entry = relevant[user];
    if (!isNumericArray(ranked)) {
      throw new MetricsError(
        `${where}: rankedItems[${user}] must be an array of item ids, received ${formatValue(ranked)}`,
      );
    }
    if (!(entry instanceof Set || Array.isArray(entry))) {
      throw new MetricsError(
        `${where}: relevant[${user}] must be a Set or an array of item ids, received ${formatValue(entry)}`,
      );
    }
    const relevantSet: ReadonlySet<number> =
      entry instanceof Set ? entry : new Set(entry as readonly number[]);
    if (relevantSet.size === 0) continue;
    hitPositions.length = 0;
    seen.clear();
    const depth = Math.min(k, ranked.length);
    for (let position = 0; position < depth; position++) {
      const item = ranked[position]!;
      const earlier = seen.get(item);
      if (earlier !== undefined) {
        throw new MetricsError(
          `${where}: rankedItems[${user}] lists item ${formatValue(item)} twice in its top ${k} (positions ${earlier} and ${position})`,
        );
      }
      seen.set(item, position);
      if (relevantSet.has(item)) hitPositions.push(position);
    }
    sum += score(hitPositions, relevantSet.size, k);
    usersCounted++;
  }
  const usersSkipped = rankedItems.length - usersCounted;
  if (usersCounted === 0)
    return { value: Number.NaN, usersCounted, usersSkipped, reason: "no-relevant-items" };
  return { value: sum / usersCounted, usersCounted, usersSkipped };
}

/**
 * Recall@K averaged over users: `|top_K(u) ∩ R(u)| / |R(u)|` for each user `u` with at least one
 * relevant item (others are skipped and counted). A ranked list shorter than K counts what it has.
 *
 * @param rankedItems per user, item ids best first (e.g. rows of a top-k result).
 * @param relevant per user, the relevant item ids.
 * @param k cut-off, an integer >= 1.
 * @throws MetricsError on different lengths (naming both), no users, or an item listed twice in a
 *   user's top K; ConfigError on an invalid `k`.
 * @example recallAtK([[3, 1, 2]], [[1, 9]], 2) // { value: 0.5, usersCounted: 1, usersSkipped: 0 }
 */
export function recallAtK(
  rankedItems: readonly ArrayLike<number>[],
  relevant: readonly RelevantItems[],
  k: number,
): RetrievalResult {
  return averageOverUsers(
    "recallAtK",
    rankedItems,
    relevant,
    k,
    (hits, relevantCount) => hits.length / relevantCount,
  );
}

/**
 * Hit rate@K averaged over users: 1 when at least one of the top K items of user `u` is
 * relevant, else 0; users without relevant items are skipped and counted.
 *
 * @throws like {@link recallAtK}.
 * @example hitRateAtK([[3, 1], [4, 5]], [[1], [6]], 2) // { value: 0.5, usersCounted: 2, usersSkipped: 0 }
 */
export function hitRateAtK(
  rankedItems: readonly ArrayLike<number>[],
  relevant: readonly RelevantItems[],
  k: number,
): RetrievalResult {
  return averageOverUsers("hitRateAtK", rankedItems, relevant, k, (hits) => (hits.length > 0 ? 1 : 0));
}

/**
 * NDCG@K with binary relevance and a log2 discount, averaged over users:
 * `DCG = sum_{i < K, item_i relevant} 1 / log2(i + 2)` (position `i` 0-based),
 * `IDCG = sum_{i < min(K, |R(u)|)} 1 / log2(i + 2)`, `NDCG = DCG / IDCG`. Users without relevant
 * items are skipped and counted.
 *
 * @throws like {@link recallAtK}.
 * @example ndcgAtK([[3, 1]], [[1]], 2) // value 1 / log2(3) = 0.63...
 */
export function ndcgAtK(
  rankedItems: readonly ArrayLike<number>[],
  relevant: readonly RelevantItems[],
  k: number,
): RetrievalResult {
  return averageOverUsers("ndcgAtK", rankedItems, relevant, k, (hits, relevantCount) => {
    let dcg = 0;
    for (const position of hits) dcg += 1 / Math.log2(position + 2);
    let idealDcg = 0;
    for (let position = 0; position < Math.min(k, relevantCount); position++)
      idealDcg += 1 / Math.log2(position + 2);
    return dcg / idealDcg;
  });
}
