import * as tf from "@tensorflow/tfjs-core";
import { ConfigError } from "../errors.js";
import { mulberry32Output, mulberry32Step } from "../random.js";
import { assertInteger, formatValue } from "../validate.js";

/**
 * A float32 tensor of independent standard normal samples, seeded: equal seeds give equal
 * tensors on every backend. Drawn on the host with mulberry32 (as `SeededRandom`) and
 * Marsaglia's polar method, about 5x faster than `tf.randomNormal` (whose per-sample generator
 * objects cost ~1.1 ms for 16k samples; this takes ~0.2 ms).
 *
 * @param shape non-negative integer dimensions.
 * @param seed any safe integer (used modulo 2^32).
 * @example
 * const noise = standardNormal([batch, numExperts], nextSeed()); // [B, N]
 */
export function standardNormal(shape: readonly number[], seed: number): tf.Tensor {
  if (!Array.isArray(shape)) {
    throw new ConfigError(
      `standardNormal shape must be an array of integers, received ${formatValue(shape)}`,
    );
  }
  let size = 1;
  shape.forEach((dimension, index) => {
    assertInteger(`standardNormal shape[${index}]`, dimension, 0);
    size *= dimension;
  });
  if (!Number.isSafeInteger(seed)) {
    throw new ConfigError(`standardNormal seed must be a safe integer, received ${formatValue(seed)}`);
  }
  const values = new Float32Array(size);
  // mulberry32's state held as an int32 (the same bits as SeededRandom's uint32 state) in a local:
  // a uint32 above 2^31 is no small integer to V8, and in the former closure's context it was
  // boxed on every draw. 16k samples take ~170 us instead of ~230-300 us, the same values.
  let state = seed | 0;
  for (let index = 0; index < size; index += 2) {
    // Polar method: a point uniform in the unit disc gives two independent normals.
    let u = 0;
    let v = 0;
    let radius = 0;
    do {
      state = mulberry32Step(state);
      u = mulberry32Output(state) / 2147483648 - 1; // uniform in (-1, 1)
      state = mulberry32Step(state);
      v = mulberry32Output(state) / 2147483648 - 1;
      radius = u * u + v * v;
    } while (radius >= 1 || radius === 0);
    const scale = Math.sqrt((-2 * Math.log(radius)) / radius);
    values[index] = u * scale;
    if (index + 1 < size) values[index + 1] = v * scale;
  }
  return tf.tensor(values, [...shape], "float32");
}
