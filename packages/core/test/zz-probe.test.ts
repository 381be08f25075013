import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-wasm";
import { test } from "vitest";
import { gatherRows, scatterAddRows } from "@mdrec/core";
test("probe", async () => {
  for (const b of ["cpu", "wasm"]) {
    await tf.setBackend(b); await tf.ready();
    const t = tf.tensor2d([[1, 2], [3, 4]]);
    try { gatherRows(t, tf.tensor1d([0, 5], "int32")).print(); } catch (e) { console.log(b, "gather oob:", (e as Error).message); }
    try { gatherRows(t, tf.tensor1d([0, -1], "int32")).print(); } catch (e) { console.log(b, "gather neg:", (e as Error).message); }
    try { scatterAddRows(t, tf.tensor1d([0, 5], "int32"), 2).print(); } catch (e) { console.log(b, "scatter oob:", (e as Error).message); }
    scatterAddRows(t, tf.tensor1d([1, 1], "int32"), 3).print();
    const g = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(gatherRows(x as tf.Tensor2D, tf.tensor1d([1, 1, 0], "int32")), tf.tensor2d([[1, 2], [3, 4], [5, 6]]))))(t);
    g.print();
    // empty
    try { gatherRows(t, tf.tensor1d([], "int32")).print(); } catch (e) { console.log(b, "empty:", (e as Error).message); }
    try { console.log(b, "min empty", tf.min(tf.tensor1d([], "int32")).dataSync()); } catch (e) { console.log(b, "min empty err:", (e as Error).message); }
    console.log(b, "dropout", tf.dropout(tf.ones([1, 6]), 0.5, undefined, 42).dataSync());
  }
});
