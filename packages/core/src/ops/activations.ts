import * as tf from "@tensorflow/tfjs-core";
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

/**
 * Whether the native kernels apply `activation` in place after their products (a bias, then
 * relu or nothing); any other activation runs as its own op after a linear product.
 */
export function isEpilogueActivation(activation: Activation): activation is "relu" | "linear" {
  return activation === "relu" || activation === "linear";
}

/** Validates an activation name, naming the argument and the value received. */
export function assertActivation(name: string, value: unknown): asserts value is Activation {
  assertOneOf(name, value, ACTIVATIONS);
}
