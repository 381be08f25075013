import { formatValue } from "@mdrec/core";
import { MetricsError } from "./errors.js";

/**
 * A host array of numbers: `number[]` or any typed array (`Float32Array`, `Float64Array`,
 * `Int32Array`, `Uint8Array`, ...). Metrics never take tensors: call `tensor.dataSync()` first.
 */
export type NumericArray = ArrayLike<number>;

/** Whether `value` is a `number[]`-like array or a numeric typed array (entries are checked by readers). */
export function isNumericArray(value: unknown): value is NumericArray {
  return Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView));
}

/** Throws unless `value` is a `number[]` or a numeric typed array. */
export function assertNumericArray(
  where: string,
  name: string,
  value: unknown,
): asserts value is NumericArray {
  if (isNumericArray(value)) return;
  const isTensor = value != null && typeof (value as { dataSync?: unknown }).dataSync === "function";
  const received = isTensor ? "a tf.Tensor (call tensor.dataSync() first)" : formatValue(value);
  throw new MetricsError(
    `${where}: ${name} must be an array or typed array of numbers, received ${received}`,
  );
}

/** Throws when two arrays that pair up row by row have different lengths, naming both. */
export function assertSameLength(
  where: string,
  firstName: string,
  first: NumericArray | readonly unknown[],
  secondName: string,
  second: NumericArray | readonly unknown[],
): void {
  if (first.length !== second.length) {
    throw new MetricsError(
      `${where}: ${firstName} and ${secondName} must have the same length, received ${firstName}.length=${first.length} and ${secondName}.length=${second.length}`,
    );
  }
}

/** Throws the "empty input" error of `where`. */
export function assertNotEmpty(where: string, length: number): void {
  if (length === 0) throw new MetricsError(`${where}: empty input (0 rows)`);
}

/** Reads `labels[index]` as 0 or 1, or throws naming the index and value. */
export function readLabel(where: string, labels: NumericArray, index: number): 0 | 1 {
  const label = labels[index];
  if (label === 1) return 1;
  if (label === 0) return 0;
  throw new MetricsError(`${where}: labels[${index}] must be 0 or 1, received ${formatValue(label)}`);
}

/** Reads `scores[index]`, or throws naming the index when it is NaN or not a number. */
export function readScore(where: string, scores: NumericArray, index: number): number {
  const score = scores[index];
  if (typeof score !== "number" || Number.isNaN(score)) {
    throw new MetricsError(
      `${where}: scores[${index}] must be a number (not NaN), received ${formatValue(score)}`,
    );
  }
  return score;
}

/** Reads `scores[index]` as a probability in [0, 1], or throws naming the index and value. */
export function readProbability(where: string, scores: NumericArray, index: number): number {
  const score = scores[index];
  if (typeof score !== "number" || !(score >= 0 && score <= 1)) {
    throw new MetricsError(
      `${where}: scores[${index}] must be a probability in [0, 1], received ${formatValue(score)}`,
    );
  }
  return score;
}

/** Reads an integer id in `[0, size)`, or throws naming the array, index, value and range. */
export function readId(
  where: string,
  name: string,
  ids: NumericArray,
  index: number,
  size: number,
  sizeLabel: string,
): number {
  const id = ids[index];
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= size) {
    throw new MetricsError(
      `${where}: ${name}[${index}] must be an integer in [0, ${sizeLabel}=${size}), received ${formatValue(id)}`,
    );
  }
  return id;
}

/** Reads a group (user) id: any integer, or throws naming the index and value. */
export function readGroupId(where: string, groupIds: NumericArray, index: number): number {
  const id = groupIds[index];
  if (typeof id !== "number" || !Number.isInteger(id)) {
    throw new MetricsError(`${where}: groupIds[${index}] must be an integer, received ${formatValue(id)}`);
  }
  return id;
}

type TypedArrayConstructor<T> = { new (length: number): T };

/** An append-only typed array that doubles its capacity, for streaming accumulators. */
export class GrowableArray<T extends Float64Array | Int32Array | Uint8Array> {
  private data: T;
  /** Number of values appended. */
  length = 0;

  constructor(private readonly create: TypedArrayConstructor<T>) {
    this.data = new create(1024);
  }

  /** Makes room for `extra` more values and returns the backing array (valid until the next call). */
  reserve(extra: number): T {
    const needed = this.length + extra;
    if (needed > this.data.length) {
      let capacity = this.data.length;
      while (capacity < needed) capacity *= 2;
      const grown = new this.create(capacity);
      grown.set(this.data.subarray(0, this.length) as never);
      this.data = grown;
    }
    return this.data;
  }

  /** The appended values (a view, not a copy). */
  view(): T {
    return this.data.subarray(0, this.length) as T;
  }

  /** Drops every value and releases the memory. */
  clear(): void {
    this.data = new this.create(1024);
    this.length = 0;
  }
}
