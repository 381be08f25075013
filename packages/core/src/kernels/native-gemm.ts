import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../errors.js";

/**
 * One pool of a routed-experts call of the add-on: `plan` (byte offsets and widths, see
 * {@link NativeGemm.routedExpertsForward}) and the entries grouped by expert: batch row and
 * routing slot of each entry, and entries per expert.
 */
export type RoutedPoolCall = [plan: Float64Array, rows: Int32Array, slots: Int32Array, counts: Int32Array];

/** A routed-experts call of the add-on: one or more pools whose experts share the threads. */
export type RoutedExpertsCall = (buffer: ArrayBufferLike, pools: readonly RoutedPoolCall[]) => void;

/** The eight float32 scalars of one Adam step, in the order the add-on's Adam functions take them. */
export type AdamScalars = [
  beta1: number,
  oneMinusBeta1: number,
  beta2: number,
  oneMinusBeta2: number,
  oneMinusAccBeta1: number,
  oneMinusAccBeta2: number,
  epsilon: number,
  negativeLearningRate: number,
];

/** The add-on's functions (see `native/sgemm.c`). */
export interface NativeGemm {
  /**
   * For each batch entry i, `C_i = op(A_i) @ op(B_i)` (row-major) on `buffer`. Offsets in bytes,
   * strides in floats (0 broadcasts one matrix over the batch).
   */
  sgemmBatched(
    buffer: ArrayBufferLike,
    transposeA: boolean,
    transposeB: boolean,
    m: number,
    n: number,
    k: number,
    batch: number,
    aOffset: number,
    lda: number,
    strideA: number,
    bOffset: number,
    ldb: number,
    strideB: number,
    cOffset: number,
    ldc: number,
    strideC: number,
  ): void;
  /**
   * For each group g of `plan` (six numbers per group: `m, k, aOffset, bOffset, cOffset,
   * biasOffset`), `C_g = op(A_g) @ op(B_g)` (row-major `[m, n]`, zeros when `k` is 0), then when
   * `biasOffset >= 0` or `relu`, `C_g = act(C_g + bias_g)` with the `[n]` bias at `biasOffset`
   * (-1: none). Offsets in bytes. With more than one thread (see `setThreads`) the products are
   * spread over the pool, each product (or a half of one, for balance) on one thread.
   */
  sgemmGrouped(
    buffer: ArrayBufferLike,
    transposeA: boolean,
    transposeB: boolean,
    n: number,
    lda: number,
    ldb: number,
    ldc: number,
    plan: Float64Array,
    relu: boolean,
  ): void;
  /**
   * One fused Adam step over `size` floats of `buffer` (byte offsets), tfjs's op sequence in
   * float32 (see `kernels/adam.ts`); the scalars must already be float32 values. Absent from
   * builds whose C compiler evaluates float arithmetic in a wider type.
   */
  adamUpdate?(
    buffer: ArrayBufferLike,
    size: number,
    valueOffset: number,
    gradientOffset: number,
    firstMomentOffset: number,
    secondMomentOffset: number,
    newValueOffset: number,
    newFirstMomentOffset: number,
    newSecondMomentOffset: number,
    ...scalars: AdamScalars
  ): void;
  /**
   * `adamUpdate` in place for several variables in one call: `plan` holds
   * `[size, valueOffset, gradientOffset, firstMomentOffset, secondMomentOffset]` per variable
   * (byte offsets). Checks every range first (a value or moment may overlap nothing else), then
   * spreads pieces of all variables over the pool. Present whenever `adamUpdate` is.
   */
  adamUpdateMany?(buffer: ArrayBufferLike, plan: Float64Array, ...scalars: AdamScalars): void;
  /**
   * In place on the row-major `[rows, cols]` matrix at byte `offset`: adds the `[cols]` bias at
   * `biasOffset` (-1: none) to every row, then with `relu` clamps negatives to 0.
   */
  biasActivation(
    buffer: ArrayBufferLike,
    offset: number,
    rows: number,
    cols: number,
    biasOffset: number,
    relu: boolean,
  ): void;
  /**
   * `out[row] = concat_f table_f[ids_f[row]]` into the row-major `[rows, sum of widths]` matrix
   * at byte `outOffset`; `plan` holds four integers per field (table byte offset, table rows,
   * width, byte offset of the int32 ids). Returns null, or `[field, row, id]` of the first id out
   * of range without writing anything.
   */
  gatherConcat(
    buffer: ArrayBufferLike,
    outOffset: number,
    rows: number,
    plan: Int32Array,
  ): [number, number, number] | null;
  /**
   * The backward pass of {@link gatherConcat}: `plan` holds four integers per field (byte offset
   * of the field's gradient `[tableRows, width]`, table rows, width, byte offset of its int32 ids
   * `[rows]`); each gradient is zeroed, then the field's columns of row r of the row-major dy
   * `[rows, sum of widths]` at byte `dyOffset` are added into row `ids[r]`, rows in order.
   */
  scatterConcat(buffer: ArrayBufferLike, dyOffset: number, rows: number, plan: Int32Array): void;
  /**
   * Strided row copies (Concat, SplitV): `plan` holds six numbers per block (source byte offset,
   * source row stride, target byte offset, target row stride, rows, bytes per row). A block's
   * target may not overlap its source.
   */
  copyBlocks(buffer: ArrayBufferLike, plan: Float64Array): void;
  /**
   * Backward pass of `out = act(z + bias_e)` on row-major `[rows, cols]` matrices whose rows come
   * in segments (`segmentRows`), segment e using bias row e: writes `dz` (dy masked by out > 0
   * for relu; `outOffset` -1: linear, dz = dy) and `biasGrad[e]` = column sums of dz over segment
   * e (`[segments, cols]`). Byte offsets; the outputs may not overlap anything.
   */
  epilogueGradient(
    buffer: ArrayBufferLike,
    dyOffset: number,
    outOffset: number,
    dzOffset: number,
    rows: number,
    cols: number,
    segmentRows: Int32Array,
    biasGradOffset: number,
  ): void;
  /**
   * Noisy top-k gate logits on `count` floats at each byte offset: `out = logits + noise *
   * softplus(noiseLogits)` and `factor = noise * sigmoid(noiseLogits)` (d out / d noiseLogits),
   * vectorised, accurate to a few float ulps (softplus is 0 below -87). The outputs may not
   * overlap anything.
   */
  noisyGateLogits(
    buffer: ArrayBufferLike,
    logitsOffset: number,
    noiseLogitsOffset: number,
    noiseOffset: number,
    outOffset: number,
    factorOffset: number,
    count: number,
  ): void;
  /**
   * Whole sparse expert pools forward (each pool as below; the experts of all pools share the
   * threads, the largest first). Per pool: `routed[i] = x[rows[i]]`, per layer
   * `hidden_l = act(input @ W_l[e] + b_l[e])` on expert e's `counts[e]` entries (entries grouped
   * by expert), and `out[b]` = the sum over row b's entries of `slotWeights[slots[i]] * hidden_last[i]`.
   * `plan` holds 7 header numbers `[batch, inputWidth, xOffset, slotWeightsOffset, routedOffset,
   * outOffset, -1]` and 7 per layer `[width, kernelOffset, biasOffset, hiddenOffset, relu, -1, -1]`
   * (byte offsets). Each expert runs whole on one pool thread, so results do not depend on the
   * thread count.
   */
  routedExpertsForward: RoutedExpertsCall;
  /**
   * The backward pass of {@link NativeGemm.routedExpertsForward} for `dy = dL/d(out)`, per pool
   * (each writes its own `dx`). `plan`:
   * `[batch, inputWidth, dyOffset, slotWeightsOffset, routedOffset, dxOffset,
   * slotWeightGradientOffset]`, then per layer `[width, kernelOffset, -1, hiddenOffset, relu,
   * kernelGradientOffset, biasGradientOffset]`.
   */
  routedExpertsBackward: RoutedExpertsCall;
  /** Threads of the add-on's pool, the caller included (OpenBLAS only; others keep their own). */
  setThreads(threads: number): void;
  /**
   * The BLAS library opened, OpenBLAS's kernel family (`""` for other libraries) and the pool's
   * threads (-1 when the library is not OpenBLAS).
   */
  info(): { library: string; core: string; threads: number };
}

/** What {@link loadNativeGemm} found: the add-on, or why there is none. */
export type NativeGemmStatus =
  | { available: true; gemm: NativeGemm; library: string; path: string; built: boolean }
  | { available: false; reason: string };

// Where this module sits: src/kernels (tests, tsx) or dist (the published bundle).
function moduleDirectory(): string | null {
  try {
    return dirname(fileURLToPath(import.meta.url));
  } catch {
    return typeof __dirname === "string" ? __dirname : null;
  }
}

function sourcePath(): string | null {
  const here = moduleDirectory();
  if (here === null) return null;
  const candidates = [
    join(here, "native", "sgemm.c"),
    join(here, "..", "src", "kernels", "native", "sgemm.c"),
  ];
  return candidates.find((candidate) => existsSync(candidate)) ?? null;
}

function nodeIncludeDirectory(env: Record<string, string | undefined>): string | null {
  const candidates = [
    env.MDREC_NODE_INCLUDE,
    env.npm_config_nodedir ? join(env.npm_config_nodedir, "include", "node") : undefined,
    join(dirname(dirname(process.execPath)), "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ];
  return (
    candidates.find((candidate) => candidate !== undefined && existsSync(join(candidate, "node_api.h"))) ??
    null
  );
}

function cacheDirectory(env: Record<string, string | undefined>): string {
  if (env.MDREC_CACHE_DIR) return env.MDREC_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "mdrec");
}

function loadAddon(path: string): NativeGemm {
  const module = { exports: {} as NativeGemm };
  process.dlopen(module, path);
  return module.exports;
}

let cached: NativeGemmStatus | undefined;

/**
 * Threads of the native add-on ("BLAS threads"; its own pool runs products and large Adam
 * updates, OpenBLAS itself stays on one thread): `MDREC_BLAS_THREADS` when set (a positive
 * integer, else a ConfigError naming the value), otherwise every core Node reports.
 */
export function defaultBlasThreads(env: Record<string, string | undefined>): number {
  const text = env.MDREC_BLAS_THREADS?.trim();
  if (text === undefined || text === "") return Math.max(1, availableParallelism());
  const threads = Number(text);
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new ConfigError(
      `environment variable MDREC_BLAS_THREADS must be an integer in [1, 256], received ${JSON.stringify(env.MDREC_BLAS_THREADS)}`,
    );
  }
  return threads;
}

/**
 * Loads mdrec's optional native GEMM add-on (BLAS `sgemm` on the wasm heap), compiling it once
 * into a cache directory (`$MDREC_CACHE_DIR`, else `~/.cache/mdrec`) when a C compiler and the
 * Node headers are present. Never throws: when anything is missing it returns the reason, and
 * the pure TypeScript kernels stay in use. The result is memoised for the process.
 *
 * Environment: `CC` (compiler, default `cc`), `MDREC_NODE_INCLUDE` (directory of
 * `node_api.h`), `MDREC_BLAS_LIBRARY` (BLAS shared library to open first).
 */
export function loadNativeGemm(env: Record<string, string | undefined> = process.env): NativeGemmStatus {
  if (cached !== undefined) return cached;
  cached = findOrBuildNativeGemm(env);
  return cached;
}

/** {@link loadNativeGemm} without the memo (each call looks at the cache and may compile). */
export function findOrBuildNativeGemm(env: Record<string, string | undefined>): NativeGemmStatus {
  if (process.platform === "win32") return { available: false, reason: "not supported on Windows" };
  const source = sourcePath();
  if (source === null)
    return { available: false, reason: "native/sgemm.c is not shipped next to this build" };
  const text = readFileSync(source);
  const key = createHash("sha256")
    .update(text)
    .update(`${process.platform}-${process.arch}`)
    .digest("hex")
    .slice(0, 16);
  const directory = cacheDirectory(env);
  const target = join(directory, `sgemm-${key}.node`);
  let built = false;
  if (!existsSync(target)) {
    const include = nodeIncludeDirectory(env);
    if (include === null) return { available: false, reason: "Node headers (node_api.h) not found" };
    const compiler = env.CC || "cc";
    try {
      mkdirSync(directory, { recursive: true });
    } catch (error) {
      return { available: false, reason: `cannot create ${directory}: ${(error as Error).message}` };
    }
    // Built under a unique name and renamed, so concurrent processes never load half a file.
    const partial = `${target}.${process.pid}.partial`;
    const flags = process.platform === "darwin" ? ["-undefined", "dynamic_lookup"] : [];
    // -O3 vectorises the Adam loop; -ffp-contract=off keeps a * b + c two roundings (GCC fuses
    // them into one FMA by default where the target has FMA, e.g. arm64), as tfjs's kernels round
    // each op; -fno-math-errno lets sqrtf vectorise (errno is never read).
    const result = spawnSync(
      compiler,
      [
        "-O3",
        "-ffp-contract=off",
        "-fno-math-errno",
        "-std=gnu99",
        "-shared",
        "-fPIC",
        "-DNODE_GYP_MODULE_NAME=mdrec_sgemm",
        `-I${include}`,
        source,
        "-o",
        partial,
        ...flags,
        "-pthread",
        "-ldl",
        "-lm",
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    if (result.status !== 0) {
      rmSync(partial, { force: true });
      const why = result.error?.message ?? (result.stderr || "").trim().split("\n").slice(-2).join(" ");
      return { available: false, reason: `${compiler} could not build the add-on (${why})` };
    }
    renameSync(partial, target);
    built = true;
  }
  try {
    const gemm = loadAddon(target);
    return { available: true, gemm, library: gemm.info().library, path: target, built };
  } catch (error) {
    return { available: false, reason: (error as Error).message.split("\n")[0]! };
  }
}
