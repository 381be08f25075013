import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "@mdrec/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  CONFIG_KEYS,
  flagName,
  mergeConfigLayers,
  numberFromFlag,
  readConfigFile,
  requireKey,
  validateConfig,
} from "../src/config.js";
import { UsageError } from "../src/errors.js";
import { tempDirectory } from "./fixtures.js";

const directory = tempDirectory("mdrec-config-");
afterAll(() => directory.cleanup());

function write(name: string, content: string): string {
  writeFileSync(join(directory.path, name), content);
  return name;
}

async function fromFile(name: string, content: string, flags: Record<string, unknown> = {}, env = {}) {
  const path = write(name, content);
  return validateConfig(
    mergeConfigLayers({ path, values: await readConfigFile(path, directory.path) }, env, flags),
  );
}

function expectConfigError(run: () => unknown, ...fragments: string[]) {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

describe("config schema", () => {
  it("fills the documented defaults", () => {
    const config = validateConfig(mergeConfigLayers(undefined, {}, {}));
    expect(config).toMatchObject({
      model: "cesaa",
      modelOptions: {},
      allowBackendFallback: false,
      threads: 1,
      seed: 42,
      overwrite: false,
      split: [0.8, 0.1, 0.1],
      steps: 20,
      verbose: false,
      json: false,
    });
    expect(config.epochs).toBeUndefined();
    expect(config.data).toBeUndefined();
    expect(config.backend).toBeUndefined();
  });

  it("reads YAML and JSON files; flags win over the file, MDREC_BACKEND sits between", async () => {
    const yaml = await fromFile(
      "run.yaml",
      "epochs: 3\nbatchSize: 64\nbackend: cpu\nmodels: [mmoe, cesaa]\nearlyStopping:\n  patience: 2\nmodelOptions:\n  cesaa: { k: 2 }\n",
      { epochs: 5 },
      { MDREC_BACKEND: "wasm" },
    );
    expect(yaml.epochs).toBe(5);
    expect(yaml.batchSize).toBe(64);
    expect(yaml.backend).toBe("wasm");
    expect(yaml.models).toEqual(["mmoe", "cesaa"]);
    expect(yaml.earlyStopping).toEqual({ metric: "auc", patience: 2 });
    const off = await fromFile("off.yaml", "earlyStopping: false\n");
    expect(off.earlyStopping).toBe(false);
    expect(yaml.modelOptions).toEqual({ cesaa: { k: 2 } });
    const json = await fromFile(
      "run.json",
      JSON.stringify({ seed: 7, data: "synthetic:tiny" }),
      { backend: "cpu" },
      { MDREC_BACKEND: "wasm" },
    );
    expect(json).toMatchObject({ seed: 7, data: "synthetic:tiny", backend: "cpu" });
  });

  it("names an unknown key, its file and the nearest valid key (top level and nested)", async () => {
    await expect(fromFile("typo.yaml", "epoch: 3\n")).rejects.toThrow(
      'Unknown config key "epoch" in typo.yaml. Did you mean "epochs"?',
    );
    await expect(fromFile("nested.yaml", "earlyStopping:\n  patiense: 3\n")).rejects.toThrow(
      'Unknown config key "earlyStopping.patiense" in nested.yaml. Did you mean "patience"?',
    );
    await expect(fromFile("far.yaml", "zzzzzzzzzz: 1\n")).rejects.toThrow(/Valid keys: data, schema, model/);
    await expect(fromFile("stop.yaml", "earlyStopping:\n  patience: 0\n")).rejects.toThrow(
      'config key "earlyStopping.patience" in stop.yaml must be a positive integer, received 0',
    );
    await expect(fromFile("stop.yaml", "earlyStopping: yes\n")).rejects.toThrow(
      'config key "earlyStopping" in stop.yaml must be false or an object { metric, patience }, received "yes"',
    );
  });

  it("names the key, the file and the value for wrong types and ranges", async () => {
    await expect(fromFile("type.yaml", "batchSize: big\n")).rejects.toThrow(
      'config key "batchSize" in type.yaml must be a positive integer, received "big"',
    );
    await expect(fromFile("nan.yaml", "learningRate: .nan\n")).rejects.toThrow(
      'config key "learningRate" in nan.yaml must be a finite number > 0, received NaN',
    );
    await expect(fromFile("zero.json", '{"epochs": 0, "batchSize": -4}')).rejects.toThrow(
      /config key "epochs" in zero.json must be a positive integer, received 0\nconfig key "batchSize" in zero.json must be a positive integer, received -4/,
    );
    await expect(fromFile("backend.yaml", "backend: tensorflow-gpu\n")).rejects.toThrow(
      'config key "backend" in backend.yaml must be one of "node-gpu", "node", "wasm", "cpu", received "tensorflow-gpu"',
    );
    await expect(fromFile("split.yaml", "split: [0.5, 0.1, 0.1]\n")).rejects.toThrow(
      'config key "split" in split.yaml must be three fractions [train, validation, test] summing to 1 with train > 0, received [0.5,0.1,0.1]',
    );
    await expect(fromFile("models.yaml", "models: mmoe\n")).rejects.toThrow(
      'config key "models" in models.yaml must be a list of model names, received "mmoe"',
    );
  });

  it("names the flag for values that came from flags, and the variable for MDREC_BACKEND", () => {
    expectConfigError(
      () => validateConfig(mergeConfigLayers(undefined, {}, { learningRate: Number.NaN })),
      "--learning-rate must be a finite number > 0, received NaN",
    );
    expectConfigError(
      () => validateConfig(mergeConfigLayers(undefined, {}, { batchSize: 0, epochs: 1.5 })),
      "--batch-size must be a positive integer, received 0",
      "--epochs must be a positive integer, received 1.5",
    );
    expectConfigError(
      () => validateConfig(mergeConfigLayers(undefined, { MDREC_BACKEND: "gpu" }, {})),
      'environment variable MDREC_BACKEND must be one of "node-gpu", "node", "wasm", "cpu", received "gpu"',
    );
  });

  it("reports unreadable and malformed files with the path and position", async () => {
    await expect(readConfigFile("missing.yaml", directory.path)).rejects.toThrow(
      "Cannot read config file missing.yaml (--config): no such file",
    );
    await expect(readConfigFile(".", directory.path)).rejects.toThrow("it is a directory");
    write("broken.yaml", "epochs: 3\n  batchSize: [1\n");
    await expect(readConfigFile("broken.yaml", directory.path)).rejects.toThrow(
      /^Config file broken\.yaml:\d+:\d+ is not valid YAML: /,
    );
    write("broken.json", '{"epochs": 3,,}');
    await expect(readConfigFile("broken.json", directory.path)).rejects.toThrow(
      /^Config file broken\.json is not valid JSON/,
    );
    write("list.yaml", "- epochs\n");
    await expect(readConfigFile("list.yaml", directory.path)).rejects.toThrow(
      'Config file list.yaml must hold an object of config keys, received ["epochs"]',
    );
    write("empty.yaml", "");
    await expect(readConfigFile("empty.yaml", directory.path)).resolves.toEqual({});
  });

  it("converts flag text to numbers only when it reads as one", () => {
    expect(numberFromFlag("0.01")).toBe(0.01);
    expect(numberFromFlag("1e-3")).toBe(0.001);
    expect(numberFromFlag("-4")).toBe(-4);
    expect(numberFromFlag("NaN")).toBeNaN();
    expect(numberFromFlag("Infinity")).toBe(Number.POSITIVE_INFINITY);
    expect(numberFromFlag("12abc")).toBe("12abc");
    expect(numberFromFlag("")).toBe("");
  });

  it("maps keys to flags and every key to a flag name", () => {
    expect(flagName("batchSize")).toBe("--batch-size");
    expect(flagName("allowBackendFallback")).toBe("--allow-backend-fallback");
    expect(CONFIG_KEYS).toContain("earlyStopping");
  });

  it("requireKey refuses a missing key with a usage error naming flag and key", () => {
    const config = validateConfig(mergeConfigLayers(undefined, {}, {}));
    expect(() => requireKey(config, "modelDir", "eval")).toThrow(UsageError);
    expect(() => requireKey(config, "modelDir", "eval")).toThrow(
      'mdrec eval needs --model-dir <value> (or config key "modelDir")',
    );
  });
});
