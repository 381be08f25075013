import type * as tf from "@tensorflow/tfjs-core";
import { backend_util, type KernelFunc, util } from "@tensorflow/tfjs-core";
import { matMulWithoutTransposes } from "./wasm-matmul.js";
import { disposeView, heapFloat32, makeView, sizeOf, type WasmBackend } from "./wasm-heap.js";

/** Below this many elements the stock transpose-then-reduce is as fast as a GEMM call. */
const MIN_ELEMENTS = 4096;

/**
 * Override of the wasm `Sum` kernel for sums over leading axes (the bias gradient
 * `sum(dy, axis 0)` of every dense layer). The stock kernel transposes the reduced axes to the
 * end first; here the sum is `ones[1, rows] @ x[rows, cols]`, one XNNPACK GEMM over the data
 * as it lies. Other axes, other dtypes and small inputs run the stock kernel.
 */
export function createSum(stock: KernelFunc, backendOf: (backend: unknown) => WasmBackend | null): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    if (backend === null || x.dtype !== "float32" || sizeOf(x.shape) < MIN_ELEMENTS) return stock(args);
    const axes = [...new Set(util.parseAxisParam(axis, x.shape))].sort((left, right) => left - right);
    const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((value, index) => value === index);
    if (!leading) return stock(args);
    const rows = sizeOf(x.shape.slice(0, axes.length));
    const cols = sizeOf(x.shape.slice(axes.length));
    const ones = backend.makeOutput([1, 1, rows], "float32");
    heapFloat32(backend, ones, rows).fill(1);
    // A view gives the data a fresh id, so XNNPACK's weight cache (keyed by id) drops it at once.
    const data = makeView(backend, x, 0, [1, rows, cols]);
    const total = matMulWithoutTransposes(backend, ones, data, false, false); // [1, 1, cols]
    disposeView(backend, data);
    backend.disposeData(ones.dataId);
    const outShape = keepDims ? backend_util.expandShapeToKeepDim(x.shape.slice(axes.length), axes) : x.shape.slice(axes.length);
    return { dataId: total.dataId, shape: outShape, dtype: "float32" };
  };
}
