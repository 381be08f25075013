import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  assignVariables,
  CheckpointError,
  encodeVariables,
  hasSavedModel,
  loadLayer,
  Mlp,
  nodeFileSystem,
  saveLayer,
  writeFileAtomic,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { maxAbsDifference, temporaryDirectory } from "./helpers.js";

let root: { path: string; cleanup: () => Promise<void> };
let counter = 0;
const freshDirectory = () => join(root.path, `case-${counter++}`);

beforeAll(async () => {
  root = await temporaryDirectory();
});
afterAll(async () => {
  await root.cleanup();
});

function denseModel(seed: number): tfl.Sequential {
  const model = tfl.sequential();
  model.add(
    tfl.layers.dense({
      units: 3,
      inputShape: [4],
      activation: "relu",
      kernelInitializer: tfl.initializers.glorotUniform({ seed }),
    }),
  );
  model.add(
    tfl.layers.dense({ units: 1, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
  );
  return model;
}

async function weightsFileOf(directory: string): Promise<string> {
  const files = (await readdir(directory)).filter((name) => name.endsWith(".bin"));
  expect(files).toHaveLength(1);
  return join(directory, files[0]!);
}

describe("nodeFileSystem", () => {
  it("round-trips artifacts: topology, weights and metadata", async () => {
    const directory = freshDirectory();
    const values = new Float32Array([1, 2, 3, 4, 5, 6]);
    const handler = nodeFileSystem(directory);
    const result = await handler.save!({
      modelTopology: { hello: "world" },
      weightSpecs: [{ name: "w", shape: [2, 3], dtype: "float32" }],
      weightData: values.buffer,
      format: "custom",
      generatedBy: "test",
      userDefinedMetadata: { epoch: { value: 3 } },
    });
    expect(result.modelArtifactsInfo.weightDataBytes).toBe(24);
    expect(await hasSavedModel(directory)).toBe(true);
    const loaded = await handler.load!();
    expect(loaded.modelTopology).toEqual({ hello: "world" });
    expect(loaded.weightSpecs).toEqual([{ name: "w", shape: [2, 3], dtype: "float32" }]);
    expect(Array.from(new Float32Array(loaded.weightData as ArrayBuffer))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(loaded.format).toBe("custom");
    expect(loaded.generatedBy).toBe("test");
    expect(loaded.userDefinedMetadata).toEqual({ epoch: { value: 3 } });
  });

  it("saves and loads a tfjs-layers model with model.save / tf.loadLayersModel", async () => {
    const directory = freshDirectory();
    const model = denseModel(3);
    const x = tf.randomNormal([5, 4], 0, 1, "float32", 1);
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    await model.save(nodeFileSystem(directory));
    const json = JSON.parse(await readFile(join(directory, "model.json"), "utf8"));
    expect(json.format).toBe("layers-model");
    expect(json.weightsManifest[0].paths[0]).toMatch(/^\.\/weights-[0-9a-f]{12}\.bin$/);
    const loaded = await tfl.loadLayersModel(nodeFileSystem(directory));
    expect(maxAbsDifference((loaded.predict(x) as tf.Tensor).dataSync(), expected)).toBe(0);
    model.dispose();
    loaded.dispose();
  });

  it("replaces the previous save, leaving one weights file and no temp files", async () => {
    const directory = freshDirectory();
    const first = denseModel(1);
    const second = denseModel(2);
    await first.save(nodeFileSystem(directory));
    await second.save(nodeFileSystem(directory));
    const files = (await readdir(directory)).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toBe("model.json");
    expect(files[1]).toMatch(/^weights-[0-9a-f]{12}\.bin$/);
    const loaded = await tfl.loadLayersModel(nodeFileSystem(directory));
    const x = tf.ones([1, 4]);
    expect(
      maxAbsDifference(
        (loaded.predict(x) as tf.Tensor).dataSync(),
        (second.predict(x) as tf.Tensor).dataSync(),
      ),
    ).toBe(0);
    first.dispose();
    second.dispose();
    loaded.dispose();
  });

  it("refuses truncated weights, naming both byte counts", async () => {
    const directory = freshDirectory();
    const model = denseModel(4); // 4*3 + 3 + 3*1 + 1 = 19 floats = 76 bytes
    await model.save(nodeFileSystem(directory));
    await truncate(await weightsFileOf(directory), 70);
    const load = () => nodeFileSystem(directory).load!();
    await expect(load()).rejects.toThrow(CheckpointError);
    await expect(load()).rejects.toThrow(
      `Weights in ${directory} hold 70 bytes but ${join(directory, "model.json")} describes 76 bytes (truncated or corrupted checkpoint)`,
    );
    await expect(tfl.loadLayersModel(nodeFileSystem(directory))).rejects.toThrow("hold 70 bytes");
    model.dispose();
  });

  it("refuses a missing model.json, naming the path", async () => {
    const directory = freshDirectory();
    await mkdir(directory);
    expect(await hasSavedModel(directory)).toBe(false);
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(CheckpointError);
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(
      `Cannot read ${join(directory, "model.json")}: ENOENT`,
    );
  });

  it("refuses invalid JSON and malformed manifests", async () => {
    const directory = freshDirectory();
    await mkdir(directory);
    const modelPath = join(directory, "model.json");
    await writeFile(modelPath, "{ not json");
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(`${modelPath} is not valid JSON`);
    await writeFile(modelPath, "[1, 2]");
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(`${modelPath} must hold a JSON object`);
    await writeFile(modelPath, JSON.stringify({ weightsManifest: { paths: [] } }));
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow("weightsManifest must be an array");
    await writeFile(
      modelPath,
      JSON.stringify({ weightsManifest: [{ paths: ["../../etc/passwd"], weights: [] }] }),
    );
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(
      'weights path "../../etc/passwd" must be relative to the model directory',
    );
    await writeFile(
      modelPath,
      JSON.stringify({ weightsManifest: [{ paths: ["./weights-000000000000.bin"], weights: [] }] }),
    );
    await expect(nodeFileSystem(directory).load!()).rejects.toThrow(
      `Cannot read weights file ${join(directory, "weights-000000000000.bin")} named in ${modelPath}`,
    );
  });

  it("keeps the previous model intact and leaves no stray file when a save fails", async () => {
    const directory = freshDirectory();
    const model = denseModel(5);
    await model.save(nodeFileSystem(directory));
    const before = (await readdir(directory)).sort();
    // A topology that cannot be serialised fails before anything is written.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(
      nodeFileSystem(directory).save!({
        modelTopology: circular,
        weightSpecs: [],
        weightData: new ArrayBuffer(0),
      }),
    ).rejects.toThrow(`Cannot save to ${directory}: the model topology is not JSON-serialisable`);
    // The commit (model.json rename) fails after the new weights were written: they are removed.
    const blocked = freshDirectory();
    await model.save(nodeFileSystem(blocked));
    await rm(join(blocked, "model.json"));
    await mkdir(join(blocked, "model.json")); // a non-empty directory where model.json goes: rename fails
    await writeFile(join(blocked, "model.json", "keep"), "x");
    const blockedFiles = (await readdir(blocked)).sort();
    await expect(model.save(nodeFileSystem(blocked))).rejects.toThrow(CheckpointError);
    await expect(model.save(nodeFileSystem(blocked))).rejects.toThrow(
      `Cannot write ${join(blocked, "model.json")}`,
    );
    expect((await readdir(blocked)).sort()).toEqual(blockedFiles);
    expect((await readdir(directory)).sort()).toEqual(before);
    const loaded = await tfl.loadLayersModel(nodeFileSystem(directory));
    const x = tf.ones([2, 4]);
    expect(
      maxAbsDifference(
        (loaded.predict(x) as tf.Tensor).dataSync(),
        (model.predict(x) as tf.Tensor).dataSync(),
      ),
    ).toBe(0);
    model.dispose();
    loaded.dispose();
  });

  it("fails a save whose directory path is a regular file, naming it", async () => {
    const file = freshDirectory();
    await writeFile(file, "not a directory");
    const model = denseModel(6);
    await expect(model.save(nodeFileSystem(join(file, "model")))).rejects.toThrow(CheckpointError);
    await expect(model.save(nodeFileSystem(join(file, "model")))).rejects.toThrow(
      `Cannot create directory ${join(file, "model")}`,
    );
    expect(await readFile(file, "utf8")).toBe("not a directory");
    model.dispose();
  });

  it("counts quantized weights by their stored width", async () => {
    const directory = freshDirectory();
    const handler = nodeFileSystem(directory);
    await handler.save!({
      modelTopology: {},
      weightSpecs: [
        { name: "q", shape: [4], dtype: "float32", quantization: { dtype: "uint8", scale: 0.1, min: 0 } },
      ],
      weightData: new Uint8Array([1, 2, 3, 4]).buffer,
    });
    const loaded = await handler.load!();
    expect((loaded.weightData as ArrayBuffer).byteLength).toBe(4);
  });

  it("rejects an empty directory argument", () => {
    expect(() => nodeFileSystem("")).toThrow("nodeFileSystem directory must be a non-empty path");
  });
});

describe("writeFileAtomic", () => {
  it("writes, replaces and creates parent directories without temp files", async () => {
    const directory = freshDirectory();
    const path = join(directory, "nested", "file.txt");
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, new TextEncoder().encode("second"));
    expect(await readFile(path, "utf8")).toBe("second");
    expect(await readdir(join(directory, "nested"))).toEqual(["file.txt"]);
  });

  it("fails with a CheckpointError naming the path and keeps the old file", async () => {
    const directory = freshDirectory();
    await mkdir(directory);
    const parentIsFile = join(directory, "plain");
    await writeFile(parentIsFile, "x");
    await expect(writeFileAtomic(join(parentIsFile, "child.txt"), "y")).rejects.toThrow(CheckpointError);
    await expect(writeFileAtomic(join(parentIsFile, "child.txt"), "y")).rejects.toThrow(
      `Cannot create directory ${parentIsFile}`,
    );
    // The target is a non-empty directory: rename fails after the temp file was written.
    const target = join(directory, "target");
    await mkdir(target);
    await writeFile(join(target, "inside"), "z");
    await expect(writeFileAtomic(target, "data")).rejects.toThrow(`Cannot write ${target}`);
    expect((await readdir(directory)).sort()).toEqual(["plain", "target"]);
    expect((await stat(target)).isDirectory()).toBe(true);
  });
});

describe("saveLayer / loadLayer errors", () => {
  it("refuses to save an unbuilt layer", async () => {
    const mlp = new Mlp({ units: [2], seed: 1, name: "unbuilt" });
    await expect(saveLayer(mlp, freshDirectory())).rejects.toThrow(
      'Cannot save layer "unbuilt": it has not been built (call it once first)',
    );
  });

  it("refuses a directory that is not an mdrec layer or names an unknown class", async () => {
    const directory = freshDirectory();
    const model = denseModel(7);
    await model.save(nodeFileSystem(directory));
    await expect(loadLayer(directory)).rejects.toThrow(
      `${directory}/model.json is not an mdrec layer (format undefined)`,
    );
    const unknown = freshDirectory();
    await nodeFileSystem(unknown).save!({
      modelTopology: { format: "mdrec-layer", className: "MdrecNoSuchLayer", config: {}, inputShape: [1, 2] },
      weightSpecs: [],
      weightData: new ArrayBuffer(0),
    });
    await expect(loadLayer(unknown)).rejects.toThrow(
      `${unknown}: layer class "MdrecNoSuchLayer" is not registered (import the package that defines it)`,
    );
    const badConfig = freshDirectory();
    await nodeFileSystem(badConfig).save!({
      modelTopology: {
        format: "mdrec-layer",
        className: "MdrecMlp",
        config: { units: [] },
        inputShape: [1, 2],
      },
      weightSpecs: [],
      weightData: new ArrayBuffer(0),
    });
    await expect(loadLayer(badConfig)).rejects.toThrow(
      `${badConfig}: cannot rebuild layer class "MdrecMlp" from its saved config: Mlp units must be a non-empty array`,
    );
    model.dispose();
  });

  it("refuses weights whose count, shape or dtype do not match the rebuilt layer", async () => {
    const mlp = new Mlp({ units: [2], seed: 1 });
    mlp.build([1, 3]);
    const directory = freshDirectory();
    await saveLayer(mlp, directory);
    const json = JSON.parse(await readFile(join(directory, "model.json"), "utf8"));
    json.modelTopology.config.units = [3];
    await writeFile(join(directory, "model.json"), JSON.stringify(json));
    await expect(loadLayer(directory)).rejects.toThrow(
      /weight 0 "0:.*kernel_0.*" has shape \[3, 2\] but the model's ".*kernel_0.*" has \[3, 3\]/,
    );

    const numTensors = tf.memory().numTensors;
    const variables = mlp.weights;
    const { data, specs } = await encodeVariables(variables);
    const values = tf.io.decodeWeights(data, specs);
    expect(() => assignVariables(variables.slice(1), values, specs, "ckpt")).toThrow(
      "ckpt holds 2 weights but the model has 1",
    );
    const intValues = tf.io.decodeWeights(data, specs);
    const intSpecs = specs.map((spec) => ({ ...spec }));
    intValues[intSpecs[0]!.name]!.dispose();
    intValues[intSpecs[0]!.name] = tf.zeros([3, 2], "int32");
    expect(() => assignVariables(variables, intValues, intSpecs, "ckpt")).toThrow(
      /has dtype int32 but the model's/,
    );
    // Failed assignments dispose the decoded tensors.
    expect(tf.memory().numTensors).toBe(numTensors);
    mlp.dispose();
  });
});
