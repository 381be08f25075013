import * as tf from "@tensorflow/tfjs-core";
import { ShapeError } from "../errors.js";
import {
  EXPERT_MATMUL,
  EXPERT_WEIGHT_GRADIENT,
  type ExpertMatMulAttrs,
  nativeExpertGemm,
  registerExpertKernels,
} from "../kernels/wasm-expert-matmul.js";
import { assertInteger, assertTensor } from "../validate.js";

registerExpertKernels();

function runExpertMatMul(a: tf.Tensor2D, weights: tf.Tensor3D, attrs: ExpertMatMulAttrs): tf.Tensor2D {
  return tf
    .engine()
    .runKernel(EXPERT_MATMUL, { a, b: weights }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
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

function useNative(): boolean {
  return tf.getBackend() === "wasm" && nativeExpertGemm(tf.backend()) !== null;
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
  assertTensor("blockExpertMatMul weights", weights, { rank: 3, dtype: "float32" });
  const [numExperts, inner, outer] = weights.shape;
  assertTensor("blockExpertMatMul x", x, { rank: 2, dtype: "float32" });
  if (x.shape[1] !== numExperts * inner) {
    throw new ShapeError(
      `blockExpertMatMul x must have ${numExperts} x ${inner} = ${numExperts * inner} columns (weights [${weights.shape.join(", ")}]), received shape [${x.shape.join(", ")}]`,
    );
  }
  const batch = x.shape[0];
  if (useNative() && batch > 0) {
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
  assertTensor("segmentExpertMatMul weights", weights, { rank: 3, dtype: "float32" });
  const [numExperts, inner, outer] = weights.shape;
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
  if (total === 0) return tf.zeros([0, outer]) as tf.Tensor2D;
  if (useNative()) {
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
