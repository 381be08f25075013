// Helpers of the models tests beyond the shared ones in @mdrec/test-utils.
import { expectClose, onBackend } from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";

/** Values of a tensor as a plain array (the tensor is not disposed). */
export function values(tensor: tf.Tensor): number[] {
  return Array.from(tensor.dataSync());
}

/** Domain ids as an int32 `[B]` tensor. */
export function domainsOf(ids: number[]): tf.Tensor1D {
  return tf.tensor1d(ids, "int32");
}

/** Runs `fn`, reads the values of the tensor it returns, and disposes it. */
export function run(fn: () => tf.Tensor): number[] {
  const tensor = fn();
  const result = values(tensor);
  tensor.dispose();
  return result;
}

/** Autodiff gradients of `loss` with respect to `variables`, as arrays (missing gradients are zeros). */
export function gradientValues(loss: () => tf.Scalar, variables: LayerVariable[]): number[][] {
  const tfVariables = variables.map((variable) => variable.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(loss, tfVariables);
  value.dispose();
  const result = tfVariables.map((variable) =>
    grads[variable.name] ? values(grads[variable.name]!) : new Array<number>(variable.size).fill(0),
  );
  tf.dispose(grads);
  return result;
}

/** The variables behind a layer's weights, for `checkVariableGradients`. */
export function variablesOf(weights: LayerVariable[]): tf.Variable[] {
  return weights.map((weight) => weight.read() as tf.Variable);
}

/** How many of `gradients`' entries are clearly non-zero (so a gradient check cannot pass on zeros). */
export function nonZeroCount(gradients: number[][]): number {
  return gradients.flat().filter((value) => Math.abs(value) > 1e-4).length;
}

/** A seeded `[rows, columns]` float32 tensor with entries in [-1, 1). */
export function seededMatrix(rows: number, columns: number, seed: number): tf.Tensor2D {
  return tf.randomUniform([rows, columns], -1, 1, "float32", seed) as tf.Tensor2D;
}

/** A weighted sum of `output` with fixed pseudo-random weights, so every entry gets a distinct gradient. */
export function probeLoss(output: tf.Tensor): tf.Scalar {
  const weights = tf.randomUniform(output.shape, -1, 1, "float32", 99);
  return tf.sum(tf.mul(output, weights));
}

/**
 * Runs a layer's forward pass and the gradients of `probeLoss` of its training output on `cpu`
 * (the active backend) and on `wasm`, and asserts that they agree within 1e-5.
 * @param forward the inference output, e.g. `() => layer.forward(x, domains)`.
 * @param trainingOutput the training output whose probe loss is differentiated.
 * @param layer its `trainableWeights` are read after `forward` ran (a first call builds them).
 * @returns the `cpu` values, for further checks.
 */
export async function expectWasmMatchesCpu(
  forward: () => tf.Tensor,
  trainingOutput: () => tf.Tensor,
  layer: { readonly trainableWeights: LayerVariable[] },
): Promise<{ forward: number[]; gradients: number[][] }> {
  const measure = () => {
    const output = run(forward);
    return {
      forward: output,
      gradients: gradientValues(() => probeLoss(trainingOutput()), layer.trainableWeights),
    };
  };
  const cpu = measure();
  const wasm = await onBackend("wasm", measure);
  expectClose(wasm.forward, cpu.forward, 1e-5);
  wasm.gradients.forEach((gradient, index) => {
    expectClose(gradient, cpu.gradients[index]!, 1e-5);
  });
  return cpu;
}
