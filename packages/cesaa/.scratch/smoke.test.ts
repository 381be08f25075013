import { analyzeRouting, Cesaa } from "@mdrec/cesaa";
import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import { generateSyntheticDataset, iterateBatches, splitDataset } from "@mdrec/data-loaders";
import { createModel, listModels } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { it } from "vitest";

it("smoke", () => {
  const data = generateSyntheticDataset({
    seed: 7,
    numRows: 2000,
    numDomains: 4,
    numPatterns: 2,
    numUsers: 300,
    numItems: 200,
  });
  console.log(listModels());
  const model = createModel("cesaa", { features: data.features, numDomains: 4, seed: 1 });
  console.log(model.summary(), JSON.stringify(model.getConfig().options.gate));
  const batch = iterateBatches(data, { batchSize: 16 }).next().value!;
  const out = model.call(batch, { training: true });
  console.log(out.logits.shape, Object.keys(out.auxLosses), out.auxLosses.mi!.dataSync());
  console.log(analyzeRouting(model, iterateBatches(data, { batchSize: 512 })));
});
