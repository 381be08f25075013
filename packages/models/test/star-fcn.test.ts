import { ConfigError, DataError, loadLayer, saveLayer } from "@mdrec/core";
import { StarFcn } from "@mdrec/models";
import { checkVariableGradients, expectClose, expectNoLeak, temporaryDirectory } from "@mdrec/test-utils";
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

describe("StarFcn", () => {
  it.each(["sparse", "dense"] as const)(
    "uses W_shared * W_domain and b_shared + b_domain of each row's domain (golden, %s)",
    (dispatch) => {
      const fcn = new StarFcn({ numDomains: 2, units: [1], activation: "linear", dispatch, seed: 1 });
      const x = tf.tensor2d([
        [1, 1],
        [1, 1],
        [2, 0],
      ]);
      const domains = domainsOf([0, 1, 1]);
      run(() => fcn.forward(x, domains));
      // weights order: shared_kernel [2, 1], shared_bias [1], domain_kernel [2, D=2, 1], domain_bias [2, 1]
      fcn.setWeights([
        tf.tensor2d([[1], [2]]),
        tf.tensor1d([0.5]),
        tf.tensor3d([
          [[1], [3]],
          [[1], [-1]],
        ]),
        tf.tensor2d([[0], [1]]),
      ]);
      // W_0 = [1, 2], b_0 = 0.5; W_1 = [3, -2], b_1 = 1.5
      expectClose(
        run(() => fcn.forward(x, domains)),
        [3.5, 2.5, 7.5],
      );
      const effective = fcn.domainWeights(0, 1);
      expectClose(Array.from(effective.kernel.dataSync()), [3, -2]);
      expectClose(Array.from(effective.bias.dataSync()), [1.5]);
      tf.dispose([effective.kernel, effective.bias]);
      fcn.dispose();
    },
  );

  it("starts as the shared network (domain kernels 1, biases 0) for every domain", () => {
    const fcn = new StarFcn({ numDomains: 3, units: [4, 2], activation: "tanh", seed: 11 });
    const row = seededMatrix(1, 3, 3);
    const x = tf.tile(row, [3, 1]) as tf.Tensor2D; // the same row in domains 0, 1, 2
    const output = run(() => fcn.forward(x, domainsOf([0, 1, 2])));
    const [kernel0, bias0, , , kernel1, bias1] = fcn.getWeights();
    const shared = run(() =>
      tf.tanh(
        tf.add(
          tf.matMul(tf.tanh(tf.add(tf.matMul(row, kernel0 as tf.Tensor2D), bias0!)), kernel1 as tf.Tensor2D),
          bias1!,
        ),
      ),
    );
    expectClose(output, [...shared, ...shared, ...shared], 1e-6);
    fcn.dispose();
  });

  it("applies the activation to hidden layers and outputActivation to the last", () => {
    const fcn = new StarFcn({ numDomains: 2, units: [3, 2], outputActivation: "linear", seed: 4 });
    const output = run(() =>
      fcn.forward(seededMatrix(20, 4, 5), domainsOf(Array.from({ length: 20 }, (_, i) => i % 2))),
    );
    expect(output.some((value) => value < 0)).toBe(true);
    fcn.dispose();
  });

  it.each(["sparse", "dense"] as const)("matches finite-difference gradients (%s)", (dispatch) => {
    const fcn = new StarFcn({ numDomains: 2, units: [3, 2], activation: "tanh", dispatch, seed: 5 });
    const x = seededMatrix(5, 3, 6);
    const domains = domainsOf([0, 1, 1, 0, 1]);
    run(() => fcn.forward(x, domains));
    // move domain weights away from their initial values so both factors matter
    fcn.setWeights(
      fcn.getWeights().map((weight, index) => tf.add(weight, tf.reshape(seededMatrix(1, 1, index), []))),
    );
    const loss = () => probeLoss(fcn.forward(x, domains, true));
    checkVariableGradients(loss, variablesOf(fcn.trainableWeights));
    expect(nonZeroCount(gradientValues(loss, fcn.trainableWeights))).toBeGreaterThan(20);
    fcn.dispose();
  });

  it("round-trips getConfig/fromConfig and saveLayer/loadLayer with the same outputs", async () => {
    const fcn = new StarFcn({ numDomains: 2, units: [3, 1], dropout: 0.2, seed: 8 });
    const x = seededMatrix(4, 3, 9);
    const domains = domainsOf([0, 1, 0, 1]);
    const original = run(() => fcn.forward(x, domains));
    const copy = StarFcn.fromConfig(StarFcn, fcn.getConfig()) as StarFcn;
    expect(run(() => copy.forward(x, domains))).toEqual(original);
    expect(copy.getConfig()).toEqual({ ...fcn.getConfig(), name: copy.name });
    fcn.setWeights(fcn.getWeights().map((weight) => tf.mul(weight, 1.5)));
    const changed = run(() => fcn.forward(x, domains));
    const directory = await temporaryDirectory();
    try {
      await saveLayer(fcn, directory.path);
      const loaded = await loadLayer<StarFcn>(directory.path);
      expect(run(() => loaded.forward(x, domains))).toEqual(changed);
      loaded.dispose();
    } finally {
      await directory.cleanup();
    }
    copy.dispose();
    fcn.dispose();
  });

  it.each(["sparse", "dense"] as const)("leaks no tensors per call after warm-up (%s)", (dispatch) => {
    const fcn = new StarFcn({ numDomains: 2, units: [3, 1], dropout: 0.1, dispatch, seed: 1 });
    const x = seededMatrix(4, 3, 1);
    const domains = domainsOf([0, 1, 0, 1]);
    tf.tidy(() => {
      fcn.forward(x, domains);
    });
    expectNoLeak(() => {
      fcn.forward(x, domains, true);
      fcn.forward(x, domains, false);
    });
    tf.dispose([x, domains]);
    fcn.dispose();
  });

  it("gives identical outputs for equal seeds and different ones otherwise", () => {
    const x = seededMatrix(4, 3, 1);
    const domains = domainsOf([0, 1, 0, 1]);
    const outputOf = (seed: number) => {
      const fcn = new StarFcn({ numDomains: 2, units: [3, 1], seed });
      const output = run(() => fcn.forward(x, domains));
      fcn.dispose();
      return output;
    };
    expect(outputOf(3)).toEqual(outputOf(3));
    expect(outputOf(3)).not.toEqual(outputOf(4));
  });

  it("rejects invalid arguments and inputs with messages naming the value", () => {
    expect(() => new StarFcn({ numDomains: 2, units: [] })).toThrow(
      new ConfigError("StarFcn units must be a non-empty array of positive integers, received []"),
    );
    expect(() => new StarFcn({ numDomains: 2, units: [4, 0] })).toThrow(
      "StarFcn units[1] must be an integer >= 1, received 0",
    );
    expect(() => new StarFcn({ numDomains: -1, units: [4] })).toThrow(
      "StarFcn numDomains must be an integer >= 1, received -1",
    );
    expect(() => new StarFcn({ numDomains: 2, units: [4], activation: "relux" as never })).toThrow(
      /StarFcn activation must be one of .*received "relux"/,
    );
    expect(() => new StarFcn({ numDomains: 2, unit: [4] } as never)).toThrow(
      'Unknown key "unit" in StarFcn args',
    );
    expect(() => new StarFcn({ numDomains: 2, units: [4], dispatch: "gather" as never })).toThrow(
      new ConfigError('StarFcn dispatch must be one of "auto", "sparse", "dense", received "gather"'),
    );
    const fcn = new StarFcn({ numDomains: 2, units: [2] });
    expect(() => fcn.domainWeights(0, 0)).toThrow(/needs a built layer/);
    expect(() => fcn.forward(tf.tensor2d([[1, 2]]), domainsOf([0, 1]))).toThrow(
      /domainIds must have shape \[1\], received \[2\]/,
    );
    run(() => fcn.forward(tf.tensor2d([[1, 2]]), domainsOf([1])));
    for (const dispatch of ["sparse", "dense"] as const) {
      const checked = new StarFcn({ numDomains: 2, units: [2], dispatch, name: "fcn" });
      expect(() => checked.forward(tf.tensor2d([[1, 2]]), domainsOf([2]))).toThrow(
        new DataError("fcn domainIds[0] must be in [0, numDomains=2), received 2"),
      );
      checked.dispose();
    }
    expect(() => fcn.domainWeights(0, 2)).toThrow(
      "StarFcn domain must be an integer in [0, numDomains-1=1], received 2",
    );
    fcn.dispose();
  });

  it.each(["sparse", "dense"] as const)(
    "matches wasm within 1e-5 (forward and gradients, %s)",
    async (dispatch) => {
      const fcn = new StarFcn({ numDomains: 3, units: [4, 2], dispatch, seed: 2 });
      const x = seededMatrix(6, 5, 7);
      const domains = domainsOf([0, 1, 2, 2, 1, 0]);
      run(() => fcn.forward(x, domains));
      fcn.setWeights(
        fcn
          .getWeights()
          .map((weight, index) => tf.add(weight, tf.reshape(seededMatrix(1, 1, 20 + index), []))),
      );
      await expectWasmMatchesCpu(
        () => fcn.forward(x, domains),
        () => fcn.forward(x, domains, true),
        fcn,
      );
      fcn.dispose();
    },
  );

  it("gives the same outputs and gradients with sparse and dense dispatch (domains interleaved, one without rows)", () => {
    const x = seededMatrix(9, 4, 31);
    const domains = domainsOf([2, 0, 2, 1, 0, 0, 2, 1, 2]);
    const results = (["sparse", "dense"] as const).map((dispatch) => {
      const fcn = new StarFcn({ numDomains: 4, units: [5, 3, 2], activation: "tanh", dispatch, seed: 12 });
      run(() => fcn.forward(x, domains));
      fcn.setWeights(
        fcn
          .getWeights()
          .map((weight, index) => tf.add(weight, tf.reshape(seededMatrix(1, 1, 40 + index), []))),
      );
      expect(fcn.sparseDispatch).toBe(dispatch === "sparse");
      const forward = run(() => fcn.forward(x, domains, true));
      const gradients = gradientValues(() => probeLoss(fcn.forward(x, domains, true)), fcn.trainableWeights);
      fcn.dispose();
      return { forward, gradients };
    });
    const [sparse, dense] = results as [(typeof results)[0], (typeof results)[0]];
    expectClose(sparse.forward, dense.forward, 1e-5);
    sparse.gradients.forEach((gradient, index) => {
      expectClose(gradient, dense.gradients[index]!, 1e-5);
    });
    // domain 3 has no rows: its bias in layer 0 (domain_bias_0 [4, 5], row 3) gets zero gradient
    expect(nonZeroCount([sparse.gradients[3]!.slice(15, 20)])).toBe(0);
    expect(nonZeroCount([sparse.gradients[3]!.slice(0, 15)])).toBeGreaterThan(10);
  });

  it("picks sparse dispatch from 2 domains on under auto and keeps dispatch in its config", () => {
    expect(new StarFcn({ numDomains: 1, units: [2] }).sparseDispatch).toBe(false);
    expect(new StarFcn({ numDomains: 2, units: [2] }).sparseDispatch).toBe(true);
    expect(new StarFcn({ numDomains: 8, units: [2], dispatch: "dense" }).sparseDispatch).toBe(false);
    for (const dispatch of ["auto", "sparse", "dense"] as const) {
      const fcn = new StarFcn({ numDomains: 3, units: [2], dispatch, seed: 1 });
      expect(fcn.getConfig().dispatch).toBe(dispatch);
      expect((StarFcn.fromConfig(StarFcn, fcn.getConfig()) as StarFcn).dispatch).toBe(dispatch);
    }
    const { dispatch: _dropped, ...oldConfig } = new StarFcn({
      numDomains: 3,
      units: [2],
      dispatch: "dense",
    }).getConfig();
    expect((StarFcn.fromConfig(StarFcn, oldConfig) as StarFcn).dispatch).toBe("auto");
  });
});
