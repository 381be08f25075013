import * as tf from "@tensorflow/tfjs-core";

/**
 * float32 one-hot `[...indices.shape, depth]` that works on every backend and for depth 1.
 *
 * Built as an int32 one-hot and cast: `wasm`'s OneHot with dtype float32 writes integer bit
 * patterns (1 reads as 1.4e-45). `tf.oneHot` refuses depth 1, where every valid index is 0.
 *
 * @param indices int32 ids in `[0, depth)`.
 * @param depth number of classes, at least 1.
 * @example
 * const membership = oneHotFloat(domainIds, numDomains); // [B, numDomains]
 */
export function oneHotFloat(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.tidy(() => {
    if (depth === 1) return tf.expandDims(tf.cast(tf.onesLike(indices), "float32"), -1);
    return tf.cast(tf.oneHot(indices, depth), "float32");
  });
}
