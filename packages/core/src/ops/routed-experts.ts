import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import {
  ROUTED_EXPERTS_BACKWARD,
  ROUTED_EXPERTS_FORWARD,
  type RoutedExpertsAttrs,
  registerRoutedExpertKernels,
} from "../kernels/wasm-routed-experts.js";
import { assertInteger, assertTensor } from "../validate.js";
import { type Activation, assertActivation, isEpilogueActivation } from "./activations.js";
import { nativeExpertLayersAvailable, segmentExpertDense } from "./expert-matmul.js";
import { gatherRows, scatterAddRows } from "./rows.js";

registerRoutedExpertKernels();

/** One dense layer of every expert of a pool: `act(input @ kernel[e] + bias[e])`. */
export interface ExpertLayerWeights {
  /** `[N, in, out]` float32. */
  kernel: tf.Tensor3D;
  /** `[N, out]` float32. */
  bias: tf.Tensor2D;
  activation: Activation;
}

/**
 * The `B * k` routing slots of a batch grouped by expert (host arrays, e.g. from
 * `groupSlotsByExpert` in `@mdrec/experts`).
 */
export interface RoutedEntries {
  /** Entries per expert, `[N]`, summing to `B * k`. */
  counts: readonly number[];
  /** Batch row of each entry, `[B * k]`, entries grouped by expert. */
  rows: Int32Array;
  /** Routing slot `row * k + j` of each entry, `[B * k]`: each slot exactly once. */
  slots: Int32Array;
}

/**
 * Whether {@link routedExpertMixture} runs its native kernels now (`wasm` with mdrec's native
 * GEMM) for layers with these activations (the kernels fuse relu and linear ones) and no
 * `afterLayer`.
 * @example
 * const routed = nativeRoutedExpertsAvailable(["relu", "linear"]);
 */
export function nativeRoutedExpertsAvailable(activations: readonly Activation[] = []): boolean {
  return activations.every(isEpilogueActivation) && nativeExpertLayersAvailable();
}

// The argument checks; returns the number of routing slots per row k.
function assertRoutedArguments(
  x: tf.Tensor2D,
  layers: readonly ExpertLayerWeights[],
  entries: RoutedEntries,
  weights: tf.Tensor2D,
): number {
  assertTensor("routedExpertMixture x", x, { rank: 2, dtype: "float32" });
  const [batch, inputWidth] = x.shape;
  assertTensor("routedExpertMixture weights", weights, { rank: 2, dtype: "float32", shape: [batch, null] });
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new ShapeError(
      `routedExpertMixture layers must be a non-empty array of { kernel, bias, activation }, received ${String(layers)}`,
    );
  }
  let width = inputWidth;
  let numExperts = 0;
  layers.forEach((layer, index) => {
    const where = `routedExpertMixture layers[${index}]`;
    assertTensor(`${where}.kernel`, layer?.kernel, { rank: 3, dtype: "float32" });
    const [experts, inner, outer] = layer.kernel.shape;
    if (index === 0) numExperts = experts;
    if (experts !== numExperts || inner !== width) {
      throw new ShapeError(
        `${where}.kernel must have shape [${numExperts}, ${width}, out], received [${layer.kernel.shape.join(", ")}]`,
      );
    }
    assertTensor(`${where}.bias`, layer.bias, { rank: 2, dtype: "float32", shape: [numExperts, outer] });
    assertActivation(`${where}.activation`, layer.activation);
    width = outer;
  });
  const slotsPerRow = weights.shape[1];
  const total = batch * slotsPerRow;
  const { counts, rows, slots } = entries ?? ({} as RoutedEntries);
  if (!Array.isArray(counts) || counts.length !== numExperts) {
    throw new ShapeError(
      `routedExpertMixture entries.counts must list ${numExperts} counts (one per expert), received ${JSON.stringify(counts)}`,
    );
  }
  let sum = 0;
  counts.forEach((count, expert) => {
    assertInteger(`routedExpertMixture entries.counts[${expert}]`, count, 0);
    sum += count;
  });
  for (const [name, array] of [
    ["rows", rows],
    ["slots", slots],
  ] as const) {
    if (!(array instanceof Int32Array) || array.length !== total) {
      throw new ShapeError(
        `routedExpertMixture entries.${name} must be an Int32Array of ${total} entries (B=${batch} x k=${slotsPerRow}), received ${array instanceof Int32Array ? `length ${array.length}` : String(array)}`,
      );
    }
  }
  if (sum !== total) {
    throw new ShapeError(
      `routedExpertMixture entries.counts must sum to ${total} (B=${batch} x k=${slotsPerRow}), received ${JSON.stringify(counts)} (sum ${sum})`,
    );
  }
  const seen = new Uint8Array(total);
  for (let entry = 0; entry < total; entry++) {
    const row = rows[entry]!;
    const slot = slots[entry]!;
    if (row < 0 || row >= batch) {
      throw new ShapeError(
        `routedExpertMixture entries.rows[${entry}] must be in [0, ${batch}), received ${row}`,
      );
    }
    if (slot < 0 || slot >= total || seen[slot] === 1) {
      throw new ShapeError(
        `routedExpertMixture entries.slots[${entry}] must be a slot in [0, ${total}) not listed before, received ${slot}`,
      );
    }
    seen[slot] = 1;
  }
  return slotsPerRow;
}

// The whole pool as two native kernels: one forward, one backward (every gradient at once).
function nativeRoutedMixture(
  x: tf.Tensor2D,
  layers: readonly ExpertLayerWeights[],
  entries: RoutedEntries,
  weights: tf.Tensor2D,
): tf.Tensor2D {
  const attrs: RoutedExpertsAttrs = {
    counts: Int32Array.from(entries.counts),
    rows: entries.rows,
    slots: entries.slots,
    relu: layers.map((layer) => layer.activation === "relu"),
  };
  const layerCount = layers.length;
  const mixture = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [input, slotWeights, ...parameters] = args.slice(0, -1) as tf.Tensor[];
    const forwardInputs: tf.NamedTensorMap = { x: input!, slotWeights: slotWeights! };
    for (let layer = 0; layer < layerCount; layer++) {
      forwardInputs[`kernel${layer}`] = parameters[2 * layer]!;
      forwardInputs[`bias${layer}`] = parameters[2 * layer + 1]!;
    }
    const [out, routed, ...hidden] = tf
      .engine()
      .runKernel(ROUTED_EXPERTS_FORWARD, forwardInputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    save([routed!, slotWeights!, ...parameters.filter((_, index) => index % 2 === 0), ...hidden]);
    return {
      value: out!,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const backwardInputs: tf.NamedTensorMap = { dy, routed: saved[0]!, slotWeights: saved[1]! };
        for (let layer = 0; layer < layerCount; layer++) {
          backwardInputs[`kernel${layer}`] = saved[2 + layer]!;
          backwardInputs[`hidden${layer}`] = saved[2 + layerCount + layer]!;
        }
        return tf
          .engine()
          .runKernel(
            ROUTED_EXPERTS_BACKWARD,
            backwardInputs,
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[];
      },
    };
  });
  return tf.tidy(
    () => mixture(x, weights, ...layers.flatMap((layer) => [layer.kernel, layer.bias])) as tf.Tensor2D,
  );
}

/**
 * A sparse mixture of experts over routed rows: every expert (an MLP of `layers`) runs only on
 * the rows routed to it, and `out[b] = sum_j weights[b, j] * E_{e(b, j)}(x[b])`, where entry
 * `(b, j)` of the routing goes to expert `e(b, j)` (listed by `entries`, grouped by expert).
 * Gradients reach `x`, `weights` and every kernel and bias.
 *
 * With mdrec's native GEMM on `wasm`, relu/linear layers and no `afterLayer`, this is one kernel
 * forward and one backward: each expert's rows are gathered, pushed through all its layers and
 * back on one pool thread, so the results do not depend on the thread count. Elsewhere it is a
 * row gather, {@link segmentExpertDense} per layer (then `afterLayer`, e.g. dropout), and a
 * weighted scatter-add of the rows (same results within float rounding).
 *
 * @param x `[B, dIn]` float32.
 * @param layers one `{ kernel [N, in, out], bias [N, out], activation }` per layer, `in` of the
 *   first being `dIn`.
 * @param entries the `B * k` routing slots grouped by expert (host arrays).
 * @param weights `[B, k]` float32 routing weights; entry `slots[i]` is `weights[b, j]` with
 *   `slots[i] = b * k + j`.
 * @param afterLayer applied to each layer's `[B * k, out]` output (forces the composed path).
 * @returns `[B, out of the last layer]`.
 * @example
 * const groups = groupSlotsByExpert(routing.indices.dataSync(), k, numExperts);
 * const mixed = routedExpertMixture(x, [{ kernel, bias, activation: "relu" }], groups, routing.weights);
 */
export function routedExpertMixture(
  x: tf.Tensor2D,
  layers: readonly ExpertLayerWeights[],
  entries: RoutedEntries,
  weights: tf.Tensor2D,
  afterLayer?: (hidden: tf.Tensor2D, layerIndex: number) => tf.Tensor2D,
): tf.Tensor2D {
  const slotsPerRow = assertRoutedArguments(x, layers, entries, weights);
  const batch = x.shape[0];
  const total = batch * slotsPerRow;
  const outputWidth = layers[layers.length - 1]!.kernel.shape[2];
  if (total === 0) return tf.zeros([batch, outputWidth]) as tf.Tensor2D;
  if (afterLayer === undefined && nativeRoutedExpertsAvailable(layers.map((layer) => layer.activation)))
    return nativeRoutedMixture(x, layers, entries, weights);
  return tf.tidy(() => {
    const rowIds = tf.tensor1d(entries.rows, "int32"); // [B * k], grouped by expert
    const slotIds = tf.tensor1d(entries.slots, "int32"); // [B * k], grouped by expert
    let hidden = gatherRows(x, rowIds); // [B * k, dIn]
    layers.forEach((layer, index) => {
      hidden = segmentExpertDense(hidden, layer.kernel, entries.counts, layer.bias, layer.activation); // [B * k, out]
      if (afterLayer !== undefined) hidden = afterLayer(hidden, index);
    });
    const slotWeights = gatherRows(tf.reshape(weights, [total, 1]) as tf.Tensor2D, slotIds); // [B * k, 1]
    return scatterAddRows(tf.mul(hidden, slotWeights) as tf.Tensor2D, rowIds, batch); // [B, dOut]
  });
}
