import { ConfigError, loadLayer, Mlp, type MlpArgs, ShapeError, saveLayer, setGlobalSeed } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  autodiff,
  expectFiniteDifferences,
  expectNoLeak,
  maxAbsDifference,
  temporaryDirectory,
  weightValues,
} from "./helpers.js";

/** Mlp 2 -> 2 -> 1 with hand-set weights. */
function handSetMlp(args: Partial<MlpArgs> = {}): Mlp {
  const mlp = new Mlp({ units: [2, 1], outputActivation: "linear", seed: 1, ...args });
  mlp.build([null as unknown as number, 2]);
  mlp.setWeights([
    tf.tensor2d([
      [1, -1],
      [2, 0.5],
    ]), // kernel_0 [2, 2]
    tf.tensor1d([0.5, -1]), // bias_0
    tf.tensor2d([[1], [-2]]), // kernel_1 [2, 1]
    tf.tensor1d([0.25]), // bias_1
  ]);
  return mlp;
}

describe("Mlp", () => {
  let directory: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    directory = await temporaryDirectory();
  });
  afterAll(async () => {
    await directory.cleanup();
  });

  it("computes hand-checked values (dense -> relu -> dense)", () => {
    const mlp = handSetMlp();
    const x = tf.tensor2d([
      [1, 2],
      [-1, 0],
    ]);
    // row 0: relu([5.5, -1]) = [5.5, 0] -> 5.5 + 0.25; row 1: relu([-0.5, 0]) = 0 -> 0.25
    expect(Array.from(mlp.forward(x).dataSync())).toEqual([5.75, 0.25]);
    expect(mlp.computeOutputShape([7, 2])).toEqual([7, 1]);
    mlp.dispose();
  });

  it("applies each activation by name", () => {
    const x = tf.tensor2d([[-1, 0.5]]);
    const cases: [NonNullable<MlpArgs["activation"]>, (v: number) => number][] = [
      ["linear", (v) => v],
      ["sigmoid", (v) => 1 / (1 + Math.exp(-v))],
      ["tanh", Math.tanh],
      ["elu", (v) => (v > 0 ? v : Math.exp(v) - 1)],
      ["leakyRelu", (v) => (v > 0 ? v : 0.2 * v)],
      ["swish", (v) => v / (1 + Math.exp(-v))],
      ["gelu", (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))],
    ];
    for (const [activation, reference] of cases) {
      const mlp = new Mlp({ units: [2], activation, seed: 1 });
      mlp.build([1, 2]);
      mlp.setWeights([tf.eye(2), tf.zeros([2])]);
      const output = mlp.forward(x).dataSync();
      expect(output[0], activation).toBeCloseTo(reference(-1), 5);
      expect(output[1], activation).toBeCloseTo(reference(0.5), 5);
      mlp.dispose();
    }
  });

  it("matches finite differences on kernels and biases", () => {
    const mlp = new Mlp({ units: [3, 2], activation: "tanh", seed: 11 });
    const x = tf.randomNormal([4, 3], 0, 1, "float32", 5) as tf.Tensor2D;
    const target = tf.randomNormal([4, 2], 0, 1, "float32", 6);
    const loss = () => tf.mean(tf.square(tf.sub(mlp.forward(x), target))) as tf.Scalar;
    mlp.forward(x).dispose();
    const gradients = autodiff(loss, mlp.trainableWeights);
    for (const weight of mlp.trainableWeights) {
      expectFiniteDifferences(
        loss,
        weight,
        [0, 1, weight.shape.length === 2 ? 4 : 1],
        gradients.get(weight.name)!,
        {
          epsilon: 1e-2,
        },
      );
    }
    mlp.dispose();
  });

  it("round-trips getConfig/fromConfig with the same outputs", () => {
    const mlp = new Mlp({
      units: [4, 2],
      activation: "tanh",
      dropout: 0.25,
      batchNorm: true,
      seed: 3,
      name: "tower",
    });
    const x = tf.randomNormal([5, 3], 0, 1, "float32", 1) as tf.Tensor2D;
    const expected = mlp.forward(x).dataSync();
    const config = mlp.getConfig();
    const copy = Mlp.fromConfig(Mlp, config) as Mlp;
    expect(copy.getConfig()).toEqual(config);
    expect(copy.units).toEqual([4, 2]);
    // Same seed, same initialisers: the copy starts from identical weights.
    expect(maxAbsDifference(copy.forward(x).dataSync(), expected)).toBe(0);
    expect(serialization.SerializationMap.getMap().classNameMap.MdrecMlp).toBeDefined();
    mlp.dispose();
    copy.dispose();
  });

  it("saves and loads through saveLayer/loadLayer (weights and moving statistics)", async () => {
    const mlp = new Mlp({ units: [4, 2], batchNorm: true, seed: 9 });
    const x = tf.randomNormal([6, 3], 0, 1, "float32", 2) as tf.Tensor2D;
    mlp.forward(x, true).dispose(); // moves the moving statistics away from their initial values
    const path = `${directory.path}/mlp`;
    await saveLayer(mlp, path, { note: "test" });
    const loaded = await loadLayer<Mlp>(path);
    expect(loaded).toBeInstanceOf(Mlp);
    expect(loaded.getConfig()).toEqual(mlp.getConfig());
    const saved = weightValues(mlp.weights);
    weightValues(loaded.weights).forEach((values, index) => {
      expect(maxAbsDifference(values, saved[index]!)).toBe(0);
    });
    expect(maxAbsDifference(loaded.forward(x).dataSync(), mlp.forward(x).dataSync())).toBe(0);
    // A loaded layer that was never called still disposes its weights.
    const fresh = await loadLayer<Mlp>(path);
    expect(fresh.dispose().numDisposedVariables).toBe(fresh.weights.length);
    mlp.dispose();
    loaded.dispose();
  });

  it("leaks no tensors in inference, training calls and gradient steps", () => {
    const mlp = new Mlp({ units: [4, 2], batchNorm: true, dropout: 0.5, seed: 4 });
    const x = tf.randomNormal([6, 3], 0, 1, "float32", 3) as tf.Tensor2D;
    expectNoLeak(() => tf.tidy(() => mlp.forward(x)));
    expectNoLeak(() => tf.tidy(() => mlp.forward(x, true)));
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(() => tf.mean(mlp.forward(x, true)) as tf.Scalar);
      value.dispose();
      tf.dispose(grads);
    });
    mlp.dispose();
  });

  it("rejects invalid arguments with the argument and value in the message", () => {
    const bad: [unknown, RegExp][] = [
      [{ units: [] }, /Mlp units must be a non-empty array of positive integers, received \[\]/],
      [{ units: [4, 0] }, /Mlp units\[1\] must be an integer >= 1, received 0/],
      [{ units: [4.5] }, /Mlp units\[0\] must be an integer >= 1, received 4.5/],
      [{ units: [4], activation: "relux" }, /Mlp activation must be one of .*"relu".*received "relux"/],
      [{ units: [4], outputActivation: 3 }, /Mlp outputActivation must be one of .*received 3/],
      [{ units: [4], dropout: 1 }, /Mlp dropout must be a finite number >= 0 and < 1, received 1/],
      [{ units: [4], dropout: Number.NaN }, /Mlp dropout must be a finite number >= 0 and < 1, received NaN/],
      [
        { units: [4], batchNormMomentum: 1.5 },
        /Mlp batchNormMomentum must be a finite number >= 0 and <= 1, received 1.5/,
      ],
      [{ units: [4], batchNorm: "yes" }, /Mlp batchNorm must be a boolean, received "yes"/],
      [{ units: [4], seed: -1 }, /Mlp seed must be an integer in \[0, 9007199254740991\], received -1/],
      [{ unit: [4] }, /Unknown key "unit" in Mlp args. Did you mean "units"\?/],
      [null, /Mlp units must be a non-empty array/],
    ];
    for (const [args, message] of bad) {
      expect(() => new Mlp(args as MlpArgs), JSON.stringify(args)).toThrow(ConfigError);
      expect(() => new Mlp(args as MlpArgs), JSON.stringify(args)).toThrow(message);
    }
  });

  it("rejects inputs of the wrong rank, dtype or width with a ShapeError naming the layer", () => {
    const mlp = new Mlp({ units: [2], seed: 1, name: "tower" });
    expect(() => mlp.forward(tf.ones([3]) as unknown as tf.Tensor2D)).toThrow(ShapeError);
    expect(() => mlp.forward(tf.ones([3]) as unknown as tf.Tensor2D)).toThrow(
      "tower input must have rank 2 (shape [?, ?]), received shape [3]",
    );
    expect(() => mlp.forward(tf.ones([2, 3], "int32") as tf.Tensor2D)).toThrow(
      "tower input must have dtype float32, received int32",
    );
    mlp.forward(tf.ones([2, 3]) as tf.Tensor2D).dispose();
    expect(() => mlp.forward(tf.ones([2, 4]) as tf.Tensor2D)).toThrow(
      "tower input must have shape [?, 3], received [2, 4]",
    );
    mlp.dispose();
  });

  it("initialises identically for the same seed and differently for other seeds", () => {
    const build = (seed?: number) => {
      const mlp = new Mlp(seed === undefined ? { units: [3, 3] } : { units: [3, 3], seed });
      mlp.build([1, 3]);
      const values = weightValues(mlp.weights);
      mlp.dispose();
      return values;
    };
    const first = build(42);
    const again = build(42);
    first.forEach((values, index) => {
      expect(maxAbsDifference(values, again[index]!)).toBe(0);
    });
    // Consecutive seeds must not share kernels (seed + layer index would make layer 1 of seed 42
    // equal to layer 0 of seed 43).
    const next = build(43);
    expect(maxAbsDifference(first[2]!, next[0]!)).toBeGreaterThan(0.01);
    expect(maxAbsDifference(first[0]!, next[0]!)).toBeGreaterThan(0.01);
    // Without a seed, the global generator decides.
    setGlobalSeed(5);
    const globalFirst = build();
    setGlobalSeed(5);
    const globalAgain = build();
    globalFirst.forEach((values, index) => {
      expect(maxAbsDifference(values, globalAgain[index]!)).toBe(0);
    });
  });

  it("drops out only while training, with masks reproducible from the global seed", () => {
    const mlp = new Mlp({ units: [64], activation: "linear", dropout: 0.5, seed: 1 });
    mlp.build([1, 64]);
    mlp.setWeights([tf.eye(64), tf.zeros([64])]);
    const x = tf.ones([2, 64]) as tf.Tensor2D;
    expect(Array.from(mlp.forward(x).dataSync()).every((v) => v === 1)).toBe(true);
    setGlobalSeed(17);
    const first = mlp.forward(x, true).dataSync();
    const zeros = first.filter((v) => v === 0).length;
    expect(first.every((v) => v === 0 || Math.abs(v - 2) < 1e-6)).toBe(true); // inverted dropout scales by 1 / 0.5
    expect(zeros).toBeGreaterThan(32);
    expect(zeros).toBeLessThan(96);
    const second = mlp.forward(x, true).dataSync();
    expect(maxAbsDifference(first, second)).toBeGreaterThan(0); // a new mask per call
    setGlobalSeed(17);
    expect(maxAbsDifference(mlp.forward(x, true).dataSync(), first)).toBe(0);
    mlp.dispose();
  });

  it("uses batch statistics in training and moving statistics at inference", () => {
    const momentum = 0.9;
    const mlp = new Mlp({
      units: [2],
      activation: "linear",
      batchNorm: true,
      batchNormMomentum: momentum,
      seed: 1,
    });
    mlp.build([1, 2]);
    // kernel, bias, gamma, beta, moving mean, moving variance
    mlp.setWeights([
      tf.eye(2),
      tf.zeros([2]),
      tf.tensor1d([1, 2]),
      tf.tensor1d([0, 1]),
      tf.zeros([2]),
      tf.ones([2]),
    ]);
    const x = tf.tensor2d([
      [1, 2],
      [3, 6],
    ]);
    const epsilon = 1e-3;
    // batch mean [2, 4], biased batch variance [1, 4]
    const training = mlp.forward(x, true).dataSync();
    const expectedTraining = [
      -1 / Math.sqrt(1 + epsilon),
      (2 * -2) / Math.sqrt(4 + epsilon) + 1,
      1 / Math.sqrt(1 + epsilon),
      (2 * 2) / Math.sqrt(4 + epsilon) + 1,
    ];
    expect(maxAbsDifference(training, expectedTraining)).toBeLessThan(1e-5);
    const movingMean = [0.1 * 2, 0.1 * 4];
    const movingVariance = [momentum + 0.1 * 1, momentum + 0.1 * 4];
    expect(maxAbsDifference(mlp.weights[4]!.read().dataSync(), movingMean)).toBeLessThan(1e-6);
    expect(maxAbsDifference(mlp.weights[5]!.read().dataSync(), movingVariance)).toBeLessThan(1e-6);
    const inference = mlp.forward(x).dataSync();
    const expectedInference = [
      (1 - movingMean[0]!) / Math.sqrt(movingVariance[0]! + epsilon),
      (2 * (2 - movingMean[1]!)) / Math.sqrt(movingVariance[1]! + epsilon) + 1,
      (3 - movingMean[0]!) / Math.sqrt(movingVariance[0]! + epsilon),
      (2 * (6 - movingMean[1]!)) / Math.sqrt(movingVariance[1]! + epsilon) + 1,
    ];
    expect(maxAbsDifference(inference, expectedInference)).toBeLessThan(1e-5);
    // Inference leaves the moving statistics alone.
    expect(maxAbsDifference(mlp.weights[4]!.read().dataSync(), movingMean)).toBeLessThan(1e-6);
    // tfjs appends "_<n>" to keep variable names unique in the process.
    const baseName = (name: string) =>
      /(kernel|bias|gamma|beta|moving_mean|moving_variance)_\d+/.exec(name)?.[0];
    expect(mlp.trainableWeights.map((w) => baseName(w.name))).toEqual([
      "kernel_0",
      "bias_0",
      "gamma_0",
      "beta_0",
    ]);
    expect(mlp.nonTrainableWeights.map((w) => baseName(w.name))).toEqual([
      "moving_mean_0",
      "moving_variance_0",
    ]);
    mlp.dispose();
  });

  it("updates moving statistics once per training call inside a gradient tape, without gradients for them", () => {
    const mlp = new Mlp({
      units: [2],
      activation: "linear",
      batchNorm: true,
      batchNormMomentum: 0.5,
      seed: 2,
    });
    const x = tf.tensor2d([
      [1, 2],
      [3, 6],
      [5, 1],
    ]);
    mlp.forward(x).dispose();
    const before = mlp.weights[4]!.read().dataSync().slice();
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(mlp.forward(x, true))) as tf.Scalar);
    const batchMean = tf.tidy(() =>
      tf.mean(tf.matMul(x, mlp.weights[0]!.read() as tf.Tensor2D), 0).dataSync(),
    );
    const expected = Array.from(before, (moving, index) => 0.5 * moving + 0.5 * batchMean[index]!);
    expect(maxAbsDifference(mlp.weights[4]!.read().dataSync(), expected)).toBeLessThan(1e-5);
    const names = Object.keys(grads);
    expect(names.some((name) => name.includes("moving"))).toBe(false);
    expect(names.some((name) => name.includes("gamma_0"))).toBe(true);
    value.dispose();
    tf.dispose(grads);
    mlp.dispose();
  });
});
