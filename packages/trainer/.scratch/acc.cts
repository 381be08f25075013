require("@tensorflow/tfjs-backend-cpu");
const tf = require("@tensorflow/tfjs-core");
const core = require("../../core/src/index.ts");
async function main() {
  await tf.setBackend("cpu");
  const v = tf.variable(tf.tensor1d([1, 2, 3]));
  const g = tf.variableGrads(() => tf.sum(tf.square(core.gatherRows(v, tf.tensor1d([0, 2], "int32")))), [v]);
  g.grads[v.name].print();
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
}
main();
