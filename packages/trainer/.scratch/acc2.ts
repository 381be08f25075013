import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { gatherRows } from "../../core/src/index.ts";

await tf.setBackend("cpu");
const v = tf.variable(tf.tensor1d([1, 2, 3]));
const g = tf.variableGrads(
  () => tf.sum(tf.square(gatherRows(v, tf.tensor1d([0, 2], "int32")))) as tf.Scalar,
  [v],
);
g.grads[v.name]!.print();
const w = tf.variable(
  tf.tensor2d([
    [1, 2],
    [3, 4],
  ]),
);
const g2 = tf.variableGrads(() => tf.sum(tf.sigmoid(tf.matMul(w, w))) as tf.Scalar, [w]);
g2.grads[w.name]!.print();
let acc = tf.scalar(0.9);
let diffs = 0;
for (let i = 1; i < 3000; i++) {
  const next = tf.mul(acc, 0.9);
  acc.dispose();
  acc = next;
  const p = tf.pow(0.9, i + 1);
  if (acc.dataSync()[0] !== p.dataSync()[0]) diffs++;
  p.dispose();
}
console.log("diffs", diffs);
