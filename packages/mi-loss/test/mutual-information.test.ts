import { ConfigError, DataError, loadLayer, ShapeError, saveLayer } from "@mdrec/core";
import { domainExpertEntropies, domainExpertMutualInformation, MutualInformationLoss } from "@mdrec/mi-loss";
import {
  checkInputGradients,
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

const entropyOf = (distribution: number[]) =>
  -distribution.reduce((sum, p) => sum + (p > 0 ? p * Math.log(p) : 0), 0);

/** Reference H(E), H(E|D), I(D;E) from P(d) and P(e|d) on the host. */
function reference(prior: number[], conditional: number[][]) {
  const marginal = conditional[0]!.map((_, e) =>
    prior.reduce((sum, p, d) => sum + p * conditional[d]![e]!, 0),
  );
  const expertEntropy = entropyOf(marginal);
  const conditionalEntropy = prior.reduce((sum, p, d) => sum + p * entropyOf(conditional[d]!), 0);
  return { expertEntropy, conditionalEntropy, mutualInformation: expertEntropy - conditionalEntropy };
}

describe("domainExpertMutualInformation golden values", () => {
  it("is 0 when every domain has the same P(e|d)", () => {
    const same = tf.tensor2d([
      [0.2, 0.3, 0.5],
      [0.2, 0.3, 0.5],
      [0.2, 0.3, 0.5],
      [0.2, 0.3, 0.5],
    ]);
    expectClose(domainExpertMutualInformation(same, tf.tensor1d([0, 1, 2, 1], "int32"), 3), [0], 1e-6);
    // Rows differ but the per-domain means agree: still independent.
    const meansAgree = tf.tensor2d([
      [0.1, 0.9],
      [0.5, 0.5],
      [0.3, 0.7],
      [0.3, 0.7],
    ]);
    expectClose(domainExpertMutualInformation(meansAgree, tf.tensor1d([0, 0, 1, 1], "int32"), 2), [0], 1e-6);
  });

  it("is log D for a one-to-one domain -> expert mapping with uniform domains", () => {
    const oneHot = tf.tensor2d([
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    const entropies = domainExpertEntropies(oneHot, tf.tensor1d([0, 1, 2, 0, 1, 2], "int32"), 3);
    expectClose(entropies.mutualInformation, [Math.log(3)], 1e-6);
    expectClose(entropies.expertEntropy, [Math.log(3)], 1e-6);
    expectClose(entropies.conditionalEntropy, [0], 1e-6);
  });

  it("matches a hand computation on an uneven batch", () => {
    const probs = tf.tensor2d([
      [0.8, 0.2],
      [0.6, 0.4],
      [0.1, 0.9],
    ]);
    const expected = reference(
      [2 / 3, 1 / 3],
      [
        [0.7, 0.3],
        [0.1, 0.9],
      ],
    );
    const entropies = domainExpertEntropies(probs, tf.tensor1d([0, 0, 1], "int32"), 2);
    expectClose(entropies.expertEntropy, [expected.expertEntropy], 1e-6);
    expectClose(entropies.conditionalEntropy, [expected.conditionalEntropy], 1e-6);
    expectClose(entropies.mutualInformation, [expected.mutualInformation], 1e-6);
  });

  it("a domain absent from the batch gives a finite result equal to the MI over present domains", () => {
    const probs = tf.softmax(tf.randomNormal([6, 4], 0, 2, "float32", 3)) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 2, 2, 0, 2, 0], "int32"); // domains 1 and 3 absent
    const withAbsent = domainExpertMutualInformation(probs, ids, 4).dataSync()[0]!;
    const compact = domainExpertMutualInformation(
      probs,
      tf.tensor1d([0, 1, 1, 0, 1, 0], "int32"),
      2,
    ).dataSync()[0]!;
    expect(Number.isFinite(withAbsent)).toBe(true);
    expect(withAbsent).toBeCloseTo(compact, 6);
    const grad = tf.grad((p: tf.Tensor) => domainExpertMutualInformation(p as tf.Tensor2D, ids, 4))(probs);
    expect(Array.from(grad.dataSync()).every(Number.isFinite)).toBe(true);
  });

  it("autodiff matches finite differences", () => {
    const probs = tf.softmax(tf.randomNormal([6, 3], 0, 1, "float32", 5)) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 1, 1, 2, 0, 1], "int32");
    checkInputGradients((p) => domainExpertMutualInformation(p as tf.Tensor2D, ids, 3), [probs], 6, 1e-3);
  });

  it("leaves no tensors behind and rejects bad inputs", () => {
    const probs = tf.fill([2, 3], 1 / 3) as tf.Tensor2D;
    const ids = tf.tensor1d([0, 1], "int32");
    expectNoLeak(() => {
      domainExpertMutualInformation(probs, ids, 2);
      domainExpertEntropies(probs, ids, 2);
    });
    expect(() => domainExpertMutualInformation(probs, tf.tensor1d([0, 2], "int32"), 2)).toThrow(DataError);
    expect(() => domainExpertMutualInformation(probs, tf.tensor1d([0, 2], "int32"), 2)).toThrow(
      "domainExpertEntropies domainIds[1] must be in [0, numDomains=2), received 2",
    );
    expect(() => domainExpertMutualInformation(probs, tf.tensor1d([0, 1]) as tf.Tensor1D, 2)).toThrow(
      "domainExpertEntropies domainIds must have dtype int32, received float32",
    );
    expect(() => domainExpertMutualInformation(probs, tf.tensor1d([0, 1, 1], "int32"), 2)).toThrow(
      ShapeError,
    );
    expect(() => domainExpertMutualInformation(probs, tf.tensor1d([0, 1, 1], "int32"), 2)).toThrow(
      "domainExpertEntropies domainIds must have shape [2] (one per row of probs), received [3]",
    );
    expect(() => domainExpertMutualInformation(tf.ones([3]) as never, ids, 2)).toThrow(
      "domainExpertEntropies probs must have rank 2",
    );
    expect(() => domainExpertMutualInformation(probs, ids, 0)).toThrow(
      "domainExpertEntropies numDomains must be an integer >= 1, received 0",
    );
  });
});

describe("MutualInformationLoss", () => {
  const probs = tf.tensor2d([
    [0.8, 0.2],
    [0.6, 0.4],
    [0.1, 0.9],
  ]);
  const ids = tf.tensor1d([0, 0, 1], "int32");

  it("loss = weight * -(a * H(E) - b * H(E|D)) on batch estimates by default", () => {
    const layer = new MutualInformationLoss({
      numDomains: 2,
      numExperts: 2,
      weight: 0.1,
      expertEntropyWeight: 2,
      conditionalEntropyWeight: 0.5,
    });
    const out = layer.compute(probs, ids, true);
    const expected = reference(
      [2 / 3, 1 / 3],
      [
        [0.7, 0.3],
        [0.1, 0.9],
      ],
    );
    expectClose(out.mutualInformation, [expected.mutualInformation], 1e-6);
    expectClose(out.expertEntropy, [expected.expertEntropy], 1e-6);
    expectClose(out.conditionalEntropy, [expected.conditionalEntropy], 1e-6);
    expectClose(out.loss, [0.1 * -(2 * expected.expertEntropy - 0.5 * expected.conditionalEntropy)], 1e-6);
    expect(layer.weights.length).toBe(0);
    const defaults = new MutualInformationLoss({ numDomains: 2, numExperts: 2 });
    expectClose(defaults.compute(probs, ids).loss, [-0.01 * expected.mutualInformation], 1e-7);
  });

  it("moving average: first batch is (1 - m) * batch + m * initial state, absent domains keep their row", () => {
    const layer = new MutualInformationLoss({ numDomains: 3, numExperts: 2, movingAverage: 0.5 });
    const batchProbs = tf.tensor2d([
      [1, 0],
      [0.6, 0.4],
      [0.2, 0.8],
    ]);
    const batchIds = tf.tensor1d([0, 0, 2], "int32"); // domain 1 absent
    const out = layer.compute(batchProbs, batchIds, true);
    // batch: P(d) = [2/3, 0, 1/3], P(e|0) = [0.8, 0.2], P(e|2) = [0.2, 0.8]; initial state 1/N, 1/D
    const conditional = [
      [0.5 * 0.5 + 0.5 * 0.8, 0.5 * 0.5 + 0.5 * 0.2],
      [0.5, 0.5],
      [0.5 * 0.5 + 0.5 * 0.2, 0.5 * 0.5 + 0.5 * 0.8],
    ];
    const prior = [0.5 / 3 + 0.5 * (2 / 3), 0.5 / 3, 0.5 / 3 + 0.5 * (1 / 3)];
    const [storedConditional, storedPrior] = layer.getWeights();
    expectClose(storedConditional!, conditional, 1e-6);
    expectClose(storedPrior!, prior, 1e-6);
    expectClose(out.mutualInformation, [reference(prior, conditional).mutualInformation], 1e-6);

    // Inference reads the state but does not write it.
    const inference = layer.compute(batchProbs, batchIds, false);
    expectClose(layer.getWeights()[0]!, conditional, 1e-6);
    expectClose(layer.getWeights()[1]!, prior, 1e-6);
    const blendedAgain = conditional.map((row, d) =>
      d === 1 ? row : row.map((value, e) => 0.5 * value + 0.5 * [[0.8, 0.2], [], [0.2, 0.8]][d]![e]!),
    );
    const priorAgain = prior.map((value, d) => 0.5 * value + 0.5 * [2 / 3, 0, 1 / 3][d]!);
    expectClose(inference.mutualInformation, [reference(priorAgain, blendedAgain).mutualInformation], 1e-6);

    // A second training batch blends with the stored state.
    layer.compute(batchProbs, batchIds, true);
    expectClose(layer.getWeights()[0]!, blendedAgain, 1e-6);
  });

  it("every output's closed-form gradient matches autodiff through the plain ops and finite differences", () => {
    const layer = new MutualInformationLoss({
      numDomains: 3,
      numExperts: 4,
      weight: 0.2,
      expertEntropyWeight: 1.5,
      conditionalEntropyWeight: 0.5,
    });
    // Column 3 holds probabilities far below the log floor (1e-10): clipped, f'(p) = log(eps) there.
    const logits = tf.tensor2d([
      [1, 2, 0.5, -40],
      [0.3, -1, 2, -40],
      [2, 2, 1, -40],
      [-1, 0, 0.2, -40],
      [0.5, 1.5, -0.5, -40],
    ]);
    const p = tf.softmax(logits) as tf.Tensor2D;
    const batchIds = tf.tensor1d([0, 2, 2, 0, 2], "int32"); // domain 1 absent
    // dy . [loss, I, H(E), H(E|D)] with every component non-zero.
    const mix = [0.3, -1.2, 0.7, 2];
    const fused = (input: tf.Tensor) => {
      const out = layer.compute(input as tf.Tensor2D, batchIds, true);
      return tf.addN(
        [out.loss, out.mutualInformation, out.expertEntropy, out.conditionalEntropy].map((t, i) =>
          tf.mul(t, mix[i]!),
        ),
      ) as tf.Scalar;
    };
    const plain = (input: tf.Tensor) => {
      const out = domainExpertEntropies(input as tf.Tensor2D, batchIds, 3);
      const loss = tf.mul(
        tf.neg(tf.sub(tf.mul(out.expertEntropy, 1.5), tf.mul(out.conditionalEntropy, 0.5))),
        0.2,
      );
      return tf.addN(
        [loss, out.mutualInformation, out.expertEntropy, out.conditionalEntropy].map((t, i) =>
          tf.mul(t, mix[i]!),
        ),
      ) as tf.Scalar;
    };
    expectClose(fused(p), Array.from(plain(p).dataSync()), 1e-6);
    expectClose(tf.grad(fused)(p), Array.from(tf.grad(plain)(p).dataSync()), 1e-6);
    checkInputGradients(fused, [p], 5, 1e-3);
  });

  it("with a moving average the gradient flows through the batch part only", () => {
    const layer = new MutualInformationLoss({ numDomains: 2, numExperts: 3, movingAverage: 0.7, weight: 1 });
    const p = tf.softmax(tf.randomNormal([5, 3], 0, 1, "float32", 8)) as tf.Tensor2D;
    const batchIds = tf.tensor1d([0, 1, 1, 0, 1], "int32");
    layer.compute(p, batchIds, true);
    checkInputGradients((input) => layer.compute(input as tf.Tensor2D, batchIds, false).loss, [p], 5, 1e-3);
    const withEma = tf.grad((input: tf.Tensor) => layer.compute(input as tf.Tensor2D, batchIds, false).loss)(
      p,
    );
    expect(tf.sum(tf.abs(withEma)).dataSync()[0]).toBeGreaterThan(0);
  });

  it("getConfig/fromConfig round trip and saveLayer/loadLayer keep the moving-average state", async () => {
    const layer = new MutualInformationLoss({
      numDomains: 2,
      numExperts: 2,
      weight: 0.2,
      expertEntropyWeight: 0.5,
      conditionalEntropyWeight: 1.5,
      movingAverage: 0.9,
      name: "aea",
    });
    const config = layer.getConfig();
    expect(config).toMatchObject({
      numDomains: 2,
      numExperts: 2,
      weight: 0.2,
      expertEntropyWeight: 0.5,
      conditionalEntropyWeight: 1.5,
      movingAverage: 0.9,
    });
    const copy = MutualInformationLoss.fromConfig(MutualInformationLoss, config) as MutualInformationLoss;
    expectClose(copy.compute(probs, ids, false).loss, layer.compute(probs, ids, false).loss, 0);
    layer.compute(probs, ids, true);
    layer.compute(tf.tensor2d([[0.3, 0.7]]), tf.tensor1d([1], "int32"), true);
    const directory = await temporaryDirectory();
    try {
      await saveLayer(layer, directory.path);
      const loaded = await loadLayer<MutualInformationLoss>(directory.path);
      expectClose(loaded.getWeights()[0]!, layer.getWeights()[0]!, 0);
      expectClose(loaded.getWeights()[1]!, layer.getWeights()[1]!, 0);
      expectClose(loaded.compute(probs, ids, false).loss, layer.compute(probs, ids, false).loss, 0);
    } finally {
      await directory.cleanup();
    }
  });

  it("leaves no tensors behind, also when updating the state", () => {
    const layer = new MutualInformationLoss({ numDomains: 2, numExperts: 2, movingAverage: 0.5 });
    layer.compute(probs, ids, true);
    expectNoLeak(() => {
      layer.compute(probs, ids, true);
      layer.compute(probs, ids, false);
      const grad = tf.grad((input: tf.Tensor) => layer.compute(input as tf.Tensor2D, ids, true).loss)(probs);
      grad.dispose();
    });
  });

  it("wasm gives the cpu values, gradients and state", async () => {
    const run = () => {
      const layer = new MutualInformationLoss({
        numDomains: 3,
        numExperts: 4,
        movingAverage: 0.3,
        weight: 1,
      });
      const p = tf.softmax(tf.randomNormal([7, 4], 0, 1, "float32", 2)) as tf.Tensor2D;
      const batchIds = tf.tensor1d([0, 2, 2, 0, 2, 0, 0], "int32");
      const out = layer.compute(p, batchIds, true);
      const grad = tf.grad((input: tf.Tensor) => layer.compute(input as tf.Tensor2D, batchIds, false).loss)(
        p,
      );
      return [
        out.loss.dataSync()[0]!,
        out.mutualInformation.dataSync()[0]!,
        ...grad.dataSync(),
        ...layer.getWeights()[0]!.dataSync(),
        ...layer.getWeights()[1]!.dataSync(),
      ];
    };
    const cpu = run();
    expectClose(await onBackend("wasm", run), cpu, 1e-5);
  });

  it("rejects bad arguments, naming the argument and the value", () => {
    expect(() => new MutualInformationLoss({ numDomains: 2, numExperts: 2, weight: Number.NaN })).toThrow(
      ConfigError,
    );
    expect(() => new MutualInformationLoss({ numDomains: 2, numExperts: 2, weight: Number.NaN })).toThrow(
      "MutualInformationLoss weight must be a finite number >= 0, received NaN",
    );
    expect(
      () => new MutualInformationLoss({ numDomains: 2, numExperts: 2, expertEntropyWeight: -1 }),
    ).toThrow("MutualInformationLoss expertEntropyWeight must be a finite number >= 0, received -1");
    expect(
      () =>
        new MutualInformationLoss({
          numDomains: 2,
          numExperts: 2,
          conditionalEntropyWeight: Number.POSITIVE_INFINITY,
        }),
    ).toThrow(
      "MutualInformationLoss conditionalEntropyWeight must be a finite number >= 0, received Infinity",
    );
    expect(() => new MutualInformationLoss({ numDomains: 2, numExperts: 2, movingAverage: 1 })).toThrow(
      "MutualInformationLoss movingAverage must be a number in [0, 1), received 1",
    );
    expect(() => new MutualInformationLoss({ numDomains: 0, numExperts: 2 })).toThrow(
      "MutualInformationLoss numDomains must be an integer >= 1, received 0",
    );
    expect(() => new MutualInformationLoss({ numDomains: 2, numExperts: 2, lambda: 1 } as never)).toThrow(
      'Unknown key "lambda" in MutualInformationLoss args.',
    );
    const layer = new MutualInformationLoss({ numDomains: 2, numExperts: 3, name: "aea_bad" });
    expect(() => layer.compute(probs, ids)).toThrow(ShapeError);
    expect(() => layer.compute(probs, ids)).toThrow("aea_bad probs must have shape [?, 3], received [3, 2]");
    expect(() => layer.compute(tf.ones([1, 3]) as tf.Tensor2D, tf.tensor1d([-1], "int32"))).toThrow(
      "aea_bad domainIds[0] must be in [0, numDomains=2), received -1",
    );
  });
});
