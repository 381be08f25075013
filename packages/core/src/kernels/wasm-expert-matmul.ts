import type * as tf from "@tensorflow/tfjs-core";
import { getKernel, type KernelFunc, registerKernel } from "@tensorflow/tfjs-core";
import type { NativeGemm } from "./native-gemm.js";
import { fastKernelState } from "./state.js";
import { cachedWasmBackend, memoryOffset, type WasmBackend } from "./wasm-heap.js";

/**
 * How the rows of an expert product are laid out:
 * - `blocks`: every expert sees every row; expert `e` reads columns `[e*K, (e+1)*K)` of a
 *   `[B, N*K]` input and writes columns `[e*M, (e+1)*M)` of a `[B, N*M]` output (dense dispatch).
 * - `segments`: the rows are grouped by expert; expert `e` owns the `segmentRows[e]` rows that
 *   follow the rows of experts `0..e-1`, in both input `[R, K]` and output `[R, M]` (sparse dispatch).
 */
export type ExpertLayout = "blocks" | "segments";

/** Attributes of {@link EXPERT_MATMUL} and {@link EXPERT_WEIGHT_GRADIENT}. */
export interface ExpertMatMulAttrs {
  layout: ExpertLayout;
  numExperts: number;
  /** Rows per expert (`segments` layout only; sums to the rows of the input). */
  segmentRows: number[];
  /** Multiply by each expert's weight matrix transposed (the input gradient). */
  transposeB: boolean;
  /**
   * Applied in place after the products when an input `bias` ([N, M], expert e's row on its
   * rows) is given or this is "relu": `out = act(product + bias_e)`. Defaults to "linear".
   */
  activation?: "linear" | "relu";
}

/** Kernel: per-expert `a_e @ op(W_e)` for `a` laid out as {@link ExpertLayout}, `W` `[N, K, M]`. */
export const EXPERT_MATMUL = "MdrecExpertMatMul";
/** Kernel: per-expert `a_e^T @ dy_e`, the weight gradient `[N, K, M]` of {@link EXPERT_MATMUL}. */
export const EXPERT_WEIGHT_GRADIENT = "MdrecExpertWeightGradient";
/**
 * Kernel: the backward pass of {@link EXPERT_MATMUL}'s bias and activation. Inputs `dy` and, for
 * relu, the layer's output `out`; outputs `dz` (dy masked where out <= 0) and the bias gradient
 * `[N, M]` (per-expert column sums of dz).
 */
export const EXPERT_EPILOGUE_GRADIENT = "MdrecExpertEpilogueGradient";

/** The add-on and backend when the native expert kernels can run now, else null. */
export function nativeExpertGemm(backend: unknown): { gemm: NativeGemm; backend: WasmBackend } | null {
  const gemm = fastKernelState().nativeGemm;
  if (gemm === null) return null;
  const wasm = cachedWasmBackend(backend);
  return wasm === null ? null : { gemm, backend: wasm };
}

/**
 * {@link nativeExpertGemm} for a kernel that only runs with the add-on; throws, naming the kernel
 * and `op` (the op that checks first and falls back), when it cannot run.
 */
export function requireNativeGemm(
  backend: unknown,
  kernelName: string,
  op = "the op",
): { gemm: NativeGemm; backend: WasmBackend } {
  const native = nativeExpertGemm(backend);
  if (native === null) {
    throw new Error(
      `${kernelName} needs the wasm backend with mdrec's native GEMM; call ${op}, which falls back`,
    );
  }
  return native;
}

// out[:, e] = a[:, e] @ op(W_e) for every expert e, one strided BLAS call per expert group.
const expertMatMul: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, EXPERT_MATMUL);
  const { a, b, bias } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo };
  const { layout, numExperts, segmentRows, transposeB, activation } = attrs as unknown as ExpertMatMulAttrs;
  const relu = activation === "relu";
  const [rows, aColumns] = a.shape as [number, number];
  const [, bRows, bColumns] = b.shape as [number, number, number];
  const k = transposeB ? bColumns : bRows; // inner size per expert
  const n = transposeB ? bRows : bColumns; // output columns per expert
  const blocks = layout === "blocks";
  const out = backend.makeOutput(blocks ? [rows, numExperts * n] : [rows, n], "float32");
  // Offsets after makeOutput: allocating can grow (and move) the heap.
  const buffer = backend.wasm.HEAPU8.buffer;
  const aOffset = memoryOffset(backend, a);
  const bOffset = memoryOffset(backend, b);
  const outOffset = memoryOffset(backend, out);
  const biasOffset = bias === undefined ? -1 : memoryOffset(backend, bias);
  // The epilogue belongs to the forward product only, never to its input gradient.
  const epilogue = !transposeB && (biasOffset >= 0 || relu);
  if (blocks) {
    // [B, N*K] @ blockdiag(W) -> [B, N*M]: a batch of N strided products in one call.
    gemm.sgemmBatched(
      buffer,
      false,
      transposeB,
      rows,
      n,
      k,
      numExperts,
      aOffset,
      aColumns,
      k,
      bOffset,
      bColumns,
      bRows * bColumns,
      outOffset,
      numExperts * n,
      n,
    );
    // The bias [N, M] is laid out as one row of the [B, N*M] output.
    if (epilogue) gemm.biasActivation(buffer, outOffset, rows, numExperts * n, biasOffset, relu);
    return out;
  }
  // One grouped call: expert e's rows [start, start + count) against W_e (and bias row e).
  const plan = new Float64Array(6 * numExperts);
  let start = 0;
  for (let expert = 0; expert < numExperts; expert++) {
    const count = segmentRows[expert]!;
    plan.set(
      [
        count,
        k,
        aOffset + 4 * start * aColumns,
        bOffset + 4 * expert * bRows * bColumns,
        outOffset + 4 * start * n,
        epilogue && biasOffset >= 0 ? biasOffset + 4 * expert * n : -1,
      ],
      6 * expert,
    );
    start += count;
  }
  gemm.sgemmGrouped(buffer, false, transposeB, n, aColumns, bColumns, n, plan, epilogue && relu);
  return out;
};

// dz = dy masked by out > 0 (relu) or dy itself, and the per-expert column sums of dz.
const expertEpilogueGradient: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, EXPERT_EPILOGUE_GRADIENT);
  const { dy, out } = inputs as { dy: tf.TensorInfo; out?: tf.TensorInfo };
  const { layout, numExperts, segmentRows, activation } = attrs as unknown as ExpertMatMulAttrs;
  const [rows, columns] = dy.shape as [number, number];
  const blocks = layout === "blocks";
  const width = blocks ? columns / numExperts : columns;
  const dz = backend.makeOutput([rows, columns], "float32");
  const biasGradient = backend.makeOutput([numExperts, width], "float32");
  const relu = activation === "relu";
  gemm.epilogueGradient(
    backend.wasm.HEAPU8.buffer,
    memoryOffset(backend, dy),
    relu ? memoryOffset(backend, out!) : -1,
    memoryOffset(backend, dz),
    rows,
    columns,
    // Blocks: one segment of every row over all N*M columns, whose sums are the bias [N*M].
    Int32Array.from(blocks ? [rows] : segmentRows),
    memoryOffset(backend, biasGradient),
  );
  return [dz, biasGradient];
};

// dW_e = a_e^T @ dy_e for every expert e; an expert with no rows gets zeros.
const expertWeightGradient: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, EXPERT_WEIGHT_GRADIENT);
  const { a, dy } = inputs as { a: tf.TensorInfo; dy: tf.TensorInfo };
  const { layout, numExperts, segmentRows } = attrs as unknown as ExpertMatMulAttrs;
  const [rows, aColumns] = a.shape as [number, number];
  const dyColumns = dy.shape[1]!;
  const blocks = layout === "blocks";
  const k = blocks ? aColumns / numExperts : aColumns;
  const m = blocks ? dyColumns / numExperts : dyColumns;
  const out = backend.makeOutput([numExperts, k, m], "float32");
  const buffer = backend.wasm.HEAPU8.buffer;
  const aOffset = memoryOffset(backend, a);
  const dyOffset = memoryOffset(backend, dy);
  const outOffset = memoryOffset(backend, out);
  if (blocks) {
    // C_e [K, M] = A_e^T @ dY_e with A_e = a[:, e*K:(e+1)*K] and dY_e = dy[:, e*M:(e+1)*M].
    gemm.sgemmBatched(
      buffer,
      true,
      false,
      k,
      m,
      rows,
      numExperts,
      aOffset,
      aColumns,
      k,
      dyOffset,
      dyColumns,
      m,
      outOffset,
      m,
      k * m,
    );
    return out;
  }
  // dW_e [K, M] = a_e^T @ dy_e over expert e's rows; no rows (k 0) writes zeros.
  const plan = new Float64Array(6 * numExperts);
  let start = 0;
  for (let expert = 0; expert < numExperts; expert++) {
    const count = segmentRows[expert]!;
    plan.set(
      [
        k,
        count,
        aOffset + 4 * start * aColumns,
        dyOffset + 4 * start * m,
        outOffset + 4 * expert * k * m,
        -1,
      ],
      6 * expert,
    );
    start += count;
  }
  gemm.sgemmGrouped(buffer, true, false, m, aColumns, m, m, plan, false);
  return out;
};

/**
 * Registers the native expert kernels on the `wasm` backend (idempotent; a second copy of this
 * package, e.g. its CJS build next to the ESM one, finds them registered). They run only while
 * the native GEMM is enabled; the ops in `ops/expert-matmul.ts` check that and fall back.
 */
export function registerExpertKernels(): void {
  for (const [kernelName, kernelFunc] of [
    [EXPERT_MATMUL, expertMatMul],
    [EXPERT_WEIGHT_GRADIENT, expertWeightGradient],
    [EXPERT_EPILOGUE_GRADIENT, expertEpilogueGradient],
  ] as const) {
    if (getKernel(kernelName, "wasm") === undefined)
      registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  }
}
