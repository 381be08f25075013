import { SeededRandom } from "@mdrec/core";

/**
 * Derives an independent 32-bit seed from `(seed, stream)` (a splitmix-style finaliser), so the
 * shuffle of epoch `e` depends only on `(seed, e)` and a resumed run reproduces it exactly.
 */
export function mixSeed(seed: number, stream: number): number {
  let h = (Math.imul(seed | 0, 0x9e3779b1) ^ Math.imul((stream | 0) + 0x632be5ab, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** `[0, 1, ..., length - 1]` shuffled by Fisher-Yates with `random`. */
export function randomPermutation(length: number, random: SeededRandom): Int32Array {
  const order = new Int32Array(length);
  for (let index = 0; index < length; index++) order[index] = index;
  for (let index = length - 1; index > 0; index--) {
    const other = random.nextInt(index + 1);
    const swap = order[index]!;
    order[index] = order[other]!;
    order[other] = swap;
  }
  return order;
}

/** A seeded permutation of `[0, length)` for stream `stream` of `seed`. */
export function seededPermutation(length: number, seed: number, stream: number): Int32Array {
  return randomPermutation(length, new SeededRandom(mixSeed(seed, stream)));
}
