import {
  ConfigError,
  DataError,
  FeatureEmbedding,
  type FeatureEmbeddingArgs,
  type FeatureSpec,
  loadLayer,
  ShapeError,
  saveLayer,
  setGlobalSeed,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  autodiff,
  expectFiniteDifferences,
  expectNoLeak,
  maxAbsDifference,
  temporaryDirectory,
  weightValues,
} from "./helpers.js";

const SPECS: FeatureSpec[] = [
  { kind: "categorical", name: "user", vocabularySize: 3 },
  { kind: "numeric", name: "age", boundaries: [0, 1] },
  { kind: "numeric", name: "price" },
];

function batchFeatures(): Record<string, tf.Tensor1D> {
  return {
    user: tf.tensor1d([0, 2, 1], "int32"),
    age: tf.tensor1d([-1, 0, 1.5]), // buckets 0, 1 (a value equal to a boundary goes up), 2
    price: tf.tensor1d([7, 8, 9]),
  };
}

/** Embedding with hand-set tables: user [3, 2], age buckets [3, 2], price passed through. */
function handSetEmbedding(): FeatureEmbedding {
  const embedding = new FeatureEmbedding({ features: SPECS, embeddingDim: 2, seed: 1 });
  embedding.build([[3], [3], [3]]);
  embedding.setWeights([
    tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]),
    tf.tensor2d([
      [10, 11],
      [20, 21],
      [30, 31],
    ]),
  ]);
  return embedding;
}

describe("FeatureEmbedding", () => {
  let directory: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    directory = await temporaryDirectory();
  });
  afterAll(async () => {
    await directory.cleanup();
  });

  it("looks up categorical ids, bucketises numeric fields and passes the rest through (golden)", () => {
    const embedding = handSetEmbedding();
    expect(embedding.outputDim).toBe(5);
    const output = embedding.embed(batchFeatures());
    expect(output.shape).toEqual([3, 5]);
    expect(Array.from(output.dataSync())).toEqual([1, 2, 10, 11, 7, 5, 6, 20, 21, 8, 3, 4, 30, 31, 9]);
    expect(embedding.computeOutputShape([[3], [3], [3]])).toEqual([3, 5]);
    embedding.dispose();
  });

  it("puts bucket edges in the upper bucket and honours per-field widths", () => {
    const embedding = new FeatureEmbedding({
      features: [{ kind: "numeric", name: "score", boundaries: [-1, 0, 2.5], embeddingDim: 1 }],
      embeddingDim: 4,
      seed: 1,
    });
    embedding.build([[6]]);
    embedding.setWeights([tf.tensor2d([[0], [1], [2], [3]])]);
    const output = embedding.embed({ score: tf.tensor1d([-5, -1, -0.5, 0, 2.4999, 2.5]) });
    expect(output.shape).toEqual([6, 1]);
    expect(Array.from(output.dataSync())).toEqual([0, 1, 1, 2, 2, 3]);
    embedding.dispose();
  });

  it("embeds an empty batch as [0, outputDim]", () => {
    const embedding = handSetEmbedding();
    const empty = {
      user: tf.tensor1d([], "int32"),
      age: tf.tensor1d([], "float32"),
      price: tf.tensor1d([], "float32"),
    };
    expect(embedding.embed(empty).shape).toEqual([0, 5]);
    embedding.dispose();
  });

  it("matches finite differences on the tables, with repeated ids accumulating", () => {
    const embedding = new FeatureEmbedding({ features: SPECS, embeddingDim: 2, initScale: 0.5, seed: 3 });
    const features = {
      user: tf.tensor1d([2, 0, 2, 2], "int32"),
      age: tf.tensor1d([0.5, 3, -2, 0.5]),
      price: tf.tensor1d([1, 2, 3, 4]),
    };
    const weights = tf.tensor2d([[1, -2, 0.5, 3, 0.25]]);
    const loss = () => tf.sum(tf.mul(tf.square(embedding.embed(features)), weights)) as tf.Scalar;
    embedding.embed(features).dispose();
    const gradients = autodiff(loss, embedding.trainableWeights);
    const [userTable, ageTable] = embedding.trainableWeights;
    expectFiniteDifferences(loss, userTable!, [0, 1, 4, 5], gradients.get(userTable!.name)!);
    expectFiniteDifferences(loss, ageTable!, [0, 2, 3, 4], gradients.get(ageTable!.name)!);
    // Rows never looked up get exactly zero gradient.
    const userGradient = gradients.get(userTable!.name)!;
    expect(userGradient[2]).toBe(0);
    expect(userGradient[3]).toBe(0);
    embedding.dispose();
  });

  it("round-trips getConfig/fromConfig with the same outputs", () => {
    const embedding = new FeatureEmbedding({
      features: SPECS,
      embeddingDim: 3,
      initScale: 0.1,
      validateIds: false,
      seed: 8,
      name: "inputs",
    });
    const expected = embedding.embed(batchFeatures()).dataSync();
    const config = embedding.getConfig();
    const copy = FeatureEmbedding.fromConfig(FeatureEmbedding, config) as FeatureEmbedding;
    expect(copy.getConfig()).toEqual(config);
    expect(maxAbsDifference(copy.embed(batchFeatures()).dataSync(), expected)).toBe(0);
    // The config is a copy: mutating it leaves the layer alone.
    (config.features as unknown as { boundaries?: number[] }[])[1]!.boundaries!.push(9);
    expect((embedding.features[1] as { boundaries: number[] }).boundaries).toEqual([0, 1]);
    embedding.dispose();
    copy.dispose();
  });

  it("saves and loads through saveLayer/loadLayer", async () => {
    const embedding = new FeatureEmbedding({ features: SPECS, embeddingDim: 2, seed: 5 });
    const expected = embedding.embed(batchFeatures()).dataSync();
    const path = `${directory.path}/embedding`;
    await saveLayer(embedding, path);
    const loaded = await loadLayer<FeatureEmbedding>(path);
    expect(loaded).toBeInstanceOf(FeatureEmbedding);
    expect(loaded.getConfig()).toEqual(embedding.getConfig());
    expect(maxAbsDifference(loaded.embed(batchFeatures()).dataSync(), expected)).toBe(0);
    const fresh = await loadLayer<FeatureEmbedding>(path);
    expect(fresh.dispose().numDisposedVariables).toBe(2);
    embedding.dispose();
    loaded.dispose();
  });

  it("leaks no tensors in inference or gradient steps, and keeps none between calls", () => {
    const embedding = new FeatureEmbedding({ features: SPECS, embeddingDim: 2, seed: 2 });
    const features = batchFeatures();
    expectNoLeak(() => tf.tidy(() => embedding.embed(features)));
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(embedding.embed(features)) as tf.Scalar);
      value.dispose();
      tf.dispose(grads);
    });
    // After dispose, only the caller's inputs remain: the layer kept no tensors of its own.
    const before = tf.memory().numTensors;
    expect(embedding.dispose().numDisposedVariables).toBe(2);
    expect(tf.memory().numTensors).toBe(before - 2);
  });

  it("rejects ids out of range with a DataError naming the field, row and id", () => {
    const embedding = handSetEmbedding();
    const features = batchFeatures();
    expect(() => embedding.embed({ ...features, user: tf.tensor1d([0, 3, 1], "int32") })).toThrow(DataError);
    expect(() => embedding.embed({ ...features, user: tf.tensor1d([0, 3, 1], "int32") })).toThrow(
      'feature "user" has id 3 at row 1, outside [0, vocabularySize=3)',
    );
    expect(() => embedding.embed({ ...features, user: tf.tensor1d([0, 1, -2], "int32") })).toThrow(
      'feature "user" has id -2 at row 2, outside [0, vocabularySize=3)',
    );
    expect(() => embedding.embed({ ...features, price: tf.tensor1d([1, Number.NaN, 2]) })).toThrow(
      'feature "price" has a non-finite value NaN at row 1',
    );
    expect(() =>
      embedding.embed({ ...features, age: tf.tensor1d([1, 2, Number.POSITIVE_INFINITY]) }),
    ).toThrow('feature "age" has a non-finite value Infinity at row 2');
    embedding.dispose();
  });

  it("compares ids past 2^24 exactly (no float rounding in the range check)", () => {
    // 2^24 + 1 rounds to 2^24 in float32, which would pass a check against vocabularySize 2^24 + 1.
    const vocabularySize = 2 ** 24 + 1;
    const embedding = new FeatureEmbedding({
      features: [{ kind: "categorical", name: "item", vocabularySize }],
      embeddingDim: 1,
      seed: 3,
    });
    expect(() => embedding.embed({ item: tf.tensor1d([0, vocabularySize], "int32") })).toThrow(
      `feature "item" has id ${vocabularySize} at row 1, outside [0, vocabularySize=${vocabularySize})`,
    );
    embedding.dispose();
  });

  it("skips the value checks when validateIds is false", () => {
    const embedding = new FeatureEmbedding({
      features: [{ kind: "numeric", name: "price" }],
      validateIds: false,
    });
    const output = embedding.embed({ price: tf.tensor1d([1, Number.NaN]) }).dataSync();
    expect(Number.isNaN(output[1])).toBe(true);
    embedding.dispose();
  });

  it("rejects missing fields, wrong dtypes, ranks and lengths naming the field", () => {
    const embedding = handSetEmbedding();
    const features = batchFeatures();
    const { price: _price, ...withoutPrice } = features;
    expect(() => embedding.embed(withoutPrice)).toThrow(DataError);
    expect(() => embedding.embed(withoutPrice)).toThrow(
      'feature "price" is missing from the batch (received fields: user, age)',
    );
    const floatIds = { ...features, user: tf.tensor1d([0, 1, 2], "float32") };
    expect(() => embedding.embed(floatIds)).toThrow(ShapeError);
    expect(() => embedding.embed(floatIds)).toThrow('feature "user" must have dtype int32, received float32');
    const matrix = { ...features, price: tf.ones([3, 1]) as unknown as tf.Tensor1D };
    expect(() => embedding.embed(matrix)).toThrow('feature "price" must have rank 1, received shape [3, 1]');
    const short = { ...features, price: tf.tensor1d([1, 2]) };
    expect(() => embedding.embed(short)).toThrow(ShapeError);
    expect(() => embedding.embed(short)).toThrow('feature "price" has 2 rows but feature "user" has 3');
    expect(() => embedding.embed(null as unknown as Record<string, tf.Tensor1D>)).toThrow(
      "features must be a record of [B] tensors, received null",
    );
    embedding.dispose();
  });

  it("rejects invalid arguments naming the argument and the value", () => {
    const bad: [unknown, RegExp][] = [
      [
        { features: [] },
        /FeatureEmbedding features must be a non-empty array of feature specs, received \[\]/,
      ],
      [
        { features: [{ kind: "categorical", name: "user", vocabularySize: 0 }] },
        /FeatureEmbedding features\[0\]\.vocabularySize \(field "user"\) must be an integer >= 1, received 0/,
      ],
      [
        { features: [{ kind: "categorical", name: "user", vocabSize: 10 }] },
        /Unknown key "vocabSize" in FeatureEmbedding features\[0\] \(field "user"\)\. Did you mean "vocabularySize"\?/,
      ],
      [
        { features: [{ kind: "numeric", name: "age", boundaries: [3, 1] }] },
        /features\[0\]\.boundaries \(field "age"\) must be finite and strictly increasing, received \[3,1\]/,
      ],
      [
        {
          features: [
            { kind: "numeric", name: "age" },
            { kind: "numeric", name: "age" },
          ],
        },
        /features\[1\]\.name "age" is declared twice \(also FeatureEmbedding features\[0\]\)/,
      ],
      [
        { features: [{ kind: "text", name: "title" }] },
        /features\[0\]\.kind \(field "title"\) must be "categorical" or "numeric", received "text"/,
      ],
      [
        { features: SPECS, embeddingDim: 0 },
        /FeatureEmbedding embeddingDim must be an integer >= 1, received 0/,
      ],
      [
        { features: SPECS, initScale: 0 },
        /FeatureEmbedding initScale must be a finite number > 0, received 0/,
      ],
      [
        { features: SPECS, validateIds: "no" },
        /FeatureEmbedding validateIds must be a boolean, received "no"/,
      ],
      [
        { features: SPECS, embedingDim: 4 },
        /Unknown key "embedingDim" in FeatureEmbedding args\. Did you mean "embeddingDim"\?/,
      ],
    ];
    for (const [args, message] of bad) {
      expect(() => new FeatureEmbedding(args as FeatureEmbeddingArgs), JSON.stringify(args)).toThrow(
        ConfigError,
      );
      expect(() => new FeatureEmbedding(args as FeatureEmbeddingArgs), JSON.stringify(args)).toThrow(message);
    }
  });

  it("initialises identically for the same seed, differently per seed and per field", () => {
    const tables = (args: Partial<FeatureEmbeddingArgs>) => {
      const features: FeatureSpec[] = [
        { kind: "categorical", name: "user", vocabularySize: 4 },
        { kind: "categorical", name: "item", vocabularySize: 4 },
      ];
      const embedding = new FeatureEmbedding({ features, embeddingDim: 3, ...args });
      embedding.build([[1], [1]]);
      const values = weightValues(embedding.weights);
      embedding.dispose();
      return values;
    };
    const first = tables({ seed: 10 });
    const again = tables({ seed: 10 });
    first.forEach((values, index) => {
      expect(maxAbsDifference(values, again[index]!)).toBe(0);
    });
    expect(maxAbsDifference(first[0]!, first[1]!)).toBeGreaterThan(0.001);
    expect(maxAbsDifference(first[1]!, tables({ seed: 11 })[0]!)).toBeGreaterThan(0.001);
    expect(first[0]!.every((v) => Math.abs(v) <= 0.05)).toBe(true);
    setGlobalSeed(3);
    const globalFirst = tables({});
    setGlobalSeed(3);
    const globalAgain = tables({});
    globalFirst.forEach((values, index) => {
      expect(maxAbsDifference(values, globalAgain[index]!)).toBe(0);
    });
  });
});
