import {
  type Batch,
  ConfigError,
  DataError,
  disposeBatch,
  type FeatureSpec,
  ShapeError,
  validateBatch,
  validateFeatureSpecs,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";

const FEATURES: FeatureSpec[] = [
  { kind: "categorical", name: "user", vocabularySize: 10 },
  { kind: "numeric", name: "price" },
];
const EXPECTED = { features: FEATURES, numDomains: 3, numTasks: 1 };

function batch(
  overrides: Partial<Batch> & { featureOverrides?: Record<string, tf.Tensor1D | undefined> } = {},
): Batch {
  const features: Record<string, tf.Tensor1D> = {
    user: tf.tensor1d([1, 2, 3], "int32"),
    price: tf.tensor1d([0.5, 1, 2]),
  };
  for (const [name, tensor] of Object.entries(overrides.featureOverrides ?? {})) {
    if (tensor === undefined) delete features[name];
    else features[name] = tensor;
  }
  return {
    features,
    domainIds: overrides.domainIds ?? tf.tensor1d([0, 2, 1], "int32"),
    labels: overrides.labels ?? tf.tensor2d([[1], [0], [1]]),
  };
}

describe("validateFeatureSpecs", () => {
  it("accepts valid specs", () => {
    expect(() =>
      validateFeatureSpecs([
        ...FEATURES,
        { kind: "numeric", name: "age", boundaries: [18, 30], embeddingDim: 4 },
      ]),
    ).not.toThrow();
  });

  it("names the entry, the field and the value for each mistake", () => {
    const cases: [unknown, string][] = [
      [[], "features must be a non-empty array of feature specs, received []"],
      ["user", 'features must be a non-empty array of feature specs, received "user"'],
      [[null], "features[0] must be a feature spec object, received null"],
      [[{ kind: "numeric", name: "" }], 'features[0].name must be a non-empty string, received ""'],
      [
        [
          { kind: "numeric", name: "a" },
          { kind: "numeric", name: "a" },
        ],
        'features[1].name "a" is declared twice (also features[0])',
      ],
      [
        [{ kind: "categorical", name: "user", vocabularySize: 2.5 }],
        'features[0].vocabularySize (field "user") must be an integer >= 1, received 2.5',
      ],
      [
        [{ kind: "numeric", name: "age", boundaries: [1, Number.NaN] }],
        'features[0].boundaries (field "age") must be finite and strictly increasing',
      ],
      [
        [{ kind: "numeric", name: "age", boundaries: [1, 1] }],
        'features[0].boundaries (field "age") must be finite and strictly increasing, received [1,1]',
      ],
      [
        [{ kind: "numeric", name: "age", embeddingDim: 0 }],
        'features[0].embeddingDim (field "age") must be an integer >= 1, received 0',
      ],
      [
        [{ kind: "numeric", name: "age", boundary: [1] }],
        'Unknown key "boundary" in features[0] (field "age"). Did you mean "boundaries"?',
      ],
      [
        [{ name: "age" }],
        'features[0].kind (field "age") must be "categorical" or "numeric", received undefined',
      ],
    ];
    for (const [specs, message] of cases) {
      expect(() => validateFeatureSpecs(specs as FeatureSpec[]), message).toThrow(ConfigError);
      expect(() => validateFeatureSpecs(specs as FeatureSpec[])).toThrow(message);
    }
  });
});

describe("validateBatch", () => {
  it("accepts a well-formed batch", () => {
    expect(() => validateBatch(batch(), EXPECTED)).not.toThrow();
  });

  it("reports each malformed part with the place and the value", () => {
    const cases: [() => unknown, typeof DataError | typeof ShapeError | typeof ConfigError, string][] = [
      [
        () => validateBatch(null as unknown as Batch, EXPECTED),
        DataError,
        "batch must be { features, domainIds, labels }, received null",
      ],
      [
        () => validateBatch(batch({ domainIds: tf.tensor1d([0, 1, 2]) }), EXPECTED),
        ShapeError,
        "batch.domainIds must have dtype int32, received float32",
      ],
      [
        () => validateBatch(batch({ domainIds: tf.tensor1d([0, 3, 1], "int32") }), EXPECTED),
        DataError,
        "batch.domainIds[1] must be in [0, numDomains=3), received 3",
      ],
      [
        () => validateBatch(batch({ domainIds: tf.tensor1d([0, 1, -1], "int32") }), EXPECTED),
        DataError,
        "batch.domainIds[2] must be in [0, numDomains=3), received -1",
      ],
      [
        () => validateBatch(batch({ labels: tf.tensor1d([1, 0, 1]) as unknown as tf.Tensor2D }), EXPECTED),
        ShapeError,
        "batch.labels must have rank 2 (shape [3, 1]), received shape [3]",
      ],
      [
        () =>
          validateBatch(
            batch({
              labels: tf.tensor2d([
                [1, 0],
                [0, 0],
                [1, 1],
              ]),
            }),
            EXPECTED,
          ),
        ShapeError,
        "batch.labels must have shape [3, 1], received [3, 2]",
      ],
      [
        () => validateBatch(batch({ labels: tf.tensor2d([[1], [0], [1]], [3, 1], "int32") }), EXPECTED),
        ShapeError,
        "batch.labels must have dtype float32, received int32",
      ],
      [
        () => validateBatch(batch({ labels: tf.tensor2d([[1], [2], [1]]) }), EXPECTED),
        DataError,
        "batch.labels[1, 0] must be in [0, 1], received 2",
      ],
      [
        () => validateBatch(batch({ labels: tf.tensor2d([[1], [0], [Number.NaN]]) }), EXPECTED),
        DataError,
        "batch.labels[2, 0] must be in [0, 1], received NaN",
      ],
      [
        () => validateBatch(batch({ featureOverrides: { price: undefined } }), EXPECTED),
        DataError,
        'batch.features is missing field "price" declared by the model',
      ],
      [
        () => validateBatch(batch({ featureOverrides: { title: tf.tensor1d([1, 2, 3]) } }), EXPECTED),
        DataError,
        'batch.features has field "title" that the model does not declare (declared: user, price)',
      ],
      [
        () => validateBatch(batch({ featureOverrides: { user: tf.tensor1d([1, 2, 3]) } }), EXPECTED),
        ShapeError,
        "batch.features.user must have dtype int32, received float32",
      ],
      [
        () => validateBatch(batch({ featureOverrides: { price: tf.tensor1d([1, 2]) } }), EXPECTED),
        ShapeError,
        "batch.features.price must have shape [3], received [2]",
      ],
      [
        () => validateBatch(batch(), { ...EXPECTED, numDomains: 0 }),
        ConfigError,
        "validateBatch numDomains must be an integer >= 1, received 0",
      ],
    ];
    for (const [run, type, message] of cases) {
      expect(run, message).toThrow(type);
      expect(run).toThrow(message);
    }
  });

  it("accepts soft labels in [0, 1] and several tasks", () => {
    const twoTasks = batch({
      labels: tf.tensor2d([
        [0.25, 1],
        [0, 0.5],
        [1, 0],
      ]),
    });
    expect(() => validateBatch(twoTasks, { ...EXPECTED, numTasks: 2 })).not.toThrow();
  });
});

describe("disposeBatch", () => {
  it("disposes every tensor of the batch", () => {
    const before = tf.memory().numTensors;
    const created = batch();
    expect(tf.memory().numTensors).toBe(before + 4);
    disposeBatch(created);
    expect(tf.memory().numTensors).toBe(before);
  });
});
