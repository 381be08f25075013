import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { test } from "vitest";

test("scratch", async () => {
  for (const backend of ["cpu", "wasm"]) {
    await tf.setBackend(backend); await tf.ready();
    const pool = new ExpertPool({ numExperts: 4, units: [5, 3], seed: 3 });
    const x = tf.randomNormal([6, 7], 0, 1, "float32", 1) as tf.Tensor2D;
    const indices = tf.tensor2d([[0, 1], [1, 2], [3, 0], [0, 2], [2, 1], [1, 0]], [6, 2], "int32");
    const w = tf.tensor2d([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9]]);
    const a = mixExperts(pool.dense(x), { indices, weights: w });
    const b = pool.sparse(x, { indices, weights: w });
    console.log(backend, tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
    const N = 16, B = 1024;
    const big = new ExpertPool({ numExperts: N, units: [256, 128], seed: 1 });
    const xb = tf.randomNormal([B, 128], 0, 1, "float32", 2) as tf.Tensor2D;
    const idx = tf.tensor2d(Array.from({ length: B * 2 }, (_, i) => (i * 7 + (i % 2) * 3) % N), [B, 2], "int32");
    const wb = tf.fill([B, 2], 0.5) as tf.Tensor2D;
    big.dense(xb).dispose();
    for (const mode of ["dense", "sparse", "dense", "sparse"]) {
      const t0 = performance.now();
      for (let i = 0; i < 2; i++) {
        const g = tf.variableGrads(() => tf.sum(mode === "dense" ? big.dense(xb) : big.sparse(xb, { indices: idx, weights: wb })) as tf.Scalar);
        tf.dispose(g.grads); g.value.dispose();
      }
      console.log(backend, mode, (performance.now() - t0) / 2);
    }
  }
  await tf.setBackend("cpu");
});
