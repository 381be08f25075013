import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import {
  EXPERT_EPILOGUE_GRADIENT,
  EXPERT_MATMUL,
  EXPERT_WEIGHT_GRADIENT,
  type ExpertMatMulAttrs,
  nativeExpertGemm,
  registerExpertKernels,
} from "../kernels/wasm-expert-matmul.js";
import { assertInteger, assertTensor } from "../validate.js";
import { type Activation, applyActivation, assertActivation, isEpilogueActivation } from "./activations.js";
import { gatherRows } from "./rows.js";

registerExpertKernels();

function runExpertMatMul(
  a: tf.Tensor2D,
  weights: tf.Tensor3D,
  attrs: ExpertMatMulAttrs,
  bias?: tf.Tensor2D,
): tf.Tensor2D {
  const inputs: tf.NamedTensorMap = bias === undefined ? { a, b: weights } : { a, b: weights, bias };
  return tf.engine().runKernel(EXPERT_MATMUL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
}

function runWeightGradient(a: tf.Tensor2D, dy: tf.Tensor2D, attrs: ExpertMatMulAttrs): tf.Tensor3D {
  return tf
    .engine()
    .runKernel(EXPERT_WEIGHT_GRADIENT, { a, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}

// The native kernels with their gradients: d(a) is the same product against W transposed and
// d(W) the per-expert a^T @ dy, both strided BLAS calls on the wasm heap.
function nativeExpertProduct(x: tf.Tensor2D, weights: tf.Tensor3D, attrs: ExpertMatMulAttrs): tf.Tensor2D {
  const product = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, kernel] = args as [tf.Tensor2D, tf.Tensor3D];
    (args[2] as tf.GradSaveFunc)([input, kernel]);
    return {
      value: runExpertMatMul(input, kernel, { ...attrs, transposeB: false }),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        runExpertMatMul(dy as tf.Tensor2D, saved[1] as tf.Tensor3D, { ...attrs, transposeB: true }),
        runWeightGradient(saved[0] as tf.Tensor2D, dy as tf.Tensor2D, attrs),
      ],
    };
  });
  return product(x, weights) as tf.Tensor2D;
}

/** Whether the expert ops run their native kernels now (`wasm` with mdrec's native GEMM). */
export function nativeExpertLayersAvailable(): boolean {
  return tf.getBackend() === "wasm" && nativeExpertGemm(tf.backend()) !== null;
}

// blockExpertMatMul's argument checks (blockExpertDense reports them under the same name).
function assertBlockArguments(x: tf.Tensor2D, weights: tf.Tensor3D): void {
  assertTensor("blockExpertMatMul weights", weights, { rank: 3, dtype: "float32" });
  const [numExperts, inner] = weights.shape;
  assertTensor("blockExpertMatMul x", x, { rank: 2, dtype: "float32" });
  if (x.shape[1] !== numExperts * inner) {
    throw new ShapeError(
      `blockExpertMatMul x must have ${numExperts} x ${inner} = ${numExperts * inner} columns (weights [${weights.shape.join(", ")}]), received shape [${x.shape.join(", ")}]`,
    );
  }
}

// segmentExpertMatMul's argument checks (segmentExpertDense reports them under the same name);
// returns the number of rows R.
function assertSegmentArguments(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  segmentRows: readonly number[],
): number {
  assertTensor("segmentExpertMatMul weights", weights, { rank: 3, dtype: "float32" });
  const [numExperts, inner] = weights.shape;
  assertTensor("segmentExpertMatMul x", x, { rank: 2, dtype: "float32" });
  if (x.shape[1] !== inner) {
    throw new ShapeError(
      `segmentExpertMatMul x must have ${inner} columns (weights [${weights.shape.join(", ")}]), received shape [${x.shape.join(", ")}]`,
    );
  }
  if (!Array.isArray(segmentRows) || segmentRows.length !== numExperts) {
    throw new ShapeError(
      `segmentExpertMatMul segmentRows must list ${numExperts} row counts (one per expert), received ${JSON.stringify(segmentRows)}`,
    );
  }
  let total = 0;
  segmentRows.forEach((count, expert) => {
    assertInteger(`segmentExpertMatMul segmentRows[${expert}]`, count, 0);
    total += count;
  });
  if (total !== x.shape[0]) {
    throw new ShapeError(
      `segmentExpertMatMul segmentRows must sum to the ${x.shape[0]} rows of x, received ${JSON.stringify(segmentRows)} (sum ${total})`,
    );
  }
  return total;
}

/**
 * Every expert's linear layer on its own column block of a shared batch (dense dispatch, no
 * transposes): `out[:, e*M:(e+1)*M] = x[:, e*K:(e+1)*K] @ weights[e]`.
 *
 * With mdrec's native GEMM on `wasm` this is one strided BLAS call forward and two backward;
 * elsewhere it is the equivalent reshape / transpose / batched matmul (same results within float
 * rounding, differentiable on every backend).
 *
 * @param x `[B, N * K]` float32, expert `e`'s inputs in columns `[e*K, (e+1)*K)`.
 * @param weights `[N, K, M]` float32, one matrix per expert.
 * @returns `[B, N * M]`.
 * @example
 * const hidden = blockExpertMatMul(x, kernel); // x [B, 4 * 256], kernel [4, 256, 128] -> [B, 4 * 128]
 */
export function blockExpertMatMul(x: tf.Tensor2D, weights: tf.Tensor3D): tf.Tensor2D {
  assertBlockArguments(x, weights);
  const [numExperts, inner, outer] = weights.shape;
  const batch = x.shape[0];
  if (nativeExpertLayersAvailable() && batch > 0) {
    return nativeExpertProduct(x, weights, {
      layout: "blocks",
      numExperts,
      segmentRows: [],
      transposeB: false,
    });
  }
  return tf.tidy(() => {
    const perExpert = tf.transpose(tf.reshape(x, [batch, numExperts, inner]), [1, 0, 2]) as tf.Tensor3D; // [N, B, K]
    const product = tf.matMul(perExpert, weights); // [N, B, M]
    return tf.reshape(tf.transpose(product, [1, 0, 2]), [batch, numExperts * outer]) as tf.Tensor2D; // [B, N * M]
  });
}

/**
 * Every expert's linear layer on its own contiguous run of rows (sparse dispatch after rows
 * were grouped by expert): rows `[s_e, s_e + segmentRows[e])` of `x`, where `s_e` is the sum of
 * the earlier segments, are multiplied by `weights[e]`.
 *
 * With mdrec's native GEMM on `wasm` this is one BLAS call per non-empty segment (forward,
 * input gradient and weight gradient) and no slices, concats or padded gradients; elsewhere
 * it is slice + matmul per segment + concat (same results within float rounding).
 *
 * @param x `[R, K]` float32 rows grouped by expert.
 * @param weights `[N, K, M]` float32.
 * @param segmentRows `N` non-negative integers summing to `R` (host numbers: the grouping is
 *   known on the host when the rows are dispatched).
 * @returns `[R, M]`.
 * @example
 * const out = segmentExpertMatMul(routedRows, kernel, [3, 0, 5]); // routedRows [8, K], kernel [3, K, M]
 */
export function segmentExpertMatMul(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  segmentRows: readonly number[],
): tf.Tensor2D {
  const total = assertSegmentArguments(x, weights, segmentRows);
  const [numExperts, inner, outer] = weights.shape;
  if (total === 0) return tf.zeros([0, outer]) as tf.Tensor2D;
  if (nativeExpertLayersAvailable()) {
    return nativeExpertProduct(x, weights, {
      layout: "segments",
      numExperts,
      segmentRows: [...segmentRows],
      transposeB: false,
    });
  }
  return tf.tidy(() => {
    // unstack's gradient is a single stack; a pool of one expert reshapes (Unpack's gradient
    // cannot stack the bare tensor tfjs hands a one-output op).
    const kernels = numExperts === 1 ? [tf.reshape(weights, [inner, outer])] : tf.unstack(weights); // N x [K, M]
    const pieces: tf.Tensor2D[] = [];
    let start = 0;
    segmentRows.forEach((count, expert) => {
      if (count === 0) return;
      const rows = tf.slice(x, [start, 0], [count, inner]); // [count, K]
      pieces.push(tf.matMul(rows, kernels[expert] as tf.Tensor2D)); // [count, M]
      start += count;
    });
    return pieces.length === 1 ? pieces[0]! : (tf.concat(pieces, 0) as tf.Tensor2D); // [R, M]
  });
}

// The native products with the bias and a relu/linear activation applied in place, and one
// kernel for their backward pass (masked dy and the per-expert bias sums).
function nativeExpertDense(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  bias: tf.Tensor2D,
  attrs: ExpertMatMulAttrs,
): tf.Tensor2D {
  const relu = attrs.activation === "relu";
  const layer = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [input, kernel, offsets] = args as [tf.Tensor2D, tf.Tensor3D, tf.Tensor2D];
    const value = runExpertMatMul(input, kernel, { ...attrs, transposeB: false }, offsets);
    (args[3] as tf.GradSaveFunc)(relu ? [input, kernel, value] : [input, kernel]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const gradientInputs: tf.NamedTensorMap = relu ? { dy, out: saved[2]! } : { dy };
        const [dz, biasGradient] = tf
          .engine()
          .runKernel(EXPERT_EPILOGUE_GRADIENT, gradientInputs, attrs as unknown as tf.NamedAttrMap) as [
          tf.Tensor2D,
          tf.Tensor2D,
        ];
        return [
          runExpertMatMul(dz, saved[1] as tf.Tensor3D, { ...attrs, transposeB: true, activation: "linear" }),
          runWeightGradient(saved[0] as tf.Tensor2D, dz, attrs),
          biasGradient,
        ];
      },
    };
  });
  return layer(x, weights, bias) as tf.Tensor2D;
}

// The native layer with relu/linear fused; any other activation runs after a linear one.
function nativeExpertLayer(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  bias: tf.Tensor2D,
  activation: Activation,
  layout: ExpertMatMulAttrs["layout"],
  segmentRows: number[],
): tf.Tensor2D {
  const fused = isEpilogueActivation(activation);
  return tf.tidy(() => {
    const value = nativeExpertDense(x, weights, bias, {
      layout,
      numExperts: weights.shape[0],
      segmentRows,
      transposeB: false,
      activation: fused ? activation : "linear",
    });
    return (fused ? value : applyActivation(value, activation)) as tf.Tensor2D;
  });
}

// The weights, bias [N, M] and activation checks shared by the two Dense ops.
function assertLayerArguments(
  where: string,
  weights: tf.Tensor3D,
  bias: tf.Tensor2D,
  activation: unknown,
): void {
  assertTensor(`${where} weights`, weights, { rank: 3, dtype: "float32" });
  const [numExperts, , outer] = weights.shape;
  assertTensor(`${where} bias`, bias, { rank: 2, dtype: "float32", shape: [numExperts, outer] });
  assertActivation(`${where} activation`, activation);
}

/**
 * A layer of every expert on its own column block (dense dispatch): {@link blockExpertMatMul}
 * plus expert e's bias on its output block, then `activation`:
 * `out[:, e*M:(e+1)*M] = act(x[:, e*K:(e+1)*K] @ weights[e] + bias[e])`.
 *
 * With mdrec's native GEMM on `wasm`, the bias and a relu or linear activation are applied in
 * place after the products and the backward pass masks dy and sums the bias gradient in one
 * kernel (no separate Add, Relu, Step, Cast and Multiply over `[B, N*M]`). Elsewhere, and for
 * other activations, it is the product, an add and {@link applyActivation}.
 *
 * @param x `[B, N * K]` float32.
 * @param weights `[N, K, M]` float32.
 * @param bias `[N, M]` float32.
 * @param activation defaults to `"linear"`.
 * @returns `[B, N * M]`.
 * @example
 * const hidden = blockExpertDense(x, kernel, bias, "relu"); // x [B, 4 * 256], kernel [4, 256, 128], bias [4, 128]
 */
export function blockExpertDense(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  bias: tf.Tensor2D,
  activation: Activation = "linear",
): tf.Tensor2D {
  assertLayerArguments("blockExpertDense", weights, bias, activation);
  assertBlockArguments(x, weights);
  const [numExperts, , outer] = weights.shape;
  if (nativeExpertLayersAvailable() && x.shape[0] > 0) {
    return nativeExpertLayer(x, weights, bias, activation, "blocks", []);
  }
  return tf.tidy(
    () =>
      applyActivation(
        tf.add(blockExpertMatMul(x, weights), tf.reshape(bias, [numExperts * outer])),
        activation,
      ) as tf.Tensor2D,
  );
}

/**
 * A layer of every expert on its own contiguous run of rows (sparse dispatch):
 * {@link segmentExpertMatMul} plus expert e's bias on its rows, then `activation`.
 *
 * With mdrec's native GEMM on `wasm`, the bias and a relu or linear activation are applied in
 * place per segment and the backward pass masks dy and sums each expert's bias gradient in one
 * kernel (no per-row bias gather, Add, Relu or their gradients). Elsewhere, and for other
 * activations, it is the product, a gathered per-row bias and {@link applyActivation}.
 *
 * @param x `[R, K]` float32 rows grouped by expert.
 * @param weights `[N, K, M]` float32.
 * @param segmentRows `N` non-negative integers summing to `R`.
 * @param bias `[N, M]` float32.
 * @param activation defaults to `"linear"`.
 * @returns `[R, M]`.
 * @example
 * const out = segmentExpertDense(routedRows, kernel, [3, 0, 5], bias, "relu"); // [8, M]
 */
export function segmentExpertDense(
  x: tf.Tensor2D,
  weights: tf.Tensor3D,
  segmentRows: readonly number[],
  bias: tf.Tensor2D,
  activation: Activation = "linear",
): tf.Tensor2D {
  assertLayerArguments("segmentExpertDense", weights, bias, activation);
  const total = assertSegmentArguments(x, weights, segmentRows);
  if (nativeExpertLayersAvailable() && total > 0) {
    return nativeExpertLayer(x, weights, bias, activation, "segments", [...segmentRows]);
  }
  const product = segmentExpertMatMul(x, weights, segmentRows);
  return tf.tidy(() => {
    const expertOfRow = new Int32Array(total);
    let start = 0;
    segmentRows.forEach((count, expert) => {
      expertOfRow.fill(expert, start, start + count);
      start += count;
    });
    const rowBias = gatherRows(bias, tf.tensor1d(expertOfRow, "int32")); // [R, M]
    const out = applyActivation(tf.add(product, rowBias), activation) as tf.Tensor2D; // [R, M]
    product.dispose();
    return out;
  });
}
