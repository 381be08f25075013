import { assertInteger } from "./validate.js";

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

  /** @param seed any integer; equal seeds give equal sequences. */
  constructor(seed: number) {
    assertInteger("seed", seed, Number.MIN_SAFE_INTEGER);
    this.state = seed >>> 0;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, maxExclusive). */
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
