import type * as tf from "@tensorflow/tfjs-core";
import { ConfigError, DataError, ShapeError } from "./errors.js";

const MAX_DESCRIBED_LENGTH = 200;

function describe(value: unknown): string {
  let text: string;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint" || value == null) {
    text = String(value);
  } else if (typeof value === "function") {
    text = `function ${value.name || "(anonymous)"}`;
  } else if (isTensorLike(value)) {
    text = `tf.Tensor ${value.dtype} [${value.shape.join(", ")}]`;
  } else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  // A whole data array pasted into an error message hides the message.
  return text.length > MAX_DESCRIBED_LENGTH ? `${text.slice(0, MAX_DESCRIBED_LENGTH)}...` : text;
}

function isTensorLike(value: unknown): value is { shape: number[]; dtype: string } {
  return (
    typeof value === "object" &&
    value !== null &&
    Array.isArray((value as { shape?: unknown }).shape) &&
    typeof (value as { dtype?: unknown }).dtype === "string"
  );
}

/**
 * Formats a received value for error messages: strings quoted, numbers as written (`NaN`),
 * tensors as dtype and shape, anything else as JSON cut to 200 characters.
 * @example formatValue("abc") // '"abc"'
 */
export function formatValue(value: unknown): string {
  return describe(value);
}

/**
 * Asserts that `value` is an integer in `[min, max]`.
 * @example assertInteger("k", 9, 1, 8, "numExperts=8") // throws "k must be an integer in [1, numExperts=8], received 9"
 */
export function assertInteger(
  name: string,
  value: unknown,
  min: number,
  max: number = Number.POSITIVE_INFINITY,
  maxLabel?: string,
): asserts value is number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const upper = max === Number.POSITIVE_INFINITY ? "" : `, ${maxLabel ?? max}`;
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `in [${min}${upper}]`;
    throw new ConfigError(`${name} must be an integer ${range}, received ${describe(value)}`);
  }
}

/**
 * Asserts that `value` is a finite number in `[min, max]` (bounds inclusive unless
 * `exclusiveMin` / `exclusiveMax`).
 * @example assertNumber("dropout", 1, { min: 0, max: 1, exclusiveMax: true }) // throws "dropout must be a finite number >= 0 and < 1, received 1"
 */
export function assertNumber(
  name: string,
  value: unknown,
  options: { min?: number; max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean } = {},
): asserts value is number {
  const {
    min = Number.NEGATIVE_INFINITY,
    max = Number.POSITIVE_INFINITY,
    exclusiveMin = false,
    exclusiveMax = false,
  } = options;
  const ok =
    typeof value === "number" &&
    Number.isFinite(value) &&
    (exclusiveMin ? value > min : value >= min) &&
    (exclusiveMax ? value < max : value <= max);
  if (!ok) {
    const parts: string[] = [];
    if (min !== Number.NEGATIVE_INFINITY) parts.push(exclusiveMin ? `> ${min}` : `>= ${min}`);
    if (max !== Number.POSITIVE_INFINITY) parts.push(exclusiveMax ? `< ${max}` : `<= ${max}`);
    const bound = parts.length > 0 ? ` ${parts.join(" and ")}` : "";
    throw new ConfigError(`${name} must be a finite number${bound}, received ${describe(value)}`);
  }
}

/** Asserts that `value` is one of `allowed`. */
export function assertOneOf<T extends string>(
  name: string,
  value: unknown,
  allowed: readonly T[],
): asserts value is T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(
      `${name} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, received ${describe(value)}`,
    );
  }
}

/** Levenshtein distance (insertions, deletions, substitutions), used to suggest the nearest valid key. */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/**
 * The entry of `candidates` closest to `key` (case-insensitive edit distance), or undefined when
 * none is within `max(2, longer length / 2)` edits (so `vocabSize` finds `vocabularySize`).
 * @example nearestKey("numExpert", ["numExperts", "k"]) // "numExperts"
 */
export function nearestKey(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    const close = distance <= Math.max(2, Math.floor(Math.max(key.length, candidate.length) / 2));
    if (close && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Rejects keys of `options` that are not in `allowed`, naming the nearest valid key.
 * @param where what the options belong to, e.g. `"TopKGate args"`.
 * @example assertKnownKeys("Mlp args", { unit: [4] }, ["units"]) // throws 'Unknown key "unit" in Mlp args. Did you mean "units"?'
 */
export function assertKnownKeys(where: string, options: object, allowed: readonly string[]): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new ConfigError(`${where} must be an object, received ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const suggestion = nearestKey(key, allowed);
      const hint = suggestion ? ` Did you mean "${suggestion}"?` : ` Known keys: ${allowed.join(", ")}.`;
      throw new ConfigError(`Unknown key "${key}" in ${where}.${hint}`);
    }
  }
}

/**
 * Asserts that `tensor` is a live tf.Tensor with the expected rank and (optionally) dtype and
 * fixed dimensions (`null` = any size). Throws {@link ShapeError} naming the argument.
 * @example assertTensor("x", x, { rank: 2, dtype: "float32", shape: [null, 16] })
 */
export function assertTensor(
  name: string,
  tensor: tf.Tensor | undefined | null,
  expected: {
    rank?: number;
    dtype?: tf.DataType | readonly tf.DataType[];
    shape?: readonly (number | null)[];
  },
): void {
  if (tensor == null || typeof (tensor as tf.Tensor).shape !== "object") {
    throw new ShapeError(`${name} must be a tf.Tensor, received ${describe(tensor)}`);
  }
  if (tensor.isDisposed) {
    throw new ShapeError(`${name} is a disposed tf.Tensor (shape [${tensor.shape.join(", ")}])`);
  }
  const shape = tensor.shape;
  if (expected.rank !== undefined && shape.length !== expected.rank) {
    throw new ShapeError(
      `${name} must have rank ${expected.rank}${expected.shape ? ` (shape [${expected.shape.map((d) => d ?? "?").join(", ")}])` : ""}, received shape [${shape.join(", ")}]`,
    );
  }
  if (expected.dtype !== undefined) {
    const allowed = typeof expected.dtype === "string" ? [expected.dtype] : expected.dtype;
    if (!allowed.includes(tensor.dtype)) {
      throw new ShapeError(`${name} must have dtype ${allowed.join(" or ")}, received ${tensor.dtype}`);
    }
  }
  if (expected.shape) {
    expected.shape.forEach((size, axis) => {
      if (size !== null && shape[axis] !== size) {
        throw new ShapeError(
          `${name} must have shape [${expected.shape!.map((d) => d ?? "?").join(", ")}], received [${shape.join(", ")}]`,
        );
      }
    });
  }
}

/**
 * Checks that every id of an int32 `[B]` tensor is in `[0, count)` (one small device read),
 * naming the first bad row: `${label}[row] must be in [0, ${countName}=count), received id`.
 * @param label e.g. `"TopKGate domainIds"`.
 * @example
 * assertIdsInRange("batch.domainIds", domainIds, 3, "numDomains");
 */
export function assertIdsInRange(label: string, ids: tf.Tensor1D, count: number, countName: string): void {
  const values = ids.dataSync();
  for (let row = 0; row < values.length; row++) {
    const id = values[row]!;
    if (!(id >= 0 && id < count)) {
      throw new DataError(`${label}[${row}] must be in [0, ${countName}=${count}), received ${id}`);
    }
  }
}
