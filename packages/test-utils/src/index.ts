/**
 * Test helpers shared by the mdrec packages: run on a backend, compare tensors, check gradients
 * against finite differences, check for tensor leaks, make temp directories.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { expect } from "vitest";

/** Runs `fn` on `backend`, switching back to cpu afterwards. */
export async function onBackend<T>(backend: "cpu" | "wasm", fn: () => T | Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  try {
    return await fn();
  } finally {
    await tf.setBackend("cpu");
    await tf.ready();
  }
}

/** A fresh temporary directory, removed by the returned cleanup. */
export async function temporaryDirectory(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "mdrec-test-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** A number or arbitrarily nested arrays of numbers. */
export type NestedNumbers = number | readonly NestedNumbers[];

function flatten(values: NestedNumbers): number[] {
  return typeof values === "number" ? [values] : values.flatMap((value) => flatten(value));
}

/** Asserts two tensors (or nested arrays) agree elementwise within `tolerance`. */
export function expectClose(
  actual: tf.Tensor | NestedNumbers,
  expected: tf.Tensor | NestedNumbers,
  tolerance = 1e-5,
): void {
  const a = actual instanceof tf.Tensor ? Array.from(actual.dataSync()) : flatten(actual);
  const b = expected instanceof tf.Tensor ? Array.from(expected.dataSync()) : flatten(expected);
  if (actual instanceof tf.Tensor && expected instanceof tf.Tensor)
    expect(actual.shape).toEqual(expected.shape);
  expect(a.length).toBe(b.length);
  const worst = a.reduce((max, value, index) => Math.max(max, Math.abs(value - (b[index] as number))), 0);
  if (!(worst <= tolerance)) {
    throw new Error(
      `max abs difference ${worst} > ${tolerance}\nactual:   ${a.slice(0, 12).join(", ")}\nexpected: ${b.slice(0, 12).join(", ")}`,
    );
  }
}

/**
 * Compares autodiff gradients of `loss` with central finite differences at a few positions of
 * each input (float32 forward, so `eps` is large and the tolerance is relative ~1e-2).
 */
export function checkInputGradients(
  loss: (...inputs: tf.Tensor[]) => tf.Scalar,
  inputs: tf.Tensor[],
  probesPerInput = 3,
  eps = 1e-2,
): void {
  const analytic = tf.grads(loss)(inputs);
  inputs.forEach((input, inputIndex) => {
    const values = input.dataSync() as Float32Array;
    const gradient = analytic[inputIndex]!.dataSync();
    const positions = probePositions(values.length, probesPerInput);
    for (const position of positions) {
      const evaluate = (delta: number) => {
        const shifted = Float32Array.from(values);
        shifted[position]! += delta;
        const replaced = inputs.map((other, index) =>
          index === inputIndex ? tf.tensor(shifted, input.shape, input.dtype) : other,
        );
        const value = tf.tidy(() => loss(...replaced).dataSync()[0]!);
        replaced[inputIndex]!.dispose();
        return value;
      };
      const numeric = (evaluate(eps) - evaluate(-eps)) / (2 * eps);
      expectGradientClose(gradient[position]!, numeric, `input ${inputIndex}[${position}]`);
    }
  });
  tf.dispose(analytic);
}

/** Like {@link checkInputGradients} for variables (layer weights), perturbed in place. */
export function checkVariableGradients(
  loss: () => tf.Scalar,
  variables: tf.Variable[],
  probesPerVariable = 3,
  eps = 1e-2,
): void {
  const { value, grads } = tf.variableGrads(loss, variables);
  value.dispose();
  for (const variable of variables) {
    const original = variable.dataSync().slice() as Float32Array;
    const gradient = grads[variable.name]!.dataSync();
    for (const position of probePositions(original.length, probesPerVariable)) {
      const evaluate = (delta: number) => {
        const shifted = Float32Array.from(original);
        shifted[position]! += delta;
        tf.tidy(() => variable.assign(tf.tensor(shifted, variable.shape)));
        return tf.tidy(() => loss().dataSync()[0]!);
      };
      const numeric = (evaluate(eps) - evaluate(-eps)) / (2 * eps);
      tf.tidy(() => variable.assign(tf.tensor(original, variable.shape)));
      expectGradientClose(gradient[position]!, numeric, `${variable.name}[${position}]`);
    }
  }
  tf.dispose(grads);
}

function probePositions(size: number, count: number): number[] {
  if (size <= count) return Array.from({ length: size }, (_, index) => index);
  return Array.from({ length: count }, (_, index) => Math.floor(((index + 0.5) * size) / count));
}

function expectGradientClose(analytic: number, numeric: number, where: string): void {
  const tolerance = 1e-2 * Math.max(1, Math.abs(numeric)) + 2e-3;
  if (!(Math.abs(analytic - numeric) <= tolerance)) {
    throw new Error(`gradient at ${where}: autodiff ${analytic} vs finite difference ${numeric}`);
  }
}

/** Asserts that `fn` (run inside tf.tidy) leaves the number of live tensors unchanged. */
export function expectNoLeak(fn: () => unknown): void {
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    fn();
  });
  expect(tf.memory().numTensors).toBe(before);
}
