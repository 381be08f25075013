import * as tf from "@tensorflow/tfjs-core";
import { BackendError, ConfigError } from "./errors.js";

/** Backends mdrec knows, best first. `node-gpu` and `node` are tfjs-node(-gpu)'s `tensorflow`. */
export const BACKEND_PREFERENCE = ["node-gpu", "node", "wasm", "cpu"] as const;

/** One of {@link BACKEND_PREFERENCE}. */
export type BackendName = (typeof BACKEND_PREFERENCE)[number];

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /**
   * Backend to use. Defaults to the `MDREC_BACKEND` environment variable, else the first of
   * `node-gpu`, `node`, `wasm`, `cpu` that loads.
   */
  prefer?: BackendName;
  /**
   * When `prefer` (or `MDREC_BACKEND`) names a backend that cannot load, fall back to the next
   * best instead of throwing. Defaults to false: an explicit request is honoured or refused.
   */
  allowFallback?: boolean;
  /** Threads for `wasm` (only effective where the threaded build can run). Defaults to 1. */
  threads?: number;
  /** Receives one line saying what was chosen and why others were skipped. Defaults to console.error. */
  log?: (message: string) => void;
  /** Environment to read `MDREC_BACKEND` from. Defaults to `process.env`. */
  env?: Record<string, string | undefined>;
}

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
}

// A module name hidden from bundlers so optional peers are resolved only at run time.
async function importOptional(moduleName: string): Promise<unknown> {
  return import(/* @vite-ignore */ moduleName);
}

async function loadBackend(name: BackendName, threads: number): Promise<string> {
  switch (name) {
    case "node-gpu":
      await importOptional("@tensorflow/tfjs-node-gpu");
      return "tensorflow";
    case "node":
      await importOptional("@tensorflow/tfjs-node");
      return "tensorflow";
    case "wasm": {
      const wasm = (await importOptional("@tensorflow/tfjs-backend-wasm")) as {
        setThreadsCount?: (count: number) => void;
      };
      wasm.setThreadsCount?.(threads);
      return "wasm";
    }
    case "cpu":
      await importOptional("@tensorflow/tfjs-backend-cpu");
      return "cpu";
  }
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.slice(0, 200);
}

/**
 * Chooses and initialises the best TensorFlow.js backend that loads:
 * `node-gpu` (`@tensorflow/tfjs-node-gpu`) -> `node` (`@tensorflow/tfjs-node`) -> `wasm` -> `cpu`.
 * The tfjs-node packages are optional: they are tried only when installed. Logs the choice.
 *
 * @example
 * const info = await initBackend({ prefer: "wasm" });
 * // prints: mdrec backend: wasm (requested by option prefer)
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  const env = options.env ?? process.env;
  const log = options.log ?? ((message: string) => console.error(message));
  const threads = options.threads ?? 1;
  const fromEnv = env.MDREC_BACKEND?.trim() || undefined;
  const requested = options.prefer ?? fromEnv;
  const source = options.prefer !== undefined ? "option prefer" : "environment variable MDREC_BACKEND";
  if (requested !== undefined && !(BACKEND_PREFERENCE as readonly string[]).includes(requested)) {
    throw new ConfigError(
      `${source} must be one of ${BACKEND_PREFERENCE.join(", ")}, received ${JSON.stringify(requested)}`,
    );
  }
  const candidates: BackendName[] =
    requested === undefined
      ? [...BACKEND_PREFERENCE]
      : options.allowFallback
        ? [
            requested as BackendName,
            ...BACKEND_PREFERENCE.slice(BACKEND_PREFERENCE.indexOf(requested as BackendName) + 1),
          ]
        : [requested as BackendName];
  const skipped: BackendInfo["skipped"] = [];
  for (const name of candidates) {
    try {
      const tfjsName = await loadBackend(name, threads);
      const ok = await tf.setBackend(tfjsName);
      if (!ok) throw new Error(`tf.setBackend("${tfjsName}") returned false`);
      await tf.ready();
      const reason =
        requested === name
          ? `requested by ${source}`
          : skipped.length === 0
            ? "best available"
            : "first that loaded";
      const info: BackendInfo = { name, tfjsName, reason, skipped };
      const skippedText = skipped.length ? `; skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join(", ")}` : "";
      log(`mdrec backend: ${name} (${reason})${skippedText}`);
      return info;
    } catch (error) {
      skipped.push({ name, reason: firstLine(error) });
    }
  }
  const details = skipped.map((s) => `${s.name}: ${s.reason}`).join("; ");
  throw new BackendError(
    requested !== undefined && !options.allowFallback
      ? `Backend "${requested}" requested by ${source} could not load (${details}). ` +
          "Install it (see docs/gpu.md), request another, or allow fallback (--allow-backend-fallback)."
      : `No TensorFlow.js backend could load (${details})`,
  );
}
