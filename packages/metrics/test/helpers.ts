import { SeededRandom } from "@mdrec/core";

/** Pairwise AUC by definition: (#{pos > neg} + 0.5 #{pos = neg}) / (P N), O(P N). */
export function bruteForceAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  let numerator = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) numerator += 1;
      else if (scores[i] === scores[j]) numerator += 0.5;
    }
  }
  return numerator / pairs;
}

/** Mann-Whitney AUC with average ranks (an independent O(n log n) reference). */
export function rankAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const order = Array.from({ length: labels.length }, (_, index) => index).sort(
    (a, b) => scores[a]! - scores[b]!,
  );
  let positiveRankSum = 0;
  let positives = 0;
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && scores[order[end]!] === scores[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2;
    for (let position = start; position < end; position++) {
      if (labels[order[position]!] === 1) {
        positiveRankSum += averageRank;
        positives++;
      }
    }
    start = end;
  }
  const negatives = labels.length - positives;
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** Seeded random predictions: labels ~ Bernoulli(rate), scores correlated with labels, in [0, 1]. */
export function randomPredictions(
  rows: number,
  seed: number,
  options: { rate?: number; levels?: number } = {},
): { labels: Uint8Array; scores: Float32Array } {
  const random = new SeededRandom(seed);
  const { rate = 0.3, levels } = options;
  const labels = new Uint8Array(rows);
  const scores = new Float32Array(rows);
  for (let index = 0; index < rows; index++) {
    const label = random.next() < rate ? 1 : 0;
    labels[index] = label;
    const raw = Math.min(1, Math.max(0, 0.5 * random.next() + 0.3 * label + 0.1 * random.next()));
    // Few levels force many ties.
    scores[index] = levels === undefined ? raw : Math.round(raw * levels) / levels;
  }
  return { labels, scores };
}

/** Splits `[0, length)` into random consecutive chunks (some empty). */
export function randomChunks(length: number, seed: number, maxChunk: number): [number, number][] {
  const random = new SeededRandom(seed);
  const chunks: [number, number][] = [];
  let start = 0;
  while (start < length) {
    const end = Math.min(length, start + random.nextInt(maxChunk + 1));
    chunks.push([start, end]);
    start = end;
  }
  return chunks;
}
