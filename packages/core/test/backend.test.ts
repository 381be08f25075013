import {
  BACKEND_PREFERENCE,
  BackendError,
  ConfigError,
  type InitBackendOptions,
  initBackend,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";

function capture(options: InitBackendOptions = {}) {
  const lines: string[] = [];
  return { lines, run: () => initBackend({ env: {}, log: (line) => lines.push(line), ...options }) };
}

describe("initBackend", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await tf.setBackend("cpu");
  });

  it("lists the backends best first", () => {
    expect(BACKEND_PREFERENCE).toEqual(["node-gpu", "node", "wasm", "cpu"]);
  });

  it("takes the backend from MDREC_BACKEND through the env option and logs it", async () => {
    const { lines, run } = capture({ env: { MDREC_BACKEND: " cpu " } });
    const info = await run();
    expect(info).toMatchObject({
      name: "cpu",
      tfjsName: "cpu",
      reason: "requested by environment variable MDREC_BACKEND",
      skipped: [],
      features: [],
    });
    expect(tf.getBackend()).toBe("cpu");
    expect(lines).toEqual(["mdrec backend: cpu (requested by environment variable MDREC_BACKEND)"]);
  });

  it("lets the prefer option win over MDREC_BACKEND", async () => {
    const { lines, run } = capture({ prefer: "cpu", env: { MDREC_BACKEND: "wasm" } });
    expect((await run()).reason).toBe("requested by option prefer");
    expect(lines[0]).toBe("mdrec backend: cpu (requested by option prefer)");
  });

  it("rejects an unknown backend name with a ConfigError naming the source and the value", async () => {
    await expect(capture({ env: { MDREC_BACKEND: "wsam" } }).run()).rejects.toThrow(ConfigError);
    await expect(capture({ env: { MDREC_BACKEND: "wsam" } }).run()).rejects.toThrow(
      'environment variable MDREC_BACKEND must be one of node-gpu, node, wasm, cpu, received "wsam". Did you mean "wasm"?',
    );
    await expect(capture({ prefer: "tensorflow" as "cpu" }).run()).rejects.toThrow(
      'option prefer must be one of node-gpu, node, wasm, cpu, received "tensorflow"',
    );
  });

  it("refuses an explicitly requested backend that is not installed, naming it", async () => {
    const { run } = capture({ prefer: "node" });
    await expect(run()).rejects.toThrow(BackendError);
    await expect(run()).rejects.toThrow(
      /^Backend "node" requested by option prefer could not load \(node: .*\)\. Install @tensorflow\/tfjs-node, request another backend, or allow fallback \(allowFallback: true\)\.$/,
    );
    expect(tf.getBackend()).toBe("cpu");
  });

  it("falls back to the next available backend when allowed, saying what it skipped", async () => {
    const { lines, run } = capture({ prefer: "node", allowFallback: true });
    const info = await run();
    expect(info.name).toBe("wasm");
    expect(info.tfjsName).toBe("wasm");
    expect(info.reason).toBe("fallback after node failed");
    expect(info.skipped.map((entry) => entry.name)).toEqual(["node"]);
    expect(info.features[0]).toMatch(/^(simd|no simd)$/);
    expect(info.features[1]).toMatch(/thread/);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^mdrec backend: wasm \(fallback after node failed; (simd|no simd); .*thread.*\); skipped node \(/,
    );
    expect(tf.getBackend()).toBe("wasm");
    await tf.setBackend("cpu");
  });

  it("chooses the best backend that loads when nothing is requested", async () => {
    const { lines, run } = capture();
    const info = await run();
    // tfjs-node(-gpu) cannot be installed here, so wasm is the best that loads.
    expect(info.name).toBe("wasm");
    expect(info.reason).toBe("first that loaded");
    expect(info.skipped.map((entry) => entry.name)).toEqual(["node-gpu", "node"]);
    expect(lines[0]).toContain("skipped node-gpu (");
    await tf.setBackend("cpu");
  });

  it("silences the cpu backend's tfjs-node banner unless asked not to", async () => {
    const banner = /looks like you are running TensorFlow\.js in Node\.js/;
    const cpu = tf.findBackend("cpu") as unknown as { firstUse: boolean };
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    cpu.firstUse = true; // as in a fresh process
    await capture({ prefer: "cpu" }).run();
    tf.dispose(tf.tensor1d([1, 2]));
    expect(warnings.mock.calls.some((call) => banner.test(String(call[0])))).toBe(false);

    cpu.firstUse = true;
    await capture({ prefer: "cpu", silenceCpuBanner: false }).run();
    tf.dispose(tf.tensor1d([1, 2]));
    expect(warnings.mock.calls.some((call) => banner.test(String(call[0])))).toBe(true);
  });

  it("validates its other options", async () => {
    await expect(capture({ threads: 0 }).run()).rejects.toThrow(
      "initBackend threads must be an integer in [1, 256], received 0",
    );
    await expect(capture({ allowFallback: "yes" as unknown as boolean }).run()).rejects.toThrow(
      'initBackend allowFallback must be a boolean, received "yes"',
    );
    await expect(initBackend({ prefered: "cpu" } as InitBackendOptions)).rejects.toThrow(
      'Unknown key "prefered" in initBackend options. Did you mean "prefer"?',
    );
  });
});
