import type * as tf from "@tensorflow/tfjs-core";
import { getKernel, type KernelFunc, registerKernel } from "@tensorflow/tfjs-core";
import { requireNativeGemm } from "./wasm-expert-matmul.js";
import { memoryOffset, type WasmBackend } from "./wasm-heap.js";

/** Attributes of {@link ROUTED_EXPERTS_FORWARD} and {@link ROUTED_EXPERTS_BACKWARD}. */
export interface RoutedExpertsAttrs {
  /** Entries per expert, in expert order (sums to R). */
  counts: Int32Array;
  /** Batch row of each entry `[R]`, entries grouped by expert. */
  rows: Int32Array;
  /** Routing slot `row * k + j` of each entry `[R]`: a permutation of `[0, R)`. */
  slots: Int32Array;
  /** Whether each layer ends in a relu (else linear). */
  relu: boolean[];
}

/**
 * Kernel: a whole sparse expert pool forward. Inputs `x` `[B, d0]`, `slotWeights` `[B, k]` and
 * per layer l `kernel{l}` `[N, d_l, d_{l+1}]`, `bias{l}` `[N, d_{l+1}]`. Outputs the mixture
 * `[B, d_L]`, the routed rows `[R, d0]` and every layer's output `[R, d_{l+1}]` (kept for the
 * backward pass).
 */
export const ROUTED_EXPERTS_FORWARD = "MdrecRoutedExpertsForward";
/**
 * Kernel: the backward pass of {@link ROUTED_EXPERTS_FORWARD}. Inputs `dy` `[B, d_L]`, `routed`,
 * `slotWeights` and per layer `kernel{l}`, `hidden{l}`. Outputs `dx`, `dSlotWeights` `[B, k]`
 * and per layer the kernel and bias gradients, interleaved.
 */
export const ROUTED_EXPERTS_BACKWARD = "MdrecRoutedExpertsBackward";

// Offsets are read after every output is allocated: allocating can grow (and move) the heap.
function offsetOf(backend: WasmBackend, info: tf.TensorInfo | undefined): number {
  return info === undefined ? -1 : memoryOffset(backend, info);
}

const routedExpertsForward: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, ROUTED_EXPERTS_FORWARD, "routedExpertMixture");
  const { counts, rows, slots, relu } = attrs as unknown as RoutedExpertsAttrs;
  const x = inputs.x!;
  const [batch, inputWidth] = x.shape as [number, number];
  const entries = rows.length;
  const kernels = relu.map((_, layer) => inputs[`kernel${layer}`]!);
  const widths = kernels.map((kernel) => kernel.shape[2]!);
  const out = backend.makeOutput([batch, widths[widths.length - 1]!], "float32");
  const routed = backend.makeOutput([entries, inputWidth], "float32");
  const hidden = widths.map((width) => backend.makeOutput([entries, width], "float32"));
  const plan = new Float64Array(7 + 7 * relu.length);
  plan.set([
    batch,
    inputWidth,
    offsetOf(backend, x),
    offsetOf(backend, inputs.slotWeights),
    offsetOf(backend, routed),
    offsetOf(backend, out),
    -1,
  ]);
  relu.forEach((isRelu, layer) => {
    plan.set(
      [
        widths[layer]!,
        offsetOf(backend, kernels[layer]),
        offsetOf(backend, inputs[`bias${layer}`]),
        offsetOf(backend, hidden[layer]),
        isRelu ? 1 : 0,
        -1,
        -1,
      ],
      7 + 7 * layer,
    );
  });
  gemm.routedExpertsForward(backend.wasm.HEAPU8.buffer, plan, rows, slots, counts);
  return [out, routed, ...hidden];
};

const routedExpertsBackward: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, ROUTED_EXPERTS_BACKWARD, "routedExpertMixture");
  const { counts, rows, slots, relu } = attrs as unknown as RoutedExpertsAttrs;
  const { dy, routed, slotWeights } = inputs as Record<string, tf.TensorInfo>;
  const batch = dy!.shape[0]!;
  const inputWidth = routed!.shape[1]!;
  const kernels = relu.map((_, layer) => inputs[`kernel${layer}`]!);
  const dx = backend.makeOutput([batch, inputWidth], "float32");
  const dSlotWeights = backend.makeOutput([...slotWeights!.shape], "float32");
  const layerGradients = kernels.map((kernel) => [
    backend.makeOutput([...kernel.shape], "float32"),
    backend.makeOutput([kernel.shape[0]!, kernel.shape[2]!], "float32"),
  ]);
  const plan = new Float64Array(7 + 7 * relu.length);
  plan.set([
    batch,
    inputWidth,
    offsetOf(backend, dy),
    offsetOf(backend, slotWeights),
    offsetOf(backend, routed),
    offsetOf(backend, dx),
    offsetOf(backend, dSlotWeights),
  ]);
  relu.forEach((isRelu, layer) => {
    const [kernelGradient, biasGradient] = layerGradients[layer]!;
    plan.set(
      [
        kernels[layer]!.shape[2]!,
        offsetOf(backend, kernels[layer]),
        -1,
        offsetOf(backend, inputs[`hidden${layer}`]),
        isRelu ? 1 : 0,
        offsetOf(backend, kernelGradient),
        offsetOf(backend, biasGradient),
      ],
      7 + 7 * layer,
    );
  });
  gemm.routedExpertsBackward(backend.wasm.HEAPU8.buffer, plan, rows, slots, counts);
  return [dx, dSlotWeights, ...layerGradients.flat()];
};

/**
 * Registers the routed-experts kernels on the `wasm` backend (idempotent). They run only while
 * the native GEMM is enabled; `routedExpertMixture` checks that and falls back.
 */
export function registerRoutedExpertKernels(): void {
  for (const [kernelName, kernelFunc] of [
    [ROUTED_EXPERTS_FORWARD, routedExpertsForward],
    [ROUTED_EXPERTS_BACKWARD, routedExpertsBackward],
  ] as const) {
    if (getKernel(kernelName, "wasm") === undefined)
      registerKernel({ kernelName, backendName: "wasm", kernelFunc });
  }
}
