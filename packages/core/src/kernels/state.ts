import type { KernelConfig } from "@tensorflow/tfjs-core";
import type { NativeGemm } from "./native-gemm.js";

/** Whether the native GEMM add-on runs the matmuls, and why not when it does not. */
export interface NativeGemmInfo {
  enabled: boolean;
  /** The BLAS library in use, e.g. `libopenblas.so.0`. */
  library?: string;
  /**
   * OpenBLAS's kernel family, e.g. `Haswell` or `SkylakeX` (empty for other libraries): chosen by
   * OpenBLAS from the CPU, or by `OPENBLAS_CORETYPE`, when it loads.
   */
  core?: string;
  /** Threads of the add-on's pool (-1 when the BLAS library is not OpenBLAS and threads itself). */
  threads?: number;
  /** Why the add-on is not in use (disabled, no compiler, no BLAS, ...). */
  reason?: string;
}

/** Process-wide state of the fast kernels. */
export interface FastKernelState {
  /** Stock configs of the kernels replaced, per backend, to restore them. */
  replaced: Map<string, Map<string, KernelConfig>>;
  /** The add-on the matmul overrides call, or null for the TypeScript path. */
  nativeGemm: NativeGemm | null;
  nativeInfo: NativeGemmInfo;
}

// Kept on globalThis like tfjs's own kernel registry, so two copies of @mdrec/core (its ESM and
// CJS builds) see one state and the kernels one copy installed follow the other's settings.
const STATE_KEY = Symbol.for("@mdrec/core/fast-kernels");

/** The shared state (created on first use). */
export function fastKernelState(): FastKernelState {
  const holder = globalThis as { [STATE_KEY]?: FastKernelState };
  holder[STATE_KEY] ??= {
    replaced: new Map(),
    nativeGemm: null,
    nativeInfo: { enabled: false, reason: "fast kernels not registered" },
  };
  return holder[STATE_KEY];
}
