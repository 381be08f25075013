import "@tensorflow/tfjs-backend-cpu";
import { globalRandomGenerator } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";

await tf.setBackend("cpu");
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
console.log("diffs", diffs, globalRandomGenerator().getState());
