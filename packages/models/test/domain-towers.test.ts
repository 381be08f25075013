import { ConfigError, loadLayer, saveLayer } from "@mdrec/core";
import { DomainTowers } from "@mdrec/models";
import { checkVariableGradients, expectClose, onBackend, temporaryDirectory } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { gradientValues, nonZeroCount, probeLoss, run, seededMatrix, variablesOf } from "./support.js";

const domainsOf = (ids: number[]) => tf.tensor1d(ids, "int32");

describe("DomainTowers", () => {
  it("routes each row to its own domain's tower (golden, linear towers)", () => {
    const towers = new DomainTowers({ numDomains: 2, units: [], seed: 1 });
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const domains = domainsOf([1, 0, 1]);
    run(() => towers.forward(x, domains));
    // pool weights: kernel_0 [towers=2, in=2, 1], bias_0 [2, 1]; tower 0 = x0, tower 1 = x1 + 10
    towers.setWeights([
      tf.tensor3d([
        [[1], [0]],
        [[0], [1]],
      ]),
      tf.tensor2d([[0], [10]]),
    ]);
    expectClose(
      run(() => towers.forward(x, domains)),
      [12, 3, 16],
    );
    expect(towers.pool.expertInvocations.lastDispatch?.rowsPerExpert).toEqual([1, 2]);
    towers.dispose();
  });

  it("uses tower (d, t) = d * numTasks + t, with one input per task (golden)", () => {
    const towers = new DomainTowers({ numDomains: 2, numTasks: 2, units: [], seed: 1 });
    const first = tf.tensor2d([[1], [2]]);
    const second = tf.tensor2d([[10], [20]]);
    const domains = domainsOf([0, 1]);
    run(() => towers.forward([first, second], domains));
    // towers: (0,0) * 1, (0,1) * 2, (1,0) * 3, (1,1) * 4
    towers.setWeights([tf.tensor3d([[[1]], [[2]], [[3]], [[4]]]), tf.zeros([4, 1])]);
    expectClose(
      run(() => towers.forward([first, second], domains)),
      [1, 20, 6, 80],
    );
    // one input shared by both tasks
    expectClose(
      run(() => towers.forward(first, domains)),
      [1, 2, 6, 8],
    );
    towers.dispose();
  });

  it("shared mode: one tower per task fed [x ; domain embedding]", () => {
    const towers = new DomainTowers({
      numDomains: 3,
      numTasks: 2,
      units: [4],
      mode: "shared",
      domainEmbeddingDim: 2,
      seed: 3,
    });
    const row = seededMatrix(1, 3, 4);
    const x = tf.tile(row, [3, 1]) as tf.Tensor2D;
    const output = run(() => towers.forward(x, domainsOf([0, 1, 2])));
    expect(towers.numTowers).toBe(2);
    expect(output).toHaveLength(6);
    // the same features in different domains differ only through the domain embedding
    expect(output.slice(0, 2)).not.toEqual(output.slice(2, 4));
    expect(towers.weights.map((weight) => weight.shape)).toEqual([
      [2, 5, 4],
      [2, 4],
      [2, 4, 1],
      [2, 1],
      [3, 2],
    ]);
    towers.dispose();
  });

  it("matches finite-difference gradients in both modes", () => {
    for (const mode of ["per-domain", "shared"] as const) {
      const towers = new DomainTowers({
        numDomains: 2,
        numTasks: 2,
        units: [3],
        mode,
        activation: "tanh",
        seed: 5,
      });
      const x = seededMatrix(6, 3, 6);
      const domains = domainsOf([0, 1, 1, 0, 1, 0]);
      run(() => towers.forward(x, domains));
      const loss = () => probeLoss(towers.forward(x, domains, true));
      checkVariableGradients(loss, variablesOf(towers.trainableWeights));
      expect(nonZeroCount(gradientValues(loss, towers.trainableWeights))).toBeGreaterThan(10);
      towers.dispose();
    }
  });

  it("round-trips getConfig/fromConfig and saveLayer/loadLayer with the same outputs", async () => {
    for (const mode of ["per-domain", "shared"] as const) {
      const towers = new DomainTowers({ numDomains: 3, numTasks: 2, units: [3], mode, seed: 8 });
      const x = seededMatrix(5, 4, 9);
      const domains = domainsOf([0, 1, 2, 1, 0]);
      const original = run(() => towers.forward(x, domains));
      const copy = DomainTowers.fromConfig(DomainTowers, towers.getConfig()) as DomainTowers;
      expect(run(() => copy.forward(x, domains))).toEqual(original);
      expect(copy.getConfig()).toEqual({ ...towers.getConfig(), name: copy.name });
      towers.setWeights(towers.getWeights().map((weight) => tf.add(weight, 0.25)));
      const changed = run(() => towers.forward(x, domains));
      const directory = await temporaryDirectory();
      try {
        await saveLayer(towers, directory.path);
        const loaded = await loadLayer<DomainTowers>(directory.path);
        expect(run(() => loaded.forward(x, domains))).toEqual(changed);
        loaded.dispose();
      } finally {
        await directory.cleanup();
      }
      copy.dispose();
      towers.dispose();
    }
  });

  it("leaks no tensors per call after warm-up, and dispose frees every weight", () => {
    const before = tf.memory().numTensors;
    const towers = new DomainTowers({ numDomains: 2, numTasks: 2, units: [3], mode: "shared", seed: 1 });
    const x = seededMatrix(4, 3, 1);
    const domains = domainsOf([0, 1, 0, 1]);
    tf.tidy(() => {
      towers.forward(x, domains);
    });
    const warm = tf.memory().numTensors;
    tf.tidy(() => {
      towers.forward(x, domains, true);
      towers.forward([x, x], domains, false);
    });
    expect(tf.memory().numTensors).toBe(warm);
    towers.dispose();
    tf.dispose([x, domains]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("gives identical outputs for equal seeds and different ones otherwise", () => {
    const x = seededMatrix(4, 3, 1);
    const domains = domainsOf([0, 1, 0, 1]);
    const outputOf = (seed: number) => {
      const towers = new DomainTowers({ numDomains: 2, seed });
      const output = run(() => towers.forward(x, domains));
      towers.dispose();
      return output;
    };
    expect(outputOf(3)).toEqual(outputOf(3));
    expect(outputOf(3)).not.toEqual(outputOf(4));
  });

  it("rejects invalid arguments and inputs with messages naming the value", () => {
    expect(() => new DomainTowers({ numDomains: 0 })).toThrow(
      new ConfigError("DomainTowers numDomains must be an integer >= 1, received 0"),
    );
    expect(() => new DomainTowers({ numDomains: 2, numTasks: 1.5 })).toThrow(
      "DomainTowers numTasks must be an integer >= 1, received 1.5",
    );
    expect(() => new DomainTowers({ numDomains: 2, units: [0] })).toThrow(
      "DomainTowers units[0] must be an integer >= 1, received 0",
    );
    expect(() => new DomainTowers({ numDomains: 2, mode: "global" as never })).toThrow(
      'DomainTowers mode must be one of "per-domain", "shared", received "global"',
    );
    expect(() => new DomainTowers({ numDomains: 2, mdoe: "shared" } as never)).toThrow(
      'Unknown key "mdoe" in DomainTowers args. Did you mean "mode"?',
    );
    const towers = new DomainTowers({ numDomains: 2, numTasks: 3, seed: 1 });
    const x = seededMatrix(2, 3, 1);
    expect(() => towers.forward([x, x], domainsOf([0, 1]))).toThrow(
      /needs one input or one per task \(numTasks=3\), received 2/,
    );
    expect(() => towers.forward(x, domainsOf([0, 1, 1]))).toThrow(
      /domainIds must have shape \[2\], received \[3\]/,
    );
    expect(() => towers.forward(x, domainsOf([0, 2]))).toThrow(
      /routing\.indices\[1\]\[0\] must be in \[0, numExperts=6\), received 6/,
    );
    towers.dispose();
  });

  it("matches wasm within 1e-5 (forward and gradients)", async () => {
    for (const mode of ["per-domain", "shared"] as const) {
      const towers = new DomainTowers({ numDomains: 3, numTasks: 2, units: [4], mode, seed: 2 });
      const x = seededMatrix(6, 5, 7);
      const domains = domainsOf([0, 1, 2, 2, 1, 0]);
      const forward = () => run(() => towers.forward(x, domains));
      const gradients = () =>
        gradientValues(() => probeLoss(towers.forward(x, domains, true)), towers.trainableWeights);
      const cpu = { forward: forward(), gradients: gradients() };
      const wasm = await onBackend("wasm", () => ({ forward: forward(), gradients: gradients() }));
      expectClose(wasm.forward, cpu.forward, 1e-5);
      wasm.gradients.forEach((gradient, index) => {
        expectClose(gradient, cpu.gradients[index]!, 1e-5);
      });
      towers.dispose();
    }
  });
});
