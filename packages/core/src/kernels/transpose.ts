import type * as tf from "@tensorflow/tfjs-core";
import { heapFloat32, reshapeShared, type WasmBackend } from "./wasm-heap.js";

// Tiles of 16 x 16 floats keep both the rows read and the rows written in L1.
const TILE = 16;

/**
 * Swaps the last two axes of a float32 `[batch, rows, cols]` tensor on the wasm heap into a new
 * `[batch, cols, rows]` tensor (cache-blocked loop in JavaScript: faster here than the stock
 * wasm `Transpose` kernel). When `rows` or `cols` is 1 the layout does not change and the
 * buffer is shared. The caller disposes the result with `backend.disposeData`.
 */
export function transposeLastTwo(backend: WasmBackend, x: tf.TensorInfo): tf.TensorInfo {
  const [batch, rows, cols] = x.shape as [number, number, number];
  if (rows === 1 || cols === 1) return reshapeShared(backend, x, [batch, cols, rows]);
  const out = backend.makeOutput([batch, cols, rows], "float32");
  const matrix = rows * cols;
  const source = heapFloat32(backend, x, batch * matrix);
  const target = heapFloat32(backend, out, batch * matrix);
  for (let b = 0; b < batch; b++) {
    const base = b * matrix;
    for (let rowStart = 0; rowStart < rows; rowStart += TILE) {
      const rowEnd = Math.min(rowStart + TILE, rows);
      for (let colStart = 0; colStart < cols; colStart += TILE) {
        const colEnd = Math.min(colStart + TILE, cols);
        for (let row = rowStart; row < rowEnd; row++) {
          const from = base + row * cols;
          let to = base + colStart * rows + row;
          for (let col = colStart; col < colEnd; col++) {
            target[to] = source[from + col] as number;
            to += rows;
          }
        }
      }
    }
  }
  return out;
}
