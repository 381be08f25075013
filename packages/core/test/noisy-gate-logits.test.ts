import "@tensorflow/tfjs-backend-wasm";
import { noisyGateLogits, registerFastKernels, ShapeError } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { expectAllClose, onBackend, seededValues, useFastWasmKernels } from "./helpers.js";

const native = useFastWasmKernels();

// Every path: the composition on cpu and on wasm without the add-on's kernels, and (when the
// add-on builds here) the native kernel.
async function onEveryPath(body: (path: string) => void): Promise<void> {
  await onBackend("cpu", () => body("cpu"));
  if (!native) return;
  await onBackend("wasm", () => {
    registerFastKernels("wasm");
    body("wasm native");
  });
}

// Value and gradients (of sum(out * weights)) for the three inputs as host arrays.
function run(logits: Float32Array, noiseLogits: Float32Array, noise: Float32Array, shape: [number, number]) {
  return tf.tidy(() => {
    const tensors = [logits, noiseLogits].map((values) => tf.variable(tf.tensor2d(values, shape)));
    const sample = tf.tensor2d(noise, shape);
    const weights = tf.tensor2d(seededValues(shape[0] * shape[1], 9), shape);
    let value: Float32Array = new Float32Array();
    const { grads } = tf.variableGrads(() => {
      const out = noisyGateLogits(tensors[0] as tf.Tensor2D, tensors[1] as tf.Tensor2D, sample);
      value = out.dataSync().slice() as Float32Array;
      return tf.sum(tf.mul(out, weights)) as tf.Scalar;
    }, tensors);
    const result = {
      value,
      logitsGradient: grads[tensors[0]!.name]!.dataSync().slice() as Float32Array,
      noiseLogitsGradient: grads[tensors[1]!.name]!.dataSync().slice() as Float32Array,
      weights: weights.dataSync().slice() as Float32Array,
    };
    for (const tensor of tensors) tensor.dispose();
    return result;
  });
}

describe("noisyGateLogits", () => {
  it("computes hand-checked values on every path", async () => {
    // softplus(0) = ln 2; softplus(ln 3) = ln 4; softplus(-ln 3) = ln(4 / 3); softplus(30) = 30.
    const logits = Float32Array.from([1, -2, 0.5, 0]);
    const noiseLogits = Float32Array.from([0, Math.log(3), -Math.log(3), 30]);
    const noise = Float32Array.from([2, -1, 3, 0.5]);
    const expected = [1 + 2 * Math.LN2, -2 - Math.log(4), 0.5 + 3 * Math.log(4 / 3), 15];
    await onEveryPath(() => {
      const out = tf.tidy(() =>
        noisyGateLogits(
          tf.tensor2d(logits, [2, 2]),
          tf.tensor2d(noiseLogits, [2, 2]),
          tf.tensor2d(noise, [2, 2]),
        ).dataSync(),
      );
      expectAllClose(out, expected, 1e-6);
    });
  });

  it("has the gradients dy and dy * noise * sigmoid(noiseLogits), checked by hand and by finite differences", async () => {
    const shape: [number, number] = [6, 5];
    const logits = seededValues(30, 1);
    const noiseLogits = seededValues(30, 2).map((value) => value * 6);
    const noise = seededValues(30, 3).map((value) => value * 2);
    await onEveryPath((path) => {
      const { logitsGradient, noiseLogitsGradient, weights } = run(logits, noiseLogits, noise, shape);
      expectAllClose(logitsGradient, weights, 1e-7);
      const sigmoid = (value: number) => 1 / (1 + Math.exp(-value));
      expectAllClose(
        noiseLogitsGradient,
        Array.from(weights, (weight, index) => weight * noise[index]! * sigmoid(noiseLogits[index]!)),
        2e-6,
      );
      for (const position of [0, 7, 19, 29]) {
        const shifted = (delta: number) => {
          const values = noiseLogits.slice();
          values[position]! += delta;
          const { value } = run(logits, values, noise, shape);
          return value.reduce((sum, entry, index) => sum + entry * weights[index]!, 0);
        };
        const numeric = (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
        expect(Math.abs(numeric - noiseLogitsGradient[position]!), `${path} [${position}]`).toBeLessThan(
          2e-3 * Math.max(1, Math.abs(numeric)),
        );
      }
    });
  });

  it.runIf(native)(
    "gives the stock composition's values and gradients on the native path, extremes included",
    async () => {
      const shape: [number, number] = [64, 37]; // 2368 elements: the vector loop and its tail
      const logits = seededValues(2368, 4);
      const noiseLogits = seededValues(2368, 5).map((value, index) =>
        index < 12 ? [0, -0, 13.9, 14, 20, 80, -13.9, -14, -20, -80, 1e-8, -1e-8][index]! : value * 30,
      );
      const noise = seededValues(2368, 6).map((value) => value * 3);
      const cpu = await onBackend("cpu", () => run(logits, noiseLogits, noise, shape));
      const wasm = await onBackend("wasm", () => {
        registerFastKernels("wasm");
        return run(logits, noiseLogits, noise, shape);
      });
      expectAllClose(wasm.value, cpu.value, 1e-6);
      expectAllClose(wasm.logitsGradient, cpu.logitsGradient, 0);
      expectAllClose(wasm.noiseLogitsGradient, cpu.noiseLogitsGradient, 1e-6);
    },
  );

  it.runIf(native)("propagates NaN and infinities like the composition", async () => {
    const noiseLogits = Float32Array.from([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -100,
    ]);
    const values = await onBackend("wasm", () => {
      registerFastKernels("wasm");
      return tf.tidy(() =>
        noisyGateLogits(tf.zeros([1, 4]), tf.tensor2d(noiseLogits, [1, 4]), tf.ones([1, 4])).dataSync(),
      );
    });
    expect(Number.isNaN(values[0])).toBe(true);
    expect(values[1]).toBe(Number.POSITIVE_INFINITY);
    expect(values[2]).toBe(0);
    expect(values[3]).toBeLessThan(1e-37); // e^-100 underflows; the composition gives a subnormal
  });

  it("leaves no tensor behind, forward only and with gradients", async () => {
    await onEveryPath(() => {
      const inputs = [1, 2, 3].map((seed) => tf.tensor2d(seededValues(12, seed), [3, 4]));
      const variables = [tf.variable(inputs[0]!), tf.variable(inputs[1]!)] as tf.Variable<tf.Rank.R2>[];
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        noisyGateLogits(inputs[0] as tf.Tensor2D, inputs[1] as tf.Tensor2D, inputs[2] as tf.Tensor2D);
      });
      const { value, grads } = tf.variableGrads(
        () => tf.sum(noisyGateLogits(variables[0]!, variables[1]!, inputs[2] as tf.Tensor2D)) as tf.Scalar,
        variables,
      );
      value.dispose();
      tf.dispose(grads);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([...inputs, ...variables]);
    });
  });

  it("rejects bad ranks, dtypes and shapes, naming the argument", async () => {
    await onBackend("cpu", () => {
      tf.tidy(() => {
        const good = tf.zeros([2, 3]) as tf.Tensor2D;
        expect(() => noisyGateLogits(tf.zeros([6]) as unknown as tf.Tensor2D, good, good)).toThrow(
          /noisyGateLogits logits/,
        );
        expect(() => noisyGateLogits(good, tf.zeros([2, 3], "int32") as tf.Tensor2D, good)).toThrow(
          /noisyGateLogits noiseLogits/,
        );
        expect(() => noisyGateLogits(good, good, tf.zeros([3, 2]) as tf.Tensor2D)).toThrow(ShapeError);
        expect(() => noisyGateLogits(good, good, tf.zeros([3, 2]) as tf.Tensor2D)).toThrow(
          "noisyGateLogits noise must have the shape of logits [2, 3], received [3, 2]",
        );
      });
    });
  });
});
