import { expect, test } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { fit, evaluate } from "@mdrec/trainer";
import { makeDataset, makeModel } from "./helpers.js";

test("smoke", async () => {
  const train = makeDataset(600, 1);
  const validation = makeDataset(200, 2);
  const model = makeModel({ dropout: 0.1 });
  const before = tf.memory().numTensors;
  const t0 = performance.now();
  const result = await fit(model, train, { validation, epochs: 3, batchSize: 64, learningRate: 0.05, callbacks: { onStep: (e) => { if (e.step % 10 === 0) console.log(JSON.stringify(e)); } } });
  console.log("ms", performance.now() - t0, tf.memory().numTensors - before);
  console.log(JSON.stringify(result.history.map((h) => [h.losses, h.validation?.overall.auc, h.validation?.routing[0]])));
  const ev = await evaluate(model, validation);
  console.log(ev.overall);
  expect(result.steps).toBe(30);
});
