import type * as tf from "@tensorflow/tfjs-core";
import { backend_util, type KernelFunc, util } from "@tensorflow/tfjs-core";
import { fastKernelState } from "./state.js";
import { heapFloat32, memoryOffset, sizeOf, type WasmBackend } from "./wasm-heap.js";

/** From this many summed rows on, the native GEMM (when enabled) does the sum as a product with ones. */
const NATIVE_MIN_REDUCED = 64;

/**
 * Override of the wasm `Sum` kernel for float32 sums over a block of consecutive axes that
 * does not end the shape, e.g. the bias gradients `sum(dy, 0)` of `[B, units]` and
 * `sum(dy, 1)` of `[experts, B, units]`. The stock kernel first transposes the reduced axes to
 * the end (its Transpose moves ~70M floats/s); here one pass reads the data as it lies and
 * accumulates `[outer, inner]` sums in float64, or, with the native GEMM, multiplies by a row
 * of ones in BLAS (float32 accumulation, ~10x faster). Other reductions run the stock kernel.
 */
export function createSum(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (backend === null || x.dtype !== "float32" || sizeOf(x.shape) === 0) return stock(args);
    const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((left, right) => left - right);
    const first = axes[0];
    const last = axes[axes.length - 1];
    const consecutive = first !== undefined && last !== undefined && last - first + 1 === axes.length;
    if (!consecutive || last === x.shape.length - 1) return stock(args);
    const outer = sizeOf(x.shape.slice(0, first));
    const reduced = sizeOf(x.shape.slice(first, last + 1));
    const inner = sizeOf(x.shape.slice(last + 1));
    const keptShape = [...x.shape.slice(0, first), ...x.shape.slice(last + 1)];
    const outShape = keepDims ? backend_util.expandShapeToKeepDim(keptShape, axes) : keptShape;
    const gemm = fastKernelState().nativeGemm;
    if (gemm !== null && reduced >= NATIVE_MIN_REDUCED) {
      // ones[1, reduced] @ x_block[reduced, inner] per outer block: BLAS streams the data once.
      const ones = backend.makeOutput([reduced], "float32");
      heapFloat32(backend, ones, reduced).fill(1);
      const out = backend.makeOutput(keptShape, "float32");
      gemm.sgemmBatched(
        backend.wasm.HEAPU8.buffer,
        false,
        false,
        1,
        inner,
        reduced,
        outer,
        memoryOffset(backend, ones),
        reduced,
        0,
        memoryOffset(backend, x),
        inner,
        reduced * inner,
        memoryOffset(backend, out),
        inner,
        inner,
      );
      backend.disposeData(ones.dataId);
      return { dataId: out.dataId, shape: outShape, dtype: "float32" };
    }
    const out = backend.makeOutput(keptShape, "float32");
    const source = heapFloat32(backend, x, outer * reduced * inner);
    const target = heapFloat32(backend, out, outer * inner);
    const totals = new Float64Array(inner);
    for (let block = 0; block < outer; block++) {
      totals.fill(0);
      let offset = block * reduced * inner;
      for (let row = 0; row < reduced; row++) {
        for (let column = 0; column < inner; column++) totals[column]! += source[offset + column]!;
        offset += inner;
      }
      target.set(totals, block * inner);
    }
    return { dataId: out.dataId, shape: outShape, dtype: "float32" };
  };
}
