import "@tensorflow/tfjs-backend-wasm";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConfigError,
  describeFastKernels,
  nativeGemmStatus,
  registerFastKernels,
  unregisterFastKernels,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findOrBuildNativeGemm, loadNativeGemm } from "../src/kernels/native-gemm.js";

// The add-on needs a C compiler, the Node headers and a BLAS library: where one is missing the
// tests below check the fallback instead of the add-on.
const status = loadNativeGemm();
const scratch = mkdtempSync(join(tmpdir(), "mdrec-native-"));

beforeAll(async () => {
  await tf.setBackend("wasm");
  await tf.ready();
});

afterAll(async () => {
  unregisterFastKernels("wasm");
  rmSync(scratch, { recursive: true, force: true });
  await tf.setBackend("cpu");
});

/** Largest |expected - actual| / (1 + |expected|) over the elements. */
function largestRelativeDifference(expected: Float32Array, actual: Float32Array): number {
  let largest = 0;
  expected.forEach((value, index) => {
    largest = Math.max(largest, Math.abs(value - actual[index]!) / (1 + Math.abs(value)));
  });
  return largest;
}

describe("native GEMM add-on", () => {
  it("falls back with a reason, never an exception, when the compiler is missing", () => {
    const result = findOrBuildNativeGemm({
      ...process.env,
      CC: join(scratch, "no-such-cc"),
      MDREC_CACHE_DIR: scratch,
    });
    expect(result.available).toBe(false);
    if (!result.available)
      expect(result.reason).toMatch(/no-such-cc could not build the add-on|Node headers/);
    expect(readdirSync(scratch).filter((file) => file.endsWith(".partial"))).toEqual([]);
  });

  it.runIf(status.available)("builds once into the cache directory, then loads the cached build", () => {
    const directory = join(scratch, "cache");
    const first = findOrBuildNativeGemm({ ...process.env, MDREC_CACHE_DIR: directory });
    const second = findOrBuildNativeGemm({ ...process.env, MDREC_CACHE_DIR: directory });
    expect(first).toMatchObject({ available: true, built: true });
    expect(second).toMatchObject({ available: true, built: false });
    expect(readdirSync(directory)).toHaveLength(1);
  });

  it.runIf(status.available)("adds a bias and clamps negatives in place, bounds-checked", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 8);
    const floats = new Float32Array(buffer);
    floats.set([1, -2, -3, 4], 0); // [2, 2] matrix
    floats.set([0.5, 1], 4); // bias [2]
    status.gemm.biasActivation(buffer, 0, 2, 2, 16, true);
    expect(Array.from(floats.subarray(0, 4))).toEqual([1.5, 0, 0, 5]);
    status.gemm.biasActivation(buffer, 0, 2, 2, -1, false); // neither: unchanged
    expect(Array.from(floats.subarray(0, 4))).toEqual([1.5, 0, 0, 5]);
    expect(() => status.gemm.biasActivation(buffer, 16, 2, 4, -1, true)).toThrow(
      "biasActivation: a matrix lies outside the buffer or is misaligned",
    );
    expect(() => status.gemm.biasActivation(buffer, 0, 2, 2, 30, true)).toThrow(
      /outside the buffer or is misaligned/,
    );
  });

  it.runIf(status.available)("computes a hand-checkable product and bounds-checks every matrix", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 32);
    const floats = new Float32Array(buffer);
    floats.set([1, 2, 3, 4, 5, 6], 0); // A [2, 3]
    floats.set([7, 8, 9, 10, 11, 12], 6); // B [3, 2]
    status.gemm.sgemmBatched(buffer, false, false, 2, 2, 3, 1, 0, 3, 0, 24, 2, 0, 48, 2, 0);
    expect(Array.from(floats.subarray(12, 16))).toEqual([58, 64, 139, 154]);
    // A narrow product runs on one BLAS thread and leaves the thread count as it was.
    status.gemm.setThreads(2);
    floats.fill(0, 12, 16);
    status.gemm.sgemmBatched(buffer, false, false, 2, 2, 3, 1, 0, 3, 0, 24, 2, 0, 48, 2, 0);
    expect(Array.from(floats.subarray(12, 16))).toEqual([58, 64, 139, 154]);
    expect(status.gemm.info().threads).toBe(2);
    status.gemm.setThreads(1);
    // A^T with A stored [3, 2]: the same product through BLAS's own transpose.
    floats.set([1, 4, 2, 5, 3, 6], 16);
    status.gemm.sgemmBatched(buffer, true, false, 2, 2, 3, 1, 64, 2, 0, 24, 2, 0, 48, 2, 0);
    expect(Array.from(floats.subarray(12, 16))).toEqual([58, 64, 139, 154]);
    expect(() =>
      status.gemm.sgemmBatched(buffer, false, false, 2, 2, 3, 2, 0, 3, 6, 24, 2, 6, 100, 2, 4),
    ).toThrow("sgemmBatched: a matrix lies outside the buffer");
    expect(() =>
      status.gemm.sgemmBatched(buffer, false, false, 2, 2, 3, 1, 0, 2, 0, 24, 2, 0, 48, 2, 0),
    ).toThrow("sgemmBatched: leading dimensions or alignment out of range");
    expect(() =>
      status.gemm.sgemmBatched(
        new Float32Array(4) as unknown as ArrayBuffer,
        false,
        false,
        1,
        1,
        1,
        1,
        0,
        1,
        0,
        0,
        1,
        0,
        0,
        1,
        0,
      ),
    ).toThrow("sgemmBatched: argument 0 must be an ArrayBuffer");
  });

  it.runIf(status.available)("runs small batched products in plain loops, every layout", () => {
    if (!status.available) return;
    // Two batch entries of [2, 3] @ [3, 2] (12 multiply-adds each: under the BLAS threshold).
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    floats.set([1, 2, 3, 4, 5, 6, 0, 1, 0, 1, 0, 1], 0); // A_0, A_1 [2, 3]
    floats.set([7, 8, 9, 10, 11, 12, 1, 2, 3, 4, 5, 6], 12); // B_0, B_1 [3, 2]
    status.gemm.sgemmBatched(buffer, false, false, 2, 2, 3, 2, 0, 3, 6, 48, 2, 6, 96, 2, 4);
    expect(Array.from(floats.subarray(24, 32))).toEqual([58, 64, 139, 154, 3, 4, 6, 8]);
    // The same products from transposed storage: A_i^T stored [3, 2], B_i^T stored [2, 3].
    floats.set([1, 4, 2, 5, 3, 6, 0, 1, 1, 0, 0, 1], 32); // A_0^T, A_1^T
    floats.set([7, 9, 11, 8, 10, 12, 1, 3, 5, 2, 4, 6], 44); // B_0^T, B_1^T
    floats.fill(-1, 24, 32);
    status.gemm.sgemmBatched(buffer, true, true, 2, 2, 3, 2, 128, 2, 6, 176, 3, 6, 96, 2, 4);
    expect(Array.from(floats.subarray(24, 32))).toEqual([58, 64, 139, 154, 3, 4, 6, 8]);
    // An empty inner dimension writes zeros.
    status.gemm.sgemmBatched(buffer, false, false, 2, 2, 0, 2, 0, 3, 6, 48, 2, 6, 96, 2, 4);
    expect(Array.from(floats.subarray(24, 32))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it.runIf(status.available)("runs grouped products with a per-group bias and relu, bounds-checked", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    // Rows of A [3, 2] in groups of 2, 0 and 1 rows; W_g [2, 2] per group; bias_g [2].
    floats.set([1, 2, 3, 4, 5, 6], 0); // A
    floats.set([1, 0, 0, 1, 0, 0, 0, 0, -1, 1, 1, -1], 8); // W_0 = I, W_1 = 0, W_2
    floats.set([10, -10, 0, 0, 0.5, 0.5], 20); // bias rows
    const plan = (groups: number[][]) => Float64Array.from(groups.flat());
    const forward = plan([
      [2, 2, 0, 32, 128, 80],
      [0, 2, 16, 48, 144, 88],
      [1, 2, 16, 64, 144, 96],
    ]);
    status.gemm.sgemmGrouped(buffer, false, false, 2, 2, 2, 2, forward, true);
    // Group 0: [1, 2] + [10, -10] -> [11, 0]; [3, 4] -> [13, 0]; group 2: [5, 6] @ W_2 = [1, -1] + 0.5.
    expect(Array.from(floats.subarray(32, 38))).toEqual([11, 0, 13, 0, 1.5, 0]);
    // Weight gradients A_g^T @ dy_g: group 1 has no rows, so its [2, 2] block is zeros.
    floats.set([1, 1, 1, 1, 1, 1], 40); // dy [3, 2]
    floats.fill(7, 48, 60);
    const weights = plan([
      [2, 2, 0, 160, 192, -1],
      [2, 0, 16, 176, 208, -1],
      [2, 1, 16, 176, 224, -1],
    ]);
    status.gemm.sgemmGrouped(buffer, true, false, 2, 2, 2, 2, weights, false);
    expect(Array.from(floats.subarray(48, 60))).toEqual([4, 4, 6, 6, 0, 0, 0, 0, 5, 5, 6, 6]);
    expect(() =>
      status.gemm.sgemmGrouped(buffer, false, false, 2, 2, 2, 2, plan([[2, 2, 0, 32, 250, -1]]), false),
    ).toThrow("sgemmGrouped: a matrix of the plan lies outside the buffer or is misaligned");
    expect(() =>
      status.gemm.sgemmGrouped(buffer, false, false, 2, 2, 2, 2, plan([[2, 2, 0, 32, -4, -1]]), false),
    ).toThrow("sgemmGrouped: plan entries must be non-negative integers below 2^33 (biasOffset may be -1)");
    expect(() =>
      status.gemm.sgemmGrouped(buffer, false, false, 2, 2, 2, 2, Float64Array.from([2, 2, 0]), false),
    ).toThrow("sgemmGrouped: plan must be a Float64Array of 6 numbers per group");
  });

  it.runIf(status.available)("spreads large products over its threads, deterministically", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 << 20);
    const floats = new Float32Array(buffer);
    for (let index = 0; index < floats.length; index++) floats[index] = Math.sin(index * 0.37) * 0.5;
    const MB = 1 << 20;
    // `batch` products [128, 128] @ B_i (B_i at byte bOffset + 4 * i * strideB), all written at 2 MB.
    const squareProducts = (batch: number, bOffset: number, strideB: number) =>
      status.gemm.sgemmBatched(
        buffer,
        false,
        false,
        128,
        128,
        128,
        batch,
        0,
        128,
        0,
        bOffset,
        128,
        strideB,
        2 * MB,
        128,
        0,
      );
    const outputs = (threads: number): Float32Array[] => {
      status.gemm.setThreads(threads);
      const results: Float32Array[] = [];
      const take = (offset: number, count: number) =>
        results.push(floats.slice(offset / 4, offset / 4 + count));
      // One product: split by rows on two threads ([256, 96] @ [96, 160], 3.9M multiply-adds) ...
      status.gemm.sgemmBatched(buffer, false, false, 256, 160, 96, 1, 0, 96, 0, MB, 160, 0, 2 * MB, 160, 0);
      take(2 * MB, 256 * 160);
      // ... and by columns ([96, 112] @ [112, 400]^T, 4.3M).
      status.gemm.sgemmBatched(buffer, false, true, 96, 400, 112, 1, 0, 112, 0, MB, 112, 0, 2 * MB, 400, 0);
      take(2 * MB, 96 * 400);
      // Column blocks side by side in the rows of C (the block-diagonal expert layers).
      status.gemm.sgemmBatched(
        buffer,
        false,
        false,
        300,
        64,
        128,
        3,
        0,
        384,
        128,
        MB,
        64,
        128 * 64,
        2 * MB,
        192,
        64,
      );
      take(2 * MB, 300 * 192);
      // Uneven expert segments, bias and relu, one group empty.
      const rows = [130, 0, 47, 201, 90];
      const plan = new Float64Array(6 * rows.length);
      let start = 0;
      rows.forEach((count, group) => {
        plan.set(
          [
            count,
            128,
            4 * start * 128,
            MB + 4 * group * 128 * 144,
            2 * MB + 4 * start * 144,
            3 * MB + 4 * group * 144,
          ],
          6 * group,
        );
        start += count;
      });
      status.gemm.sgemmGrouped(buffer, false, false, 144, 128, 144, 144, plan, true);
      take(2 * MB, start * 144);
      // Overlapping outputs (C stride 0) are written in order: the last entry wins.
      squareProducts(2, MB, 128 * 128);
      take(2 * MB, 128 * 128);
      return results;
    };
    const single = outputs(1);
    const pooled = outputs(2);
    const again = outputs(2);
    status.gemm.setThreads(1);
    // Split products may take OpenBLAS kernels of another block size (last-bit differences), so
    // the pooled results match the single-thread ones to rounding, and themselves bit for bit.
    single.forEach((values, index) => {
      expect(largestRelativeDifference(values, pooled[index]!)).toBeLessThan(1e-5);
      expect(again[index]).toEqual(pooled[index]);
    });
    // The overlapping call equals the second entry's product alone.
    squareProducts(1, MB + 4 * 128 * 128, 0);
    expect(floats.slice((2 * MB) / 4, (2 * MB) / 4 + 128 * 128)).toEqual(single[4]);
  });

  it.runIf(status.available)("gives the same bits over many back-to-back pooled jobs, joined or not", () => {
    if (!status.available) return;
    // Each pooled job is claimed piece by piece; a worker that arrives after the caller has taken
    // every piece sits it out. Jobs posted back to back (a late worker may meet the next one)
    // must each finish whole and the same whoever ran which piece.
    const buffer = new ArrayBuffer(4 << 20);
    const floats = new Float32Array(buffer);
    for (let index = 0; index < floats.length; index++) floats[index] = Math.cos(index * 0.11) * 0.5;
    const MB = 1 << 20;
    status.gemm.setThreads(2);
    const product = (m: number) => {
      // [m, 128] @ [128, 192] (>= 3.1M multiply-adds from m = 128: pooled), written at 2 MB.
      status.gemm.sgemmBatched(buffer, false, false, m, 192, 128, 1, 0, 128, 0, MB, 192, 0, 2 * MB, 192, 0);
      return floats.slice((2 * MB) / 4, (2 * MB) / 4 + m * 192);
    };
    const sizes = [128, 300, 160, 512];
    const first = sizes.map(product);
    for (let round = 0; round < 150; round++) {
      const index = round % sizes.length;
      const result = product(sizes[index]!);
      const expected = first[index]!;
      if (Buffer.compare(Buffer.from(result.buffer), Buffer.from(expected.buffer)) !== 0) {
        throw new Error(`round ${round} ([${sizes[index]}, 128] @ [128, 192]) differs from the first run`);
      }
    }
    status.gemm.setThreads(1);
  });

  it.runIf(status.available)("serves callers on several threads at once (Node worker threads)", async () => {
    if (!status.available) return;
    // Each worker loads the add-on and multiplies [256, 128] @ [128, 160] (5.2M multiply-adds,
    // pooled when the pool is free, on the worker's own thread when another caller holds it).
    const source = `
      const { parentPort, workerData } = require("node:worker_threads");
      const addon = { exports: {} };
      process.dlopen(addon, workerData.path);
      addon.exports.setThreads(2);
      const buffer = new ArrayBuffer(4 * (256 * 128 + 128 * 160 + 256 * 160));
      const floats = new Float32Array(buffer);
      for (let i = 0; i < 256 * 128 + 128 * 160; i++) floats[i] = Math.sin(i * 0.37) * 0.5;
      const c = 4 * (256 * 128 + 128 * 160);
      let first = null;
      for (let round = 0; round < 40; round++) {
        addon.exports.sgemmBatched(buffer, false, false, 256, 160, 128, 1, 0, 128, 0, 4 * 256 * 128, 160, 0, c, 160, 0);
        const result = floats.slice(c / 4);
        if (first === null) first = result;
        for (let i = 0; i < result.length; i++) {
          if (Math.abs(result[i] - first[i]) > 1e-5 * (1 + Math.abs(first[i]))) throw new Error("round " + round + " differs");
        }
      }
      parentPort.postMessage(first);
    `;
    const { Worker } = await import("node:worker_threads");
    const run = () =>
      new Promise<Float32Array>((resolve, reject) => {
        const worker = new Worker(source, { eval: true, workerData: { path: status.path } });
        worker.once("message", (value: Float32Array) => resolve(value));
        worker.once("error", reject);
      });
    const results = await Promise.all([run(), run(), run()]);
    // The reference: the same product on this thread, on one thread.
    const buffer = new ArrayBuffer(4 * (256 * 128 + 128 * 160 + 256 * 160));
    const floats = new Float32Array(buffer);
    for (let index = 0; index < 256 * 128 + 128 * 160; index++) floats[index] = Math.sin(index * 0.37) * 0.5;
    const c = 4 * (256 * 128 + 128 * 160);
    status.gemm.setThreads(1);
    status.gemm.sgemmBatched(
      buffer,
      false,
      false,
      256,
      160,
      128,
      1,
      0,
      128,
      0,
      4 * 256 * 128,
      160,
      0,
      c,
      160,
      0,
    );
    const expected = floats.slice(c / 4);
    for (const result of results) expect(largestRelativeDifference(expected, result)).toBeLessThan(1e-5);
  });

  it.runIf(status.available)(
    "computes noisy gate logits and their gradient factor, and checks its ranges",
    () => {
      if (!status.available) return;
      const buffer = new ArrayBuffer(4 * 64);
      const floats = new Float32Array(buffer);
      // 3 elements (the padded tail only): logits at 0, noise logits at 4, noise at 8, out at 12,
      // factor at 16. softplus(0) = ln 2, softplus(ln 3) = ln 4; sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4.
      floats.set([1, -2, 5], 0);
      floats.set([0, Math.log(3), -100], 4);
      floats.set([2, -1, 4], 8);
      status.gemm.noisyGateLogits(buffer, 0, 16, 32, 48, 64, 3);
      const out = Array.from(floats.subarray(12, 15));
      const factor = Array.from(floats.subarray(16, 19));
      [1 + 2 * Math.LN2, -2 - Math.log(4), 5].forEach((value, index) => {
        expect(Math.abs(out[index]! - value)).toBeLessThan(1e-6);
      });
      [1, -0.75, 0].forEach((value, index) => {
        expect(Math.abs(factor[index]! - value)).toBeLessThan(1e-6);
      });
      expect(() => status.gemm.noisyGateLogits(buffer, 0, 16, 32, 48, 64, 50)).toThrow(
        "noisyGateLogits: an array lies outside the buffer or is misaligned",
      );
      expect(() => status.gemm.noisyGateLogits(buffer, 2, 16, 32, 48, 64, 3)).toThrow(/misaligned/);
      expect(() => status.gemm.noisyGateLogits(buffer, 0, 16, 32, 40, 64, 3)).toThrow(
        "noisyGateLogits: the outputs overlap each other or the inputs",
      );
      expect(() => status.gemm.noisyGateLogits(buffer, 0, 16, 32, 48, -4, 3)).toThrow(
        "noisyGateLogits: offsets and count must be integers in [0, 2^33)",
      );
      const missingCount = status.gemm.noisyGateLogits as unknown as (...args: unknown[]) => void;
      expect(() => missingCount(buffer, 0, 16, 32, 48, 64)).toThrow("noisyGateLogits expects 7 arguments");
    },
  );

  it.runIf(status.available)("masks dy by a relu output and sums each segment's bias gradient", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    // Five rows of width 2 in segments [2, 0, 3]: dy at 0, out at 10, dz at 20, bias gradient at 32.
    floats.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0);
    floats.set([1, -1, 0, 2, 3, 3, -5, 1, 1, 0], 10);
    const segments = Int32Array.from([2, 0, 3]);
    status.gemm.epilogueGradient(buffer, 0, 40, 80, 5, 2, segments, 128);
    expect(Array.from(floats.subarray(20, 30))).toEqual([1, 0, 0, 4, 5, 6, 0, 8, 9, 0]);
    expect(Array.from(floats.subarray(32, 38))).toEqual([1, 4, 0, 0, 14, 14]);
    // Linear: dz = dy.
    status.gemm.epilogueGradient(buffer, 0, -1, 80, 5, 2, segments, 128);
    expect(Array.from(floats.subarray(20, 30))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(Array.from(floats.subarray(32, 38))).toEqual([4, 6, 0, 0, 21, 24]);
    // Rows wider than a vector lane group, so the vector and tail paths both run: 1 x 7.
    floats.set([1, 2, 3, 4, 5, 6, 7], 40);
    floats.set([-1, 1, -1, 1, -1, 1, Number.NaN], 48);
    status.gemm.epilogueGradient(buffer, 160, 192, 224, 1, 7, Int32Array.from([1]), 0);
    expect(Array.from(floats.subarray(56, 63))).toEqual([0, 2, 0, 4, 0, 6, 0]);
    expect(() => status.gemm.epilogueGradient(buffer, 0, 40, 80, 5, 2, Int32Array.from([2, 2]), 128)).toThrow(
      /segments do not sum to rows/,
    );
    expect(() => status.gemm.epilogueGradient(buffer, 0, 40, 0, 5, 2, segments, 128)).toThrow(
      "epilogueGradient: the outputs overlap each other or the inputs",
    );
    expect(() => status.gemm.epilogueGradient(buffer, 0, 40, 80, 5, 2, segments, 250)).toThrow(
      /lies outside the buffer/,
    );
  });

  it.runIf(status.available)("gathers table rows side by side, refusing bad ids before writing", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    const ints = new Int32Array(buffer);
    floats.set([0, 1, 2, 3, 4, 5], 0); // table 0 [3, 2]
    floats.set([10, 20, 30], 6); // table 1 [3, 1]
    ints.set([2, 0], 10); // ids 0
    ints.set([1, 2], 12); // ids 1
    const plan = Int32Array.from([0, 3, 2, 40, 24, 3, 1, 48]);
    expect(status.gemm.gatherConcat(buffer, 64, 2, plan)).toBeNull();
    expect(Array.from(floats.subarray(16, 22))).toEqual([4, 5, 20, 0, 1, 30]);
    floats.fill(-1, 16, 22);
    ints.set([3], 13); // ids 1, row 1 -> 3: out of range
    expect(status.gemm.gatherConcat(buffer, 64, 2, plan)).toEqual([1, 1, 3]);
    expect(Array.from(floats.subarray(16, 22))).toEqual([-1, -1, -1, -1, -1, -1]);
    expect(() => status.gemm.gatherConcat(buffer, 250, 2, plan)).toThrow(
      "gatherConcat: the output offset and rows must be non-negative integers",
    );
    expect(() => status.gemm.gatherConcat(buffer, 248, 2, Int32Array.from([0, 3, 2, 40]))).toThrow(
      "gatherConcat: the output lies outside the buffer",
    );
    expect(() => status.gemm.gatherConcat(buffer, 64, 2, Int32Array.from([0, 300, 2, 40]))).toThrow(
      "gatherConcat: a table or id tensor lies outside the buffer",
    );
    expect(() => status.gemm.gatherConcat(buffer, 64, 2, Int32Array.from([0, 3]))).toThrow(
      "gatherConcat: plan must be an Int32Array of 4 integers per field",
    );
  });

  it.runIf(status.available)("copies strided row blocks, refusing bad plans before writing", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    floats.set([1, 2, 3, 4, 5, 6], 0); // source [2, 3]
    // Columns 1..2 of each source row into a [2, 2] block at float 16, then column 0 at float 24.
    const plan = Float64Array.from([4, 12, 64, 8, 2, 8, 0, 12, 96, 4, 2, 4]);
    status.gemm.copyBlocks(buffer, plan);
    expect(Array.from(floats.subarray(16, 26))).toEqual([2, 3, 5, 6, 0, 0, 0, 0, 1, 4]);
    status.gemm.copyBlocks(buffer, Float64Array.from([0, 4, 200, 4, 0, 4, 0, 4, 200, 4, 3, 0])); // nothing
    floats.fill(-1, 16, 26);
    const refused: [Float64Array, string][] = [
      [
        Float64Array.from([0, 12, 64, 8, 2]),
        "copyBlocks: plan must be a Float64Array of 6 numbers per block",
      ],
      [Float64Array.from([0, 12, 64, 8, 2, -4]), "copyBlocks: plan entries must be non-negative integers"],
      [Float64Array.from([0, 12.5, 64, 8, 2, 4]), "copyBlocks: plan entries must be non-negative integers"],
      [
        Float64Array.from([0, 12, 64, 8, 2, 4, 0, 12, 250, 8, 2, 4]),
        "copyBlocks: a block lies outside the buffer",
      ],
      [Float64Array.from([0, 12, 8, 12, 2, 12]), "copyBlocks: a block's target overlaps its source"],
    ];
    for (const [badPlan, message] of refused)
      expect(() => status.gemm.copyBlocks(buffer, badPlan)).toThrow(message);
    expect(Array.from(floats.subarray(16, 26))).toEqual(new Array(10).fill(-1));
    expect(() => status.gemm.copyBlocks(buffer, Int32Array.from([0, 0, 0, 0, 0, 0]) as never)).toThrow(
      "copyBlocks: plan must be a Float64Array of 6 numbers per block",
    );
  });

  it.runIf(status.available)("scatters dy's field columns back into each table, refusing bad plans", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    const ints = new Int32Array(buffer);
    floats.set([1, 2, 3, 4, 5, 6, 7, 8, 9], 0); // dy [3, 3]: field 0 in columns 0-1, field 1 in column 2
    ints.set([2, 0, 2], 10); // ids of field 0 (table [3, 2])
    ints.set([1, 1, 0], 14); // ids of field 1 (table [2, 1])
    floats.fill(-5, 20, 28); // stale values: the gradients are zeroed first
    const plan = Int32Array.from([80, 3, 2, 40, 104, 2, 1, 56]);
    status.gemm.scatterConcat(buffer, 0, 3, plan);
    expect(Array.from(floats.subarray(20, 26))).toEqual([4, 5, 0, 0, 1 + 7, 2 + 8]);
    expect(Array.from(floats.subarray(26, 28))).toEqual([9, 3 + 6]);
    expect(() =>
      status.gemm.scatterConcat(buffer, 0, 3, Int32Array.from([80, 3, 2, 40, 84, 2, 1, 56])),
    ).toThrow("scatterConcat: a gradient overlaps dy, the ids or another gradient");
    expect(() =>
      status.gemm.scatterConcat(buffer, 0, 3, Int32Array.from([16, 3, 2, 40, 104, 2, 1, 56])),
    ).toThrow("scatterConcat: a gradient overlaps dy, the ids or another gradient");
    expect(() =>
      status.gemm.scatterConcat(buffer, 0, 3, Int32Array.from([80, 2, 2, 40, 104, 2, 1, 56])),
    ).toThrow("scatterConcat: field 0 row 0 has id 2, not in [0, 2)");
    expect(() => status.gemm.scatterConcat(buffer, 0, 3, Int32Array.from([250, 3, 2, 40]))).toThrow(
      "scatterConcat: a gradient or id tensor lies outside the buffer",
    );
    expect(() => status.gemm.scatterConcat(buffer, 0, 3, Int32Array.from([80, 3, 2]))).toThrow(
      "scatterConcat: plan must be an Int32Array of 4 integers per field",
    );
  });

  it.runIf(status.available)("runs a routed expert pool forward and backward, refusing bad plans", () => {
    if (!status.available) return;
    const buffer = new ArrayBuffer(4 * 64);
    const floats = new Float32Array(buffer);
    floats.set([1, 2, 3, 4], 0); // x [2, 2]
    floats.set([0.25, 0.75, 0.5, 0.5], 4); // slot weights [2, 2]
    floats.set([1, 1, 2, 0], 8); // kernel [2, 2, 1]: expert 0 sums, expert 1 doubles the first
    floats.set([-1, 1], 12); // bias [2, 1]
    // Row 0 -> experts (1, 0), row 1 -> (0, 1); entries grouped by expert.
    const counts = Int32Array.from([2, 2]);
    const rows = Int32Array.from([0, 1, 0, 1]);
    const slots = Int32Array.from([1, 2, 0, 3]);
    const forward = Float64Array.from([2, 2, 0, 16, 64, 112, -1, 1, 32, 48, 96, 0, -1, -1]);
    status.gemm.routedExpertsForward(buffer, [[forward, rows, slots, counts]]);
    expect(Array.from(floats.subarray(16, 24))).toEqual([1, 2, 3, 4, 1, 2, 3, 4]); // routed rows
    expect(Array.from(floats.subarray(24, 28))).toEqual([2, 6, 3, 7]); // expert outputs
    expect(Array.from(floats.subarray(28, 30))).toEqual([0.75 * 2 + 0.25 * 3, 0.5 * 6 + 0.5 * 7]);
    floats.set([1, 2], 32); // dy [2, 1]
    floats.fill(-9, 36, 50); // stale outputs are overwritten
    const backward = Float64Array.from([2, 2, 128, 16, 64, 144, 160, 1, 32, -1, 96, 0, 176, 192]);
    status.gemm.routedExpertsBackward(buffer, [[backward, rows, slots, counts]]);
    expect(Array.from(floats.subarray(36, 40))).toEqual([0.75 + 0.5, 0.75, 1 + 2, 1]); // dx
    expect(Array.from(floats.subarray(40, 44))).toEqual([3, 2, 12, 14]); // dy[row] * output per slot
    expect(Array.from(floats.subarray(44, 48))).toEqual([0.75 + 3, 1.5 + 4, 0.25 + 3, 0.5 + 4]); // dW
    expect(Array.from(floats.subarray(48, 50))).toEqual([1.75, 1.25]); // dBias
    const call =
      (plan: Float64Array, entryRows = rows, entrySlots = slots, entryCounts = counts) =>
      () =>
        status.gemm.routedExpertsForward(buffer, [[plan, entryRows, entrySlots, entryCounts]]);
    expect(call(forward.slice(0, 10))).toThrow(
      "routedExpertsForward: pool 0: plan must be a Float64Array of 7 + 7 x layers numbers (1 to 16 layers)",
    );
    expect(call(forward, rows, slots, Int32Array.from([2, 1]))).toThrow(
      "routedExpertsForward: pool 0: counts sum to 3, must equal the 4 rows",
    );
    expect(call(forward, rows, Int32Array.from([1, 2, 1, 3]))).toThrow(
      "routedExpertsForward: pool 0: entry 2 has row 0 and slot 1; rows must be in [0, 2) and slots a permutation of [0, 4)",
    );
    expect(call(forward, Int32Array.from([0, 1, 2, 1]))).toThrow(/entry 2 has row 2 and slot 0/);
    const overlapping = forward.slice();
    overlapping[5] = 0; // out over x
    expect(call(overlapping)).toThrow(
      "routedExpertsForward: pool 0: tensors 0 and 3 of the plan overlap (an output may share memory with nothing)",
    );
    const outside = forward.slice();
    outside[10] = 4 * 63; // hidden past the end
    expect(call(outside)).toThrow(
      /routedExpertsForward: pool 0: tensor \d+ of the plan lies outside the buffer or is misaligned/,
    );
    expect(() => status.gemm.routedExpertsBackward(buffer, [[forward, rows, slots, counts]])).toThrow(
      /routedExpertsBackward: pool 0: tensor \d+ of the plan lies outside the buffer or is misaligned \(offset -1\)/,
    );
    // Two pools in one call: the same results as one call each, the experts sharing the threads.
    floats.fill(-9, 16, 30);
    const second = forward.slice();
    second[4] = 200; // its routed rows, outputs and mixture elsewhere
    second[10] = 232;
    second[5] = 248;
    status.gemm.routedExpertsForward(buffer, [
      [forward, rows, slots, counts],
      [second, rows, slots, counts],
    ]);
    expect(Array.from(floats.subarray(28, 30))).toEqual([0.75 * 2 + 0.25 * 3, 0.5 * 6 + 0.5 * 7]);
    expect(Array.from(floats.subarray(62, 64))).toEqual([0.75 * 2 + 0.25 * 3, 0.5 * 6 + 0.5 * 7]);
    expect(Array.from(floats.subarray(58, 62))).toEqual([2, 6, 3, 7]);
    expect(() =>
      status.gemm.routedExpertsForward(buffer, [
        [forward, rows, slots, counts],
        [forward, rows, slots, counts],
      ]),
    ).toThrow("routedExpertsForward: an output of pool 0 overlaps tensor 2 of pool 1");
    expect(() => status.gemm.routedExpertsForward(buffer, [])).toThrow(
      "routedExpertsForward: calls must be an array of 1 to 64 pools [plan, rows, slots, counts]",
    );
    expect(() => status.gemm.routedExpertsForward(buffer, [[forward, rows, slots]] as never)).toThrow(
      "routedExpertsForward: pool 0 must be an array [plan, rows, slots, counts]",
    );
  });

  it("is reported by nativeGemmStatus and the backend phrase, and can be switched off", () => {
    registerFastKernels("wasm", { nativeGemm: false });
    expect(nativeGemmStatus()).toEqual({ enabled: false, reason: "disabled by option nativeGemm" });
    expect(describeFastKernels("wasm")).toBe(
      "mdrec fast kernels (no native GEMM: disabled by option nativeGemm)",
    );
    registerFastKernels("wasm", { nativeGemm: true });
    if (status.available) {
      const { core } = status.gemm.info();
      expect(nativeGemmStatus()).toEqual({ enabled: true, library: status.library, core, threads: 1 });
      const details = core === "" ? "" : `${core} kernels, `;
      expect(describeFastKernels("wasm")).toMatch(
        new RegExp(
          `^mdrec fast kernels, native GEMM ${status.library} \\(${details}\\d+ BLAS threads\\), fused Adam$`,
        ),
      );
    } else {
      expect(nativeGemmStatus()).toEqual({ enabled: false, reason: status.reason });
    }
    const previous = process.env.MDREC_NATIVE_GEMM;
    process.env.MDREC_NATIVE_GEMM = "0";
    try {
      registerFastKernels("wasm");
      expect(nativeGemmStatus()).toEqual({ enabled: false, reason: "disabled by MDREC_NATIVE_GEMM" });
    } finally {
      if (previous === undefined) delete process.env.MDREC_NATIVE_GEMM;
      else process.env.MDREC_NATIVE_GEMM = previous;
    }
    unregisterFastKernels("wasm");
    expect(nativeGemmStatus()).toEqual({ enabled: false, reason: "fast kernels not registered" });
    expect(describeFastKernels("wasm")).toBe("stock kernels");
  });

  it("rejects bad options, naming the option and the value received", () => {
    expect(() => registerFastKernels("wasm", { nativeGemm: "yes" as unknown as boolean })).toThrow(
      ConfigError,
    );
    expect(() => registerFastKernels("wasm", { nativeGemm: "yes" as unknown as boolean })).toThrow(
      'registerFastKernels options.nativeGemm must be a boolean, received "yes"',
    );
    expect(() => registerFastKernels("wasm", { blasThreads: 0 })).toThrow(
      "registerFastKernels options.blasThreads must be an integer in [1, 256], received 0",
    );
  });

  it.runIf(status.available)("trains a small network to the same weights as the TypeScript kernels", () => {
    const train = (nativeGemm: boolean) => {
      registerFastKernels("wasm", { nativeGemm });
      return tf.tidy(() => {
        const weights = tf.variable(tf.randomUniform([16, 8], -0.5, 0.5, "float32", 3));
        const x = tf.randomUniform([64, 16], -1, 1, "float32", 4);
        const y = tf.randomUniform([64, 8], -1, 1, "float32", 5);
        const optimizer = tf.train.adam(0.05);
        for (let step = 0; step < 5; step++) {
          optimizer.minimize(() => tf.mean(tf.square(tf.sub(tf.matMul(x, weights), y))) as tf.Scalar);
        }
        optimizer.dispose();
        const values = weights.dataSync().slice();
        weights.dispose();
        return values;
      });
    };
    const typescript = train(false);
    const native = train(true);
    const worst = Math.max(...typescript.map((value, index) => Math.abs(value - native[index]!)));
    expect(worst).toBeLessThan(1e-5);
  });
});
