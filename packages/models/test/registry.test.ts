import { ConfigError, DataError, disposeBatch, ShapeError, setGlobalSeed } from "@mdrec/core";
import {
  type BaseModelOptions,
  createModel,
  DomainTowers,
  getModelInfo,
  listModels,
  type ModelOutput,
  MultiDomainModelBase,
  modelPreset,
  registerModel,
  resolveOptions,
} from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { run } from "./support.js";
import { firstBatch, syntheticSplits } from "./training.js";

interface LinearOptions extends BaseModelOptions {
  /** Defaults to false. */
  brokenShape?: boolean;
}

/** A downstream model: linear per-domain towers on the embedding (the README example). */
class Linear extends MultiDomainModelBase<LinearOptions> {
  private readonly towers: DomainTowers;
  constructor(options: LinearOptions) {
    super("test-linear", resolveOptions("test-linear options", options, { brokenShape: false }));
    this.towers = this.track(
      new DomainTowers({
        numDomains: this.numDomains,
        numTasks: this.numTasks,
        units: [],
        seed: this.childSeed(),
      }),
    );
  }
  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const logits = this.towers.forward(x, domainIds, training);
    return { logits: this.options.brokenShape ? tf.transpose(logits) : logits, routing: [], auxLosses: {} };
  }
}

registerModel("test-linear", (options) => new Linear(options), {
  description: "linear per-domain towers (test)",
  presets: { tiny: {}, broken: { brokenShape: true } },
});

const { data, train } = syntheticSplits(3, 400);
const options = { features: data.features, numDomains: data.numDomains, embeddingDim: 4 };

describe("model registry", () => {
  it("lists built-in and downstream models, with descriptions and presets", () => {
    expect(listModels().slice(0, 4)).toEqual(["shared-bottom", "mmoe", "ple", "star"]);
    expect(listModels()).toContain("test-linear");
    expect(getModelInfo("test-linear")).toEqual({
      name: "test-linear",
      description: "linear per-domain towers (test)",
      presets: { tiny: {}, broken: { brokenShape: true } },
    });
    for (const name of listModels()) expect(modelPreset(name, "tiny")).toBeTypeOf("object");
  });

  it("creates a registered downstream model that trains through the base class", () => {
    const model = createModel("test-linear", { ...options, seed: 1 });
    const batch = firstBatch(train, 16);
    const probabilities = run(() => model.predict(batch));
    expect(probabilities).toHaveLength(16);
    expect(probabilities.every((p) => p > 0 && p < 1)).toBe(true);
    expect(model.getConfig()).toEqual({
      name: "test-linear",
      options: { ...options, numTasks: 1, seed: 1, brokenShape: false },
      formatVersion: 1,
    });
    disposeBatch(batch);
    model.dispose();
    expect(() => model.predict(batch)).toThrow('Model "test-linear" has been disposed');
  });

  it("refuses unknown names, listing the known ones and the nearest", () => {
    expect(() => createModel("mmeo", options)).toThrow(
      new ConfigError(
        `Unknown model "mmeo". Did you mean "mmoe"? Known models: "shared-bottom", "mmoe", "ple", "star", "test-linear".`,
      ),
    );
    expect(() => createModel("transformer", options)).toThrow(
      /^Unknown model "transformer"\. Known models: "shared-bottom"/,
    );
    expect(() => getModelInfo("stra")).toThrow('Did you mean "star"?');
    expect(() => modelPreset("star", "huge")).toThrow(
      'Model "star" has no preset "huge"; its presets: "tiny"',
    );
  });

  it("refuses duplicate, malformed and undescribed registrations", () => {
    const factory = (o: BaseModelOptions & Record<string, unknown>) => new Linear(o);
    expect(() => registerModel("mmoe", factory, { description: "x" })).toThrow(
      'Model "mmoe" is already registered (pass { replace: true } to replace it)',
    );
    expect(() => registerModel("My Model", factory, { description: "x" })).toThrow(
      'registerModel name must be lower-case letters, digits and dashes starting with a letter, received "My Model"',
    );
    expect(() => registerModel("other", factory, { description: "" })).toThrow(
      'registerModel("other") needs a non-empty description, received ""',
    );
    expect(() =>
      registerModel("other", factory, { description: "x", presets: { tiny: [] as never } }),
    ).toThrow('registerModel("other") preset "tiny" must be an options object, received []');
    registerModel("test-linear", factory, { description: "replaced", replace: true });
    expect(getModelInfo("test-linear").presets).toEqual({ tiny: {} });
  });

  it("draws the seed of an unseeded model from the global generator and reports it", () => {
    setGlobalSeed(5);
    const first = createModel("test-linear", options);
    setGlobalSeed(5);
    const second = createModel("test-linear", options);
    expect(first.getConfig().options.seed).toBe(second.getConfig().options.seed);
    expect(first.trainableWeights().map((w) => Array.from(w.read().dataSync()))).toEqual(
      second.trainableWeights().map((w) => Array.from(w.read().dataSync())),
    );
    first.dispose();
    second.dispose();
  });
});

describe("MultiDomainModelBase", () => {
  it("builds every block before the first call so the weight lists are complete", () => {
    const model = createModel("shared-bottom", { ...options, seed: 2 });
    const names = model.trainableWeights().map((weight) => weight.name);
    // 9 categorical tables (the numeric field passes through), bottom [64, 32], towers [8, 1]
    expect(names.length).toBe(9 + 4 + 4);
    expect(model.nonTrainableWeights()).toEqual([]);
    model.dispose();
  });

  it("refuses a model whose forward returns logits of the wrong shape", () => {
    const model = createModel("test-linear", {
      ...options,
      ...modelPreset("test-linear", "tiny"),
      brokenShape: true,
    });
    const batch = firstBatch(train, 4);
    expect(() => model.call(batch, { training: false })).toThrow(
      new ShapeError("test-linear forward must return logits [4, 1], returned [1, 4]"),
    );
    model.dispose();
  });

  it("refuses call options without a boolean training flag", () => {
    const model = createModel("test-linear", options);
    const batch = firstBatch(train, 4);
    expect(() => model.call(batch, {} as never)).toThrow(
      new ConfigError("test-linear.call options.training must be a boolean, received undefined"),
    );
    model.dispose();
  });

  it("refuses batches that do not match the model's features or tasks", () => {
    const model = createModel("test-linear", options);
    const batch = firstBatch(train, 4);
    const { user_id: _dropped, ...rest } = batch.features;
    expect(() => model.call({ ...batch, features: rest }, { training: false })).toThrow(
      'batch.features is missing field "user_id" declared by the model',
    );
    const extra = { ...batch.features, clicks: tf.zeros([4]) as tf.Tensor1D };
    expect(() => model.call({ ...batch, features: extra }, { training: false })).toThrow(
      new DataError(
        `batch.features has field "clicks" that the model does not declare (declared: ${data.features.map((f) => f.name).join(", ")})`,
      ),
    );
    const wrongDtype = { ...batch.features, user_id: tf.zeros([4]) as tf.Tensor1D };
    expect(() => model.call({ ...batch, features: wrongDtype }, { training: false })).toThrow(
      "batch.features.user_id must have dtype int32, received float32",
    );
    const twoTasks = tf.zeros([4, 2]) as tf.Tensor2D;
    expect(() => model.call({ ...batch, labels: twoTasks }, { training: false })).toThrow(
      "batch.labels must have shape [4, 1], received [4, 2]",
    );
    model.dispose();
  });
});
