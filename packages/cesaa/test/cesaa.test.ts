import { CESAA_GATE_DEFAULTS, CESAA_MI_DEFAULTS, Cesaa, type CesaaOptions } from "@mdrec/cesaa";
import { ConfigError, DataError, disposeBatch, setGlobalSeed } from "@mdrec/core";
import { createModel, listModels, loadModel, type MultiDomainModel } from "@mdrec/models";
import {
  checkVariableGradients,
  expectClose,
  expectNoLeak,
  onBackend,
  temporaryDirectory,
} from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import { predictDataset, totalLoss, trainModel, trainStep } from "../../models/test/training.js";
import {
  baseOptions,
  gradientValues,
  numericBatch,
  numericFeature,
  sampleBatch,
  setWeight,
  smallCesaa,
  smallTrain,
  splits,
  values,
  weightNamed,
} from "./helpers.js";

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const step of cleanup) await step();
});

/** Sum of the task loss and every auxiliary loss, inference mode (deterministic: no noise, no state writes). */
function inferenceLoss(model: MultiDomainModel, batch: ReturnType<typeof sampleBatch>): tf.Scalar {
  const output = model.call(batch, { training: false });
  const taskLoss = tf.losses.sigmoidCrossEntropy(batch.labels, output.logits) as tf.Scalar;
  return Object.values(output.auxLosses).reduce((sum, loss) => tf.add(sum, loss), taskLoss);
}

describe("Cesaa golden values", () => {
  // x = [v] (one numeric field passed through). Shared experts relu(1 v), relu(3 v) -> mean 2v.
  // Specific experts E0 = relu(2 v), E1 = relu(3 v). Gate logits come only from the domain
  // embedding: domain 0 -> [1, 0], domain 1 -> [0, 1]; k = 2 renormalised weights are
  // softmax([1, 0]) = [s, 1 - s] with s = sigmoid(1). Linear towers: domain 0 h + 0.5, domain 1 -h.
  function handSetModel(extra: Partial<CesaaOptions> = {}): Cesaa {
    const model = new Cesaa({
      features: numericFeature,
      numDomains: 2,
      numSharedExperts: 2,
      numSpecificExperts: 2,
      k: 2,
      expertUnits: [1],
      towerUnits: [],
      gate: { domainEmbeddingDim: 2 },
      mi: { weight: 0.01, movingAverage: 0 },
      seed: 1,
      ...extra,
    });
    model.trainableWeights(); // builds every block
    setWeight(weightNamed(model.sharedExperts!.weights, "kernel_0"), [1, 3]);
    setWeight(weightNamed(model.specificExperts.weights, "kernel_0"), [2, 3]);
    // rows: [x ; emb_0 ; emb_1] -> logits of the 2 experts; x gets no weight.
    setWeight(weightNamed(model.gate.weights, "gate_kernel"), [0, 0, 1, 0, 0, 1]);
    setWeight(weightNamed(model.gate.weights, "domain_embedding"), [1, 0, 0, 1]);
    const towers = model.trainableWeights().filter((weight) => weight.name.includes("towers"));
    setWeight(weightNamed(towers, "kernel_0"), [1, -1]);
    setWeight(weightNamed(towers, "bias_0"), [0.5, 0]);
    return model;
  }

  const s = 1 / (1 + Math.exp(-1));

  it("computes h = mean shared + sum_topk w_i E_i and the domain's tower", () => {
    const model = handSetModel();
    const batch = numericBatch([1, 2], [0, 1]);
    const output = model.call(batch, { training: false });
    // row 0 (v = 1, domain 0): shared 2, specific 2s + 3(1 - s); logit = h + 0.5
    // row 1 (v = 2, domain 1): shared 4, specific 4(1 - s) + 6s;  logit = -h
    const expected = [2 + 2 * s + 3 * (1 - s) + 0.5, -(4 + 4 * (1 - s) + 6 * s)];
    expectClose(values(output.logits), expected, 1e-5);
    expect(values(output.routing[0]!.indices)).toEqual([0, 1, 1, 0]);
    expectClose(values(output.routing[0]!.weights), [s, 1 - s, s, 1 - s], 1e-6);
    // AEA: P(e|d0) = [s, 1 - s], P(e|d1) = [1 - s, s], P(d) = P(e) = [1/2, 1/2]
    const conditionalEntropy = -(s * Math.log(s) + (1 - s) * Math.log(1 - s));
    const mutualInformation = Math.log(2) - conditionalEntropy;
    expectClose(values(output.auxLosses.mi!), [-0.01 * mutualInformation], 1e-6);
    expect(Object.keys(output.auxLosses)).toEqual(["mi"]);
    tf.dispose(output as unknown as tf.TensorContainer);
    disposeBatch(batch);
    model.dispose();
  });

  it("with S = 0 shared experts h is the specific mixture alone", () => {
    const model = new Cesaa({
      features: numericFeature,
      numDomains: 2,
      numSharedExperts: 0,
      numSpecificExperts: 2,
      k: 1,
      expertUnits: [1],
      towerUnits: [],
      gate: { domainEmbeddingDim: 2 },
      seed: 1,
    });
    model.trainableWeights();
    expect(model.sharedExperts).toBeNull();
    setWeight(weightNamed(model.specificExperts.weights, "kernel_0"), [2, 3]);
    setWeight(weightNamed(model.gate.weights, "gate_kernel"), [0, 0, 1, 0, 0, 1]);
    setWeight(weightNamed(model.gate.weights, "domain_embedding"), [1, 0, 0, 1]);
    const towers = model.trainableWeights().filter((weight) => weight.name.includes("towers"));
    setWeight(weightNamed(towers, "kernel_0"), [1, 1]);
    setWeight(weightNamed(towers, "bias_0"), [0, 0]);
    const batch = numericBatch([1, 2], [0, 1]);
    // k = 1: the single kept weight is 1. Row 0 -> E0(1) = 2, row 1 -> E1(2) = 6.
    expectClose(values(model.call(batch, { training: false }).logits), [2, 6], 1e-6);
    expect(model.summary()).toMatchObject({ expertsPerRow: 1, totalExperts: 2 });
    disposeBatch(batch);
    model.dispose();
  });

  it("un-renormalised weights are the kept full-softmax values (Mod-Squad)", () => {
    const model = handSetModel({ k: 1, gate: { domainEmbeddingDim: 2, renormalize: false } });
    const batch = numericBatch([1, 2], [0, 1]);
    const output = model.call(batch, { training: false });
    // softmax([1, 0]) keeps s for the top expert
    expectClose(values(output.routing[0]!.weights), [s, s], 1e-6);
    expectClose(values(output.logits), [2 + 2 * s + 0.5, -(4 + 6 * s)], 1e-5);
    tf.dispose(output as unknown as tf.TensorContainer);
    disposeBatch(batch);
    model.dispose();
  });

  it("learned shared mixing reports the shared gate's routing second and mixes with it", () => {
    const model = handSetModel({ sharedMixing: "learned" });
    expect(model.sharedGate).not.toBeNull();
    setWeight(weightNamed(model.sharedGate!.weights, "gate_kernel"), [0, 0]); // uniform mix = mean
    const batch = numericBatch([1, 2], [0, 1]);
    const output = model.call(batch, { training: false });
    expect(output.routing).toHaveLength(2);
    expect(output.routing[1]!.probs.shape).toEqual([2, 2]);
    expectClose(values(output.logits), [2 + 2 * s + 3 * (1 - s) + 0.5, -(4 + 4 * (1 - s) + 6 * s)], 1e-5);
    tf.dispose(output as unknown as tf.TensorContainer);
    disposeBatch(batch);
    model.dispose();
  });
});

describe("Cesaa sparse dispatch", () => {
  it("sparse and dense dispatch give the same predictions and the same gradients", () => {
    const options = { gate: { noise: false }, mi: { weight: 0.05, movingAverage: 0.5 } };
    const sparse = smallCesaa({ ...options, dispatch: "sparse" });
    const dense = smallCesaa({ ...options, dispatch: "dense" });
    const batch = sampleBatch(64);
    expectClose(values(sparse.predict(batch)), values(dense.predict(batch)), 1e-5);
    // Training mode (moving averages written, in the same order for both models).
    const sparseGradients = gradientValues(() => totalLoss(sparse, batch), sparse.trainableWeights());
    const denseGradients = gradientValues(() => totalLoss(dense, batch), dense.trainableWeights());
    expect(sparseGradients).toHaveLength(denseGradients.length);
    let nonZero = 0;
    sparseGradients.forEach((gradient, index) => {
      expectClose(gradient, denseGradients[index]!, 1e-5);
      if (gradient.some((value) => Math.abs(value) > 1e-6)) nonZero += 1;
    });
    expect(nonZero).toBeGreaterThan(sparseGradients.length / 2);
    disposeBatch(batch);
    sparse.dispose();
    dense.dispose();
  });

  it("computes exactly S + k experts per row: S shared on every row, B * k specific row evaluations", () => {
    const model = smallCesaa({ numSharedExperts: 2, numSpecificExperts: 6, k: 2 });
    const batch = sampleBatch(50);
    const output = model.call(batch, { training: true });
    const shared = model.sharedExperts!.expertInvocations.lastDispatch!;
    const specific = model.specificExperts.expertInvocations.lastDispatch!;
    // Every row routes to both shared experts: the routed pool runs each on all 50 rows.
    expect(shared).toMatchObject({ mode: "sparse", batchSize: 50, rowsPerExpert: [50, 50] });
    expect(specific.mode).toBe("sparse");
    expect(specific.totalRowEvaluations).toBe(50 * 2);
    expect(specific.rowsPerExpert.reduce((sum, rows) => sum + rows, 0)).toBe(100);
    // Each row's k chosen experts are distinct, so every row ran S + k = 4 different experts.
    const indices = values(output.routing[0]!.indices);
    for (let row = 0; row < 50; row++) {
      expect(new Set(indices.slice(row * 2, row * 2 + 2)).size).toBe(2);
    }
    expect(shared.totalRowEvaluations + specific.totalRowEvaluations).toBe(50 * (2 + 2));
    expect(model.summary()).toMatchObject({ expertsPerRow: 4, totalExperts: 8 });
    tf.dispose(output as unknown as tf.TensorContainer);
    // Dense dispatch computes all N specific experts on every row (the reference).
    const dense = smallCesaa({ numSharedExperts: 2, numSpecificExperts: 6, k: 2, dispatch: "dense" });
    tf.dispose(dense.call(batch, { training: false }) as unknown as tf.TensorContainer);
    expect(dense.specificExperts.expertInvocations.lastDispatch!.totalRowEvaluations).toBe(50 * 6);
    expect(dense.summary()).toMatchObject({ expertsPerRow: 8, totalExperts: 8 });
    disposeBatch(batch);
    model.dispose();
    dense.dispose();
  });
});

describe("Cesaa gradients, leaks, round trips, determinism", () => {
  it("autodiff matches finite differences on gate, expert, shared and tower weights", () => {
    const model = smallCesaa({ mi: { weight: 0.5, movingAverage: 0 } });
    const batch = sampleBatch(24);
    const weights = model.trainableWeights();
    const chosen = [
      weightNamed(model.gate.weights, "gate_kernel"),
      weightNamed(model.gate.weights, "domain_embedding"),
      weightNamed(model.specificExperts.weights, "kernel_0"),
      weightNamed(model.sharedExperts!.weights, "kernel_0"),
      weightNamed(
        weights.filter((weight) => weight.name.includes("towers")),
        "kernel_0",
      ),
    ];
    checkVariableGradients(
      () => inferenceLoss(model, batch),
      chosen.map((weight) => weight.read() as tf.Variable),
    );
    // Every chosen weight gets gradient, so the comparison above is not between zeros.
    gradientValues(() => inferenceLoss(model, batch), chosen).forEach((gradient) => {
      expect(gradient.some((value) => Math.abs(value) > 1e-6)).toBe(true);
    });
    disposeBatch(batch);
    model.dispose();
  });

  it("the AEA term sends gradient to the gate's logits of every expert", () => {
    const model = smallCesaa({ mi: { weight: 1, movingAverage: 0 } });
    model.trainableWeights(); // builds every block
    const batch = sampleBatch(32);
    const kernel = weightNamed(model.gate.weights, "gate_kernel");
    const [gradient] = gradientValues(() => {
      const output = model.call(batch, { training: false });
      return output.auxLosses.mi!;
    }, [kernel]);
    // Gate kernel [inputDim + 8, N]: every expert column gets gradient, not only the chosen ones.
    const columns = kernel.shape[1]!;
    for (let expert = 0; expert < columns; expert++) {
      const column = gradient!.filter((_, index) => index % columns === expert);
      expect(column.some((value) => Math.abs(value) > 1e-7)).toBe(true);
    }
    disposeBatch(batch);
    model.dispose();
  });

  it("leaks no tensors per call or training step after warm-up; dispose frees every tensor", () => {
    const start = tf.memory().numTensors;
    const model = smallCesaa({ sharedMixing: "learned", loadBalance: { importance: 0.01, load: 0.01 } });
    const batch = sampleBatch(32);
    const optimizer = tf.train.adam(1e-3);
    trainStep(model, optimizer, batch);
    const before = tf.memory().numTensors;
    trainStep(model, optimizer, batch);
    expect(tf.memory().numTensors).toBe(before);
    expectNoLeak(() => {
      const output = model.call(batch, { training: true });
      expect(Object.keys(output.auxLosses).sort()).toEqual(["importance", "load", "mi"]);
      model.predict(batch);
    });
    optimizer.dispose();
    disposeBatch(batch);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("round-trips getConfig -> createModel with identical predictions", () => {
    const model = smallCesaa({ sharedMixing: "learned", gate: { renormalize: false } });
    const config = model.getConfig();
    expect(JSON.parse(JSON.stringify(config))).toEqual(config);
    expect(config.options).toMatchObject({
      gate: { ...CESAA_GATE_DEFAULTS, renormalize: false },
      mi: CESAA_MI_DEFAULTS,
      loadBalance: { importance: 0, load: 0 },
    });
    const rebuilt = createModel("cesaa", config.options);
    expect(rebuilt.getConfig()).toEqual(config);
    expect(predictDataset(rebuilt, splits.test)).toEqual(predictDataset(model, splits.test));
    rebuilt.dispose();
    model.dispose();
  });

  it("save -> loadModel restores the weights and the AEA moving averages", async () => {
    const model = smallCesaa({ mi: { weight: 0.01, movingAverage: 0.9 } });
    trainModel(model, smallTrain, { epochs: 1, seed: 1 });
    const state = model.nonTrainableWeights();
    expect(state.map((weight) => weight.shape)).toEqual([[4, 4], [4]]);
    // The moving P(e|d) moved away from its uniform start.
    expect(values(state[0]!.read()).some((value) => Math.abs(value - 0.25) > 1e-3)).toBe(true);
    const directory = await temporaryDirectory();
    cleanup.push(directory.cleanup);
    await model.save(directory.path);
    const loaded = await loadModel(directory.path);
    expect(loaded).toBeInstanceOf(Cesaa);
    expect(loaded.getConfig()).toEqual(model.getConfig());
    expect(loaded.summary()).toEqual(model.summary());
    expect(predictDataset(loaded, splits.test)).toEqual(predictDataset(model, splits.test));
    loaded.nonTrainableWeights().forEach((weight, index) => {
      expect(values(weight.read())).toEqual(values(state[index]!.read()));
    });
    loaded.dispose();
    model.dispose();
  });

  it("is bit-for-bit reproducible on cpu for equal seeds, and differs for another seed", () => {
    const runOnce = (seed: number) => {
      const model = smallCesaa({}, seed);
      setGlobalSeed(17);
      trainModel(model, smallTrain, { epochs: 1, seed: 2 });
      const predictions = predictDataset(model, splits.test);
      model.dispose();
      return predictions;
    };
    const first = runOnce(5);
    expect(runOnce(5)).toEqual(first);
    expect(runOnce(6)).not.toEqual(first);
  });

  it("gives the cpu outputs and gradients on wasm", async () => {
    const model = smallCesaa({ gate: { noise: false }, mi: { weight: 0.05, movingAverage: 0 } });
    const batch = sampleBatch(32);
    const weights = model.trainableWeights();
    const onCpu = {
      logits: values(model.predict(batch)),
      gradients: gradientValues(() => totalLoss(model, batch), weights),
    };
    const data = {
      features: Object.fromEntries(
        Object.entries(batch.features).map(([name, column]) => [name, Array.from(column.dataSync())]),
      ),
      domainIds: Array.from(batch.domainIds.dataSync()),
      labels: Array.from(batch.labels.dataSync()),
    };
    const weightValues = weights.map((weight) => values(weight.read()));
    const onWasm = await onBackend("wasm", () => {
      // Variables live on the backend they were created on: copy the weights into a twin model.
      const twin = smallCesaa({ gate: { noise: false }, mi: { weight: 0.05, movingAverage: 0 } });
      twin.trainableWeights().forEach((weight, index) => {
        setWeight(weight, weightValues[index]!);
      });
      const wasmBatch = {
        features: Object.fromEntries(
          Object.entries(data.features).map(([name, column]) => [
            name,
            tf.tensor1d(column, batch.features[name]!.dtype as "int32" | "float32"),
          ]),
        ),
        domainIds: tf.tensor1d(data.domainIds, "int32"),
        labels: tf.tensor2d(data.labels, batch.labels.shape),
      };
      const result = {
        logits: values(twin.predict(wasmBatch)),
        gradients: gradientValues(() => totalLoss(twin, wasmBatch), twin.trainableWeights()),
      };
      disposeBatch(wasmBatch);
      twin.dispose();
      return result;
    });
    expectClose(onWasm.logits, onCpu.logits, 1e-5);
    onWasm.gradients.forEach((gradient, index) => {
      expectClose(gradient, onCpu.gradients[index]!, 1e-5);
    });
    disposeBatch(batch);
    model.dispose();
  });
});

describe("Cesaa options", () => {
  it("is registered as cesaa and fills the documented defaults", () => {
    expect(listModels()).toContain("cesaa");
    // Checked by `tsc`: the registry types CESAA's options (declaration merging in register.ts).
    const mistyped = () =>
      // @ts-expect-error k must be a number
      createModel("cesaa", { ...baseOptions, k: "two" });
    expect(mistyped).toThrow(ConfigError);
    const model = createModel("cesaa", { ...baseOptions, seed: 1 });
    expect(model.getConfig().options).toMatchObject({
      numSharedExperts: 2,
      numSpecificExperts: 8,
      k: 2,
      expertUnits: [64, 32],
      towerUnits: [32],
      towerMode: "per-domain",
      sharedMixing: "mean",
      dispatch: "sparse",
      activation: "relu",
      dropout: 0,
      gate: { noise: true, renormalize: true, domainConditioning: "embedding", domainEmbeddingDim: 8 },
      mi: { weight: 0.03, expertEntropyWeight: 1, conditionalEntropyWeight: 1, movingAverage: 0 },
      loadBalance: { importance: 0, load: 0 },
    });
    const summary = model.summary();
    expect(summary).toMatchObject({ name: "cesaa", expertsPerRow: 4, totalExperts: 10 });
    const counted = model.trainableWeights().reduce((sum, weight) => sum + weight.read().size, 0);
    expect(summary.parameters).toBe(counted);
    model.dispose();
  });

  it("mi.weight = 0 turns AEA off: no mi loss and no moving-average state", () => {
    const model = smallCesaa({ mi: { weight: 0 } });
    expect(model.aea).toBeNull();
    expect(model.nonTrainableWeights()).toEqual([]);
    const batch = sampleBatch(8);
    const output = model.call(batch, { training: true });
    expect(output.auxLosses).toEqual({});
    tf.dispose(output as unknown as tf.TensorContainer);
    disposeBatch(batch);
    model.dispose();
  });

  it("per-domain towers and gate conditioning, shared tower, no conditioning all train", () => {
    for (const extra of [
      { towerMode: "shared", gate: { domainConditioning: "per-domain" } },
      { gate: { domainConditioning: "none" } },
    ] as Partial<CesaaOptions>[]) {
      const model = smallCesaa(extra);
      const optimizer = tf.train.adam(1e-2);
      const batch = sampleBatch(64);
      const losses = Array.from({ length: 6 }, () => trainStep(model, optimizer, batch));
      expect(losses[5]).toBeLessThan(losses[0]!);
      optimizer.dispose();
      disposeBatch(batch);
      model.dispose();
    }
  });

  it("returns logits [B, numTasks] and trains with two tasks (a tower per domain and task)", () => {
    const model = smallCesaa({ numTasks: 2 });
    const batch = sampleBatch(32);
    const twoTasks = {
      ...batch,
      labels: tf.concat([batch.labels, tf.sub(1, batch.labels)], 1) as tf.Tensor2D,
    };
    const output = model.call(twoTasks, { training: false });
    expect(output.logits.shape).toEqual([32, 2]);
    tf.dispose(output as unknown as tf.TensorContainer);
    const optimizer = tf.train.adam(1e-2);
    const losses = Array.from({ length: 5 }, () => trainStep(model, optimizer, twoTasks));
    expect(losses[4]).toBeLessThan(losses[0]!);
    optimizer.dispose();
    twoTasks.labels.dispose();
    disposeBatch(batch);
    model.dispose();
  });

  it("trains with one shared and one specific expert (pools of size 1)", () => {
    const model = smallCesaa({ numSharedExperts: 1, numSpecificExperts: 1, k: 1, sharedMixing: "learned" });
    const optimizer = tf.train.adam(1e-2);
    const batch = sampleBatch(32);
    const losses = Array.from({ length: 4 }, () => trainStep(model, optimizer, batch));
    expect(losses[3]).toBeLessThan(losses[0]!);
    expect(model.summary()).toMatchObject({ expertsPerRow: 2, totalExperts: 2 });
    optimizer.dispose();
    disposeBatch(batch);
    model.dispose();
  });

  const invalid: [string, Partial<CesaaOptions> | Record<string, unknown>, string][] = [
    [
      "k > N",
      { numSpecificExperts: 8, k: 9 },
      "cesaa options.k must be an integer in [1, numSpecificExperts=8], received 9",
    ],
    ["k = 0", { k: 0 }, "cesaa options.k must be an integer in [1, numSpecificExperts=8], received 0"],
    [
      "S < 0",
      { numSharedExperts: -1 },
      "cesaa options.numSharedExperts must be an integer >= 0, received -1",
    ],
    [
      "N = 0",
      { numSpecificExperts: 0 },
      "cesaa options.numSpecificExperts must be an integer >= 1, received 0",
    ],
    [
      "unknown key",
      { numSharedExpert: 2 },
      'Unknown key "numSharedExpert" in cesaa options. Did you mean "numSharedExperts"?',
    ],
    [
      "unknown gate key",
      { gate: { nois: false } },
      'Unknown key "nois" in cesaa options.gate. Did you mean "noise"?',
    ],
    [
      "unknown mi key",
      { mi: { lambda: 0.1 } },
      'Unknown key "lambda" in cesaa options.mi. Known keys: weight, expertEntropyWeight, conditionalEntropyWeight, movingAverage.',
    ],
    [
      "NaN lambda",
      { mi: { weight: Number.NaN } },
      "cesaa options.mi.weight must be a finite number >= 0, received NaN",
    ],
    [
      "moving average 1",
      { mi: { movingAverage: 1 } },
      "cesaa options.mi.movingAverage must be a finite number >= 0 and < 1, received 1",
    ],
    ["gate not an object", { gate: "noisy" }, 'cesaa options.gate must be an object, received "noisy"'],
    [
      "noise not boolean",
      { gate: { noise: "yes" } },
      'cesaa options.gate.noise must be a boolean, received "yes"',
    ],
    [
      "bad conditioning",
      { gate: { domainConditioning: "onehot" } },
      'cesaa options.gate.domainConditioning must be one of "none", "embedding", "per-domain", received "onehot"',
    ],
    [
      "bad mixing",
      { sharedMixing: "sum" },
      'cesaa options.sharedMixing must be one of "mean", "learned", received "sum"',
    ],
    [
      "bad dispatch",
      { dispatch: "all" },
      'cesaa options.dispatch must be one of "sparse", "dense", received "all"',
    ],
    [
      "empty expert units",
      { expertUnits: [] },
      "cesaa options.expertUnits must be a non-empty array of positive integers, received []",
    ],
    [
      "bad tower mode",
      { towerMode: "global" },
      'cesaa options.towerMode must be one of "per-domain", "shared", received "global"',
    ],
    [
      "negative load balance",
      { loadBalance: { load: -1 } },
      "cesaa options.loadBalance.load must be a finite number >= 0, received -1",
    ],
  ];
  it.each(invalid)("refuses %s with a ConfigError naming the value", (_, extra, message) => {
    expect(() => new Cesaa({ ...baseOptions, ...(extra as Partial<CesaaOptions>) })).toThrow(
      new ConfigError(message),
    );
  });

  it("refuses an unknown model name and a batch with a domain id out of range", () => {
    expect(() => createModel("cesa", { ...baseOptions })).toThrow(
      /Unknown model "cesa"\. Did you mean "cesaa"\?/,
    );
    const model = smallCesaa();
    const batch = sampleBatch(4);
    const badDomains = tf.tensor1d([0, 1, 7, 0], "int32");
    expect(() => model.call({ ...batch, domainIds: badDomains }, { training: true })).toThrow(
      new DataError("batch.domainIds[2] must be in [0, numDomains=4), received 7"),
    );
    badDomains.dispose();
    disposeBatch(batch);
    model.dispose();
  });
});
