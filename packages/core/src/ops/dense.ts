import * as tf from "@tensorflow/tfjs-core";
import { fastKernelsEnabled } from "../kernels/register.js";
import { type Activation, applyActivation, isEpilogueActivation } from "./activations.js";
import { blockExpertDense, nativeExpertLayersAvailable } from "./expert-matmul.js";

/**
 * A dense layer `activation(x @ kernel + bias)`. Linear and relu go through one fused matmul:
 * on `wasm` with mdrec's native GEMM, the one-expert case of {@link blockExpertDense} (bias and
 * relu in place after BLAS, one kernel for their backward pass; tfjs's `fused.matMul` unfuses
 * into matmul + add + relu whenever a gradient is recorded), elsewhere `tf.fused.matMul`. Other
 * activations are matmul, add, then {@link applyActivation}. Same values on every backend.
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
  if (fusable && isEpilogueActivation(activation)) {
    const [inputDim, outputDim] = kernel.shape;
    // Mismatched shapes go to tf.fused.matMul, whose checks name them.
    if (
      nativeExpertLayersAvailable() &&
      x.shape[0] > 0 &&
      x.shape[1] === inputDim &&
      bias.size === outputDim
    ) {
      return tf.tidy(() =>
        blockExpertDense(
          x,
          tf.reshape(kernel, [1, inputDim, outputDim]) as tf.Tensor3D,
          tf.reshape(bias, [1, outputDim]) as tf.Tensor2D,
          activation,
        ),
      ); // [B, dOut]
    }
    return tf.fused.matMul({ a: x, b: kernel, bias, activation }) as tf.Tensor2D;
  }
  return tf.tidy(() => applyActivation(tf.add(tf.matMul(x, kernel), bias), activation) as tf.Tensor2D);
}
