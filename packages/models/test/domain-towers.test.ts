import { ConfigError, DataError, loadLayer, nativeRoutedExpertsAvailable, saveLayer } from "@mdrec/core";
import { DomainTowers, type DomainTowersArgs } from "@mdrec/models";
import { checkVariableGradients, expectClose, onBackend, temporaryDirectory } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import {
  domainsOf,
  expectWasmMatchesCpu,
  gradientValues,
  nonZeroCount,
  probeLoss,
  run,
  seededMatrix,
  variablesOf,
} from "./support.js";

const MODES_AND_DISPATCHES = [
  ["per-domain", "sparse"],
  ["per-domain", "dense"],
  ["shared", "sparse"],
  ["shared", "dense"],
] as const;

describe("DomainTowers", () => {
  it("routes each row to its own domain's tower, sparse and dense (golden, linear towers)", () => {
    const x = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    const domains = domainsOf([1, 0, 1]);
    for (const dispatch of ["sparse", "dense"] as const) {
      const towers = new DomainTowers({ numDomains: 2, units: [], dispatch, seed: 1 });
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
      // sparse runs each tower on its own rows only, dense runs both towers on all 3 rows
      expect(towers.pool.expertInvocations.lastDispatch).toMatchObject(
        dispatch === "sparse"
          ? { mode: "sparse", rowsPerExpert: [1, 2] }
          : { mode: "dense", rowsPerExpert: [3, 3] },
      );
      towers.dispose();
    }
  });

  it("uses tower (d, t) = d * numTasks + t, with one input per task, sparse and dense (golden)", () => {
    const first = tf.tensor2d([[1], [2]]);
    const second = tf.tensor2d([[10], [20]]);
    const domains = domainsOf([0, 1]);
    for (const dispatch of ["sparse", "dense"] as const) {
      const towers = new DomainTowers({ numDomains: 2, numTasks: 2, units: [], dispatch, seed: 1 });
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
      expect(towers.pool.expertInvocations.lastDispatch?.mode).toBe(dispatch);
      towers.dispose();
    }
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

  it("matches finite-difference gradients in both modes and both dispatches", () => {
    for (const [mode, dispatch] of MODES_AND_DISPATCHES) {
      const towers = new DomainTowers({
        numDomains: 2,
        numTasks: 2,
        units: [3],
        mode,
        activation: "tanh",
        dispatch,
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

  it("keeps dispatch in its config, and loads configs saved before dispatch existed as auto", () => {
    for (const dispatch of ["auto", "sparse", "dense"] as const) {
      const towers = new DomainTowers({ numDomains: 3, units: [3], dispatch, seed: 8 });
      expect(towers.getConfig().dispatch).toBe(dispatch);
      const copy = DomainTowers.fromConfig(DomainTowers, towers.getConfig()) as DomainTowers;
      expect(copy.dispatch).toBe(dispatch);
      expect(copy.denseDispatch).toBe(towers.denseDispatch);
      copy.dispose();
      towers.dispose();
    }
    const { dispatch: _dropped, ...oldConfig } = new DomainTowers({
      numDomains: 3,
      dispatch: "sparse",
      seed: 8,
    }).getConfig();
    expect(oldConfig).not.toHaveProperty("dispatch");
    const loaded = DomainTowers.fromConfig(DomainTowers, oldConfig) as DomainTowers;
    expect(loaded.dispatch).toBe("auto");
    expect(loaded.getConfig().dispatch).toBe("auto");
    loaded.dispose();
  });

  it("leaks no tensors per call or gradient step after warm-up, and dispose frees every weight", () => {
    for (const mode of ["per-domain", "shared"] as const) {
      for (const dispatch of ["sparse", "dense"] as const) {
        const before = tf.memory().numTensors;
        const towers = new DomainTowers({ numDomains: 2, numTasks: 2, units: [3], mode, dispatch, seed: 1 });
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
        gradientValues(() => probeLoss(towers.forward([x, x], domains, true)), towers.trainableWeights);
        gradientValues(() => probeLoss(towers.forward(x, domains, true)), towers.trainableWeights);
        expect(tf.memory().numTensors).toBe(warm);
        towers.dispose();
        tf.dispose([x, domains]);
        expect(tf.memory().numTensors).toBe(before);
      }
    }
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
    for (const dispatch of ["sparse", "dense"] as const) {
      const checked = new DomainTowers({ numDomains: 2, numTasks: 3, dispatch, seed: 1, name: "towers" });
      expect(() => checked.forward(x, domainsOf([0, 2]))).toThrow(
        new DataError("towers domainIds[1] must be in [0, numDomains=2), received 2"),
      );
      expect(() => checked.forward(x, domainsOf([-1, 0]))).toThrow(
        "towers domainIds[0] must be in [0, numDomains=2), received -1",
      );
      checked.dispose();
    }
    expect(() => new DomainTowers({ numDomains: 2, dispatch: "gather" as never })).toThrow(
      new ConfigError('DomainTowers dispatch must be one of "auto", "sparse", "dense", received "gather"'),
    );
    expect(() => towers.denseDispatchFor(0)).toThrow(
      "DomainTowers denseDispatchFor inputCount must be an integer >= 1, received 0",
    );
    towers.dispose();
  });

  it("matches wasm within 1e-5 (forward and gradients, both dispatches)", async () => {
    for (const [mode, dispatch] of MODES_AND_DISPATCHES) {
      const towers = new DomainTowers({ numDomains: 3, numTasks: 2, units: [4], mode, dispatch, seed: 2 });
      const x = seededMatrix(6, 5, 7);
      const domains = domainsOf([0, 1, 2, 2, 1, 0]);
      await expectWasmMatchesCpu(
        () => towers.forward(x, domains),
        () => towers.forward(x, domains, true),
        towers,
      );
      towers.dispose();
    }
  });
});

describe("DomainTowers dispatch", () => {
  // Logits, weight gradients and input gradients of one call, for the dense == sparse checks.
  const callValues = (towers: DomainTowers, inputs: tf.Tensor2D[], domains: tf.Tensor1D) => {
    const argument = () => (inputs.length === 1 ? inputs[0]! : inputs);
    const logits = run(() => towers.forward(argument(), domains));
    const weightGradients = gradientValues(
      () => probeLoss(towers.forward(argument(), domains, true)),
      towers.trainableWeights,
    );
    const inputGradients = tf.tidy(() =>
      tf
        .grads((...xs: tf.Tensor[]) =>
          probeLoss(
            towers.forward(xs.length === 1 ? (xs[0] as tf.Tensor2D) : (xs as tf.Tensor2D[]), domains, true),
          ),
        )(inputs)
        .map((gradient) => Array.from(gradient.dataSync())),
    );
    return { logits, gradients: [...weightGradients, ...inputGradients] };
  };

  const cases = [
    { mode: "per-domain", numTasks: 1, units: [4], inputs: 1 },
    { mode: "per-domain", numTasks: 2, units: [4], inputs: 1 },
    { mode: "per-domain", numTasks: 2, units: [4, 3], inputs: 2 },
    { mode: "per-domain", numTasks: 3, units: [], inputs: 3 },
    { mode: "shared", numTasks: 1, units: [4], inputs: 1 },
    { mode: "shared", numTasks: 2, units: [4], inputs: 1 },
    { mode: "shared", numTasks: 2, units: [4, 3], inputs: 2 },
  ] as const;

  const compareDispatches = () => {
    for (const [index, { mode, numTasks, units, inputs }] of cases.entries()) {
      const make = (dispatch: "sparse" | "dense") =>
        new DomainTowers({ numDomains: 3, numTasks, units: [...units], mode, dispatch, seed: 20 + index });
      const sparse = make("sparse");
      const dense = make("dense");
      const xs = Array.from({ length: inputs }, (_, input) => seededMatrix(7, 5, 30 + input));
      const domains = domainsOf([2, 0, 1, 1, 2, 0, 2]);
      const sparseValues = callValues(sparse, xs, domains);
      const denseValues = callValues(dense, xs, domains);
      expect(sparse.pool.expertInvocations.lastDispatch?.mode).toBe("sparse");
      expect(dense.pool.expertInvocations.lastDispatch?.mode).toBe("dense");
      expect(denseValues.logits).toHaveLength(7 * numTasks);
      expectClose(denseValues.logits, sparseValues.logits, 1e-5);
      expect(denseValues.gradients).toHaveLength(sparseValues.gradients.length);
      denseValues.gradients.forEach((gradient, gradientIndex) => {
        expectClose(gradient, sparseValues.gradients[gradientIndex]!, 1e-5);
      });
      expect(nonZeroCount(denseValues.gradients)).toBeGreaterThan(10);
      sparse.dispose();
      dense.dispose();
      tf.dispose([...xs, domains]);
    }
  };

  it("dense and sparse give the same logits and gradients on cpu", () => {
    compareDispatches();
  });

  it("dense and sparse give the same logits and gradients on wasm", async () => {
    await onBackend("wasm", compareDispatches);
  });

  it("auto goes dense for few narrow towers and sparse for many or wide ones", () => {
    const decide = (args: Omit<DomainTowersArgs, "seed">, inputCount = 1) => {
      const towers = new DomainTowers({ ...args, seed: 1 });
      const decision = towers.denseDispatchFor(inputCount);
      if (inputCount === 1) expect(towers.denseDispatch).toBe(decision);
      towers.dispose();
      return decision;
    };
    // towersPerLogit <= 6 (48 linear) and (towersPerLogit - 1) * units[0] <= 128
    expect(decide({ numDomains: 3 })).toBe(true); // default units [8]: 3 towers, 2 * 8 = 16
    expect(decide({ numDomains: 3, units: [64] })).toBe(true); // 2 * 64 = 128
    expect(decide({ numDomains: 3, units: [65] })).toBe(false); // 130
    expect(decide({ numDomains: 3, units: [128, 64] })).toBe(false); // 256
    expect(decide({ numDomains: 6, units: [8] })).toBe(true); // 6 towers, 40
    expect(decide({ numDomains: 7, units: [8] })).toBe(false); // 7 towers
    expect(decide({ numDomains: 10, units: [64] })).toBe(false);
    expect(decide({ numDomains: 48, units: [] })).toBe(true); // linear: 48 towers
    expect(decide({ numDomains: 49, units: [] })).toBe(false);
    // per domain with one input per task, a dense call runs all numDomains * numTasks towers
    expect(decide({ numDomains: 3, numTasks: 2, units: [32] })).toBe(true); // 3 towers, 64
    expect(decide({ numDomains: 3, numTasks: 2, units: [32] }, 2)).toBe(false); // 6 towers, 160
    expect(decide({ numDomains: 3, numTasks: 2, units: [8] }, 2)).toBe(true); // 6 towers, 40
    expect(decide({ numDomains: 4, numTasks: 2, units: [8] }, 2)).toBe(false); // 8 towers
    // shared: one tower per task, so a shared input needs no extra tower at all
    expect(decide({ numDomains: 50, numTasks: 9, units: [256], mode: "shared" })).toBe(true);
    expect(decide({ numDomains: 3, numTasks: 2, units: [128], mode: "shared" }, 2)).toBe(true); // 1 * 128
    expect(decide({ numDomains: 3, numTasks: 2, units: [129], mode: "shared" }, 2)).toBe(false);
    // explicit choices win
    expect(decide({ numDomains: 10, units: [64], dispatch: "dense" })).toBe(true);
    expect(decide({ numDomains: 3, dispatch: "sparse" })).toBe(false);
  });

  it("auto goes sparse wherever the routed towers run natively (wasm with the native GEMM)", async () => {
    await onBackend("wasm", () => {
      const decide = (args: Omit<DomainTowersArgs, "seed">) => {
        const towers = new DomainTowers({ ...args, seed: 1 });
        const decision = towers.denseDispatch;
        towers.dispose();
        return decision;
      };
      // Without the add-on (no compiler here) the cpu rule above still applies.
      const native = nativeRoutedExpertsAvailable();
      expect(decide({ numDomains: 3 })).toBe(!native);
      expect(decide({ numDomains: 3, units: [] })).toBe(!native);
      // Other activations take the composed path, so the rule stays.
      expect(decide({ numDomains: 3, activation: "tanh" })).toBe(true);
      expect(decide({ numDomains: 3, dispatch: "dense" })).toBe(true);
    });
  });

  it("runs the dispatch it reports, per input count", () => {
    // 3 towers per logit with one input, all 6 with one input per task
    const towers = new DomainTowers({ numDomains: 3, numTasks: 2, units: [32], seed: 1 });
    const x = seededMatrix(4, 3, 1);
    const domains = domainsOf([0, 1, 2, 0]);
    run(() => towers.forward(x, domains));
    expect(towers.pool.expertInvocations.lastDispatch?.mode).toBe("dense");
    run(() => towers.forward([x, x], domains));
    expect(towers.pool.expertInvocations.lastDispatch?.mode).toBe("sparse");
    towers.dispose();
    tf.dispose([x, domains]);
  });
});
