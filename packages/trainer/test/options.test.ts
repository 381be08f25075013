import { ConfigError, DataError } from "@mdrec/core";
import type { ColumnarDataset } from "@mdrec/data-loaders";
import { type FitOptions, fit } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { makeDataset, makeModel, TINY_FEATURES } from "./helpers.js";

const model = makeModel();
const train = makeDataset(40, 1);
const validation = makeDataset(20, 2);

afterAll(() => model.dispose());

async function expectRejected(
  options: unknown,
  type: typeof ConfigError | typeof DataError,
  message: string,
) {
  const run = fit(model, train, options as FitOptions);
  await expect(run).rejects.toThrow(type);
  await expect(run).rejects.toThrow(message);
}

describe("fit options", () => {
  const cases: [unknown, string][] = [
    [{ batchSize: 0 }, "fit options.batchSize must be an integer >= 1, received 0"],
    [{ batchSize: 2.5 }, "fit options.batchSize must be an integer >= 1, received 2.5"],
    [{ epochs: 0 }, "fit options.epochs must be an integer >= 1, received 0"],
    [{ epochs: -3 }, "fit options.epochs must be an integer >= 1, received -3"],
    [{ learningRate: 0 }, "fit options.learningRate must be a finite number > 0, received 0"],
    [{ learningRate: -0.1 }, "fit options.learningRate must be a finite number > 0, received -0.1"],
    [{ learningRate: Number.NaN }, "fit options.learningRate must be a finite number > 0, received NaN"],
    [{ taskWeights: [Number.NaN] }, "fit options.taskWeights[0] must be a finite number >= 0, received NaN"],
    [
      { taskWeights: [1, 1] },
      "fit options.taskWeights must be an array of numTasks=1 numbers, received [1,1]",
    ],
    [{ taskWeights: [0] }, "fit options.taskWeights must have a positive entry, received [0]"],
    [{ weightDecay: -1 }, "fit options.weightDecay must be a finite number >= 0, received -1"],
    [{ gradientClip: 0 }, "fit options.gradientClip must be a finite number > 0, received 0"],
    [{ seed: 1.5 }, "fit options.seed must be an integer in [0, 4294967295], received 1.5"],
    [{ maxSteps: 0 }, "fit options.maxSteps must be an integer >= 1, received 0"],
    [{ logEvery: 0 }, "fit options.logEvery must be an integer >= 1, received 0"],
    [
      { optimizer: "adamw" },
      'fit options.optimizer must be one of "adam", "adagrad", "sgd", "rmsprop", received "adamw"',
    ],
    [{ learningrate: 0.1 }, 'Unknown key "learningrate" in fit options. Did you mean "learningRate"?'],
    [{ batch_size: 64 }, 'Unknown key "batch_size" in fit options. Did you mean "batchSize"?'],
    [
      { callbacks: { onstep: () => undefined } },
      'Unknown key "onstep" in fit options.callbacks. Did you mean "onStep"?',
    ],
    [{ callbacks: { onStep: 3 } }, "fit options.callbacks.onStep must be a function, received 3"],
    [{ resume: "yes" }, 'fit options.resume must be a boolean, received "yes"'],
    [{ resume: true }, "fit options.resume needs fit options.checkpointDir, which is not set"],
    [{ checkpointEvery: 5 }, "fit options.checkpointEvery needs fit options.checkpointDir, which is not set"],
    [{ checkpointDir: "" }, 'fit options.checkpointDir must be a non-empty path, received ""'],
    [
      { checkpointDir: "/tmp/x", checkpointEvery: 0 },
      "fit options.checkpointEvery must be an integer >= 1, received 0",
    ],
    [
      { checkpointDir: "/tmp/x", checkpointExtra: { big: 1n } },
      "fit options.checkpointExtra must be JSON-serialisable: Do not know how to serialize a BigInt",
    ],
    [
      { checkpointDir: "/tmp/x", checkpointExtra: () => 1 },
      "fit options.checkpointExtra must be JSON-serialisable, received function",
    ],
    [
      { earlyStopping: { metric: "auc" } },
      "fit options.earlyStopping needs fit options.validation (a ColumnarDataset to evaluate on), which is not set",
    ],
    [
      { restoreBestWeights: true },
      "fit options.restoreBestWeights needs fit options.validation (a ColumnarDataset to evaluate on), which is not set",
    ],
    [{ evaluateEvery: 5 }, "fit options.evaluateEvery needs fit options.validation"],
    [
      { validation, evaluateEvery: "batch" },
      'fit options.evaluateEvery must be one of "epoch", received "batch"',
    ],
    [{ validation, evaluateEvery: 0 }, "fit options.evaluateEvery must be an integer >= 1, received 0"],
    [
      { validation, earlyStopping: { metric: "accuracy" } },
      'fit options.earlyStopping.metric must be one of "auc", "logloss", received "accuracy"',
    ],
    [
      { validation, earlyStopping: { patience: 0 } },
      "fit options.earlyStopping.patience must be an integer >= 1, received 0",
    ],
    [
      { validation, earlyStopping: { minDelta: -1 } },
      "fit options.earlyStopping.minDelta must be a finite number >= 0, received -1",
    ],
    [
      { validation, earlyStopping: { patients: 3 } },
      'Unknown key "patients" in fit options.earlyStopping. Did you mean "patience"?',
    ],
    [
      { schedule: { kind: "cosine", minLR: 0 } },
      'Unknown key "minLR" in fit options.schedule (kind "cosine")',
    ],
    [null, "fit options must be an object, received null"],
  ];
  it.each(cases.map(([options, message]) => [message, options] as const))(
    "rejects: %s",
    async (message, options) => {
      await expectRejected(options, ConfigError, message);
    },
  );

  it("rejects something that is not a model", async () => {
    const run = fit({ name: "fake" } as never, train);
    await expect(run).rejects.toThrow(ConfigError);
    await expect(run).rejects.toThrow(
      "fit model must be a MultiDomainModel (from createModel), received an object without call, predict, trainableWeights, nonTrainableWeights, getConfig",
    );
  });
});

describe("datasets that do not fit the model", () => {
  const variant = (change: Partial<ColumnarDataset>): ColumnarDataset => ({
    ...makeDataset(20, 3),
    ...change,
  });

  it.each([
    [
      "a missing feature",
      variant({ features: TINY_FEATURES.slice(0, 2) }),
      'model "tiny" feature "price" is not in train.features (train has: user, item)',
    ],
    [
      "an undeclared feature",
      variant({
        features: [...TINY_FEATURES, { kind: "numeric", name: "age" }],
        columns: { ...makeDataset(20, 3).columns, age: new Float32Array(20) },
      }),
      'train feature "age" is not declared by model "tiny" (model features: user, item, price)',
    ],
    [
      "a feature of another kind",
      variant({
        features: [
          TINY_FEATURES[0]!,
          TINY_FEATURES[1]!,
          { kind: "categorical", name: "price", vocabularySize: 4 },
        ],
        columns: { ...makeDataset(20, 3).columns, price: new Int32Array(20) },
      }),
      'train feature "price" is categorical but model "tiny" declares it numeric',
    ],
    [
      "a larger vocabulary",
      variant({
        features: [{ kind: "categorical", name: "user", vocabularySize: 60 }, ...TINY_FEATURES.slice(1)],
      }),
      'train feature "user" has vocabularySize=60 but model "tiny" embeds only 6 ids',
    ],
    [
      "another task count",
      makeDataset(20, 3, { numTasks: 2 }),
      'train has numTasks=2 but model "tiny" has numTasks=1',
    ],
    [
      "more domains",
      makeDataset(20, 3, { numDomains: 4 }),
      'train has numDomains=4 but model "tiny" has numDomains=3',
    ],
    [
      "a domain id out of range",
      variant({ domainIds: Int32Array.from({ length: 20 }, (_, row) => (row === 3 ? 7 : 0)) }),
      "train.domainIds[3] must be in [0, numDomains=3), received 7",
    ],
    ["no rows", makeDataset(0, 3), "train has no rows"],
  ])("rejects %s", async (_label, data, message) => {
    const run = fit(model, data, { epochs: 1 });
    await expect(run).rejects.toThrow(DataError);
    await expect(run).rejects.toThrow(message);
  });

  it("names the validation set in its errors", async () => {
    const run = fit(model, train, { validation: makeDataset(20, 3, { numTasks: 2 }) });
    await expect(run).rejects.toThrow(
      'fit options.validation has numTasks=2 but model "tiny" has numTasks=1',
    );
  });
});
