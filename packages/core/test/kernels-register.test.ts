import "@tensorflow/tfjs-backend-wasm";
import { availableParallelism } from "node:os";
import {
  BackendError,
  ConfigError,
  FAST_WASM_KERNELS,
  fastKernelNames,
  fastKernelsEnabled,
  initBackend,
  registerFastKernels,
  unregisterFastKernels,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { defaultBlasThreads } from "../src/kernels/native-gemm.js";

const ALL = [
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
];

afterEach(() => {
  unregisterFastKernels("wasm");
});

afterAll(async () => {
  await tf.setBackend("cpu");
});

describe("registerFastKernels", () => {
  it("installs every wasm override, is idempotent, and unregister restores the stock kernels", () => {
    expect([...FAST_WASM_KERNELS]).toEqual(ALL);
    const stockConfigs = FAST_WASM_KERNELS.map((name) => tf.getKernel(name, "wasm")!);
    const stock = stockConfigs.map((config) => config.kernelFunc);
    expect(fastKernelsEnabled("wasm")).toBe(false);
    expect(registerFastKernels("wasm")).toEqual([...ALL]);
    expect(registerFastKernels()).toEqual([...ALL]);
    expect(fastKernelsEnabled()).toBe(true);
    FAST_WASM_KERNELS.forEach((name, index) => {
      const installed = tf.getKernel(name, "wasm")!;
      expect(installed.kernelFunc).not.toBe(stock[index]);
      // The wasm kernels bind their C++ entry points in setupFunc: it must survive.
      expect(installed.setupFunc).toBe(stockConfigs[index]!.setupFunc);
    });
    expect(unregisterFastKernels("wasm")).toEqual([...ALL]);
    expect(fastKernelsEnabled("wasm")).toBe(false);
    FAST_WASM_KERNELS.forEach((name, index) => {
      expect(tf.getKernel(name, "wasm")!.kernelFunc).toBe(stock[index]);
    });
    expect(unregisterFastKernels("wasm")).toEqual([]);
  });

  it("installs a chosen subset and moves between subsets", () => {
    expect(registerFastKernels("wasm", { kernels: ["Identity"] })).toEqual(["Identity"]);
    expect(fastKernelNames("wasm")).toEqual(["Identity"]);
    expect(registerFastKernels("wasm", { kernels: ["BatchMatMul", "Sum"] })).toEqual(["BatchMatMul", "Sum"]);
    expect(fastKernelNames("wasm")).toEqual(["BatchMatMul", "Sum"]);
  });

  it("registers nothing on backends without overrides (cpu)", () => {
    expect(registerFastKernels("cpu")).toEqual([]);
    expect(fastKernelsEnabled("cpu")).toBe(false);
  });

  it("rejects bad arguments, naming the argument and the value received", () => {
    expect(() => registerFastKernels("")).toThrow(ConfigError);
    expect(() => registerFastKernels("")).toThrow(
      'registerFastKernels backendName must be a non-empty string, received ""',
    );
    expect(() => registerFastKernels(42 as unknown as string)).toThrow(
      "registerFastKernels backendName must be a non-empty string, received 42",
    );
    expect(() => registerFastKernels("wasm", { kernels: ["MatMul" as "BatchMatMul"] })).toThrow(
      'registerFastKernels options.kernels[0] must be one of "BatchMatMul", "_FusedMatMul", "Identity", "Sum", "Slice", "SplitV", "Unpack", "GatherV2", "Transpose", "Concat", received "MatMul"',
    );
    expect(() => registerFastKernels("wasm", { kernels: "Sum" as unknown as ["Sum"] })).toThrow(
      'registerFastKernels options.kernels must be an array, received "Sum"',
    );
    expect(() => registerFastKernels("wasm", { kernel: ["Sum"] } as never)).toThrow(
      'Unknown key "kernel" in registerFastKernels options. Did you mean "kernels"?',
    );
    expect(() => fastKernelsEnabled(null as unknown as string)).toThrow(
      "fastKernelsEnabled backendName must be a non-empty string, received null",
    );
    expect(() => unregisterFastKernels(" ".trim())).toThrow(ConfigError);
    expect(fastKernelsEnabled("wasm")).toBe(false);
  });

  it("refuses wasm when its kernels are not registered (backend package not imported)", () => {
    const stock = tf.getKernel("BatchMatMul", "wasm")!;
    tf.unregisterKernel("BatchMatMul", "wasm");
    try {
      expect(() => registerFastKernels("wasm")).toThrow(BackendError);
      expect(() => registerFastKernels("wasm")).toThrow(
        'registerFastKernels("wasm"): the wasm backend\'s kernels are not registered; import "@tensorflow/tfjs-backend-wasm" first',
      );
    } finally {
      tf.registerKernel(stock);
    }
    expect(fastKernelsEnabled("wasm")).toBe(false);
  });
});

describe("initBackend fast kernels", () => {
  it("installs the wasm overrides by default and says so in the backend line", async () => {
    const lines: string[] = [];
    const info = await initBackend({ prefer: "wasm", env: {}, log: (line) => lines.push(line) });
    expect(info.fastKernels).toBe(true);
    expect(info.features.at(-1)).toMatch(/^mdrec fast kernels/);
    expect(lines[0]).toMatch(
      /^mdrec backend: wasm \(requested by option prefer; .*; mdrec fast kernels.*\)$/,
    );
    expect(fastKernelsEnabled("wasm")).toBe(true);
  });

  it("keeps the stock kernels with fastKernels: false or MDREC_FAST_KERNELS=0, the option winning", async () => {
    registerFastKernels("wasm");
    const lines: string[] = [];
    const log = (line: string) => lines.push(line);
    const off = await initBackend({ prefer: "wasm", fastKernels: false, env: {}, log });
    expect(off.fastKernels).toBe(false);
    expect(off.features).toContain("stock kernels");
    expect(fastKernelsEnabled("wasm")).toBe(false);
    const fromEnv = await initBackend({ prefer: "wasm", env: { MDREC_FAST_KERNELS: "0" }, log });
    expect(fromEnv.fastKernels).toBe(false);
    const optionWins = await initBackend({
      prefer: "wasm",
      fastKernels: true,
      env: { MDREC_FAST_KERNELS: "0" },
      log,
    });
    expect(optionWins.fastKernels).toBe(true);
    expect(lines[2]).toMatch(/; mdrec fast kernels/);
  });

  it("reports no fast kernels on cpu", async () => {
    const info = await initBackend({ prefer: "cpu", env: {}, log: () => {} });
    expect(info.fastKernels).toBe(false);
    expect(info.features).toEqual([]);
  });

  it("rejects a non-boolean option and an unknown MDREC_FAST_KERNELS value, naming the value", async () => {
    await expect(
      initBackend({ prefer: "cpu", fastKernels: "yes" as unknown as boolean, log: () => {} }),
    ).rejects.toThrow('initBackend fastKernels must be a boolean, received "yes"');
    await expect(
      initBackend({ prefer: "cpu", env: { MDREC_FAST_KERNELS: "maybe" }, log: () => {} }),
    ).rejects.toThrow(
      'environment variable MDREC_FAST_KERNELS must be 0, 1, true or false, received "maybe"',
    );
    await expect(
      initBackend({ prefer: "cpu", env: { MDREC_FAST_KERNELS: "maybe" }, log: () => {} }),
    ).rejects.toThrow(ConfigError);
  });
});

describe("defaultBlasThreads", () => {
  it("reads MDREC_BLAS_THREADS, else uses every core, and names a bad value", () => {
    expect(defaultBlasThreads({ MDREC_BLAS_THREADS: "3" })).toBe(3);
    expect(defaultBlasThreads({})).toBe(Math.max(1, availableParallelism()));
    expect(() => defaultBlasThreads({ MDREC_BLAS_THREADS: "two" })).toThrow(
      'environment variable MDREC_BLAS_THREADS must be an integer in [1, 256], received "two"',
    );
    expect(() => defaultBlasThreads({ MDREC_BLAS_THREADS: "0" })).toThrow(/received "0"/);
  });
});
