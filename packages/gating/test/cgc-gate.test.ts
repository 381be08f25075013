import { ConfigError, DataError, loadLayer, saveLayer } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { CgcGate, disposeRouting } from "@mdrec/gating";
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

describe("CgcGate layout and mixture", () => {
  it("routes to the group's specific experts then the shared ones, as global ids", () => {
    const gate = new CgcGate({ numGroups: 3, numSharedExperts: 2, numSpecificExperts: 2, seed: 1 });
    expect(gate.totalExperts).toBe(8);
    expect(gate.numExperts).toBe(8);
    expect(gate.k).toBe(4);
    expect(CgcGate.totalExperts({ numGroups: 3, numSharedExperts: 2, numSpecificExperts: 2 })).toBe(8);
    const routing = gate.route(tf.ones([3, 2]) as tf.Tensor2D, tf.tensor1d([0, 2, 1], "int32"), false);
    // layout: shared 0, 1 | group 0: 2, 3 | group 1: 4, 5 | group 2: 6, 7
    expect(routing.indices.arraySync()).toEqual([
      [2, 3, 0, 1],
      [6, 7, 0, 1],
      [4, 5, 0, 1],
    ]);
    expect(routing.probs.shape).toEqual([3, 8]);
    const probs = routing.probs.arraySync() as number[][];
    expect(probs[0]!.slice(4)).toEqual([0, 0, 0, 0]);
    expect(probs[1]!.slice(2, 6)).toEqual([0, 0, 0, 0]);
    expectClose(tf.sum(routing.probs, 1), [1, 1, 1]);
  });

  it("mixExperts(pool.dense(x), routing) equals a hand-computed PLE mixture", () => {
    const gate = new CgcGate({ numGroups: 2, numSharedExperts: 1, numSpecificExperts: 2, seed: 1 });
    gate.build([[null as unknown as number, 2], [null as unknown as number]]);
    // group 0 logits = x [[1, 0, 2], [0, 1, -1]]; group 1 logits = x [[0, 1, 1], [2, 0, 0]]
    gate.setWeights([
      tf.tensor2d([
        [1, 0, 2, 0, 1, 1],
        [0, 1, -1, 2, 0, 0],
      ]),
    ]);
    const pool = new ExpertPool({ numExperts: gate.totalExperts, units: [3], seed: 4 });
    const x = tf.tensor2d([
      [1, 2],
      [0.5, -1],
    ]);
    const groupIds = tf.tensor1d([0, 1], "int32");
    const routing = gate.route(x, groupIds, true);
    const outputs = pool.dense(x).arraySync() as number[][][];
    const w0 = softmax([1, 2, 0]); // group 0 experts [1, 2] then shared [0]
    const w1 = softmax([-2, 0.5, 0.5]); // group 1 experts [3, 4] then shared [0]
    const expected = [
      outputs[0]![0]!.map(
        (_, d) => w0[0]! * outputs[0]![1]![d]! + w0[1]! * outputs[0]![2]![d]! + w0[2]! * outputs[0]![0]![d]!,
      ),
      outputs[1]![0]!.map(
        (_, d) => w1[0]! * outputs[1]![3]![d]! + w1[1]! * outputs[1]![4]![d]! + w1[2]! * outputs[1]![0]![d]!,
      ),
    ];
    expectClose(routing.weights, [w0, w1]);
    expectClose(mixExperts(pool.dense(x), routing), expected);
    expectClose(pool.sparse(x, routing), expected);
  });

  it("works without shared experts", () => {
    const gate = new CgcGate({ numGroups: 2, numSharedExperts: 0, numSpecificExperts: 1, seed: 1 });
    const routing = gate.route(tf.ones([2, 3]) as tf.Tensor2D, tf.tensor1d([1, 0], "int32"), false);
    expect(routing.indices.arraySync()).toEqual([[1], [0]]);
    expectClose(routing.weights, [[1], [1]]);
  });
});

describe("CgcGate gradients, serialisation, leaks, backends", () => {
  const x = tf.randomNormal([5, 3], 0, 1, "float32", 2) as tf.Tensor2D;
  const groupIds = tf.tensor1d([0, 1, 2, 1, 0], "int32");

  it("autodiff matches finite differences for the gate matrices and x", () => {
    const gate = new CgcGate({ numGroups: 3, numSharedExperts: 1, numSpecificExperts: 2, seed: 3 });
    const target = tf.randomNormal([5, 7], 0, 1, "float32", 4);
    const loss = (input: tf.Tensor2D) =>
      tf.sum(tf.mul(gate.route(input, groupIds, true).probs, target)) as tf.Scalar;
    loss(x);
    checkVariableGradients(
      () => loss(x),
      gate.trainableWeights.map((weight) => weight.read() as tf.Variable),
      4,
    );
    checkInputGradients((input) => loss(input as tf.Tensor2D), [x]);
  });

  it("getConfig/fromConfig and saveLayer/loadLayer round trips give the same routing", async () => {
    const gate = new CgcGate({
      numGroups: 3,
      numSharedExperts: 1,
      numSpecificExperts: 2,
      seed: 9,
      name: "cgc",
    });
    const expected = gate.route(x, groupIds, false);
    expect(gate.getConfig()).toMatchObject({
      numGroups: 3,
      numSharedExperts: 1,
      numSpecificExperts: 2,
      seed: 9,
    });
    const copy = CgcGate.fromConfig(CgcGate, gate.getConfig()) as CgcGate;
    expectClose(copy.route(x, groupIds, false).weights, expected.weights, 0);
    gate.trainableWeights.forEach((weight) => {
      weight.write(tf.mul(weight.read(), 2));
    });
    const trained = gate.route(x, groupIds, false);
    const directory = await temporaryDirectory();
    try {
      await saveLayer(gate, directory.path);
      const loaded = await loadLayer<CgcGate>(directory.path);
      const routing = loaded.route(x, groupIds, false);
      expectClose(routing.probs, trained.probs, 0);
      expect(routing.indices.arraySync()).toEqual(trained.indices.arraySync());
    } finally {
      await directory.cleanup();
    }
  });

  it("same seed gives identical weights; route leaves no tensors behind", () => {
    const a = new CgcGate({ numGroups: 3, numSharedExperts: 1, numSpecificExperts: 2, seed: 5 });
    const b = new CgcGate({ numGroups: 3, numSharedExperts: 1, numSpecificExperts: 2, seed: 5 });
    expectClose(a.route(x, groupIds, false).weights, b.route(x, groupIds, false).weights, 0);
    disposeRouting(a.route(x, groupIds, true));
    expectNoLeak(() => {
      a.route(x, groupIds, true);
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(a.route(x, groupIds, true).weights)) as tf.Scalar,
      );
      tf.dispose([value, ...Object.values(grads)]);
    });
  });

  it("wasm gives the cpu routing and gradients", async () => {
    const run = () => {
      const gate = new CgcGate({ numGroups: 3, numSharedExperts: 2, numSpecificExperts: 1, seed: 6 });
      const routing = gate.route(x, groupIds, true);
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.mul(gate.route(x, groupIds, true).probs, tf.range(0, 5))) as tf.Scalar,
      );
      return {
        probs: Array.from(routing.probs.dataSync()),
        indices: Array.from(routing.indices.dataSync()),
        grad: Array.from(Object.values(grads)[0]!.dataSync()),
      };
    };
    const cpu = run();
    const wasm = await onBackend("wasm", run);
    expect(wasm.indices).toEqual(cpu.indices);
    expectClose(wasm.probs, cpu.probs, 1e-5);
    expectClose(wasm.grad, cpu.grad, 1e-5);
  });
});

describe("CgcGate rejects bad arguments", () => {
  it("validates counts and group ids", () => {
    expect(() => new CgcGate({ numGroups: 2, numSharedExperts: -1, numSpecificExperts: 1 })).toThrow(
      ConfigError,
    );
    expect(() => new CgcGate({ numGroups: 2, numSharedExperts: -1, numSpecificExperts: 1 })).toThrow(
      "CgcGate numSharedExperts must be an integer >= 0, received -1",
    );
    expect(() => new CgcGate({ numGroups: 2, numSharedExperts: 1, numSpecificExperts: 0 })).toThrow(
      "CgcGate numSpecificExperts must be an integer >= 1, received 0",
    );
    expect(() => new CgcGate({ numGroups: 0, numSharedExperts: 1, numSpecificExperts: 1 })).toThrow(
      "CgcGate numGroups must be an integer >= 1, received 0",
    );
    expect(() => new CgcGate({ numGroups: 2, numSharedExperts: 1, numSpecificExpert: 1 } as never)).toThrow(
      'Unknown key "numSpecificExpert" in CgcGate args. Did you mean "numSpecificExperts"?',
    );
    const gate = new CgcGate({ numGroups: 2, numSharedExperts: 1, numSpecificExperts: 1, name: "cgc_bad" });
    expect(() => gate.route(tf.ones([2, 2]) as tf.Tensor2D, tf.tensor1d([0, 2], "int32"), false)).toThrow(
      DataError,
    );
    expect(() => gate.route(tf.ones([2, 2]) as tf.Tensor2D, tf.tensor1d([0, 2], "int32"), false)).toThrow(
      "cgc_bad groupIds[1] must be in [0, numGroups=2), received 2",
    );
    expect(() => gate.route(tf.ones([2, 2]) as tf.Tensor2D, tf.tensor1d([0], "int32"), false)).toThrow(
      "cgc_bad groupIds must have shape [2], received [1]",
    );
  });
});
