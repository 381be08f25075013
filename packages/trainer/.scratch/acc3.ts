import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";

await tf.setBackend("cpu");
for (const beta of [0.9, 0.999]) {
  let acc = tf.scalar(beta);
  const diff: number[] = [];
  for (let i = 1; i < 60; i++) {
    const next = tf.mul(acc, beta);
    acc.dispose();
    acc = next; // after i steps = beta^(i+1)
    const p = tf.pow(beta, i + 1);
    if (acc.dataSync()[0] !== p.dataSync()[0]) diff.push(i);
    p.dispose();
  }
  console.log(beta, diff.join(","));
}
