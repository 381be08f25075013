import type * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc } from "@tensorflow/tfjs-core";
import type { WasmBackend } from "./wasm-heap.js";

/**
 * Override of the wasm `Identity` kernel: shares the input's buffer (reference counted) instead
 * of copying it, as the `cpu` backend does. tfjs clones every tensor it saves for the backward
 * pass through `Identity`, so the stock kernel copies each saved activation and, for gathers,
 * each whole embedding table on every training step. Safe because no wasm kernel writes into
 * its inputs.
 */
export function createIdentity(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (backend === null || x.dtype === "string") return stock(args);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
}
