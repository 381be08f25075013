import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unregisterFastKernels } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { afterAll, expect } from "vitest";
import { loadNativeGemm } from "../src/kernels/native-gemm.js";

/**
 * For a test file that registers mdrec's wasm kernels: after the file, puts the stock wasm
 * kernels back and returns to `cpu`. Returns whether the native add-on is available here.
 */
export function useFastWasmKernels(): boolean {
  afterAll(async () => {
    unregisterFastKernels("wasm");
    await tf.setBackend("cpu");
  });
  return loadNativeGemm().available;
}

/** The tf.Variable behind a LayerVariable (tfjs-layers keeps it protected). */
export function variableOf(weight: LayerVariable): tf.Variable {
  return (weight as unknown as { val: tf.Variable }).val;
}

/** A fresh temp directory and a cleanup function. */
export async function temporaryDirectory(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "mdrec-core-"));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/**
 * Runs `run` once to warm up (build layers), then asserts that a second run leaves no tensor
 * behind once its result is disposed.
 */
export function expectNoLeak(run: () => tf.TensorContainer | undefined): void {
  tf.dispose(run());
  const before = tf.memory().numTensors;
  tf.dispose(run());
  expect(tf.memory().numTensors).toBe(before);
}

/** Autodiff gradients of `loss` for `weights`, as host arrays keyed by weight name. */
export function autodiff(loss: () => tf.Scalar, weights: LayerVariable[]): Map<string, Float32Array> {
  const { value, grads } = tf.variableGrads(loss, weights.map(variableOf));
  value.dispose();
  const result = new Map<string, Float32Array>();
  for (const weight of weights) {
    const grad = grads[variableOf(weight).name];
    result.set(
      weight.name,
      grad
        ? (grad.dataSync() as Float32Array).slice()
        : new Float32Array(weight.shape.reduce((a, b) => a! * b!, 1)!),
    );
  }
  tf.dispose(grads);
  return result;
}

/**
 * Central finite differences of `loss` with respect to the listed flat positions of `weight`,
 * compared to `expected` (autodiff) within `tolerance` relative to max(1, |expected|).
 */
export function expectFiniteDifferences(
  loss: () => tf.Scalar,
  weight: LayerVariable,
  positions: number[],
  expected: Float32Array,
  { epsilon = 1e-2, tolerance = 1e-2 } = {},
): void {
  const original = weight.read().dataSync().slice() as Float32Array;
  const assign = (values: Float32Array): void => {
    const value = tf.tensor(values, weight.shape as number[], "float32");
    weight.write(value);
    value.dispose();
  };
  const evaluate = (values: Float32Array): number => {
    assign(values);
    return tf.tidy(() => loss().dataSync()[0]!);
  };
  try {
    for (const position of positions) {
      const plus = original.slice();
      plus[position]! += epsilon;
      const minus = original.slice();
      minus[position]! -= epsilon;
      const numeric = (evaluate(plus) - evaluate(minus)) / (2 * epsilon);
      const analytic = expected[position]!;
      const scale = Math.max(1, Math.abs(analytic));
      expect(
        Math.abs(numeric - analytic) / scale,
        `${weight.name}[${position}] numeric ${numeric} vs autodiff ${analytic}`,
      ).toBeLessThan(tolerance);
    }
  } finally {
    assign(original);
  }
}

/** Largest absolute elementwise difference between two arrays of equal length. */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let index = 0; index < a.length; index++) worst = Math.max(worst, Math.abs(a[index]! - b[index]!));
  return worst;
}

/** A layer's weights copied to the host, in `layer.weights` order. */
export function weightValues(weights: LayerVariable[]): Float32Array[] {
  return weights.map((weight) => weight.read().dataSync().slice() as Float32Array);
}

/** Seeded values in [-1, 1) (a linear congruential sequence). */
export function seededValues(count: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

/** Asserts equal lengths and every element within `tolerance`, relative above magnitude 1. */
export function expectAllClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = 1e-5,
): void {
  expect(actual.length).toBe(expected.length);
  for (let index = 0; index < actual.length; index++) {
    expect(Math.abs(actual[index]! - expected[index]!)).toBeLessThanOrEqual(
      tolerance * Math.max(1, Math.abs(expected[index]!)),
    );
  }
}

/** Switches to `backend`, waits for it, then runs `body`. */
export async function onBackend<T>(backend: string, body: () => T): Promise<T> {
  await tf.setBackend(backend);
  await tf.ready();
  return body();
}
