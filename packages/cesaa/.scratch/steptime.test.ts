import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import "@mdrec/cesaa";
import { appendFileSync } from "node:fs";
import { generateSyntheticDataset, iterateBatches } from "@mdrec/data-loaders";
import { createModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { it } from "vitest";
import { trainStep } from "../../models/test/training.js";

it("step time", async () => {
  const backend = process.env.BACKEND ?? "cpu";
  if (backend === "wasm") {
    await import("@tensorflow/tfjs-backend-wasm");
    await tf.setBackend("wasm");
    await tf.ready();
  }
  const data = generateSyntheticDataset({ seed: 42, numRows: 5000 });
  for (const name of ["shared-bottom", "mmoe", "ple", "star", "cesaa"]) {
    setGlobalSeed(1);
    const model = createModel(name, { features: data.features, numDomains: data.numDomains, seed: 1 });
    const optimizer = tf.train.adam(1e-3);
    const batches = [...iterateBatches(data, { batchSize: 256 })].slice(0, 8);
    trainStep(model, optimizer, batches[0]!);
    const start = performance.now();
    for (const batch of batches.slice(1)) trainStep(model, optimizer, batch);
    const ms = (performance.now() - start) / 7;
    appendFileSync(
      "/tmp/cesaa-step.log",
      `${backend} ${name} ${ms.toFixed(1)} ms/step params=${model.summary().parameters}\n`,
    );
    batches.forEach(disposeBatch);
    model.dispose();
    optimizer.dispose();
  }
});
