// Helpers shared by the layer tests: numeric gradient checks, backend switching, temp dirs.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { expect } from "vitest";

/** Asserts two arrays are elementwise within `tolerance`. */
export function expectAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = 1e-5,
): void {
  expect(actual.length).toBe(expected.length);
  for (let index = 0; index < expected.length; index++) {
    const difference = Math.abs(actual[index]! - expected[index]!);
    if (!(difference <= tolerance)) {
      throw new Error(`entry ${index}: ${actual[index]} vs ${expected[index]} (tolerance ${tolerance})`);
    }
  }
}

/** Values of a tensor as a plain array (the tensor is not disposed). */
export function values(tensor: tf.Tensor): number[] {
  return Array.from(tensor.dataSync());
}

/** Runs `fn`, disposes what it returns, and reads the values first. */
export function run(fn: () => tf.Tensor): number[] {
  const tensor = fn();
  const result = values(tensor);
  tensor.dispose();
  return result;
}

/**
 * Compares autodiff gradients of `loss` with central finite differences on three entries
 * (first, middle, last) of each variable. float32, so tolerances are loose.
 * @returns how many entries had a non-zero gradient (so a test can insist the check bit).
 */
export function checkGradients(
  loss: () => tf.Scalar,
  variables: LayerVariable[],
  options: { epsilon?: number; tolerance?: number } = {},
): number {
  const { epsilon = 1e-2, tolerance = 1e-2 } = options;
  const tfVariables = variables.map((variable) => variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(loss, tfVariables);
  value.dispose();
  let nonZero = 0;
  tfVariables.forEach((variable) => {
    const analytic = grads[variable.name]
      ? grads[variable.name]!.dataSync()
      : new Float32Array(variable.size);
    const original = variable.dataSync().slice();
    const entries = [...new Set([0, Math.floor(variable.size / 2), variable.size - 1])];
    for (const entry of entries) {
      const evaluate = (delta: number) => {
        const perturbed = original.slice();
        perturbed[entry] = original[entry]! + delta;
        const update = tf.tensor(perturbed, variable.shape);
        variable.assign(update);
        update.dispose();
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      const numeric = (evaluate(epsilon) - evaluate(-epsilon)) / (2 * epsilon);
      const restore = tf.tensor(original, variable.shape);
      variable.assign(restore);
      restore.dispose();
      const expected = analytic[entry]!;
      const bound = tolerance * Math.max(Math.abs(numeric), Math.abs(expected)) + 1e-3;
      if (!(Math.abs(numeric - expected) <= bound)) {
        throw new Error(`${variable.name}[${entry}]: autodiff ${expected}, finite differences ${numeric}`);
      }
      if (Math.abs(expected) > 1e-4) nonZero += 1;
    }
  });
  tf.dispose(grads);
  return nonZero;
}

/** Autodiff gradients of `loss` with respect to `variables`, as arrays (missing gradients are zeros). */
export function gradientValues(loss: () => tf.Scalar, variables: LayerVariable[]): number[][] {
  const tfVariables = variables.map((variable) => variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(loss, tfVariables);
  value.dispose();
  const result = tfVariables.map((variable) =>
    grads[variable.name] ? values(grads[variable.name]!) : new Array<number>(variable.size).fill(0),
  );
  tf.dispose(grads);
  return result;
}

/** Runs `fn` on the given backend and switches back to `cpu` afterwards. */
export async function onBackend<T>(backend: "wasm" | "cpu", fn: () => T): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  try {
    return fn();
  } finally {
    await tf.setBackend("cpu");
    await tf.ready();
  }
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function temporaryDirectory(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "mdrec-models-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** A seeded `[rows, columns]` float32 tensor with entries in [-1, 1). */
export function seededMatrix(rows: number, columns: number, seed: number): tf.Tensor2D {
  return tf.randomUniform([rows, columns], -1, 1, "float32", seed) as tf.Tensor2D;
}

/** A weighted sum of `output` with fixed pseudo-random weights, so every entry gets a distinct gradient. */
export function probeLoss(output: tf.Tensor): tf.Scalar {
  const weights = tf.randomUniform(output.shape, -1, 1, "float32", 99);
  return tf.sum(tf.mul(output, weights));
}
