import { appendFileSync } from "node:fs";
import { analyzeRouting } from "@mdrec/cesaa";
import { setGlobalSeed } from "@mdrec/core";
import { generateSyntheticDataset, iterateBatches, splitDataset } from "@mdrec/data-loaders";
import { createModel } from "@mdrec/models";
import { it } from "vitest";

const log = (line: string) => appendFileSync(process.env.LOG ?? "/tmp/cesaa-exp.log", `${line}\n`);

import { datasetAuc, trainModel } from "../../models/test/training.js";

const grid = JSON.parse(process.env.GRID ?? "[[0,0.9],[0.01,0.9]]") as [number, number][];
const seeds = JSON.parse(process.env.SEEDS ?? "[1]") as number[];
const rows = Number(process.env.ROWS ?? 20000);
const epochs = Number(process.env.EPOCHS ?? 2);
const extra = JSON.parse(process.env.EXTRA ?? "{}");

it("lambda grid", async () => {
  if (process.env.BACKEND === "wasm") {
    const tfc = await import("@tensorflow/tfjs-core");
    await import("@tensorflow/tfjs-backend-wasm");
    await tfc.setBackend("wasm");
    await tfc.ready();
  }
  const data = generateSyntheticDataset({ seed: 42, numRows: rows, ...JSON.parse(process.env.DATA ?? "{}") });
  const { train, test } = splitDataset(data, { fractions: [0.8, 0.1, 0.1], seed: 42 });
  log(`groups ${data.truth.domainGroup}`);
  for (const [weight, movingAverage] of grid) {
    for (const seed of seeds) {
      setGlobalSeed(seed);
      const start = performance.now();
      const model = createModel("cesaa", {
        features: data.features,
        numDomains: data.numDomains,
        seed,
        mi: { weight, movingAverage },
        ...extra,
      });
      trainModel(model, train, {
        epochs,
        batchSize: Number(process.env.BATCH ?? 256),
        learningRate: Number(process.env.LR ?? 3e-3),
        seed,
      });
      const testAuc = datasetAuc(model, test);
      const analysis = analyzeRouting(model, iterateBatches(test, { batchSize: 2048 }));
      log(
        `RESULT ${process.env.TAG ?? ""} lambda=${weight} ma=${movingAverage} seed=${seed} auc=${testAuc.toFixed(4)} mi=${analysis.mutualInformation.toFixed(4)} nmi=${analysis.normalizedMutualInformation?.toFixed(4)} load=${analysis.rowsPerExpert.map((v) => v.toFixed(2)).join(",")} t=${((performance.now() - start) / 1000).toFixed(1)}s`,
      );
      if (process.env.UTIL)
        log(analysis.utilization.map((r) => r.map((v) => v.toFixed(2)).join(" ")).join("\n"));
      model.dispose();
    }
  }
});
