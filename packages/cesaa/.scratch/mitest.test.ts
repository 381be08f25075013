import { appendFileSync } from "node:fs";
import { analyzeRouting, Cesaa } from "@mdrec/cesaa";
import { setGlobalSeed } from "@mdrec/core";
import { iterateBatches } from "@mdrec/data-loaders";
import { it } from "vitest";
import { datasetAuc, syntheticSplits, trainModel } from "../../models/test/training.js";

const cfg = JSON.parse(process.env.CFG ?? "{}");
it("mi test config", () => {
  const { data, train, test } = syntheticSplits(7, cfg.rows ?? 8000);
  for (const weight of cfg.weights ?? [0, 0.01]) {
    for (const seed of cfg.seeds ?? [1, 2]) {
      setGlobalSeed(seed);
      const start = performance.now();
      const model = new Cesaa({
        features: data.features,
        numDomains: data.numDomains,
        embeddingDim: cfg.embeddingDim ?? 4,
        seed,
        numSharedExperts: 1,
        numSpecificExperts: 4,
        k: cfg.k ?? 1,
        expertUnits: [8],
        towerUnits: [4],
        mi: { weight, movingAverage: cfg.ma ?? 0.9 },
        ...(cfg.extra ?? {}),
      });
      trainModel(model, train, {
        epochs: cfg.epochs ?? 1,
        batchSize: cfg.batch ?? 128,
        learningRate: cfg.lr ?? 0.01,
        seed,
      });
      const a = analyzeRouting(model, iterateBatches(test, { batchSize: 1024 }));
      appendFileSync(
        "/tmp/cesaa-mi.log",
        `${cfg.tag} w=${weight} seed=${seed} mi=${a.mutualInformation.toFixed(4)} auc=${datasetAuc(model, test).toFixed(4)} t=${((performance.now() - start) / 1000).toFixed(1)}\n`,
      );
      model.dispose();
    }
  }
});
