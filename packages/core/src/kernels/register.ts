import { getKernel, type KernelFunc, registerKernel, unregisterKernel } from "@tensorflow/tfjs-core";
import { BackendError, ConfigError } from "../errors.js";
import { assertInteger, assertKnownKeys, assertOneOf, formatValue } from "../validate.js";
import { configureFusedAdam, describeFusedAdam, fusedAdamActive } from "./adam.js";
import { defaultBlasThreads, loadNativeGemm } from "./native-gemm.js";
import { fastKernelState, type NativeGemmInfo } from "./state.js";
import { cachedWasmBackend, type WasmBackend } from "./wasm-heap.js";
import { createIdentity } from "./wasm-identity.js";
import { createBatchMatMul, createFusedMatMul } from "./wasm-matmul.js";
import {
  createConcat,
  createGatherV2,
  createSlice,
  createSplitV,
  createTranspose,
  createUnpack,
} from "./wasm-slicing.js";
import { createSum } from "./wasm-sum.js";

/** Kernels that {@link registerFastKernels} replaces on the `wasm` backend. */
export const FAST_WASM_KERNELS = [
  "BatchMatMul",
  "_FusedMatMul",
  "Identity",
  "Sum",
  "Slice",
  "SplitV",
  "Unpack",
  "GatherV2",
  "Transpose",
  "Concat",
] as const;

/** One of {@link FAST_WASM_KERNELS}. */
export type FastKernelName = (typeof FAST_WASM_KERNELS)[number];

/** Options of {@link registerFastKernels}. */
export interface RegisterFastKernelsOptions {
  /** Which overrides to install (the others keep, or go back to, the stock kernel). Defaults to all. */
  kernels?: readonly FastKernelName[];
  /**
   * Run the matmuls through the system BLAS (`sgemm`, e.g. OpenBLAS) with mdrec's optional
   * native add-on, compiled once on first use when a C compiler and the Node headers exist (see
   * {@link nativeGemmStatus}); without them the TypeScript kernels run. Defaults to the
   * `MDREC_NATIVE_GEMM` environment variable (`0` disables), else true.
   */
  nativeGemm?: boolean;
  /**
   * Threads of the native add-on (its pool spreads products and large Adam updates; OpenBLAS
   * itself stays on one). Defaults to the `MDREC_BLAS_THREADS` environment variable, else the
   * number of cores Node reports (`os.availableParallelism()`). Set 1 when several processes
   * share the cores (e.g. parallel test workers): the threads then compete.
   */
  blasThreads?: number;
  /** Environment to read `MDREC_NATIVE_GEMM` and `MDREC_BLAS_THREADS` from. Defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

type OverrideFactory = (stock: KernelFunc, backendOf: (backend: unknown) => WasmBackend | null) => KernelFunc;

const FACTORIES: Record<FastKernelName, OverrideFactory> = {
  BatchMatMul: createBatchMatMul,
  _FusedMatMul: createFusedMatMul,
  Identity: createIdentity,
  Sum: createSum,
  Slice: createSlice,
  SplitV: createSplitV,
  Unpack: createUnpack,
  GatherV2: createGatherV2,
  Transpose: createTranspose,
  Concat: createConcat,
};

const state = fastKernelState();
const replaced = state.replaced;

function configureNativeGemm(
  wanted: boolean | undefined,
  threads: number | undefined,
  env: Record<string, string | undefined>,
): void {
  const fromEnv = env.MDREC_NATIVE_GEMM?.trim().toLowerCase();
  const enabled = wanted ?? !(fromEnv === "0" || fromEnv === "false");
  if (!enabled) {
    state.nativeGemm = null;
    state.nativeInfo = {
      enabled: false,
      reason: wanted === false ? "disabled by option nativeGemm" : "disabled by MDREC_NATIVE_GEMM",
    };
    return;
  }
  const status = loadNativeGemm(env);
  if (!status.available) {
    state.nativeGemm = null;
    state.nativeInfo = { enabled: false, reason: status.reason };
    return;
  }
  status.gemm.setThreads(threads ?? defaultBlasThreads(env));
  state.nativeGemm = status.gemm;
  const { core, threads: poolThreads } = status.gemm.info();
  state.nativeInfo = { enabled: true, library: status.library, core, threads: poolThreads };
}

const backendOf = cachedWasmBackend;

function assertBackendName(where: string, backendName: unknown): asserts backendName is string {
  if (typeof backendName !== "string" || backendName.length === 0) {
    throw new ConfigError(
      `${where} backendName must be a non-empty string, received ${JSON.stringify(backendName)}`,
    );
  }
}

/**
 * Replaces slow TensorFlow.js kernels of a backend with mdrec's faster equivalents (same
 * results within float rounding). On `wasm` (tfjs 4.22) these are:
 *
 * - `BatchMatMul`: transposed layouts (every backward matmul) and batched products run at
 *   1-1.5 GFLOP/s in the stock scalar loop; here they go through XNNPACK's GEMM after an
 *   explicit transpose of the cheaper side.
 * - `_FusedMatMul`: the stock kernel adds the bias wrongly outside XNNPACK (transposes or
 *   batch > 1); those cases become matmul + `Add` + activation.
 * - `Identity`: shares the buffer instead of copying it (tfjs clones every tensor it keeps for
 *   the backward pass, embedding tables included).
 * - `Sum` over leading or middle axes (bias gradients): one pass over the data in place
 *   instead of a transpose followed by a reduction.
 * - `Slice`, `SplitV`, `Unpack`: read the input in place; the stock kernels copy the whole
 *   input out of the wasm heap for every slice (a `concat` gradient or `unstack` of N expert
 *   kernels copied it N times).
 * - `GatherV2` (`batchDims` 0): whole-row copies instead of a generic strided loop (~40x on
 *   routed rows).
 * - `Transpose` of the last two axes: a cache-blocked copy (~4x the stock kernel).
 * - `Concat` (float32, int32): one block copy per input and leading index (~3x on the joined
 *   embedding lookups of a batch).
 *
 * With `nativeGemm` (the default where a C compiler exists) every matmul instead goes to the
 * system BLAS through a small Node-API add-on working on the wasm heap; see
 * {@link nativeGemmStatus}.
 *
 * Other backends have no overrides (on `cpu` every kernel is JavaScript and the measured
 * candidates gave no gain) and register nothing. Idempotent; undo with
 * {@link unregisterFastKernels}. `initBackend` calls it for `wasm` unless told not to.
 *
 * @param backendName tfjs backend name. Defaults to `"wasm"`.
 * @returns the kernel names now overridden on that backend.
 * @example
 * import "@tensorflow/tfjs-backend-wasm";
 * registerFastKernels("wasm"); // ["BatchMatMul", "_FusedMatMul", "Identity", "Sum", ...]
 */
export function registerFastKernels(
  backendName = "wasm",
  options: RegisterFastKernelsOptions = {},
): string[] {
  assertBackendName("registerFastKernels", backendName);
  assertKnownKeys("registerFastKernels options", options ?? {}, [
    "kernels",
    "nativeGemm",
    "blasThreads",
    "env",
  ]);
  if (options.nativeGemm !== undefined && typeof options.nativeGemm !== "boolean") {
    throw new ConfigError(
      `registerFastKernels options.nativeGemm must be a boolean, received ${formatValue(options.nativeGemm)}`,
    );
  }
  if (options.blasThreads !== undefined)
    assertInteger("registerFastKernels options.blasThreads", options.blasThreads, 1, 256);
  const wanted = options.kernels ?? FAST_WASM_KERNELS;
  if (!Array.isArray(wanted)) {
    throw new ConfigError(
      `registerFastKernels options.kernels must be an array, received ${JSON.stringify(wanted)}`,
    );
  }
  wanted.forEach((name, index) => {
    assertOneOf(`registerFastKernels options.kernels[${index}]`, name, FAST_WASM_KERNELS);
  });
  configureFusedAdam(backendName, options.env);
  if (backendName !== "wasm") return [];
  if (getKernel("BatchMatMul", backendName) === undefined) {
    throw new BackendError(
      `registerFastKernels("${backendName}"): the ${backendName} backend's kernels are not registered; import "@tensorflow/tfjs-backend-wasm" first`,
    );
  }
  let stockConfigs = replaced.get(backendName);
  if (stockConfigs === undefined) {
    stockConfigs = new Map();
    replaced.set(backendName, stockConfigs);
  }
  for (const kernelName of FAST_WASM_KERNELS) {
    const install = wanted.includes(kernelName);
    const stock = stockConfigs.get(kernelName);
    if (install && stock === undefined) {
      const current = getKernel(kernelName, backendName);
      if (current === undefined) continue;
      unregisterKernel(kernelName, backendName);
      // The stock setupFunc stays: the wasm kernels bind their C++ entry points in it.
      registerKernel({ ...current, kernelFunc: FACTORIES[kernelName](current.kernelFunc, backendOf) });
      stockConfigs.set(kernelName, current);
    } else if (!install && stock !== undefined) {
      unregisterKernel(kernelName, backendName);
      registerKernel(stock);
      stockConfigs.delete(kernelName);
    }
  }
  const matmuls = wanted.includes("BatchMatMul") || wanted.includes("_FusedMatMul");
  const env = options.env ?? (typeof process === "undefined" ? {} : process.env);
  if (matmuls) configureNativeGemm(options.nativeGemm, options.blasThreads, env);
  else {
    state.nativeGemm = null;
    state.nativeInfo = { enabled: false, reason: "matmul overrides not installed" };
  }
  return [...stockConfigs.keys()];
}

/**
 * Whether mdrec's native GEMM add-on runs the matmuls of the `wasm` overrides, the BLAS library
 * it opened, or why it is not in use.
 */
export function nativeGemmStatus(): NativeGemmInfo {
  return { ...state.nativeInfo };
}

/**
 * One phrase for the backend log line, e.g.
 * `mdrec fast kernels, native GEMM libopenblas.so.0 (SkylakeX kernels, 2 BLAS threads), fused Adam`.
 */
export function describeFastKernels(backendName = "wasm"): string {
  if (!fastKernelsEnabled(backendName)) return "stock kernels";
  const info = state.nativeInfo;
  if (!info.enabled)
    return `mdrec fast kernels (no native GEMM: ${info.reason})${describeFusedAdam(backendName)}`;
  const details = [
    ...(info.core ? [`${info.core} kernels`] : []),
    ...(info.threads !== undefined && info.threads > 0 ? [`${info.threads} BLAS threads`] : []),
  ];
  const detailText = details.length > 0 ? ` (${details.join(", ")})` : "";
  const adam = fusedAdamActive(backendName) ? ", fused Adam" : describeFusedAdam(backendName);
  return `mdrec fast kernels, native GEMM ${info.library}${detailText}${adam}`;
}

/**
 * Restores the stock kernels replaced by {@link registerFastKernels}.
 * @param backendName tfjs backend name. Defaults to `"wasm"`.
 * @returns the kernel names restored.
 */
export function unregisterFastKernels(backendName = "wasm"): string[] {
  assertBackendName("unregisterFastKernels", backendName);
  const stockConfigs = replaced.get(backendName);
  if (stockConfigs === undefined) return [];
  const restored = [...stockConfigs.keys()];
  state.nativeGemm = null;
  state.nativeInfo = { enabled: false, reason: "fast kernels not registered" };
  for (const [kernelName, stock] of stockConfigs) {
    unregisterKernel(kernelName, backendName);
    registerKernel(stock);
  }
  replaced.delete(backendName);
  return restored;
}

/**
 * Whether mdrec's fast kernels are installed on a backend.
 * @param backendName tfjs backend name. Defaults to `"wasm"`.
 */
export function fastKernelsEnabled(backendName = "wasm"): boolean {
  assertBackendName("fastKernelsEnabled", backendName);
  return (replaced.get(backendName)?.size ?? 0) > 0;
}

/** Names of the overrides installed on a backend (empty when none). */
export function fastKernelNames(backendName = "wasm"): string[] {
  assertBackendName("fastKernelNames", backendName);
  return [...(replaced.get(backendName)?.keys() ?? [])];
}

export type { NativeGemmInfo };
