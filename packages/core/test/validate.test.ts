import {
  ACTIVATIONS,
  applyActivation,
  assertIdsInRange,
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  assertTensor,
  BackendError,
  CheckpointError,
  ConfigError,
  DataError,
  editDistance,
  formatValue,
  MdrecError,
  nearestKey,
  ShapeError,
  TrainingError,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";

describe("errors", () => {
  it("carry a stable code, their class name and an optional cause", () => {
    const cause = new Error("disk full");
    const cases: [MdrecError, string, string][] = [
      [new ConfigError("c"), "INVALID_ARGUMENT", "ConfigError"],
      [new ShapeError("s", { cause }), "INVALID_SHAPE", "ShapeError"],
      [new DataError("d"), "INVALID_DATA", "DataError"],
      [new BackendError("b"), "BACKEND_UNAVAILABLE", "BackendError"],
      [new CheckpointError("k", { cause }), "CHECKPOINT", "CheckpointError"],
      [new TrainingError("t"), "TRAINING", "TrainingError"],
    ];
    for (const [error, code, name] of cases) {
      expect(error).toBeInstanceOf(MdrecError);
      expect(error).toBeInstanceOf(Error);
      expect(error.code).toBe(code);
      expect(error.name).toBe(name);
    }
    expect(cases[1]![0].cause).toBe(cause);
    expect(new MdrecError("CUSTOM", "m").code).toBe("CUSTOM");
  });
});

describe("assert helpers", () => {
  it("assertIdsInRange accepts ids in [0, count) and names the first bad row and value", () => {
    const ids = tf.tensor1d([0, 2, 1], "int32");
    expect(() => assertIdsInRange("batch.domainIds", ids, 3, "numDomains")).not.toThrow();
    const bad = tf.tensor1d([0, 3, -1], "int32");
    expect(() => assertIdsInRange("batch.domainIds", bad, 3, "numDomains")).toThrow(
      new DataError("batch.domainIds[1] must be in [0, numDomains=3), received 3"),
    );
    tf.dispose([ids, bad]);
  });

  it("assertInteger names the argument, the range and the value", () => {
    expect(() => assertInteger("k", 9, 1, 8, "numExperts=8")).toThrow(
      "k must be an integer in [1, numExperts=8], received 9",
    );
    expect(() => assertInteger("k", 9, 1, 8)).toThrow("k must be an integer in [1, 8], received 9");
    expect(() => assertInteger("batchSize", 0, 1)).toThrow("batchSize must be an integer >= 1, received 0");
    expect(() => assertInteger("batchSize", 2.5, 1)).toThrow("received 2.5");
    expect(() => assertInteger("batchSize", "32", 1)).toThrow('received "32"');
    expect(() => assertInteger("batchSize", Number.NaN, 1)).toThrow("received NaN");
    expect(() => assertInteger("k", 0, 1)).toThrow(ConfigError);
    expect(() => assertInteger("k", 8, 1, 8)).not.toThrow();
  });

  it("assertNumber handles inclusive and exclusive bounds and non-finite values", () => {
    expect(() => assertNumber("learningRate", 0, { min: 0, exclusiveMin: true })).toThrow(
      "learningRate must be a finite number > 0, received 0",
    );
    expect(() => assertNumber("dropout", 1, { min: 0, max: 1, exclusiveMax: true })).toThrow(
      "dropout must be a finite number >= 0 and < 1, received 1",
    );
    expect(() => assertNumber("weight", Number.POSITIVE_INFINITY)).toThrow(
      "weight must be a finite number, received Infinity",
    );
    expect(() => assertNumber("weight", Number.NaN, { max: 2 })).toThrow(
      "weight must be a finite number <= 2, received NaN",
    );
    expect(() => assertNumber("weight", 0.999, { min: 0, max: 1, exclusiveMax: true })).not.toThrow();
  });

  it("assertOneOf lists the allowed values", () => {
    expect(() => assertOneOf("dispatch", "fast", ["dense", "sparse"])).toThrow(
      'dispatch must be one of "dense", "sparse", received "fast"',
    );
    expect(() => assertOneOf("dispatch", "dense", ["dense", "sparse"])).not.toThrow();
  });

  it("assertKnownKeys suggests the nearest key or lists the known ones", () => {
    expect(() => assertKnownKeys("TopKGate args", { numExpert: 8 }, ["numExperts", "k"])).toThrow(
      'Unknown key "numExpert" in TopKGate args. Did you mean "numExperts"?',
    );
    expect(() => assertKnownKeys("TopKGate args", { zzzzzz: 1 }, ["numExperts", "k"])).toThrow(
      'Unknown key "zzzzzz" in TopKGate args. Known keys: numExperts, k.',
    );
    expect(() => assertKnownKeys("TopKGate args", 5 as unknown as object, ["k"])).toThrow(
      "TopKGate args must be an object, received 5",
    );
    expect(() => assertKnownKeys("TopKGate args", { k: 2 }, ["numExperts", "k"])).not.toThrow();
  });

  it("nearestKey and editDistance find close names only", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(nearestKey("lerningRate", ["learningRate", "epochs"])).toBe("learningRate");
    expect(nearestKey("EPOCHS", ["learningRate", "epochs"])).toBe("epochs");
    expect(nearestKey("vocabSize", ["vocabularySize", "name"])).toBe("vocabularySize");
    expect(nearestKey("banana", ["learningRate", "epochs"])).toBeUndefined();
  });

  it("assertTensor checks type, liveness, rank, dtype and fixed dimensions", () => {
    const x = tf.ones([2, 3]);
    expect(() => assertTensor("x", x, { rank: 2, dtype: "float32", shape: [null, 3] })).not.toThrow();
    expect(() => assertTensor("x", [1, 2] as unknown as tf.Tensor, {})).toThrow(
      "x must be a tf.Tensor, received [1,2]",
    );
    expect(() => assertTensor("x", x, { rank: 1 })).toThrow("x must have rank 1, received shape [2, 3]");
    expect(() => assertTensor("x", x, { rank: 3, shape: [null, 3, 1] })).toThrow(
      "x must have rank 3 (shape [?, 3, 1]), received shape [2, 3]",
    );
    expect(() => assertTensor("x", x, { dtype: ["int32", "bool"] })).toThrow(
      "x must have dtype int32 or bool, received float32",
    );
    expect(() => assertTensor("x", x, { shape: [null, 4] })).toThrow(
      "x must have shape [?, 4], received [2, 3]",
    );
    expect(() => assertTensor("x", x, { rank: 1 })).toThrow(ShapeError);
    const disposed = tf.ones([2]);
    disposed.dispose();
    expect(() => assertTensor("y", disposed, {})).toThrow("y is a disposed tf.Tensor (shape [2])");
  });

  it("formatValue quotes strings, keeps NaN, summarises tensors and cuts long values", () => {
    expect(formatValue("abc")).toBe('"abc"');
    expect(formatValue(Number.NaN)).toBe("NaN");
    expect(formatValue(undefined)).toBe("undefined");
    expect(formatValue(tf.ones([2, 3], "int32"))).toBe("tf.Tensor int32 [2, 3]");
    expect(formatValue(new Array(500).fill(1))).toMatch(/^\[1,1,.*\.\.\.$/);
    expect(formatValue(new Array(500).fill(1)).length).toBe(203);
    const circular: { self?: unknown } = {};
    circular.self = circular;
    expect(formatValue(circular)).toBe("[object Object]");
  });
});

describe("activations", () => {
  it("accepts every listed name and applies relu as max(0, x)", () => {
    const x = tf.tensor1d([-2, 0, 3]);
    for (const activation of ACTIVATIONS) expect(applyActivation(x, activation).shape).toEqual([3]);
    expect(Array.from(applyActivation(x, "relu").dataSync())).toEqual([0, 0, 3]);
    expect(Array.from(applyActivation(x, "selu").dataSync())[2]).toBeCloseTo(3 * 1.0507009873554805, 5);
  });
});
