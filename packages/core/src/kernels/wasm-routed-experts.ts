import type * as tf from "@tensorflow/tfjs-core";
import { getKernel, type KernelFunc, registerKernel } from "@tensorflow/tfjs-core";
import { requireNativeGemm } from "./wasm-expert-matmul.js";
import { memoryOffset, type WasmBackend } from "./wasm-heap.js";

/** The routing of one pool of {@link ROUTED_EXPERTS_FORWARD} / {@link ROUTED_EXPERTS_BACKWARD}. */
export interface RoutedPoolAttrs {
  /** Entries per expert, in expert order (sums to R). */
  counts: Int32Array;
  /** Batch row of each entry `[R]`, entries grouped by expert. */
  rows: Int32Array;
  /** Routing slot `row * k + j` of each entry `[R]`: a permutation of `[0, R)`. */
  slots: Int32Array;
  /** Whether each layer ends in a relu (else linear). */
  relu: boolean[];
}

/** Attributes of {@link ROUTED_EXPERTS_FORWARD} and {@link ROUTED_EXPERTS_BACKWARD}: one entry per pool. */
export interface RoutedExpertsAttrs {
  pools: RoutedPoolAttrs[];
}

/**
 * Kernel: whole sparse expert pools forward, their experts sharing the threads. Inputs `x`
 * `[B, d0]` and per pool p `slotWeights{p}` `[B, k_p]` and per layer l `kernel{p}_{l}`
 * `[N_p, d_l, d_{l+1}]`, `bias{p}_{l}` `[N_p, d_{l+1}]`. Outputs per pool the mixture `[B, d_L]`,
 * the routed rows `[R_p, d0]` and every layer's output `[R_p, d_{l+1}]` (kept for the backward
 * pass).
 */
export const ROUTED_EXPERTS_FORWARD = "MdrecRoutedExpertsForward";
/**
 * Kernel: the backward pass of {@link ROUTED_EXPERTS_FORWARD} for one upstream gradient `dy`
 * `[B, d_L]` shared by the pools (their mixtures are summed). Inputs `dy` and per pool
 * `routed{p}`, `slotWeights{p}`, `kernel{p}_{l}`, `hidden{p}_{l}`. Outputs per pool `dx` (that
 * pool's part), `dSlotWeights` `[B, k_p]` and per layer the kernel and bias gradients, interleaved.
 */
export const ROUTED_EXPERTS_BACKWARD = "MdrecRoutedExpertsBackward";

// Offsets are read after every output is allocated: allocating can grow (and move) the heap.
function offsetOf(backend: WasmBackend, info: tf.TensorInfo | undefined): number {
  return info === undefined ? -1 : memoryOffset(backend, info);
}

/** One pool's arguments of the add-on call: `[plan, rows, slots, counts]`. */
type PoolCall = [Float64Array, Int32Array, Int32Array, Int32Array];

function poolCall(pool: RoutedPoolAttrs, header: number[], layerPlans: number[][]): PoolCall {
  const plan = new Float64Array(7 + 7 * pool.relu.length);
  plan.set(header);
  layerPlans.forEach((layerPlan, layer) => {
    plan.set(layerPlan, 7 + 7 * layer);
  });
  return [plan, pool.rows, pool.slots, pool.counts];
}

const routedExpertsForward: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, ROUTED_EXPERTS_FORWARD, "routedExpertMixture");
  const { pools } = attrs as unknown as RoutedExpertsAttrs;
  const x = inputs.x!;
  const [batch, inputWidth] = x.shape as [number, number];
  const allocated = pools.map((pool, p) => {
    const kernels = pool.relu.map((_, layer) => inputs[`kernel${p}_${layer}`]!);
    const widths = kernels.map((kernel) => kernel.shape[2]!);
    return {
      kernels,
      out: backend.makeOutput([batch, widths[widths.length - 1]!], "float32"),
      routed: backend.makeOutput([pool.rows.length, inputWidth], "float32"),
      hidden: widths.map((width) => backend.makeOutput([pool.rows.length, width], "float32")),
    };
  });
  const calls = pools.map((pool, p) => {
    const { kernels, out, routed, hidden } = allocated[p]!;
    const header = [
      batch,
      inputWidth,
      offsetOf(backend, x),
      offsetOf(backend, inputs[`slotWeights${p}`]),
      offsetOf(backend, routed),
      offsetOf(backend, out),
      -1,
    ];
    const layerPlans = pool.relu.map((isRelu, layer) => [
      kernels[layer]!.shape[2]!,
      offsetOf(backend, kernels[layer]),
      offsetOf(backend, inputs[`bias${p}_${layer}`]),
      offsetOf(backend, hidden[layer]),
      isRelu ? 1 : 0,
      -1,
      -1,
    ]);
    return poolCall(pool, header, layerPlans);
  });
  gemm.routedExpertsForward(backend.wasm.HEAPU8.buffer, calls);
  return allocated.flatMap(({ out, routed, hidden }) => [out, routed, ...hidden]);
};

const routedExpertsBackward: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const { gemm, backend } = requireNativeGemm(anyBackend, ROUTED_EXPERTS_BACKWARD, "routedExpertMixture");
  const { pools } = attrs as unknown as RoutedExpertsAttrs;
  const dy = inputs.dy!;
  const batch = dy.shape[0]!;
  const allocated = pools.map((pool, p) => {
    const routed = inputs[`routed${p}`]!;
    const slotWeights = inputs[`slotWeights${p}`]!;
    const kernels = pool.relu.map((_, layer) => inputs[`kernel${p}_${layer}`]!);
    return {
      routed,
      slotWeights,
      kernels,
      dx: backend.makeOutput([batch, routed.shape[1]!], "float32"),
      dSlotWeights: backend.makeOutput([...slotWeights.shape], "float32"),
      layerGradients: kernels.map((kernel) => [
        backend.makeOutput([...kernel.shape], "float32"),
        backend.makeOutput([kernel.shape[0]!, kernel.shape[2]!], "float32"),
      ]),
    };
  });
  const calls = pools.map((pool, p) => {
    const { routed, slotWeights, kernels, dx, dSlotWeights, layerGradients } = allocated[p]!;
    const header = [
      batch,
      routed.shape[1]!,
      offsetOf(backend, dy),
      offsetOf(backend, slotWeights),
      offsetOf(backend, routed),
      offsetOf(backend, dx),
      offsetOf(backend, dSlotWeights),
    ];
    const layerPlans = pool.relu.map((isRelu, layer) => {
      const [kernelGradient, biasGradient] = layerGradients[layer]!;
      return [
        kernels[layer]!.shape[2]!,
        offsetOf(backend, kernels[layer]),
        -1,
        offsetOf(backend, inputs[`hidden${p}_${layer}`]),
        isRelu ? 1 : 0,
        offsetOf(backend, kernelGradient),
        offsetOf(backend, biasGradient),
      ];
    });
    return poolCall(pool, header, layerPlans);
  });
  gemm.routedExpertsBackward(backend.wasm.HEAPU8.buffer, calls);
  return allocated.flatMap(({ dx, dSlotWeights, layerGradients }) => [
    dx,
    dSlotWeights,
    ...layerGradients.flat(),
  ]);
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
