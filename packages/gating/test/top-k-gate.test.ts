import { ConfigError, DataError, loadLayer, ShapeError, saveLayer, setGlobalSeed } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { disposeRouting, type Routing, TopKGate } from "@mdrec/gating";
import {
  checkInputGradients,
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

/** 3 experts, no domain conditioning, gate kernel [[1, 2, 0], [0, -1, 3]]. */
function handSetGate(options: { renormalize?: boolean; noise?: boolean } = {}): TopKGate {
  const gate = new TopKGate({ numExperts: 3, k: 2, domainConditioning: "none", seed: 1, ...options });
  gate.build([[null as unknown as number, 2], [null as unknown as number]]);
  const weights = [
    tf.tensor2d([
      [1, 2, 0],
      [0, -1, 3],
    ]),
  ];
  if (gate.noise) weights.push(tf.zeros([2, 3]) as tf.Tensor2D);
  gate.setWeights(weights);
  return gate;
}

// logits row 0 = [1, 0, 6], row 1 = [2, 4, 0]
const handX = () =>
  tf.tensor2d([
    [1, 2],
    [2, 0],
  ]);
const noDomains = () => tf.zeros([2], "int32") as tf.Tensor1D;

describe("TopKGate golden values", () => {
  it("keeps the k largest logits and renormalises over them", () => {
    const routing = handSetGate().route(handX(), noDomains(), false);
    expect(routing.indices.dtype).toBe("int32");
    expect(routing.indices.arraySync()).toEqual([
      [2, 0],
      [1, 0],
    ]);
    expectClose(routing.probs, [softmax([1, 0, 6]), softmax([2, 4, 0])]);
    expectClose(routing.weights, [softmax([6, 1]), softmax([4, 2])]);
  });

  it("without renormalisation uses the full-softmax values of the kept experts", () => {
    const routing = handSetGate({ renormalize: false }).route(handX(), noDomains(), false);
    const row0 = softmax([1, 0, 6]);
    const row1 = softmax([2, 4, 0]);
    expectClose(routing.weights, [
      [row0[2]!, row0[0]!],
      [row1[1]!, row1[0]!],
    ]);
    const sums = tf.sum(routing.weights, 1).dataSync();
    expect(sums[0]).toBeLessThan(1);
    expect(sums[1]).toBeLessThan(1);
  });

  it("returns probs [B, N], int32 indices [B, k] and weights [B, k] summing to 1", () => {
    const gate = new TopKGate({ numExperts: 5, k: 3, numDomains: 2, seed: 3 });
    const routing = gate.route(
      tf.randomNormal([4, 6], 0, 1, "float32", 1) as tf.Tensor2D,
      tf.tensor1d([0, 1, 1, 0], "int32"),
      true,
    );
    expect(routing.probs.shape).toEqual([4, 5]);
    expect(routing.indices.shape).toEqual([4, 3]);
    expect(routing.weights.shape).toEqual([4, 3]);
    expectClose(tf.sum(routing.weights, 1), [1, 1, 1, 1]);
    expectClose(tf.sum(routing.probs, 1), [1, 1, 1, 1]);
    for (const row of routing.indices.arraySync() as number[][]) expect(new Set(row).size).toBe(3);
  });
});

describe("TopKGate noise", () => {
  const x = tf.randomNormal([6, 4], 0, 1, "float32", 2) as tf.Tensor2D;
  const ids = tf.tensor1d([0, 1, 2, 0, 1, 2], "int32");

  it("adds noise only in training", () => {
    const gate = new TopKGate({ numExperts: 4, k: 2, numDomains: 3, seed: 5 });
    const inference = gate.route(x, ids, false).probs;
    expectClose(gate.route(x, ids, false).probs, inference, 0);
    const training = gate.route(x, ids, true).probs;
    expect(tf.max(tf.abs(tf.sub(training, inference))).dataSync()[0]).toBeGreaterThan(1e-3);
    const quiet = new TopKGate({ numExperts: 4, k: 2, numDomains: 3, seed: 5, noise: false });
    expectClose(quiet.route(x, ids, true).probs, inference, 1e-6);
  });

  it("same global seed gives the same noise, another seed different noise", () => {
    const gate = new TopKGate({ numExperts: 4, k: 2, numDomains: 3, seed: 5 });
    gate.route(x, ids, false);
    setGlobalSeed(77);
    const first = gate.route(x, ids, true).probs;
    setGlobalSeed(77);
    const second = gate.route(x, ids, true).probs;
    setGlobalSeed(78);
    const third = gate.route(x, ids, true).probs;
    expectClose(second, first, 0);
    expect(tf.max(tf.abs(tf.sub(third, first))).dataSync()[0]).toBeGreaterThan(1e-3);
  });

  it("scales the noise by softplus(W_n x)", () => {
    // A very negative W_n x makes softplus ~ 0: training then equals inference.
    const gate = handSetGate();
    gate.setWeights([gate.getWeights()[0]!, tf.fill([2, 3], -50)]);
    expectClose(
      gate.route(handX(), noDomains(), true).probs,
      gate.route(handX(), noDomains(), false).probs,
      1e-6,
    );
  });
});

describe("TopKGate domain conditioning", () => {
  const x = tf.tile(tf.randomNormal([1, 4], 0, 1, "float32", 3), [2, 1]) as tf.Tensor2D; // identical rows
  const ids = tf.tensor1d([0, 1], "int32");
  for (const domainConditioning of ["embedding", "per-domain"] as const) {
    it(`"${domainConditioning}" makes identical rows of different domains route differently`, () => {
      const gate = new TopKGate({ numExperts: 4, k: 2, numDomains: 2, domainConditioning, seed: 9 });
      const probs = gate.route(x, ids, false).probs.arraySync() as number[][];
      const difference = Math.max(...probs[0]!.map((value, index) => Math.abs(value - probs[1]![index]!)));
      expect(difference).toBeGreaterThan(1e-4);
    });
  }

  it('"none" ignores the domain', () => {
    const gate = new TopKGate({ numExperts: 4, k: 2, domainConditioning: "none", seed: 9 });
    const probs = gate.route(x, ids, false).probs.arraySync() as number[][];
    expectClose(probs[0]!, probs[1]!, 0);
  });

  it('"embedding" golden: logits = W [x ; emb(d)]', () => {
    const gate = new TopKGate({
      numExperts: 2,
      k: 1,
      numDomains: 2,
      domainEmbeddingDim: 1,
      noise: false,
      seed: 1,
    });
    gate.build([[null as unknown as number, 1], [null as unknown as number]]);
    gate.setWeights([
      tf.tensor2d([[0], [3]]), // domain embedding [D, 1]
      tf.tensor2d([
        [1, 0],
        [0, 1],
      ]), // kernel [x ; emb] -> logits
    ]);
    const routing = gate.route(tf.tensor2d([[1], [1]]), tf.tensor1d([0, 1], "int32"), false);
    expectClose(routing.probs, [softmax([1, 0]), softmax([1, 3])]);
    expect(routing.indices.arraySync()).toEqual([[0], [1]]);
    expectClose(routing.weights, [[1], [1]]);
  });
});

describe("TopKGate gradients", () => {
  it("autodiff matches finite differences through the top-k selection (training, seeded noise)", () => {
    const gate = new TopKGate({ numExperts: 4, k: 2, numDomains: 2, seed: 4 });
    const x = tf.randomNormal([5, 3], 0, 1, "float32", 6) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 1, 1, 0, 1], "int32");
    const targetWeights = tf.randomNormal([5, 2], 0, 1, "float32", 7);
    const targetProbs = tf.randomNormal([5, 4], 0, 1, "float32", 8);
    const loss = (input: tf.Tensor2D) => {
      setGlobalSeed(12);
      const routing = gate.route(input, ids, true);
      return tf.add(
        tf.sum(tf.mul(routing.weights, targetWeights)),
        tf.sum(tf.mul(routing.probs, targetProbs)),
      ) as tf.Scalar;
    };
    loss(x);
    // Small steps so no perturbation changes which experts are kept.
    checkVariableGradients(
      () => loss(x),
      gate.trainableWeights.map((weight) => weight.read() as tf.Variable),
      3,
      1e-3,
    );
    checkInputGradients((input) => loss(input as tf.Tensor2D), [x], 3, 1e-3);
  });

  it("gradients pass from the sparse expert mixture to the gate weights", () => {
    const gate = new TopKGate({ numExperts: 3, k: 2, numDomains: 2, seed: 4 });
    const pool = new ExpertPool({ numExperts: 3, units: [2], seed: 3 });
    const x = tf.randomNormal([4, 3], 0, 1, "float32", 6) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 1, 1, 0], "int32");
    gate.route(x, ids, false);
    pool.dense(x);
    const kernel = gate.trainableWeights[1]!.read() as tf.Variable;
    const { value, grads } = tf.variableGrads(
      () => tf.sum(pool.sparse(x, gate.route(x, ids, true))) as tf.Scalar,
      [kernel],
    );
    expect(tf.sum(tf.abs(grads[kernel.name]!)).dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([value, grads[kernel.name]!]);
    const routing = gate.route(x, ids, false);
    expectClose(pool.sparse(x, routing), mixExperts(pool.dense(x), routing));
  });
});

describe("TopKGate with a single expert and a single domain", () => {
  it("routes every row to expert 0 with weight 1 and keeps gradients", () => {
    const gate = new TopKGate({
      numExperts: 1,
      k: 1,
      numDomains: 1,
      domainConditioning: "per-domain",
      seed: 2,
    });
    const x = tf.randomNormal([3, 2], 0, 1, "float32", 1) as tf.Tensor2D;
    const ids = tf.zeros([3], "int32") as tf.Tensor1D;
    const routing = gate.route(x, ids, true);
    expect(routing.indices.arraySync()).toEqual([[0], [0], [0]]);
    expectClose(routing.weights, [[1], [1], [1]]);
    expect(gate.auxiliaryLosses(routing)).toEqual({});
    const withLoad = new TopKGate({ numExperts: 1, k: 1, numDomains: 1, loadBalance: { load: 1 }, seed: 2 });
    expectClose(withLoad.auxiliaryLosses(withLoad.route(x, ids, true)).load!, [1]);
    const { value, grads } = tf.variableGrads(() => tf.sum(gate.route(x, ids, true).probs) as tf.Scalar);
    expect(Object.keys(grads).length).toBeGreaterThan(0);
    tf.dispose([value, ...Object.values(grads)]);
  });
});

describe("TopKGate on wasm", () => {
  it("weights are not uniform when the kept logits differ (the -1e9 mask fault is avoided)", async () => {
    await onBackend("wasm", () => {
      const routing = handSetGate().route(handX(), noDomains(), false);
      expectClose(routing.weights, [softmax([6, 1]), softmax([4, 2])]);
      const weights = routing.weights.arraySync() as number[][];
      expect(Math.abs(weights[0]![0]! - weights[0]![1]!)).toBeGreaterThan(0.9);
    });
  });

  it("gives the cpu routing and gradients", async () => {
    const run = () => {
      const gate = new TopKGate({
        numExperts: 5,
        k: 2,
        numDomains: 3,
        domainConditioning: "per-domain",
        seed: 8,
      });
      const x = tf.randomNormal([6, 4], 0, 1, "float32", 5) as tf.Tensor2D;
      const ids = tf.tensor1d([0, 1, 2, 2, 1, 0], "int32");
      gate.route(x, ids, false);
      setGlobalSeed(3);
      const routing = gate.route(x, ids, true);
      setGlobalSeed(3);
      const { grads } = tf.variableGrads(() => {
        const r = gate.route(x, ids, true);
        return tf.add(tf.sum(tf.square(r.weights)), tf.sum(tf.mul(r.probs, tf.range(0, 5)))) as tf.Scalar;
      });
      return {
        probs: Array.from(routing.probs.dataSync()),
        indices: Array.from(routing.indices.dataSync()),
        weights: Array.from(routing.weights.dataSync()),
        grads: gate.trainableWeights.map((weight) =>
          Array.from(grads[(weight.read() as tf.Variable).name]!.dataSync()),
        ),
      };
    };
    const cpu = run();
    const wasm = await onBackend("wasm", run);
    expect(wasm.indices).toEqual(cpu.indices);
    expectClose(wasm.probs, cpu.probs, 1e-5);
    expectClose(wasm.weights, cpu.weights, 1e-5);
    wasm.grads.forEach((gradient, index) => {
      expectClose(gradient, cpu.grads[index]!, 1e-5);
    });
  });
});

describe("TopKGate serialisation, determinism, leaks", () => {
  const x = tf.randomNormal([4, 3], 0, 1, "float32", 1) as tf.Tensor2D;
  const ids = tf.tensor1d([0, 2, 1, 0], "int32");

  it("getConfig/fromConfig round trip gives the same routing", () => {
    const gate = new TopKGate({
      numExperts: 4,
      k: 3,
      noise: false,
      renormalize: false,
      numDomains: 3,
      domainEmbeddingDim: 2,
      loadBalance: { load: 0.1 },
      seed: 17,
    });
    const config = gate.getConfig();
    expect(config).toMatchObject({
      numExperts: 4,
      k: 3,
      noise: false,
      renormalize: false,
      numDomains: 3,
      domainEmbeddingDim: 2,
      domainConditioning: "embedding",
      seed: 17,
    });
    const copy = TopKGate.fromConfig(TopKGate, config) as TopKGate;
    expect(copy.loadBalance).toEqual({ importance: 0, load: 0.1 });
    expectClose(copy.route(x, ids, false).weights, gate.route(x, ids, false).weights, 0);
  });

  it("saveLayer/loadLayer round trip restores trained weights", async () => {
    const gate = new TopKGate({ numExperts: 4, k: 2, numDomains: 3, seed: 2 });
    gate.route(x, ids, false);
    gate.trainableWeights.forEach((weight) => {
      weight.write(tf.add(weight.read(), 0.3));
    });
    const expected = gate.route(x, ids, false);
    const directory = await temporaryDirectory();
    try {
      await saveLayer(gate, directory.path);
      const loaded = await loadLayer<TopKGate>(directory.path);
      const routing = loaded.route(x, ids, false);
      expectClose(routing.probs, expected.probs, 0);
      expect(routing.indices.arraySync()).toEqual(expected.indices.arraySync());
      setGlobalSeed(4);
      const noisyLoaded = loaded.route(x, ids, true).probs;
      setGlobalSeed(4);
      expectClose(noisyLoaded, gate.route(x, ids, true).probs, 0);
    } finally {
      await directory.cleanup();
    }
  });

  it("same seed gives the same initial weights", () => {
    const a = new TopKGate({ numExperts: 4, numDomains: 3, seed: 31 }).route(x, ids, false).probs;
    const b = new TopKGate({ numExperts: 4, numDomains: 3, seed: 31 }).route(x, ids, false).probs;
    const c = new TopKGate({ numExperts: 4, numDomains: 3, seed: 32 }).route(x, ids, false).probs;
    expectClose(a, b, 0);
    expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).toBeGreaterThan(1e-4);
  });

  it("route, auxiliary losses and gradients leave no tensors behind", () => {
    const gate = new TopKGate({
      numExperts: 4,
      k: 2,
      numDomains: 3,
      loadBalance: { importance: 1, load: 1 },
      seed: 2,
    });
    disposeRouting(gate.route(x, ids, true));
    expectNoLeak(() => {
      const routing: Routing = gate.route(x, ids, true);
      gate.auxiliaryLosses(routing);
      const { value, grads } = tf.variableGrads(() => {
        const r = gate.route(x, ids, true);
        const losses = gate.auxiliaryLosses(r);
        return tf.addN([tf.sum(r.weights), losses.importance!, losses.load!]) as tf.Scalar;
      });
      tf.dispose([value, ...Object.values(grads)]);
    });
  });
});

describe("TopKGate rejects bad arguments", () => {
  it("validates k, numDomains and options", () => {
    expect(() => new TopKGate({ numExperts: 8, k: 9, numDomains: 2 })).toThrow(ConfigError);
    expect(() => new TopKGate({ numExperts: 8, k: 9, numDomains: 2 })).toThrow(
      "k must be an integer in [1, numExperts=8], received 9",
    );
    expect(() => new TopKGate({ numExperts: 8, k: 0, numDomains: 2 })).toThrow(
      "TopKGate k must be an integer in [1, numExperts=8], received 0",
    );
    expect(() => new TopKGate({ numExperts: 8, k: 1.5, numDomains: 2 })).toThrow("received 1.5");
    expect(() => new TopKGate({ numExperts: 0 })).toThrow(
      "TopKGate numExperts must be an integer >= 1, received 0",
    );
    expect(() => new TopKGate({ numExperts: 4 })).toThrow(
      'TopKGate numDomains (required when domainConditioning is "embedding") must be an integer >= 1, received undefined',
    );
    expect(() => new TopKGate({ numExperts: 4, domainConditioning: "domain" as never })).toThrow(
      'TopKGate domainConditioning must be one of "none", "embedding", "per-domain", received "domain"',
    );
    expect(() => new TopKGate({ numExperts: 4, numDomains: 2, noise: "yes" as never })).toThrow(
      'TopKGate noise must be a boolean, received "yes"',
    );
    expect(
      () => new TopKGate({ numExperts: 4, numDomains: 2, loadBalance: { importance: Number.NaN } }),
    ).toThrow("TopKGate loadBalance.importance must be a finite number >= 0, received NaN");
    expect(() => new TopKGate({ numExperts: 4, numDomains: 2, loadBalance: { laod: 1 } as never })).toThrow(
      'Unknown key "laod" in TopKGate loadBalance. Did you mean "load"?',
    );
    expect(() => new TopKGate({ numExperts: 4, numDomain: 2 } as never)).toThrow(
      'Unknown key "numDomain" in TopKGate args. Did you mean "numDomains"?',
    );
  });

  it("validates route inputs", () => {
    const gate = new TopKGate({ numExperts: 4, numDomains: 2, seed: 1, name: "ces_gate" });
    const x = tf.ones([2, 3]) as tf.Tensor2D;
    expect(() => gate.route(tf.ones([3]) as never, tf.zeros([3], "int32") as tf.Tensor1D, false)).toThrow(
      ShapeError,
    );
    expect(() => gate.route(tf.ones([3]) as never, tf.zeros([3], "int32") as tf.Tensor1D, false)).toThrow(
      "ces_gate x must have rank 2",
    );
    expect(() => gate.route(x, tf.zeros([2]) as tf.Tensor1D, false)).toThrow(
      "ces_gate domainIds must have dtype int32, received float32",
    );
    expect(() => gate.route(x, tf.zeros([3], "int32") as tf.Tensor1D, false)).toThrow(
      "ces_gate domainIds must have shape [2], received [3]",
    );
    expect(() => gate.route(x, tf.tensor1d([0, 5], "int32"), false)).toThrow(DataError);
    expect(() => gate.route(x, tf.tensor1d([0, 5], "int32"), false)).toThrow(
      "ces_gate domainIds[1] must be in [0, numDomains=2), received 5",
    );
    gate.route(x, tf.tensor1d([0, 1], "int32"), false);
    expect(() => gate.route(tf.ones([2, 4]) as tf.Tensor2D, tf.tensor1d([0, 1], "int32"), false)).toThrow(
      "ces_gate x must have shape [?, 3], received [2, 4]",
    );
  });
});
