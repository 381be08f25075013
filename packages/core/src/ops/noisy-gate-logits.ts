import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import { NOISY_GATE_LOGITS, registerNoisyGateLogits } from "../kernels/wasm-noisy-gate-logits.js";
import { assertTensor } from "../validate.js";
import { nativeExpertLayersAvailable } from "./expert-matmul.js";

registerNoisyGateLogits();

/**
 * The logits of noisy top-k gating (Shazeer et al., 2017, "Outrageously Large Neural Networks"):
 * `logits + noise * softplus(noiseLogits)`, where `noise` is a standard normal sample and
 * `noiseLogits = x @ W_noise` learns each expert's noise scale per row. Gradients reach `logits`
 * (`dy`) and `noiseLogits` (`dy * noise * sigmoid(noiseLogits)`), not the sample.
 *
 * On `wasm` with mdrec's native add-on this is one vectorised kernel forward (which also keeps
 * `noise * sigmoid(noiseLogits)`) and one product backward, instead of tfjs's Softplus (scalar
 * exp and log, ~12 ns per element), Mul, Add and their three gradient kernels; results agree
 * with the stock composition to a few float ulps (softplus is 0 below -87 instead of a subnormal).
 * Elsewhere it is exactly that composition.
 *
 * @param logits `[B, N]` float32, the clean gate logits.
 * @param noiseLogits `[B, N]` float32, the pre-softplus noise scales.
 * @param noise `[B, N]` float32 sample (e.g. {@link standardNormal}).
 * @returns `[B, N]`.
 * @example
 * const noisy = noisyGateLogits(logits, tf.matMul(x, noiseKernel), standardNormal([B, N], seed));
 */
export function noisyGateLogits(
  logits: tf.Tensor2D,
  noiseLogits: tf.Tensor2D,
  noise: tf.Tensor2D,
): tf.Tensor2D {
  assertTensor("noisyGateLogits logits", logits, { rank: 2, dtype: "float32" });
  for (const [name, tensor] of [
    ["noiseLogits", noiseLogits],
    ["noise", noise],
  ] as const) {
    assertTensor(`noisyGateLogits ${name}`, tensor, { rank: 2, dtype: "float32" });
    if (tensor.shape[0] !== logits.shape[0] || tensor.shape[1] !== logits.shape[1]) {
      throw new ShapeError(
        `noisyGateLogits ${name} must have the shape of logits [${logits.shape.join(", ")}], received [${tensor.shape.join(", ")}]`,
      );
    }
  }
  if (!nativeExpertLayersAvailable()) {
    return tf.tidy(() => tf.add(logits, tf.mul(noise, tf.softplus(noiseLogits))) as tf.Tensor2D);
  }
  // `noise` is read in the forward pass only, so it is an input of the kernel, not of the gradient.
  const noisy = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [clean, scales] = args as tf.Tensor[];
    const [out, factor] = tf
      .engine()
      .runKernel(NOISY_GATE_LOGITS, { logits: clean!, noiseLogits: scales!, noise }) as tf.Tensor2D[];
    (args[2] as tf.GradSaveFunc)([factor!]);
    return {
      value: out!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [dy, tf.mul(dy, saved[0]!)],
    };
  });
  return noisy(logits, noiseLogits) as tf.Tensor2D;
}
