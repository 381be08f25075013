import { analyzeRouting } from "@mdrec/cesaa";
import { disposeBatch, setGlobalSeed } from "@mdrec/core";
import {
  type ColumnarDataset,
  generateSyntheticDataset,
  iterateBatches,
  type SyntheticDataset,
  splitDataset,
  syntheticPresets,
} from "@mdrec/data-loaders";
import { evaluateByDomain } from "@mdrec/metrics";
import { createModel, listModels, type MultiDomainModel } from "@mdrec/models";
import { ModelTrainer } from "../lib/workload.js";
import type { BenchRecord, BenchRunOptions, BenchSuite } from "../record.js";

const SUITE = "model-quality";
const SEED = 42;

/** The one training budget every model gets. */
interface Budget {
  epochs: number;
  batchSize: number;
  learningRate: number;
}

const FULL: Budget = { epochs: 4, batchSize: 512, learningRate: 2e-3 };
const QUICK: Budget = { epochs: 1, batchSize: 256, learningRate: 2e-3 };

/** A model to train: a registered name with its default options, plus overrides. */
interface Variant {
  label: string;
  name: string;
  extra: Record<string, unknown>;
  /** Report the domain-expert MI of its gate. */
  routing: boolean;
}

function variants(): Variant[] {
  const registered = listModels().map((name) => ({
    label: name,
    name,
    extra: {},
    routing: name === "cesaa",
  }));
  const ablation = {
    label: "cesaa, no AEA (lambda=0)",
    name: "cesaa",
    extra: { mi: { weight: 0 } },
    routing: true,
  };
  return listModels().includes("cesaa") ? [...registered, ablation] : registered;
}

/** Probabilities of task 0 for every row of `data`, in row order. */
function predictTask0(model: MultiDomainModel, data: ColumnarDataset): Float32Array {
  const scores = new Float32Array(data.numRows);
  let offset = 0;
  for (const batch of iterateBatches(data, { batchSize: 4096 })) {
    const probabilities = model.predict(batch); // [B, numTasks]
    const values = probabilities.dataSync();
    for (let row = 0; row < batch.domainIds.shape[0]; row++)
      scores[offset + row] = values[row * data.numTasks]!;
    offset += batch.domainIds.shape[0];
    probabilities.dispose();
    disposeBatch(batch);
  }
  return scores;
}

function task0Labels(data: ColumnarDataset): Float32Array {
  return data.labels.filter((_, index) => index % data.numTasks === 0);
}

async function measureVariant(
  variant: Variant,
  data: SyntheticDataset,
  splits: { train: ColumnarDataset; test: ColumnarDataset },
  budget: Budget,
  log: (message: string) => void,
): Promise<BenchRecord[]> {
  setGlobalSeed(SEED);
  const model = createModel(variant.name, {
    features: data.features,
    numDomains: data.numDomains,
    seed: SEED,
    ...variant.extra,
  });
  const trainer = new ModelTrainer(model, budget.learningRate);
  const started = performance.now();
  let steps = 0;
  for (let epoch = 0; epoch < budget.epochs; epoch++) {
    // Equal seeds and epochs: every model sees the same batches in the same order.
    for (const batch of iterateBatches(splits.train, {
      batchSize: budget.batchSize,
      shuffle: true,
      seed: SEED,
      epoch,
    })) {
      trainer.step(batch);
      disposeBatch(batch);
      steps++;
    }
    log(`  ${variant.label}: epoch ${epoch + 1}/${budget.epochs}, loss ${trainer.lastLoss().toFixed(4)}`);
  }
  const seconds = (performance.now() - started) / 1000;
  const metrics = evaluateByDomain({
    labels: task0Labels(splits.test),
    scores: predictTask0(model, splits.test),
    domainIds: splits.test.domainIds,
    numDomains: data.numDomains,
  });
  const summary = model.summary();
  const notes = `${steps} Adam steps (lr ${budget.learningRate}, batch ${budget.batchSize}, ${budget.epochs} epochs), seed ${SEED}`;
  const record = (name: string, value: number, unit: string, extraNotes = notes): BenchRecord => ({
    suite: SUITE,
    name: `${variant.label}: ${name}`,
    value,
    unit,
    notes: extraNotes,
  });
  const records = [
    record(
      "held-out AUC",
      metrics.overall.auc,
      "AUC",
      `${notes}; logloss ${metrics.overall.logloss.toFixed(4)}`,
    ),
    ...metrics.perDomain.map((domain) =>
      record(
        `AUC domain ${domain.domainId}`,
        domain.auc,
        "AUC",
        `${domain.count} test rows, CTR ${domain.labelRate.toFixed(3)}`,
      ),
    ),
    record("parameters", summary.parameters, "params", ""),
  ];
  if (summary.expertsPerRow !== undefined) {
    records.push(
      record("experts computed per row", summary.expertsPerRow, "experts", `of ${summary.totalExperts}`),
    );
  }
  if (variant.routing) {
    const routing = analyzeRouting(model, iterateBatches(splits.test, { batchSize: 4096 }));
    records.push(
      record(
        "domain-expert MI",
        routing.mutualInformation,
        "nats",
        "CES gate, test rows, inference mode, slot counts",
      ),
      record(
        "normalised domain-expert MI",
        routing.normalizedMutualInformation ?? 0,
        "ratio",
        "I / sqrt(H(D) H(E))",
      ),
    );
  }
  records.push(record("training time", seconds, "s"));
  trainer.dispose();
  model.dispose();
  return records;
}

/**
 * Held-out quality of every registered model on the synthetic default data (60k rows, 8
 * domains, 4 planted patterns; `quick`: the 2k-row tiny preset): same seed, same 80/10/10
 * split, same Adam budget and batch order for every model, each with its documented default
 * options. Reports overall and per-domain AUC, parameters, experts computed per row, and
 * CESAA's domain-expert MI with and without the AEA term.
 */
export const suite: BenchSuite = {
  name: SUITE,
  description:
    "Held-out AUC of every registered model on the seeded synthetic data (default 60k rows, 8 domains), " +
    "same split, seed, batches and Adam budget for all; parameters, experts computed per row, and CESAA's " +
    "domain-expert mutual information with and without AEA (lambda = 0).",
  async run(options: BenchRunOptions): Promise<BenchRecord[]> {
    const log = options.log ?? (() => {});
    const budget = options.quick ? QUICK : FULL;
    const data = generateSyntheticDataset({ seed: SEED, ...(options.quick ? syntheticPresets.tiny : {}) });
    const { train, test } = splitDataset(data, { fractions: [0.8, 0.1, 0.1], seed: SEED });
    const records: BenchRecord[] = [];
    for (const variant of variants()) {
      log(`  training ${variant.label} on ${train.numRows} rows`);
      records.push(...(await measureVariant(variant, data, { train, test }, budget, log)));
    }
    return records;
  },
};
