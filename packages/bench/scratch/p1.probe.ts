import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import "@mdrec/core";

function rand(shape: number[], seed: number) { return tf.randomUniform(shape, -1, 1, "float32", seed); }
async function run(backend: string) {
  await tf.setBackend(backend); await tf.ready();
  const out: Record<string, number[]> = {};
  const a = rand([2, 3], 1), at = rand([3, 2], 2), b = rand([3, 4], 3), bt = rand([4, 3], 4), bias = rand([4], 5);
  out.plainBias = Array.from(tf.fused.matMul({ a, b, bias }).dataSync());
  out.tA = Array.from(tf.fused.matMul({ a: at, b, transposeA: true, bias }).dataSync());
  out.tB = Array.from(tf.fused.matMul({ a, b: bt, transposeB: true, bias }).dataSync());
  out.tBrelu = Array.from(tf.fused.matMul({ a, b: bt, transposeB: true, bias, activation: "relu" }).dataSync());
  out.tBnobias = Array.from(tf.fused.matMul({ a, b: bt, transposeB: true }).dataSync());
  return out;
}
import { test } from "vitest";
test("probe", async () => {
const cpu = await run("cpu");
const wasm = await run("wasm");
for (const k of Object.keys(cpu)) {
  const d = Math.max(...cpu[k]!.map((v, i) => Math.abs(v - wasm[k]![i]!)));
  console.log(k, "maxdiff", d.toFixed(4));
}
// speed of transposed vs plain
await tf.setBackend("wasm");
const x = rand([1024, 256], 7), w = rand([256, 128], 8), dy = rand([1024, 128], 9);
function time(name: string, f: () => tf.Tensor, n = 20) {
  f().dispose();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) { const r = f(); r.dataSync(); r.dispose(); }
  const ms = (performance.now() - t0) / n;
  console.log(name, ms.toFixed(3), "ms");
}
time("plain x@w", () => tf.matMul(x, w));
time("dW = x^T dy", () => tf.matMul(x, dy, true, false));
time("dX = dy w^T", () => tf.matMul(dy, w, false, true));
time("transpose x", () => tf.transpose(x));
time("sum axis0", () => tf.sum(dy, 0));
time("identity", () => tf.clone(x));
});
