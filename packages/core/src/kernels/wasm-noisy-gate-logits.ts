import { getKernel, type KernelFunc, registerKernel, type TensorInfo } from "@tensorflow/tfjs-core";
import { requireNativeGemm } from "./wasm-expert-matmul.js";
import { memoryOffset } from "./wasm-heap.js";

/**
 * Kernel: noisy top-k gate logits on `wasm` with mdrec's native add-on. Inputs `logits`,
 * `noiseLogits` and `noise` (float32, one shape); outputs `logits + noise * softplus(noiseLogits)`
 * and `noise * sigmoid(noiseLogits)`, the gradient factor of `noiseLogits`.
 */
export const NOISY_GATE_LOGITS = "MdrecNoisyGateLogits";

const noisyGateLogits: KernelFunc = ({ inputs, backend: anyBackend }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, NOISY_GATE_LOGITS, "noisyGateLogits");
  const { logits, noiseLogits, noise } = inputs as Record<string, TensorInfo>;
  const shape = [...logits!.shape];
  const out = backend.makeOutput(shape, "float32");
  const factor = backend.makeOutput(shape, "float32");
  // Offsets after every makeOutput: allocating can grow (and move) the heap.
  gemm.noisyGateLogits(
    backend.wasm.HEAPU8.buffer,
    memoryOffset(backend, logits!),
    memoryOffset(backend, noiseLogits!),
    memoryOffset(backend, noise!),
    memoryOffset(backend, out),
    memoryOffset(backend, factor),
    shape.reduce((size, dimension) => size * dimension, 1),
  );
  return [out, factor];
};

/** Registers {@link NOISY_GATE_LOGITS} on `wasm` (idempotent). */
export function registerNoisyGateLogits(): void {
  if (getKernel(NOISY_GATE_LOGITS, "wasm") === undefined)
    registerKernel({ kernelName: NOISY_GATE_LOGITS, backendName: "wasm", kernelFunc: noisyGateLogits });
}
