import {
  disposeBatch,
  FAST_WASM_KERNELS,
  registerFastKernels,
  setGlobalSeed,
  unregisterFastKernels,
} from "@mdrec/core";
import "@mdrec/cesaa";
import "@tensorflow/tfjs-backend-wasm";
import { generateSyntheticDataset, iterateBatches, syntheticPresets } from "@mdrec/data-loaders";
import { createModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { it } from "vitest";
import { ModelTrainer } from "../../bench/src/lib/workload.js";

it("fast kernels", async () => {
  await tf.setBackend("wasm");
  await tf.ready();
  const data = generateSyntheticDataset({ seed: 42, ...syntheticPresets.tiny });
  const batches = [...iterateBatches(data, { batchSize: 256 })].slice(0, 2);
  const tryWith = (kernels: readonly string[]) => {
    unregisterFastKernels("wasm");
    if (kernels.length) registerFastKernels("wasm", { kernels: kernels as never });
    setGlobalSeed(1);
    const model = createModel("cesaa", { features: data.features, numDomains: data.numDomains, seed: 1 });
    const trainer = new ModelTrainer(model, 1e-3);
    try {
      for (const b of batches) trainer.step(b);
      trainer.lastLoss();
      return "ok";
    } catch (e) {
      return String(e).slice(0, 100);
    } finally {
      trainer.dispose();
      model.dispose();
    }
  };
  console.log("none", tryWith([]));
  console.log("all", tryWith(FAST_WASM_KERNELS));
  for (const k of FAST_WASM_KERNELS) console.log(k, tryWith([k]));
});
