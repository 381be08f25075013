import "@tensorflow/tfjs-backend-wasm";
import {
  blockExpertMatMul,
  nativeGemmStatus,
  registerFastKernels,
  ShapeError,
  segmentExpertMatMul,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { expectAllClose, onBackend, seededValues, useFastWasmKernels } from "./helpers.js";

const native = useFastWasmKernels();

interface Outputs {
  value: Float32Array;
  dx: Float32Array;
  dw: Float32Array;
}

/** Output and gradients of sum(out * probe) for the block and segment layouts. */
function run(layout: "blocks" | "segments"): Outputs {
  return tf.tidy(() => {
    const [experts, inner, outer] = [3, 5, 4];
    const segments = [4, 0, 3];
    const rows = layout === "blocks" ? 6 : 7;
    const columns = layout === "blocks" ? experts * inner : inner;
    const x = tf.tensor2d(seededValues(rows * columns, 1), [rows, columns]);
    const w = tf.tensor3d(seededValues(experts * inner * outer, 2), [experts, inner, outer]);
    const product = (input: tf.Tensor2D, weights: tf.Tensor3D) =>
      layout === "blocks" ? blockExpertMatMul(input, weights) : segmentExpertMatMul(input, weights, segments);
    const value = product(x, w);
    const probe = tf.tensor(seededValues(value.size, 3), value.shape);
    const [dx, dw] = tf.grads((input: tf.Tensor, weights: tf.Tensor) =>
      tf.sum(tf.mul(product(input as tf.Tensor2D, weights as tf.Tensor3D), probe)),
    )([x, w]);
    return {
      value: value.dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array,
      dw: dw!.dataSync() as Float32Array,
    } as never;
  }) as unknown as Outputs;
}

describe("blockExpertMatMul and segmentExpertMatMul", () => {
  it("compute hand-checked products", async () => {
    await onBackend("cpu", () => {
      // Two experts, K = 2, M = 1: expert 0 sums its columns, expert 1 takes 2x its first column.
      const weights = tf.tensor3d([1, 1, 2, 0], [2, 2, 1]);
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
      expect(Array.from(blockExpertMatMul(x, weights).dataSync())).toEqual([3, 6, 11, 14]);
      const rows = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      // Row 0 -> expert 0, rows 1-2 -> expert 1.
      expect(Array.from(segmentExpertMatMul(rows, weights, [1, 2]).dataSync())).toEqual([3, 6, 10]);
      expect(segmentExpertMatMul(tf.zeros([0, 2]) as tf.Tensor2D, weights, [0, 0]).shape).toEqual([0, 1]);
    });
  });

  it("has gradients that match finite differences (cpu)", async () => {
    await onBackend("cpu", () => {
      const x = tf.variable(tf.tensor2d(seededValues(3 * 4, 5), [3, 4])); // [B=3, N*K=4]
      const y = tf.variable(tf.tensor2d(seededValues(3 * 2, 7), [3, 2])); // [R=3, K=2]
      const w = tf.variable(tf.tensor3d(seededValues(2 * 2 * 3, 6), [2, 2, 3])); // [N=2, K=2, M=3]
      const loss = () =>
        tf.add(
          tf.sum(tf.square(blockExpertMatMul(x, w))),
          tf.sum(tf.square(segmentExpertMatMul(y, w, [2, 1]))),
        ) as tf.Scalar;
      const { value, grads } = tf.variableGrads(loss, [x, y, w]);
      value.dispose();
      const analytic = grads[w.name]!.dataSync();
      const base = w.dataSync().slice();
      for (const position of [0, 4, 11]) {
        const shifted = (delta: number) => {
          const next = base.slice();
          next[position]! += delta;
          w.assign(tf.tensor3d(next, w.shape as [number, number, number]));
          return loss().dataSync()[0]!;
        };
        const numeric = (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
        expect(Math.abs(numeric - analytic[position]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
      }
      tf.dispose([x, y, w, grads]);
    });
  });

  it.runIf(native)("give the cpu results on wasm with the native GEMM, and without it", async () => {
    const cpu = { blocks: await onBackend("cpu", () => run("blocks")), segments: run("segments") };
    await onBackend("wasm", () => registerFastKernels("wasm"));
    expect(nativeGemmStatus().enabled).toBe(true);
    for (const nativeGemm of [true, false]) {
      registerFastKernels("wasm", { nativeGemm });
      for (const layout of ["blocks", "segments"] as const) {
        const wasm = run(layout);
        expectAllClose(wasm.value, cpu[layout].value);
        expectAllClose(wasm.dx, cpu[layout].dx);
        expectAllClose(wasm.dw, cpu[layout].dw);
      }
    }
    registerFastKernels("wasm");
  });

  it.runIf(native)("leaves no tensor behind on the native path", async () => {
    await onBackend("wasm", () => registerFastKernels("wasm"));
    run("blocks");
    const before = tf.memory().numTensors;
    run("blocks");
    run("segments");
    expect(tf.memory().numTensors).toBe(before);
  });

  it("rejects mismatched shapes and row counts, naming them", async () => {
    await onBackend("cpu", () => {
      const weights = tf.zeros([2, 3, 4]) as tf.Tensor3D;
      expect(() => blockExpertMatMul(tf.zeros([5, 5]) as tf.Tensor2D, weights)).toThrow(
        new ShapeError(
          "blockExpertMatMul x must have 2 x 3 = 6 columns (weights [2, 3, 4]), received shape [5, 5]",
        ),
      );
      expect(() => segmentExpertMatMul(tf.zeros([5, 3]) as tf.Tensor2D, weights, [2])).toThrow(
        /segmentRows must list 2 row counts \(one per expert\), received \[2\]/,
      );
      expect(() => segmentExpertMatMul(tf.zeros([5, 3]) as tf.Tensor2D, weights, [2, 2])).toThrow(
        /segmentRows must sum to the 5 rows of x, received \[2,2\] \(sum 4\)/,
      );
      expect(() => segmentExpertMatMul(tf.zeros([5, 3]) as tf.Tensor2D, weights, [6, -1])).toThrow(
        /segmentRows\[1\]/,
      );
      expect(() => segmentExpertMatMul(tf.zeros([5, 4]) as tf.Tensor2D, weights, [5, 0])).toThrow(
        /must have 3 columns/,
      );
      tf.dispose(weights);
    });
  });
});
