import "@tensorflow/tfjs-backend-cpu";
import * as tf from "@tensorflow/tfjs-core";
import { analyzeRouting, Cesaa } from "@mdrec/cesaa";
import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import { generateSyntheticDataset, iterateBatches, splitDataset } from "@mdrec/data-loaders";
import { it } from "vitest";
it("readme", () => {

setGlobalSeed(7); // gate noise and initialisers are reproducible from here
const data = generateSyntheticDataset({ seed: 7, numRows: 4000, numDomains: 4, numPatterns: 2 });
const { train, test } = splitDataset(data, { fractions: [0.8, 0.1, 0.1], seed: 7 });

const model = new Cesaa({
  features: data.features,
  numDomains: data.numDomains,
  numSharedExperts: 2, // S
  numSpecificExperts: 8, // N
  k: 2,
  seed: 7,
});
console.log(model.summary()); // { name: "cesaa", parameters: ..., expertsPerRow: 4, totalExperts: 10 }

const optimizer = tf.train.adam(2e-3);
const variables = model.trainableWeights().map((weight) => weight.read() as tf.Variable);
for (const batch of iterateBatches(train, { batchSize: 256, shuffle: true, seed: 7, epoch: 0 })) {
  optimizer.minimize(() => {
    const { logits, auxLosses } = model.call(batch, { training: true }); // auxLosses.mi is the AEA term
    const taskLoss = tf.losses.sigmoidCrossEntropy(batch.labels, logits) as tf.Scalar;
    return Object.values(auxLosses).reduce((total, loss) => tf.add(total, loss), taskLoss);
  }, false, variables);
  disposeBatch(batch);
}

const routing = analyzeRouting(model, iterateBatches(test, { batchSize: 1024 }));
console.log(routing.mutualInformation); // I(D;E) in nats of the test rows' routing
console.log(routing.utilization); // [D, N]: share of each domain's routing slots per expert
console.log(routing.rowsPerExpert); // [N]: share of the routed rows each expert computed
});
