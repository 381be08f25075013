import * as tf from "@tensorflow/tfjs-core";
import { BackendError, ConfigError } from "./errors.js";
import { describeFastKernels, registerFastKernels, unregisterFastKernels } from "./kernels/register.js";
import { assertInteger, assertKnownKeys, formatValue, nearestKey } from "./validate.js";

/** Backends mdrec knows, best first. `node-gpu` and `node` are tfjs-node(-gpu)'s `tensorflow`. */
export const BACKEND_PREFERENCE = ["node-gpu", "node", "wasm", "cpu"] as const;

/** One of {@link BACKEND_PREFERENCE}. */
export type BackendName = (typeof BACKEND_PREFERENCE)[number];

const PACKAGES: Record<BackendName, string> = {
  "node-gpu": "@tensorflow/tfjs-node-gpu",
  node: "@tensorflow/tfjs-node",
  wasm: "@tensorflow/tfjs-backend-wasm",
  cpu: "@tensorflow/tfjs-backend-cpu",
};

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /**
   * Backend to use. Defaults to the `MDREC_BACKEND` environment variable, else the first of
   * `node-gpu`, `node`, `wasm`, `cpu` that loads.
   */
  prefer?: BackendName;
  /**
   * When `prefer` (or `MDREC_BACKEND`) names a backend that cannot load, fall back to the next
   * in {@link BACKEND_PREFERENCE} order instead of throwing. Defaults to false: an explicit
   * request is honoured or refused.
   */
  allowFallback?: boolean;
  /**
   * Threads for `wasm`. Only effective where tfjs's threaded wasm build can run (browsers with
   * cross-origin isolation; not Node, where tfjs 4.22 disables it). Defaults to 1.
   */
  threads?: number;
  /**
   * Suppress the "Hi, looks like you are running TensorFlow.js in Node.js..." banner that the
   * `cpu` backend prints on its first tensor, by marking the backend as already used. Other
   * tfjs warnings still print. Defaults to true.
   */
  silenceCpuBanner?: boolean;
  /**
   * Install mdrec's fast `wasm` kernels (see `registerFastKernels`) when `wasm` is chosen; false
   * restores the stock kernels. Defaults to the `MDREC_FAST_KERNELS` environment variable
   * (`0`/`false` disable, `1`/`true` enable), else true.
   */
  fastKernels?: boolean;
  /** Receives one line saying what was chosen and why others were skipped. Defaults to console.error. */
  log?: (message: string) => void;
  /**
   * Environment to read `MDREC_BACKEND`, `MDREC_FAST_KERNELS`, `MDREC_NATIVE_GEMM` and
   * `MDREC_BLAS_THREADS` from. Defaults to `process.env`.
   */
  env?: Record<string, string | undefined>;
}

const OPTION_KEYS = ["prefer", "allowFallback", "threads", "silenceCpuBanner", "fastKernels", "log", "env"];

/** What {@link initBackend} chose. */
export interface BackendInfo {
  /** The mdrec name of the chosen backend. */
  name: BackendName;
  /** tfjs's name of the active backend (`tensorflow`, `wasm`, `cpu`). */
  tfjsName: string;
  /** Why this backend was chosen. */
  reason: string;
  /** Backends tried before it and why each was skipped. */
  skipped: { name: BackendName; reason: string }[];
  /** Capabilities of the chosen backend worth knowing, e.g. `["simd", "1 thread"]` for wasm. */
  features: string[];
  /** Whether mdrec's fast kernels are installed on the chosen backend. */
  fastKernels: boolean;
}

// A module name hidden from bundlers so optional peers are resolved only at run time.
async function importOptional(moduleName: string): Promise<unknown> {
  return import(/* @vite-ignore */ moduleName);
}

async function loadBackend(name: BackendName, threads: number): Promise<string> {
  switch (name) {
    case "node-gpu":
    case "node":
      await importOptional(PACKAGES[name]);
      return "tensorflow";
    case "wasm": {
      const wasm = (await importOptional(PACKAGES.wasm)) as { setThreadsCount?: (count: number) => void };
      // Read when the wasm backend initialises, so it must be set before tf.setBackend.
      wasm.setThreadsCount?.(threads);
      return "wasm";
    }
    case "cpu":
      await importOptional(PACKAGES.cpu);
      return "cpu";
  }
}

async function describeFeatures(name: BackendName, threads: number): Promise<string[]> {
  if (name !== "wasm") return [];
  const simd = (await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")) === true;
  const multithread = (await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")) === true;
  const threadText = multithread
    ? `${threads} thread${threads === 1 ? "" : "s"}`
    : "1 thread (no wasm threads here)";
  return [simd ? "simd" : "no simd", threadText];
}

// tfjs-backend-cpu prints its banner on the first write when `firstUse` is still true; there is
// no env flag for this message alone (PROD and IS_TEST silence every tfjs warning).
function silenceCpuBanner(): void {
  const backend = tf.findBackend("cpu") as { firstUse?: unknown } | null;
  if (backend && backend.firstUse === true) backend.firstUse = false;
}

function fastKernelsWanted(option: unknown, env: Record<string, string | undefined>): boolean {
  if (option !== undefined) {
    if (typeof option !== "boolean") {
      throw new ConfigError(`initBackend fastKernels must be a boolean, received ${formatValue(option)}`);
    }
    return option;
  }
  const fromEnv = env.MDREC_FAST_KERNELS?.trim().toLowerCase();
  if (fromEnv === undefined || fromEnv === "" || fromEnv === "1" || fromEnv === "true") return true;
  if (fromEnv === "0" || fromEnv === "false") return false;
  throw new ConfigError(
    `environment variable MDREC_FAST_KERNELS must be 0, 1, true or false, received ${formatValue(env.MDREC_FAST_KERNELS)}`,
  );
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.slice(0, 200);
}

/**
 * Chooses and initialises the best TensorFlow.js backend that loads:
 * `node-gpu` (`@tensorflow/tfjs-node-gpu`) -> `node` (`@tensorflow/tfjs-node`) -> `wasm` -> `cpu`.
 * The tfjs-node packages are optional: they are tried only when installed. Precedence of an
 * explicit choice: `prefer`, then `MDREC_BACKEND`, then the order above. Logs one line naming
 * the choice, why, and what was skipped.
 *
 * Throws {@link ConfigError} for an unknown backend name and {@link BackendError} when the
 * requested backend (or, without a request, every backend) cannot load.
 *
 * @example
 * const info = await initBackend({ prefer: "wasm" });
 * // prints: mdrec backend: wasm (requested by option prefer; simd, 1 thread (no wasm threads here))
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  assertKnownKeys("initBackend options", options, OPTION_KEYS);
  const env = options.env ?? (typeof process === "undefined" ? {} : process.env);
  const log = options.log ?? ((message: string) => console.error(message));
  const threads = options.threads ?? 1;
  assertInteger("initBackend threads", threads, 1, 256);
  const allowFallback = options.allowFallback ?? false;
  if (typeof allowFallback !== "boolean") {
    throw new ConfigError(
      `initBackend allowFallback must be a boolean, received ${formatValue(allowFallback)}`,
    );
  }
  const fastKernels = fastKernelsWanted(options.fastKernels, env);
  const fromEnv = env.MDREC_BACKEND?.trim() || undefined;
  const requested: string | undefined = options.prefer ?? fromEnv;
  const source = options.prefer !== undefined ? "option prefer" : "environment variable MDREC_BACKEND";
  if (requested !== undefined && !(BACKEND_PREFERENCE as readonly string[]).includes(requested)) {
    const suggestion = typeof requested === "string" ? nearestKey(requested, BACKEND_PREFERENCE) : undefined;
    throw new ConfigError(
      `${source} must be one of ${BACKEND_PREFERENCE.join(", ")}, received ${formatValue(requested)}` +
        (suggestion ? `. Did you mean "${suggestion}"?` : ""),
    );
  }
  const wanted = requested as BackendName | undefined;
  const candidates: BackendName[] =
    wanted === undefined
      ? [...BACKEND_PREFERENCE]
      : allowFallback
        ? BACKEND_PREFERENCE.slice(BACKEND_PREFERENCE.indexOf(wanted))
        : [wanted];
  const skipped: BackendInfo["skipped"] = [];
  for (const name of candidates) {
    let tfjsName: string;
    try {
      tfjsName = await loadBackend(name, threads);
      const ok = await tf.setBackend(tfjsName);
      if (!ok) throw new Error(`tf.setBackend("${tfjsName}") returned false`);
      await tf.ready();
    } catch (error) {
      skipped.push({ name, reason: firstLine(error) });
      continue;
    }
    if (name === "cpu" && options.silenceCpuBanner !== false) silenceCpuBanner();
    const reason =
      wanted === name
        ? `requested by ${source}`
        : wanted !== undefined
          ? `fallback after ${wanted} failed`
          : skipped.length === 0
            ? "best available"
            : "first that loaded";
    const features = await describeFeatures(name, threads);
    let overridden: string[] = [];
    if (fastKernels) overridden = registerFastKernels(tfjsName, { env });
    else unregisterFastKernels(tfjsName);
    if (name === "wasm") features.push(describeFastKernels(tfjsName));
    const details = [reason, ...features].join("; ");
    const skippedText = skipped.length
      ? `; skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}`
      : "";
    log(`mdrec backend: ${name} (${details})${skippedText}`);
    return { name, tfjsName, reason, skipped, features, fastKernels: overridden.length > 0 };
  }
  const details = skipped.map((s) => `${s.name}: ${s.reason}`).join("; ");
  if (wanted !== undefined && !allowFallback) {
    throw new BackendError(
      `Backend "${wanted}" requested by ${source} could not load (${details}). ` +
        `Install ${PACKAGES[wanted]}, request another backend, or allow fallback (allowFallback: true).`,
    );
  }
  throw new BackendError(
    `No TensorFlow.js backend could load (${details}). Install ${PACKAGES.wasm} or ${PACKAGES.cpu}.`,
  );
}
