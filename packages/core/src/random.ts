import { ConfigError } from "./errors.js";
import { assertInteger, formatValue } from "./validate.js";

/** mulberry32's state after `state` (any 32-bit pattern), as an int32 (a small integer to V8). */
export function mulberry32Step(state: number): number {
  return (state + 0x6d2b79f5) | 0;
}

/** mulberry32's unsigned 32-bit output for a state (its bits, whether held signed or unsigned). */
export function mulberry32Output(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

/**
 * A small, fast, seedable pseudo-random generator (mulberry32) whose whole state is one
 * 32-bit integer, so checkpoints can save and restore it exactly.
 *
 * @example
 * const random = new SeededRandom(7);
 * random.next(); // same value for every run seeded with 7
 */
export class SeededRandom {
  private state: number;

  /** @param seed any safe integer (used modulo 2^32); equal seeds give equal sequences. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new ConfigError(`SeededRandom seed must be a safe integer, received ${formatValue(seed)}`);
    }
    this.state = seed >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    this.state = mulberry32Step(this.state) >>> 0;
    return mulberry32Output(this.state);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, maxExclusive) for a positive integer `maxExclusive`. */
  nextInt(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive);
  }

  /** Standard normal sample (Box-Muller). */
  nextNormal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** A fresh seed for a TensorFlow.js op or initializer (non-negative 31-bit integer). */
  nextSeed(): number {
    return this.nextUint32() >>> 1;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const swap = items[i]!;
      items[i] = items[j]!;
      items[j] = swap;
    }
    return items;
  }

  /** The generator's full state, for checkpoints. */
  getState(): number {
    return this.state;
  }

  /** Restores a state returned by {@link SeededRandom.getState}. */
  setState(state: number): void {
    assertInteger("random state", state, 0, 4294967295);
    this.state = state >>> 0;
  }
}

let globalRandom = new SeededRandom(1234);

// murmur3's 32-bit finaliser: a bijection that spreads every input bit over the output.
function mix32(value: number): number {
  let hash = value >>> 0;
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

/**
 * A seed for the `index`-th random component of something seeded with `seed` (a layer's
 * kernels, a table per field). Unlike `seed + index`, the seeds of layer 1 of a block seeded
 * with 5 and of layer 0 of a block seeded with 6 are unrelated, so blocks built with
 * consecutive seeds (experts of a pool) do not share initial weights.
 *
 * @returns a non-negative 31-bit integer.
 * @example const kernelSeed = deriveSeed(layerSeed, 0);
 */
export function deriveSeed(seed: number, index: number): number {
  assertInteger("deriveSeed seed", seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  assertInteger("deriveSeed index", index, 0, Number.MAX_SAFE_INTEGER);
  const seedHash = mix32(mix32(seed >>> 0) ^ Math.floor(seed / 4294967296));
  return mix32((seedHash + Math.imul(index + 1, 0x9e3779b9)) >>> 0) >>> 1;
}

/**
 * Seeds the process-wide generator used by every mdrec layer for weight initialisation,
 * dropout masks and gate noise. Call once before building a model for reproducible runs.
 */
export function setGlobalSeed(seed: number): void {
  globalRandom = new SeededRandom(seed);
}

/** The process-wide generator (see {@link setGlobalSeed}). */
export function globalRandomGenerator(): SeededRandom {
  return globalRandom;
}

/** Draws a seed for one TensorFlow.js random op from the process-wide generator. */
export function nextSeed(): number {
  return globalRandom.nextSeed();
}
