import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import {
  ROUTED_EXPERTS_BACKWARD,
  ROUTED_EXPERTS_FORWARD,
  type RoutedExpertsAttrs,
  type RoutedPoolAttrs,
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
  prefix = "routedExpertMixture",
  xName = `${prefix} x`,
): number {
  assertTensor(xName, x, { rank: 2, dtype: "float32" });
  const [batch, inputWidth] = x.shape;
  assertTensor(`${prefix} weights`, weights, { rank: 2, dtype: "float32", shape: [batch, null] });
  if (!Array.isArray(layers) || layers.length === 0) {
    throw new ShapeError(
      `${prefix} layers must be a non-empty array of { kernel, bias, activation }, received ${String(layers)}`,
    );
  }
  let width = inputWidth;
  let numExperts = 0;
  layers.forEach((layer, index) => {
    const where = `${prefix} layers[${index}]`;
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
      `${prefix} entries.counts must list ${numExperts} counts (one per expert), received ${JSON.stringify(counts)}`,
    );
  }
  let sum = 0;
  counts.forEach((count, expert) => {
    assertInteger(`${prefix} entries.counts[${expert}]`, count, 0);
    sum += count;
  });
  for (const [name, array] of [
    ["rows", rows],
    ["slots", slots],
  ] as const) {
    if (!(array instanceof Int32Array) || array.length !== total) {
      throw new ShapeError(
        `${prefix} entries.${name} must be an Int32Array of ${total} entries (B=${batch} x k=${slotsPerRow}), received ${array instanceof Int32Array ? `length ${array.length}` : String(array)}`,
      );
    }
  }
  if (sum !== total) {
    throw new ShapeError(
      `${prefix} entries.counts must sum to ${total} (B=${batch} x k=${slotsPerRow}), received ${JSON.stringify(counts)} (sum ${sum})`,
    );
  }
  const seen = new Uint8Array(total);
  for (let entry = 0; entry < total; entry++) {
    const row = rows[entry]!;
    const slot = slots[entry]!;
    if (row < 0 || row >= batch) {
      throw new ShapeError(`${prefix} entries.rows[${entry}] must be in [0, ${batch}), received ${row}`);
    }
    if (slot < 0 || slot >= total || seen[slot] === 1) {
      throw new ShapeError(
        `${prefix} entries.slots[${entry}] must be a slot in [0, ${total}) not listed before, received ${slot}`,
      );
    }
    seen[slot] = 1;
  }
  return slotsPerRow;
}

/** One expert pool of {@link routedExpertPools}: its layers, routed entries and routing weights. */
export interface RoutedPool {
  /** One `{ kernel [N, in, out], bias [N, out], activation }` per layer, `in` of the first being `dIn`. */
  layers: readonly ExpertLayerWeights[];
  /** The `B * k` routing slots grouped by expert (host arrays). */
  entries: RoutedEntries;
  /** `[B, k]` float32 routing weights. */
  weights: tf.Tensor2D;
}

// Pools as two native kernels: one forward, one backward (every gradient at once), the experts of
// all pools sharing the threads. Returns the sum of the pools' mixtures, in pool order.
function nativeRoutedPools(x: tf.Tensor2D, pools: readonly RoutedPool[]): tf.Tensor2D {
  const attrs: RoutedExpertsAttrs = {
    pools: pools.map(
      (pool): RoutedPoolAttrs => ({
        counts: Int32Array.from(pool.entries.counts),
        rows: pool.entries.rows,
        slots: pool.entries.slots,
        relu: pool.layers.map((layer) => layer.activation === "relu"),
      }),
    ),
  };
  const layerCounts = pools.map((pool) => pool.layers.length);
  // Positions of each pool's arguments after x: its weights, then kernel and bias per layer.
  const firstArgument = layerCounts.map((_, p) =>
    layerCounts.slice(0, p).reduce((sum, count) => sum + 1 + 2 * count, 1),
  );
  const mixture = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const inputs = args.slice(0, -1) as tf.Tensor[];
    const forwardInputs: tf.NamedTensorMap = { x: inputs[0]! };
    layerCounts.forEach((layerCount, p) => {
      const first = firstArgument[p]!;
      forwardInputs[`slotWeights${p}`] = inputs[first]!;
      for (let layer = 0; layer < layerCount; layer++) {
        forwardInputs[`kernel${p}_${layer}`] = inputs[first + 1 + 2 * layer]!;
        forwardInputs[`bias${p}_${layer}`] = inputs[first + 2 + 2 * layer]!;
      }
    });
    const outputs = tf
      .engine()
      .runKernel(ROUTED_EXPERTS_FORWARD, forwardInputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
    // Per pool: [out, routed, ...hidden] forward; saved: routed, weights, kernels, hidden.
    const mixtures: tf.Tensor[] = [];
    const saved: tf.Tensor[] = [];
    let position = 0;
    layerCounts.forEach((layerCount, p) => {
      const [out, routed, ...hidden] = outputs.slice(position, position + 2 + layerCount);
      position += 2 + layerCount;
      mixtures.push(out!);
      saved.push(routed!, forwardInputs[`slotWeights${p}`]!);
      for (let layer = 0; layer < layerCount; layer++) saved.push(forwardInputs[`kernel${p}_${layer}`]!);
      saved.push(...hidden);
    });
    save(saved);
    return {
      value: mixtures.reduce((sum, out) => tf.add(sum, out)), // [B, dOut]
      gradFunc: (dy: tf.Tensor, savedTensors: tf.Tensor[]) => {
        const backwardInputs: tf.NamedTensorMap = { dy };
        let offset = 0;
        layerCounts.forEach((layerCount, p) => {
          backwardInputs[`routed${p}`] = savedTensors[offset]!;
          backwardInputs[`slotWeights${p}`] = savedTensors[offset + 1]!;
          for (let layer = 0; layer < layerCount; layer++) {
            backwardInputs[`kernel${p}_${layer}`] = savedTensors[offset + 2 + layer]!;
            backwardInputs[`hidden${p}_${layer}`] = savedTensors[offset + 2 + layerCount + layer]!;
          }
          offset += 2 + 2 * layerCount;
        });
        const gradients = tf
          .engine()
          .runKernel(
            ROUTED_EXPERTS_BACKWARD,
            backwardInputs,
            attrs as unknown as tf.NamedAttrMap,
          ) as tf.Tensor[];
        // Per pool: [dx, dWeights, (dKernel, dBias) per layer]; x's gradient sums the pools' dx.
        const inputGradients: tf.Tensor[] = [];
        const parameterGradients: tf.Tensor[] = [];
        let position = 0;
        layerCounts.forEach((layerCount) => {
          inputGradients.push(gradients[position]!);
          parameterGradients.push(...gradients.slice(position + 1, position + 2 + 2 * layerCount));
          position += 2 + 2 * layerCount;
        });
        return [inputGradients.reduce((sum, dx) => tf.add(sum, dx)), ...parameterGradients];
      },
    };
  });
  return tf.tidy(
    () =>
      mixture(
        x,
        ...pools.flatMap((pool) => [
          pool.weights,
          ...pool.layers.flatMap((layer) => [layer.kernel, layer.bias]),
        ]),
      ) as tf.Tensor2D,
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
    return nativeRoutedPools(x, [{ layers, entries, weights }]);
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

/**
 * The sum of several sparse expert pools on the same rows, `sum_p routedExpertMixture(x, pools[p])`
 * in pool order: e.g. CESAA's always-on shared experts (every row routed to all S) plus its top-k
 * specific experts. Gradients reach `x`, every pool's weights and every kernel and bias.
 *
 * With mdrec's native GEMM on `wasm` and relu/linear layers this is one kernel forward and one
 * backward for all pools, whose experts share the threads (largest first): a pool of a few big
 * experts and one of many small ones no longer wait for their slowest expert in turn. The
 * forward values are those of the separate mixtures added up; each expert still runs whole on
 * one thread, so the results do not depend on the thread count. Elsewhere it is the composed
 * {@link routedExpertMixture} of each pool, added up.
 *
 * @param x `[B, dIn]` float32.
 * @param pools one or more `{ layers, entries, weights }` (see {@link routedExpertMixture}); the
 *   last layers of all pools have the same width.
 * @returns `[B, out of the last layer]`.
 * @example
 * const h = routedExpertPools(x, [
 *   { layers: sharedLayers, entries: sharedGroups, weights: sharedWeights },
 *   { layers: specificLayers, entries: groups, weights: routing.weights },
 * ]);
 */
export function routedExpertPools(x: tf.Tensor2D, pools: readonly RoutedPool[]): tf.Tensor2D {
  if (!Array.isArray(pools) || pools.length === 0) {
    throw new ShapeError(
      `routedExpertPools pools must be a non-empty array of { layers, entries, weights }, received ${String(pools)}`,
    );
  }
  let outputWidth = -1;
  pools.forEach((pool: RoutedPool, p: number) => {
    const prefix = `routedExpertPools pools[${p}]`;
    if (pool == null || typeof pool !== "object") {
      throw new ShapeError(`${prefix} must be { layers, entries, weights }, received ${String(pool)}`);
    }
    assertRoutedArguments(x, pool.layers, pool.entries, pool.weights, prefix, "routedExpertPools x");
    const width = pool.layers[pool.layers.length - 1]!.kernel.shape[2];
    if (p > 0 && width !== outputWidth) {
      throw new ShapeError(
        `${prefix} must end in ${outputWidth} units like pools[0], received a last layer of ${width}`,
      );
    }
    outputWidth = width;
  });
  const native = pools.every(
    (pool: RoutedPool) =>
      pool.entries.rows.length > 0 &&
      nativeRoutedExpertsAvailable(pool.layers.map((layer) => layer.activation)),
  );
  if (native) return nativeRoutedPools(x, pools);
  return tf.tidy(() =>
    pools
      .map((pool: RoutedPool) => routedExpertMixture(x, pool.layers, pool.entries, pool.weights))
      .reduce((sum, mixture) => tf.add(sum, mixture) as tf.Tensor2D),
  );
}
