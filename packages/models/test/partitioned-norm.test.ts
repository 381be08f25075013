import { ConfigError, loadLayer, saveLayer } from "@mdrec/core";
import { PartitionedNorm } from "@mdrec/models";
import { checkVariableGradients, expectClose, temporaryDirectory } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";
import { describe, expect, it } from "vitest";
import {
  domainsOf,
  expectWasmMatchesCpu,
  gradientValues,
  nonZeroCount,
  probeLoss,
  run,
  seededMatrix,
  values,
  variablesOf,
} from "./support.js";

function weight(layer: PartitionedNorm, name: string): LayerVariable {
  return layer.weights.find((variable) => variable.name.endsWith(`/${name}`))!;
}

const z = () =>
  tf.tensor2d([
    [1, 2],
    [3, 4],
    [5, 10],
    [7, 0],
  ]);
const ids = () => domainsOf([0, 0, 1, 1]);

describe("PartitionedNorm", () => {
  it("normalises each row with its own domain's batch statistics in training (golden)", () => {
    const norm = new PartitionedNorm({ numDomains: 3, epsilon: 1e-3 });
    const output = run(() => norm.normalize(z(), ids(), true));
    // domain 0: mean [2, 3], variance [1, 1]; domain 1: mean [6, 5], variance [1, 25]
    const scale = (variance: number) => 1 / Math.sqrt(variance + 1e-3);
    expectClose(output, [
      -scale(1),
      -scale(1),
      scale(1),
      scale(1),
      -scale(1),
      5 * scale(25),
      scale(1),
      -5 * scale(25),
    ]);
    norm.dispose();
  });

  it("normalises over the whole batch with a single domain (golden)", () => {
    const norm = new PartitionedNorm({ numDomains: 1, epsilon: 1e-3 });
    const output = run(() => norm.normalize(z(), domainsOf([0, 0, 0, 0]), true));
    // mean [4, 4], variance [5, 14]
    const column = (value: number, variance: number) => (value - 4) / Math.sqrt(variance + 1e-3);
    expectClose(
      output,
      [1, 3, 5, 7].flatMap((first, row) => [column(first, 5), column([2, 4, 10, 0][row]!, 14)]),
      1e-5,
    );
    norm.dispose();
  });

  it("updates only the moving statistics of domains present in the batch", () => {
    const norm = new PartitionedNorm({ numDomains: 3, momentum: 0.5 });
    run(() => norm.normalize(z(), ids(), true));
    expectClose(values(weight(norm, "moving_mean").read()), [1, 1.5, 3, 2.5, 0, 0]);
    expectClose(values(weight(norm, "moving_variance").read()), [1, 1, 1, 13, 1, 1]);
    norm.dispose();
  });

  it("uses per-domain moving statistics and per-domain scale and shift at inference (golden)", () => {
    const norm = new PartitionedNorm({ numDomains: 2, epsilon: 1e-3 });
    run(() => norm.normalize(z(), ids(), false));
    // weights order: gamma, beta, domain_gamma, domain_beta, moving_mean, moving_variance
    norm.setWeights([
      tf.tensor1d([2, 1]),
      tf.tensor1d([0, 1]),
      tf.tensor2d([
        [1, 1],
        [0.5, 3],
      ]),
      tf.tensor2d([
        [0, 0],
        [1, -1],
      ]),
      tf.tensor2d([
        [1, 2],
        [4, 4],
      ]),
      tf.tensor2d([
        [4, 1],
        [1, 9],
      ]),
    ]);
    const output = run(() => norm.normalize(z(), ids(), false));
    const expected: number[] = [];
    const rows = [
      [1, 2],
      [3, 4],
      [5, 10],
      [7, 0],
    ];
    const domain = [0, 0, 1, 1];
    const gamma = [2, 1];
    const beta = [0, 1];
    const domainGamma = [
      [1, 1],
      [0.5, 3],
    ];
    const domainBeta = [
      [0, 0],
      [1, -1],
    ];
    const mean = [
      [1, 2],
      [4, 4],
    ];
    const variance = [
      [4, 1],
      [1, 9],
    ];
    rows.forEach((row, index) => {
      const d = domain[index]!;
      row.forEach((value, unit) => {
        const normalized = (value - mean[d]![unit]!) / Math.sqrt(variance[d]![unit]! + 1e-3);
        expected.push(
          gamma[unit]! * domainGamma[d]![unit]! * normalized + beta[unit]! + domainBeta[d]![unit]!,
        );
      });
    });
    expectClose(output, expected, 1e-4);
    // the same rows labelled with the other domain get the other domain's statistics
    const swapped = run(() => norm.normalize(z(), domainsOf([1, 1, 0, 0]), false));
    expect(swapped[0]).not.toBeCloseTo(output[0]!, 3);
    norm.dispose();
  });

  it("matches finite-difference gradients in training and inference", () => {
    const norm = new PartitionedNorm({ numDomains: 2 });
    const x = seededMatrix(6, 3, 1);
    const domains = domainsOf([0, 1, 0, 1, 1, 0]);
    run(() => norm.normalize(x, domains, true));
    norm.setWeights([
      tf.tensor1d([1.5, 0.5, 1]),
      tf.tensor1d([0.1, 0.2, 0.3]),
      tf.tensor2d([
        [1, 2, 0.5],
        [0.7, 1.2, 1],
      ]),
      tf.tensor2d([
        [0.1, 0, -0.2],
        [0.3, 0.1, 0],
      ]),
      tf.tensor2d([
        [0.1, 0, -0.2],
        [0.3, 0.1, 0],
      ]),
      tf.tensor2d([
        [1, 2, 0.5],
        [0.7, 1.2, 1],
      ]),
    ]);
    for (const training of [true, false]) {
      const loss = () => probeLoss(norm.normalize(x, domains, training));
      checkVariableGradients(loss, variablesOf(norm.trainableWeights));
      expect(nonZeroCount(gradientValues(loss, norm.trainableWeights))).toBeGreaterThan(10);
    }
    norm.dispose();
  });

  it("round-trips getConfig/fromConfig and saveLayer/loadLayer with the same outputs", async () => {
    const norm = new PartitionedNorm({ numDomains: 2, momentum: 0.9, epsilon: 1e-4 });
    run(() => norm.normalize(z(), ids(), true));
    const copy = PartitionedNorm.fromConfig(PartitionedNorm, norm.getConfig()) as PartitionedNorm;
    expect(copy.getConfig()).toEqual({ ...norm.getConfig(), name: copy.name });
    expect(run(() => copy.normalize(z(), ids(), true))).toEqual(run(() => norm.normalize(z(), ids(), true)));
    const directory = await temporaryDirectory();
    try {
      await saveLayer(norm, directory.path);
      const loaded = await loadLayer<PartitionedNorm>(directory.path);
      expect(run(() => loaded.normalize(z(), ids(), false))).toEqual(
        run(() => norm.normalize(z(), ids(), false)),
      );
      loaded.dispose();
    } finally {
      await directory.cleanup();
    }
    copy.dispose();
    norm.dispose();
  });

  it("leaks no tensors per call after warm-up", () => {
    const norm = new PartitionedNorm({ numDomains: 2 });
    const x = z();
    const domains = ids();
    tf.tidy(() => {
      norm.normalize(x, domains, true);
    });
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      norm.normalize(x, domains, true);
      norm.normalize(x, domains, false);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, domains]);
    norm.dispose();
  });

  it("rejects invalid arguments and inputs with messages naming the value", () => {
    expect(() => new PartitionedNorm({ numDomains: 0 })).toThrow(
      new ConfigError("PartitionedNorm numDomains must be an integer >= 1, received 0"),
    );
    expect(() => new PartitionedNorm({ numDomains: 2, momentum: 1.5 })).toThrow(
      "PartitionedNorm momentum must be a finite number >= 0 and <= 1, received 1.5",
    );
    expect(() => new PartitionedNorm({ numDomains: 2, epsilon: 0 })).toThrow(
      "epsilon must be a finite number > 0",
    );
    expect(() => new PartitionedNorm({ numDomains: 2, momentom: 0.9 } as never)).toThrow(
      'Unknown key "momentom" in PartitionedNorm args. Did you mean "momentum"?',
    );
    const norm = new PartitionedNorm({ numDomains: 2 });
    expect(() => norm.normalize(tf.tensor1d([1, 2]) as never, ids())).toThrow(
      /input z must have rank 2, received shape \[2\]/,
    );
    expect(() => norm.normalize(z(), tf.tensor1d([0, 0, 1, 1]))).toThrow(
      /domainIds must have dtype int32, received float32/,
    );
  });

  it("is deterministic and matches wasm within 1e-5 (forward and gradients)", async () => {
    const norm = new PartitionedNorm({ numDomains: 2 });
    const x = seededMatrix(6, 3, 2);
    const domains = domainsOf([0, 1, 0, 1, 1, 0]);
    const forward = () => norm.normalize(x, domains, true);
    const cpu = await expectWasmMatchesCpu(forward, forward, norm);
    expect(run(forward)).toEqual(cpu.forward);
    norm.dispose();
  });
});
