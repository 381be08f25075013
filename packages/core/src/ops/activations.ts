import * as tf from "@tensorflow/tfjs-core";
import { fastKernelsEnabled } from "../kernels/register.js";
import { assertOneOf } from "../validate.js";

/** Activation names accepted by every mdrec block. */
export const ACTIVATIONS = [
  "relu",
  "linear",
  "sigmoid",
  "tanh",
  "elu",
  "selu",
  "leakyRelu",
  "swish",
  "gelu",
] as const;

/** One of {@link ACTIVATIONS}. */
export type Activation = (typeof ACTIVATIONS)[number];

/** Applies a named activation elementwise. */
export function applyActivation(x: tf.Tensor, activation: Activation): tf.Tensor {
  switch (activation) {
    case "relu":
      return tf.relu(x);
    case "linear":
      return x;
    case "sigmoid":
      return tf.sigmoid(x);
    case "tanh":
      return tf.tanh(x);
    case "elu":
      return tf.elu(x);
    case "selu":
      return tf.selu(x);
    case "leakyRelu":
      return tf.leakyRelu(x, 0.2);
    case "swish":
      return tf.mul(x, tf.sigmoid(x));
    case "gelu":
      // tanh approximation (Hendrycks & Gimpel, 2016)
      return tf.tidy(() => {
        const cube = tf.mul(tf.pow(x, 3), 0.044715);
        const inner = tf.mul(tf.add(x, cube), Math.sqrt(2 / Math.PI));
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
      });
  }
}

/** Validates an activation name, naming the argument and the value received. */
export function assertActivation(name: string, value: unknown): asserts value is Activation {
  assertOneOf(name, value, ACTIVATIONS);
}

/**
 * A dense layer `activation(x @ kernel + bias)`. Linear and relu go through one fused matmul
 * (`tf.fused.matMul`, whose gradient tfjs implements for those two; on `wasm` with mdrec's
 * native GEMM the bias and relu are one in-place pass after BLAS); other activations are
 * matmul, add, then {@link applyActivation}. Same values on every backend.
 *
 * @param x `[B, dIn]`.
 * @param kernel `[dIn, dOut]`.
 * @param bias `[dOut]`.
 * @returns `[B, dOut]`.
 * @example
 * const hidden = denseActivation(x, kernel, bias, "relu"); // [B, dOut]
 */
export function denseActivation(
  x: tf.Tensor2D,
  kernel: tf.Tensor2D,
  bias: tf.Tensor,
  activation: Activation,
): tf.Tensor2D {
  // The stock wasm _FusedMatMul reads the bias rank from its buffer's first shape, so a reshaped
  // bias fails there; mdrec's override (fast kernels) passes a view of the right shape.
  const fusable = tf.getBackend() !== "wasm" || fastKernelsEnabled("wasm");
  if (fusable && (activation === "relu" || activation === "linear")) {
    return tf.fused.matMul({ a: x, b: kernel, bias, activation }) as tf.Tensor2D;
  }
  return tf.tidy(() => applyActivation(tf.add(tf.matMul(x, kernel), bias), activation) as tf.Tensor2D);
}
