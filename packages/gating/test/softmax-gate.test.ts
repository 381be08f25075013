import { ConfigError, loadLayer, ShapeError, saveLayer } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { disposeRouting, SoftmaxGate } from "@mdrec/gating";
import {
  checkVariableGradients,
  expectClose,
  expectNoLeak,
  onBackend,
  temporaryDirectory,
} from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";

afterAll(async () => {
  await tf.setBackend("cpu");
});

const softmax = (values: number[]) => {
  const exps = values.map((value) => Math.exp(value));
  const total = exps.reduce((sum, value) => sum + value, 0);
  return exps.map((value) => value / total);
};

const x = tf.randomNormal([5, 4], 0, 1, "float32", 1) as tf.Tensor2D;
const ids = tf.tensor1d([0, 1, 2, 1, 0], "int32");

describe("SoftmaxGate golden values", () => {
  it("without conditioning: probs = softmax(x W), all experts, weights = probs", () => {
    const gate = new SoftmaxGate({ numExperts: 3, seed: 1 });
    gate.build([[null as unknown as number, 2], [null as unknown as number]]);
    gate.setWeights([
      tf.tensor2d([
        [1, 0, -1],
        [0, 2, 1],
      ]),
    ]);
    const routing = gate.route(
      tf.tensor2d([
        [1, 1],
        [2, 0],
      ]),
      tf.zeros([2], "int32") as tf.Tensor1D,
      false,
    );
    expectClose(routing.probs, [softmax([1, 2, 0]), softmax([2, 0, -2])]);
    expectClose(routing.weights, routing.probs, 0);
    expect(routing.indices.dtype).toBe("int32");
    expect(routing.indices.arraySync()).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(gate.k).toBe(3);
    // weights is its own handle: disposing probs leaves it usable.
    routing.probs.dispose();
    expect(routing.weights.isDisposed).toBe(false);
  });

  it('"per-domain": each row uses its own domain\'s gate matrix', () => {
    const gate = new SoftmaxGate({ numExperts: 2, domainConditioning: "per-domain", numDomains: 2, seed: 1 });
    gate.build([[null as unknown as number, 1], [null as unknown as number]]);
    gate.setWeights([tf.tensor2d([[1, 0, 0, 3]])]); // domain 0: [x, 0]; domain 1: [0, 3x]
    const routing = gate.route(tf.tensor2d([[1], [1], [2]]), tf.tensor1d([0, 1, 1], "int32"), false);
    expectClose(routing.probs, [softmax([1, 0]), softmax([0, 3]), softmax([0, 6])]);
  });

  it('"embedding": logits = W [x ; emb(d)]', () => {
    const gate = new SoftmaxGate({
      numExperts: 2,
      domainConditioning: "embedding",
      numDomains: 2,
      domainEmbeddingDim: 1,
      seed: 1,
    });
    gate.build([[null as unknown as number, 1], [null as unknown as number]]);
    gate.setWeights([
      tf.tensor2d([[0], [2]]),
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]),
    ]);
    const routing = gate.route(tf.tensor2d([[1], [1]]), tf.tensor1d([0, 1], "int32"), false);
    expectClose(routing.probs, [softmax([1, 0]), softmax([1, 2])]);
  });

  it("hidden units put a ReLU MLP before the logits", () => {
    const gate = new SoftmaxGate({ numExperts: 2, hiddenUnits: [2], seed: 1 });
    gate.build([[null as unknown as number, 1], [null as unknown as number]]);
    expect(gate.trainableWeights.map((weight) => weight.shape)).toEqual([[2, 2], [1, 2], [2]]);
    gate.setWeights([
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]), // logits kernel
      tf.tensor2d([[1, -1]]), // hidden kernel
      tf.tensor1d([0, 0.5]), // hidden bias
    ]);
    // h = relu([x, -x + 0.5]); x = 2 -> h = [2, 0]; logits = h
    expectClose(gate.route(tf.tensor2d([[2]]), tf.zeros([1], "int32") as tf.Tensor1D, false).probs, [
      softmax([2, 0]),
    ]);
  });
});

describe("SoftmaxGate behaviour", () => {
  for (const domainConditioning of ["embedding", "per-domain"] as const) {
    it(`"${domainConditioning}" depends on the domain`, () => {
      const gate = new SoftmaxGate({ numExperts: 3, domainConditioning, numDomains: 3, seed: 5 });
      const same = tf.tile(tf.slice(x, [0, 0], [1, 4]), [2, 1]) as tf.Tensor2D;
      const probs = gate.route(same, tf.tensor1d([0, 2], "int32"), false).probs.arraySync() as number[][];
      expect(
        Math.max(...probs[0]!.map((value, index) => Math.abs(value - probs[1]![index]!))),
      ).toBeGreaterThan(1e-4);
    });
  }

  it("gradient check on every weight (per-domain with a hidden MLP)", () => {
    const gate = new SoftmaxGate({
      numExperts: 3,
      domainConditioning: "per-domain",
      numDomains: 3,
      hiddenUnits: [4],
      seed: 6,
    });
    const target = tf.randomNormal([5, 3], 0, 1, "float32", 9);
    const loss = () => tf.sum(tf.mul(gate.route(x, ids, true).weights, target)) as tf.Scalar;
    loss();
    checkVariableGradients(
      loss,
      gate.trainableWeights.map((weight) => weight.read() as tf.Variable),
      3,
      1e-3,
    );
  });

  it("gradient check with embedding conditioning and MMoE mixing", () => {
    const gate = new SoftmaxGate({
      numExperts: 3,
      domainConditioning: "embedding",
      numDomains: 3,
      domainEmbeddingDim: 2,
      seed: 6,
    });
    const pool = new ExpertPool({ numExperts: 3, units: [2], activation: "tanh", seed: 2 });
    const loss = () => tf.sum(tf.square(mixExperts(pool.dense(x), gate.route(x, ids, true)))) as tf.Scalar;
    loss();
    checkVariableGradients(
      loss,
      gate.trainableWeights.map((weight) => weight.read() as tf.Variable),
      3,
      1e-3,
    );
  });

  it("auxiliaryLosses returns the weighted non-zero terms", () => {
    const none = new SoftmaxGate({ numExperts: 3, seed: 1 });
    expect(none.auxiliaryLosses(none.route(x, ids, false))).toEqual({});
    const gate = new SoftmaxGate({ numExperts: 3, loadBalance: { importance: 2 }, seed: 1 });
    const losses = gate.auxiliaryLosses(gate.route(x, ids, false));
    expect(Object.keys(losses)).toEqual(["importance"]);
    const probs = gate.route(x, ids, false).probs;
    const importance = tf.sum(probs, 0);
    const { mean, variance } = tf.moments(importance);
    expectClose(losses.importance!, tf.mul(tf.div(variance, tf.square(mean)), 2), 1e-5);
  });
});

describe("SoftmaxGate serialisation, determinism, leaks, backends", () => {
  it("getConfig/fromConfig round trip gives the same routing", () => {
    const gate = new SoftmaxGate({
      numExperts: 3,
      domainConditioning: "embedding",
      numDomains: 3,
      domainEmbeddingDim: 3,
      hiddenUnits: [5],
      loadBalance: { importance: 0.5, load: 0.25 },
      seed: 12,
      name: "mmoe_gate",
    });
    const config = gate.getConfig();
    expect(config).toMatchObject({
      numExperts: 3,
      domainConditioning: "embedding",
      numDomains: 3,
      domainEmbeddingDim: 3,
      hiddenUnits: [5],
      seed: 12,
    });
    const copy = SoftmaxGate.fromConfig(SoftmaxGate, config) as SoftmaxGate;
    expectClose(copy.route(x, ids, false).probs, gate.route(x, ids, false).probs, 0);
    expect(copy.loadBalance).toEqual({ importance: 0.5, load: 0.25 });
    const plain = new SoftmaxGate({ numExperts: 2, seed: 3 });
    expect(plain.getConfig().numDomains).toBeUndefined();
    expect(
      (SoftmaxGate.fromConfig(SoftmaxGate, plain.getConfig()) as SoftmaxGate).conditioning.domainConditioning,
    ).toBe("none");
  });

  it("saveLayer/loadLayer round trip restores the gate and its hidden MLP", async () => {
    const gate = new SoftmaxGate({
      numExperts: 3,
      domainConditioning: "per-domain",
      numDomains: 3,
      hiddenUnits: [4],
      seed: 2,
    });
    gate.route(x, ids, false);
    gate.trainableWeights.forEach((weight) => {
      weight.write(tf.add(weight.read(), 0.2));
    });
    const expected = gate.route(x, ids, false).probs;
    const directory = await temporaryDirectory();
    try {
      await saveLayer(gate, directory.path);
      const loaded = await loadLayer<SoftmaxGate>(directory.path);
      expect(loaded.weights.length).toBe(3);
      expectClose(loaded.route(x, ids, false).probs, expected, 0);
    } finally {
      await directory.cleanup();
    }
  });

  it("same seed gives identical probs", () => {
    const a = new SoftmaxGate({ numExperts: 3, hiddenUnits: [3], seed: 8 }).route(x, ids, false).probs;
    const b = new SoftmaxGate({ numExperts: 3, hiddenUnits: [3], seed: 8 }).route(x, ids, false).probs;
    expectClose(a, b, 0);
  });

  it("route and gradients leave no tensors behind; dispose frees its and its children's weights", () => {
    const gate = new SoftmaxGate({
      numExperts: 3,
      domainConditioning: "embedding",
      numDomains: 3,
      hiddenUnits: [4],
      seed: 2,
    });
    disposeRouting(gate.route(x, ids, true));
    expectNoLeak(() => {
      gate.route(x, ids, true);
      const { value, grads } = tf.variableGrads(() => tf.sum(gate.route(x, ids, true).weights) as tf.Scalar);
      tf.dispose([value, ...Object.values(grads)]);
    });
    const before = tf.memory().numTensors;
    gate.dispose();
    // 4 weights (embedding, kernel, hidden kernel and bias); the expert ids live on the host.
    expect(before - tf.memory().numTensors).toBe(4);
  });

  it("wasm gives the cpu routing and gradients", async () => {
    const run = () => {
      const gate = new SoftmaxGate({
        numExperts: 4,
        domainConditioning: "per-domain",
        numDomains: 3,
        hiddenUnits: [3],
        seed: 4,
      });
      const routing = gate.route(x, ids, true);
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(gate.route(x, ids, true).weights)) as tf.Scalar,
      );
      return {
        probs: Array.from(routing.probs.dataSync()),
        grads: gate.trainableWeights.map((weight) =>
          Array.from(grads[(weight.read() as tf.Variable).name]!.dataSync()),
        ),
      };
    };
    const cpu = run();
    const wasm = await onBackend("wasm", run);
    expectClose(wasm.probs, cpu.probs, 1e-5);
    wasm.grads.forEach((gradient, index) => {
      expectClose(gradient, cpu.grads[index]!, 1e-5);
    });
  });
});

describe("SoftmaxGate rejects bad arguments", () => {
  it("validates the constructor arguments", () => {
    expect(() => new SoftmaxGate({ numExperts: -1 })).toThrow(ConfigError);
    expect(() => new SoftmaxGate({ numExperts: -1 })).toThrow(
      "SoftmaxGate numExperts must be an integer >= 1, received -1",
    );
    expect(() => new SoftmaxGate({ numExperts: 2, domainConditioning: "per-domain" })).toThrow(
      'SoftmaxGate numDomains (required when domainConditioning is "per-domain") must be an integer >= 1, received undefined',
    );
    expect(() => new SoftmaxGate({ numExperts: 2, hiddenUnits: [3, 0] })).toThrow(
      "SoftmaxGate hiddenUnits[1] must be an integer >= 1, received 0",
    );
    expect(
      () =>
        new SoftmaxGate({
          numExperts: 2,
          domainConditioning: "embedding",
          numDomains: 2,
          domainEmbeddingDim: 0,
        }),
    ).toThrow("SoftmaxGate domainEmbeddingDim must be an integer >= 1, received 0");
    expect(() => new SoftmaxGate({ numExperts: 2, hidenUnits: [3] } as never)).toThrow(
      'Unknown key "hidenUnits" in SoftmaxGate args. Did you mean "hiddenUnits"?',
    );
  });

  it("validates route inputs", () => {
    const gate = new SoftmaxGate({ numExperts: 2, seed: 1, name: "mmoe_gate_bad" });
    expect(() =>
      gate.route(tf.ones([2, 3], "int32") as never, tf.zeros([2], "int32") as tf.Tensor1D, false),
    ).toThrow(ShapeError);
    expect(() =>
      gate.route(tf.ones([2, 3], "int32") as never, tf.zeros([2], "int32") as tf.Tensor1D, false),
    ).toThrow("mmoe_gate_bad x must have dtype float32, received int32");
    expect(() =>
      gate.route(tf.ones([2, 3]) as tf.Tensor2D, tf.zeros([2, 1], "int32") as never, false),
    ).toThrow("mmoe_gate_bad domainIds must have rank 1");
  });
});
