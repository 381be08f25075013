import { readdir, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError, saveLayer } from "@mdrec/core";
import {
  createModel,
  diffConfigs,
  loadModel,
  loadWeights,
  type MultiDomainModel,
  PartitionedNorm,
} from "@mdrec/models";
import { temporaryDirectory } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { predictDataset, syntheticSplits, trainModel } from "./training.js";

const { data, train, test } = syntheticSplits(5, 1200);
const options = {
  features: data.features,
  numDomains: data.numDomains,
  embeddingDim: 4,
  bottomUnits: [16, 8],
};

let saved: { path: string; cleanup: () => Promise<void> };
let model: MultiDomainModel;
let trained: Float32Array;

interface ModelJson {
  modelTopology: { config: { name: string; formatVersion: number; options: Record<string, unknown> } };
}

async function editModelJson(directory: string, edit: (json: ModelJson) => void): Promise<void> {
  const path = join(directory, "model.json");
  const json = JSON.parse(await readFile(path, "utf8"));
  edit(json);
  await writeFile(path, JSON.stringify(json));
}

async function copyCheckpoint(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const copy = await temporaryDirectory();
  await model.save(copy.path);
  return copy;
}

describe("model checkpoints", () => {
  beforeAll(async () => {
    model = createModel("shared-bottom", { ...options, seed: 1 });
    trainModel(model, train, { epochs: 1 });
    trained = predictDataset(model, test);
    saved = await temporaryDirectory();
    await model.save(saved.path);
  });

  afterAll(async () => {
    model.dispose();
    await saved.cleanup();
  });

  it("writes model.json and one weights file, replacing the previous save", async () => {
    await model.save(saved.path);
    const files = (await readdir(saved.path)).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toBe("model.json");
    expect(files[1]).toMatch(/^weights-[0-9a-f]{12}\.bin$/);
    const json = JSON.parse(await readFile(join(saved.path, "model.json"), "utf8"));
    expect(json.modelTopology).toMatchObject({
      format: "mdrec-model",
      config: model.getConfig(),
      trainableWeights: 17,
    });
  });

  it("loads weights into a model of the same configuration and any seed", async () => {
    const other = createModel("shared-bottom", { ...options, seed: 99 });
    expect(predictDataset(other, test)).not.toEqual(trained);
    await loadWeights(other, saved.path);
    expect(predictDataset(other, test)).toEqual(trained);
    other.dispose();
  });

  it("refuses to load weights into a different configuration, naming each difference", async () => {
    const other = createModel("shared-bottom", { ...options, bottomUnits: [16, 4], towerMode: "shared" });
    await expect(loadWeights(other, saved.path)).rejects.toThrow(
      new CheckpointError(
        `${saved.path} was saved from a different model configuration: options.towerMode: checkpoint "per-domain", model "shared"; options.bottomUnits[1]: checkpoint 8, model 4`,
      ),
    );
    other.dispose();
    const { bottomUnits: _unused, ...baseOptions } = options;
    const mmoe = createModel("mmoe", baseOptions);
    await expect(loadWeights(mmoe, saved.path)).rejects.toThrow(
      /name: checkpoint "shared-bottom", model "mmoe"/,
    );
    mmoe.dispose();
  });

  it("refuses a checkpoint written with another format version", async () => {
    const copy = await copyCheckpoint();
    await editModelJson(copy.path, (json) => {
      json.modelTopology.config.formatVersion = 2;
    });
    await expect(loadModel(copy.path)).rejects.toThrow(
      new CheckpointError(
        `${copy.path} was written with model formatVersion 2; this @mdrec/models reads formatVersion 1`,
      ),
    );
    await copy.cleanup();
  });

  it("refuses a truncated weights file", async () => {
    const copy = await copyCheckpoint();
    const weightsFile = (await readdir(copy.path)).find((file) => file.endsWith(".bin"))!;
    await truncate(join(copy.path, weightsFile), 100);
    await expect(loadModel(copy.path)).rejects.toThrow(CheckpointError);
    await expect(loadModel(copy.path)).rejects.toThrow(
      /hold 100 bytes but .* describes \d+ bytes \(truncated or corrupted/,
    );
    await copy.cleanup();
  });

  it("refuses a checkpoint whose weights do not fit its config", async () => {
    const copy = await copyCheckpoint();
    await editModelJson(copy.path, (json) => {
      json.modelTopology.config.options.bottomUnits = [16];
    });
    await expect(loadModel(copy.path)).rejects.toThrow(
      `${copy.path} holds 17 weights but model "shared-bottom" has 15`,
    );
    await editModelJson(copy.path, (json) => {
      json.modelTopology.config.options.bottomUnits = [16, 9];
    });
    await expect(loadModel(copy.path)).rejects.toThrow(
      /weight 11 ".*" has shape \[16, 8\] but the model's ".*kernel_1" has \[16, 9\]/,
    );
    await copy.cleanup();
  });

  it("refuses a checkpoint of an unregistered model or with invalid options", async () => {
    const copy = await copyCheckpoint();
    await editModelJson(copy.path, (json) => {
      json.modelTopology.config.name = "cesaa-v9";
    });
    await expect(loadModel(copy.path)).rejects.toThrow(
      `${copy.path}/model.json cannot be turned into a model: Unknown model "cesaa-v9".`,
    );
    await editModelJson(copy.path, (json) => {
      json.modelTopology.config.name = "shared-bottom";
      json.modelTopology.config.options.dropuot = 0.1;
    });
    await expect(loadModel(copy.path)).rejects.toThrow(
      `cannot be turned into a model: Unknown key "dropuot" in shared-bottom options. Did you mean "dropout"?`,
    );
    await copy.cleanup();
  });

  it("refuses a directory without a model or with a saved layer instead", async () => {
    const empty = await temporaryDirectory();
    await expect(loadModel(empty.path)).rejects.toThrow(new RegExp(`^Cannot read ${empty.path}/model.json`));
    const norm = new PartitionedNorm({ numDomains: 2 });
    norm.normalize(tf.zeros([2, 3]), tf.tensor1d([0, 1], "int32"));
    await saveLayer(norm, empty.path);
    await expect(loadModel(empty.path)).rejects.toThrow(
      `${empty.path}/model.json is not an mdrec model (format "mdrec-layer", expected "mdrec-model")`,
    );
    norm.dispose();
    await empty.cleanup();
  });
});

describe("diffConfigs", () => {
  it("lists nested differences by path and honours ignored paths", () => {
    expect(diffConfigs({ a: 1, b: { c: [1, 2] } }, { a: 1, b: { c: [1, 3] }, d: true })).toEqual([
      "b.c[1]: checkpoint 2, model 3",
      "d: checkpoint (absent), model true",
    ]);
    expect(diffConfigs({ options: { seed: 1 } }, { options: { seed: 2 } }, ["options.seed"])).toEqual([]);
    expect(diffConfigs([1], { 0: 1 })).toEqual(['(root): checkpoint [1], model {"0":1}']);
  });
});
