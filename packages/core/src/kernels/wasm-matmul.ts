import type * as tf from "@tensorflow/tfjs-core";
import { getKernel, type KernelFunc, type NamedAttrMap } from "@tensorflow/tfjs-core";
import type { NativeGemm } from "./native-gemm.js";
import { fastKernelState } from "./state.js";
import { transposeLastTwo } from "./transpose.js";
import { disposeView, makeView, memoryOffset, sizeOf, type WasmBackend, wasmTensorId } from "./wasm-heap.js";

/**
 * `op(a) @ op(b)` by the native BLAS add-on straight on the wasm heap: BLAS takes transposed
 * layouts natively, so nothing is copied or packed on the JavaScript side.
 */
function nativeMatMul(
  backend: WasmBackend,
  gemm: NativeGemm,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const [batchA, aRows, aCols] = a.shape as [number, number, number];
  const [batchB, bRows, bCols] = b.shape as [number, number, number];
  const batch = Math.max(batchA, batchB);
  const m = transposeA ? aCols : aRows;
  const k = transposeA ? aRows : aCols;
  const n = transposeB ? bRows : bCols;
  const out = backend.makeOutput([batch, m, n], "float32");
  // One tall product when every entry shares the weights; fetched after makeOutput may grow memory.
  const fold = batchB === 1 && !transposeA;
  const buffer = backend.wasm.HEAPU8.buffer;
  gemm.sgemmBatched(
    buffer,
    transposeA,
    transposeB,
    fold ? batch * m : m,
    n,
    k,
    fold ? 1 : batch,
    memoryOffset(backend, a),
    aCols,
    batchA === 1 ? 0 : aRows * aCols,
    memoryOffset(backend, b),
    bCols,
    batchB === 1 ? 0 : bRows * bCols,
    memoryOffset(backend, out),
    n,
    m * n,
  );
  return out;
}

/**
 * Below this many multiply-adds per batch entry, one call of the stock loop over the whole
 * batch beats one XNNPACK call per entry (each packs its weights and crosses into wasm).
 */
const MIN_MULTIPLY_ADDS_PER_CALL = 8192;

type RawMatMul = (
  aId: number,
  aShape: Uint8Array,
  aRank: number,
  bId: number,
  bShape: Uint8Array,
  bRank: number,
  transposeA: number,
  transposeB: number,
  outId: number,
) => void;

const rawMatMuls = new WeakMap<object, RawMatMul>();

// The C++ entry point of the stock kernel, called directly so outputs can be views.
function rawMatMul(backend: WasmBackend): RawMatMul {
  let matMul = rawMatMuls.get(backend.wasm);
  if (matMul === undefined) {
    matMul = backend.wasm.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]) as RawMatMul;
    rawMatMuls.set(backend.wasm, matMul);
  }
  return matMul;
}

function shapeBytes(shape: readonly number[]): Uint8Array {
  return new Uint8Array(new Int32Array(shape).buffer);
}

/**
 * `out = a @ b` for `a` `[batchA, m, k]` and `b` `[batchB, k, n]` (batch 1 broadcasts), no
 * transposes, always through XNNPACK's GEMM except for tiny per-entry products: the stock
 * kernel uses XNNPACK only when both batches are 1 and falls back to a scalar loop otherwise.
 *
 * `b` always reaches XNNPACK as a view with a fresh tensor id, released right after. The C++
 * side caches one packed-weights operator per `b` id and never checks the shape again, but
 * tfjs gives one id to many tensors (`Reshape` shares the buffer, and so does our `Identity`):
 * a cached operator of another shape was reused and produced garbage (NaN in CESAA training).
 */
function plainMatMul(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  const [batchA, m, k] = a.shape as [number, number, number];
  const [batchB, , n] = b.shape as [number, number, number];
  const batch = Math.max(batchA, batchB);
  const out = backend.makeOutput([batch, m, n], "float32");
  const matMul = rawMatMul(backend);
  const aId = wasmTensorId(backend, a);
  const bId = wasmTensorId(backend, b);
  const outId = wasmTensorId(backend, out);
  if (batchB === 1) {
    // Rows of every batch entry of `a` stack into one `[batch * m, k]` matrix.
    const weights = makeView(backend, b, 0, [1, k, n]);
    matMul(
      aId,
      shapeBytes([1, batchA * m, k]),
      3,
      wasmTensorId(backend, weights),
      shapeBytes([1, k, n]),
      3,
      0,
      0,
      outId,
    );
    disposeView(backend, weights);
    return out;
  }
  if (m * k * n < MIN_MULTIPLY_ADDS_PER_CALL) {
    matMul(aId, shapeBytes(a.shape), 3, bId, shapeBytes(b.shape), 3, 0, 0, outId);
    return out;
  }
  const aEntryShape = shapeBytes([1, m, k]);
  const bEntryShape = shapeBytes([1, k, n]);
  for (let entry = 0; entry < batch; entry++) {
    const aEntry = batchA === 1 ? null : makeView(backend, a, entry * m * k, [1, m, k]);
    const bEntry = makeView(backend, b, entry * k * n, [1, k, n]);
    const outEntry = makeView(backend, out, entry * m * n, [1, m, n]);
    matMul(
      aEntry === null ? aId : wasmTensorId(backend, aEntry),
      aEntryShape,
      3,
      wasmTensorId(backend, bEntry),
      bEntryShape,
      3,
      0,
      0,
      wasmTensorId(backend, outEntry),
    );
    if (aEntry !== null) disposeView(backend, aEntry);
    disposeView(backend, bEntry);
    disposeView(backend, outEntry);
  }
  return out;
}

// Elements a transpose has to move (none when a side is 1: the layout is unchanged).
function transposeCost(shape: readonly number[]): number {
  return shape[1] === 1 || shape[2] === 1 ? 0 : sizeOf(shape);
}

/**
 * `op(a) @ op(b)` with `op` a transpose of the last two axes where requested, computed without
 * the stock kernel's slow transposed layouts. Either the transposed operands are materialised,
 * or the product is computed transposed (`(op(b)^T @ op(a)^T)^T`), whichever moves fewer
 * elements: for a weight gradient `x^T @ dy` this transposes `dy` and the small result instead
 * of the wide activations `x`.
 *
 * @param a `[batchA, rows, cols]` float32, `b` `[batchB, rows, cols]` float32, batches equal or 1.
 * @returns `[max(batchA, batchB), m, n]`.
 */
export function matMulWithoutTransposes(
  backend: WasmBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): tf.TensorInfo {
  const nativeGemm = fastKernelState().nativeGemm;
  if (nativeGemm !== null) return nativeMatMul(backend, nativeGemm, a, b, transposeA, transposeB);
  if (!transposeA && !transposeB) return plainMatMul(backend, a, b);
  const [batchA, aRows, aCols] = a.shape as [number, number, number];
  const [batchB, bRows, bCols] = b.shape as [number, number, number];
  const batch = Math.max(batchA, batchB);
  const m = transposeA ? aCols : aRows;
  const n = transposeB ? bRows : bCols;
  const directCost = (transposeA ? transposeCost(a.shape) : 0) + (transposeB ? transposeCost(b.shape) : 0);
  const swappedCost =
    (transposeA ? 0 : transposeCost(a.shape)) +
    (transposeB ? 0 : transposeCost(b.shape)) +
    transposeCost([batch, m, n]);
  const temporaries: tf.TensorInfo[] = [];
  const plainOf = (operand: tf.TensorInfo, transpose: boolean): tf.TensorInfo => {
    if (!transpose) return operand;
    const transposed = transposeLastTwo(backend, operand);
    temporaries.push(transposed);
    return transposed;
  };
  try {
    if (directCost <= swappedCost) {
      return plainMatMul(backend, plainOf(a, transposeA), plainOf(b, transposeB));
    }
    // op(a) @ op(b) = (op(b)^T @ op(a)^T)^T, and op(x)^T is x itself when x was to be transposed.
    const productTransposed = plainMatMul(backend, plainOf(b, !transposeB), plainOf(a, !transposeA)); // [batch, n, m]
    temporaries.push(productTransposed);
    return transposeLastTwo(backend, productTransposed); // [batch, m, n]
  } finally {
    for (const temporary of temporaries) backend.disposeData(temporary.dataId);
  }
}

/** Dims of `x` before the last two, and the `[batch, rows, cols]` shape that stacks them. */
function asBatched(shape: readonly number[]): { outer: number[]; batched: [number, number, number] } {
  const rank = shape.length;
  const outer = shape.slice(0, -2);
  return { outer, batched: [sizeOf(outer), shape[rank - 2]!, shape[rank - 1]!] };
}

/**
 * Shapes of a BatchMatMul whose batch dims we handle (equal, or one side without batch), else
 * null (the stock kernel then runs).
 */
function batchedShapes(
  a: tf.TensorInfo,
  b: tf.TensorInfo,
): { a: [number, number, number]; b: [number, number, number]; outer: number[] } | null {
  if (a.dtype !== "float32" || b.dtype !== "float32" || a.shape.length < 2 || b.shape.length < 2) return null;
  if (sizeOf(a.shape) === 0 || sizeOf(b.shape) === 0) return null;
  const left = asBatched(a.shape);
  const right = asBatched(b.shape);
  const [batchA] = left.batched;
  const [batchB] = right.batched;
  if (batchA === batchB) {
    const sameOuter =
      left.outer.length === right.outer.length &&
      left.outer.every((size, index) => size === right.outer[index]);
    // Equal sizes from different outer shapes would need real broadcasting: leave it to stock.
    if (!sameOuter && batchA !== 1) return null;
    return {
      a: left.batched,
      b: right.batched,
      outer: left.outer.length >= right.outer.length ? left.outer : right.outer,
    };
  }
  if (batchA === 1 && left.outer.length <= right.outer.length)
    return { a: left.batched, b: right.batched, outer: right.outer };
  if (batchB === 1 && right.outer.length <= left.outer.length)
    return { a: left.batched, b: right.batched, outer: left.outer };
  return null;
}

/**
 * Override of the wasm `BatchMatMul` kernel: the same product, but transposed layouts (every
 * backward matmul) and batched products go through XNNPACK's GEMM instead of the stock
 * scalar loop. Cases it does not cover (non-float32, broadcasting over several outer dims)
 * run the stock kernel.
 */
export function createBatchMatMul(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const shapes = backend === null ? null : batchedShapes(a, b);
    if (backend === null || shapes === null) return stock(args);
    const product = matMulWithoutTransposes(
      backend,
      { dataId: a.dataId, shape: shapes.a, dtype: a.dtype },
      { dataId: b.dataId, shape: shapes.b, dtype: b.dtype },
      transposeA,
      transposeB,
    );
    const [, m, n] = product.shape as [number, number, number];
    return { dataId: product.dataId, shape: [...shapes.outer, m, n], dtype: "float32" };
  };
}

const ACTIVATION_KERNELS: Record<string, string> = {
  relu: "Relu",
  relu6: "Relu6",
  elu: "Elu",
  sigmoid: "Sigmoid",
  prelu: "Prelu",
  leakyrelu: "LeakyRelu",
};

function runWasmKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: Record<string, tf.TensorInfo>,
  attrs: NamedAttrMap = {},
): tf.TensorInfo {
  const kernel = getKernel(kernelName, "wasm");
  if (kernel === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
  return kernel.kernelFunc({
    inputs,
    attrs,
    backend: backend as unknown as tf.KernelBackend,
  }) as tf.TensorInfo;
}

/**
 * Override of the wasm `_FusedMatMul` kernel. The stock kernel adds the bias wrongly whenever
 * it leaves XNNPACK (any transpose, or a batch above 1: its scalar loop indexes the bias by
 * `row * cols + col` instead of `col`). Only the XNNPACK case runs fused here; every other case
 * is {@link matMulWithoutTransposes} followed by the `Add` and activation kernels, or, with the
 * native GEMM and a `[n]` bias with linear or relu activation, by one in-place native pass.
 */
export function createFusedMatMul(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { a, b, bias, preluActivationWeights } = args.inputs as {
      a: tf.TensorInfo;
      b: tf.TensorInfo;
      bias?: tf.TensorInfo;
      preluActivationWeights?: tf.TensorInfo;
    };
    const { transposeA, transposeB, activation, leakyreluAlpha } = args.attrs as {
      transposeA: boolean;
      transposeB: boolean;
      activation: string;
      leakyreluAlpha?: number;
    };
    const shapes = backend === null ? null : batchedShapes(a, b);
    const activationKernel = activation === "linear" ? null : ACTIVATION_KERNELS[activation];
    const stockIsCorrect =
      fastKernelState().nativeGemm === null &&
      !transposeA &&
      !transposeB &&
      shapes !== null &&
      shapes.a[0] === 1 &&
      shapes.b[0] === 1 &&
      (bias?.shape.length ?? 1) === 1;
    if (backend === null || shapes === null || activationKernel === undefined) return stock(args);
    if (stockIsCorrect) {
      // Fresh ids for the operands XNNPACK caches operators by (see plainMatMul).
      const weights = makeView(backend, b, 0, [...b.shape]);
      const biasView = bias == null ? undefined : makeView(backend, bias, 0, [...bias.shape]);
      try {
        return stock({
          ...args,
          inputs: { ...args.inputs, b: weights, ...(biasView ? { bias: biasView } : {}) },
        });
      } finally {
        disposeView(backend, weights);
        if (biasView) disposeView(backend, biasView);
      }
    }
    const product = matMulWithoutTransposes(
      backend,
      { dataId: a.dataId, shape: shapes.a, dtype: a.dtype },
      { dataId: b.dataId, shape: shapes.b, dtype: b.dtype },
      transposeA,
      transposeB,
    );
    const [batch, m, n] = product.shape as [number, number, number];
    let result: tf.TensorInfo = { dataId: product.dataId, shape: [...shapes.outer, m, n], dtype: "float32" };
    const gemm = fastKernelState().nativeGemm;
    if (
      gemm !== null &&
      (activation === "linear" || activation === "relu") &&
      (bias == null || (bias.dtype === "float32" && sizeOf(bias.shape) === n))
    ) {
      // The native product is a fresh buffer: bias and relu go on in place, in one pass.
      gemm.biasActivation(
        backend.wasm.HEAPU8.buffer,
        memoryOffset(backend, result),
        batch * m,
        n,
        bias == null ? -1 : memoryOffset(backend, bias),
        activation === "relu",
      );
      return result;
    }
    if (bias != null) {
      const biased = runWasmKernel(backend, "Add", { a: result, b: bias });
      backend.disposeData(result.dataId);
      result = biased;
    }
    if (activationKernel !== null) {
      const activated =
        activation === "prelu"
          ? runWasmKernel(backend, activationKernel, { x: result, alpha: preluActivationWeights! })
          : activation === "leakyrelu"
            ? runWasmKernel(backend, activationKernel, { x: result }, { alpha: leakyreluAlpha ?? 0.2 })
            : runWasmKernel(backend, activationKernel, { x: result });
      backend.disposeData(result.dataId);
      result = activated;
    }
    return result;
  };
}
