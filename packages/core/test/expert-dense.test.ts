import "@tensorflow/tfjs-backend-wasm";
import {
  type Activation,
  blockExpertDense,
  ConfigError,
  registerFastKernels,
  ShapeError,
  segmentExpertDense,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { expectAllClose, onBackend, seededValues, useFastWasmKernels } from "./helpers.js";

const native = useFastWasmKernels();

type Layout = "blocks" | "segments";
const SEGMENTS = [4, 0, 3];

/** Output and gradients (x, weights, bias) of sum(layer * probe) on the current backend. */
function run(layout: Layout, activation: Activation): Float32Array[] {
  return tf.tidy(() => {
    const [experts, inner, outer] = [3, 5, 4];
    const rows = layout === "blocks" ? 6 : 7;
    const columns = layout === "blocks" ? experts * inner : inner;
    const x = tf.tensor2d(seededValues(rows * columns, 1), [rows, columns]);
    const w = tf.tensor3d(seededValues(experts * inner * outer, 2), [experts, inner, outer]);
    const b = tf.tensor2d(seededValues(experts * outer, 4), [experts, outer]);
    const layer = (input: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor) =>
      layout === "blocks"
        ? blockExpertDense(input as tf.Tensor2D, weights as tf.Tensor3D, bias as tf.Tensor2D, activation)
        : segmentExpertDense(
            input as tf.Tensor2D,
            weights as tf.Tensor3D,
            SEGMENTS,
            bias as tf.Tensor2D,
            activation,
          );
    const value = layer(x, w, b);
    const probe = tf.tensor(seededValues(value.size, 3), value.shape);
    const grads = tf.grads((input: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor) =>
      tf.sum(tf.mul(layer(input, weights, bias), probe)),
    )([x, w, b]);
    return [value, ...grads].map((tensor) => tensor.dataSync() as Float32Array);
  });
}

describe("blockExpertDense and segmentExpertDense", () => {
  it("compute hand-checked layers", async () => {
    await onBackend("cpu", () => {
      // Two experts, K = 2, M = 1: expert 0 sums its columns, expert 1 takes 2x its first column.
      const weights = tf.tensor3d([1, 1, 2, 0], [2, 2, 1]);
      const bias = tf.tensor2d([-4, 1], [2, 1]);
      const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [2, 4]);
      // products [3, 6, 11, 14] plus bias [-4, 1] per block: [-1, 7, 7, 15]
      expect(Array.from(blockExpertDense(x, weights, bias).dataSync())).toEqual([-1, 7, 7, 15]);
      expect(Array.from(blockExpertDense(x, weights, bias, "relu").dataSync())).toEqual([0, 7, 7, 15]);
      const rows = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
      // Row 0 -> expert 0 (3 - 4), rows 1-2 -> expert 1 (6 + 1, 10 + 1).
      expect(Array.from(segmentExpertDense(rows, weights, [1, 2], bias, "relu").dataSync())).toEqual([
        0, 7, 11,
      ]);
      expect(segmentExpertDense(tf.zeros([0, 2]) as tf.Tensor2D, weights, [0, 0], bias).shape).toEqual([
        0, 1,
      ]);
    });
  });

  it("has gradients that match finite differences (cpu)", async () => {
    await onBackend("cpu", () => {
      const x = tf.tensor2d(seededValues(7 * 5, 5), [7, 5]);
      const w = tf.variable(tf.tensor3d(seededValues(3 * 5 * 4, 6), [3, 5, 4]));
      const b = tf.variable(tf.tensor2d(seededValues(3 * 4, 7), [3, 4]));
      const probe = tf.tensor2d(seededValues(7 * 4, 8), [7, 4]);
      const loss = () =>
        tf.sum(
          tf.mul(segmentExpertDense(x, w as tf.Tensor3D, SEGMENTS, b as tf.Tensor2D, "tanh"), probe),
        ) as tf.Scalar;
      const { value, grads } = tf.variableGrads(loss, [w, b]);
      value.dispose();
      for (const variable of [w, b] as tf.Variable[]) {
        const analytic = grads[variable.name]!.dataSync();
        const base = variable.dataSync().slice();
        for (const position of [0, 5, 11]) {
          const shifted = (delta: number) => {
            const next = base.slice();
            next[position]! += delta;
            variable.assign(tf.tensor(next, variable.shape));
            return loss().dataSync()[0]!;
          };
          const numeric = (shifted(1e-2) - shifted(-1e-2)) / 2e-2;
          variable.assign(tf.tensor(base, variable.shape));
          expect(Math.abs(numeric - analytic[position]!)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
        }
      }
      tf.dispose([x, w, b, probe, grads]);
    });
  });

  it.runIf(native)(
    "give the cpu values and gradients on wasm, native and not, for every activation path",
    async () => {
      const activations: Activation[] = ["relu", "linear", "sigmoid"];
      const cpu = new Map<string, Float32Array[]>();
      await onBackend("cpu", () => {
        for (const layout of ["blocks", "segments"] as const)
          for (const activation of activations) cpu.set(`${layout} ${activation}`, run(layout, activation));
      });
      await onBackend("wasm", () => undefined);
      for (const nativeGemm of [true, false]) {
        registerFastKernels("wasm", { nativeGemm });
        for (const layout of ["blocks", "segments"] as const) {
          for (const activation of activations) {
            const wasm = run(layout, activation);
            const expected = cpu.get(`${layout} ${activation}`)!;
            wasm.forEach((array, index) => {
              expectAllClose(array, expected[index]!);
            });
          }
        }
      }
      registerFastKernels("wasm");
    },
  );

  it.runIf(native)("leaves no tensor behind on the native path", async () => {
    await onBackend("wasm", () => registerFastKernels("wasm"));
    run("blocks", "relu");
    const before = tf.memory().numTensors;
    run("blocks", "relu");
    run("segments", "linear");
    run("segments", "sigmoid");
    expect(tf.memory().numTensors).toBe(before);
  });

  it("rejects bad biases, activations and shapes, naming them", async () => {
    await onBackend("cpu", () => {
      const weights = tf.zeros([2, 3, 4]) as tf.Tensor3D;
      const bias = tf.zeros([2, 4]) as tf.Tensor2D;
      expect(() =>
        blockExpertDense(tf.zeros([5, 6]) as tf.Tensor2D, weights, tf.zeros([4]) as never),
      ).toThrow(/blockExpertDense bias/);
      expect(() =>
        segmentExpertDense(tf.zeros([5, 3]) as tf.Tensor2D, weights, [5, 0], tf.zeros([2, 3]) as never),
      ).toThrow(/segmentExpertDense bias/);
      expect(() =>
        blockExpertDense(tf.zeros([5, 6]) as tf.Tensor2D, weights, bias, "bogus" as never),
      ).toThrow(ConfigError);
      expect(() => blockExpertDense(tf.zeros([5, 5]) as tf.Tensor2D, weights, bias)).toThrow(
        new ShapeError(
          "blockExpertMatMul x must have 2 x 3 = 6 columns (weights [2, 3, 4]), received shape [5, 5]",
        ),
      );
      expect(() => segmentExpertDense(tf.zeros([5, 3]) as tf.Tensor2D, weights, [2, 2], bias)).toThrow(
        /segmentRows must sum to the 5 rows of x, received \[2,2\] \(sum 4\)/,
      );
      tf.dispose([weights, bias]);
    });
  });
});
