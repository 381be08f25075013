import "@mdrec/cesaa"; // registers "cesaa" next to the baselines of @mdrec/models
import { type BackendName, initBackend } from "@mdrec/core";
import { generateSyntheticDataset, splitDataset, syntheticPresets } from "@mdrec/data-loaders";
import { createModel } from "@mdrec/models";
import { evaluate, fit } from "@mdrec/trainer";

/** Options of {@link quickstart}; the defaults are what `pnpm start` runs. */
export interface QuickstartOptions {
  /** Synthetic data size: tiny 2k rows, small 20k, default 60k. Defaults to `"small"`. */
  preset?: keyof typeof syntheticPresets;
  /** Defaults to 2. */
  epochs?: number;
  /** Defaults to 512. */
  batchSize?: number;
  /** Defaults to the best backend that loads (`MDREC_BACKEND` picks one). */
  backend?: BackendName;
  /** Receives each output line. Defaults to `console.log`. */
  log?: (line: string) => void;
}

/** What the quickstart measured on the test split. */
export interface QuickstartResult {
  overallAuc: number;
  domains: { name: string; rows: number; auc: number }[];
  /** I(D;E) in nats between a row's domain and the experts the CES gate chose for it. */
  mutualInformation: number;
}

/** Trains CESAA on the synthetic multi-domain data and prints per-domain test AUC and the routing MI. */
export async function quickstart(options: QuickstartOptions = {}): Promise<QuickstartResult> {
  const log = options.log ?? console.log;
  await initBackend({ prefer: options.backend, log });
  const data = generateSyntheticDataset({ ...syntheticPresets[options.preset ?? "small"], seed: 42 });
  const { train, validation, test } = splitDataset(data, { fractions: [0.8, 0.1, 0.1], seed: 42 });
  const model = createModel("cesaa", { features: data.features, numDomains: data.numDomains, seed: 42 });
  await fit(model, train, {
    validation,
    epochs: options.epochs ?? 2,
    batchSize: options.batchSize ?? 512,
    learningRate: 2e-3,
    seed: 42,
    callbacks: {
      onEpochEnd: ({ epoch, summary, validation: metrics }) =>
        log(
          `epoch ${epoch + 1}: loss ${summary.losses.bce?.toFixed(4)}, validation AUC ${metrics?.overall.auc.toFixed(4)}`,
        ),
    },
  });
  const result = await evaluate(model, test);
  model.dispose();
  const domains = result.perDomain.map((domain) => ({
    name: domain.name ?? "",
    rows: domain.count,
    auc: domain.auc,
  }));
  for (const domain of domains)
    log(`${domain.name.padEnd(10)} ${String(domain.rows).padStart(6)} rows  AUC ${domain.auc.toFixed(4)}`);
  const mutualInformation = result.routing[0]?.mutualInformation ?? Number.NaN;
  log(
    `overall AUC ${result.overall.auc.toFixed(4)}; domain-expert MI of the CES gate ${mutualInformation.toFixed(3)} nats`,
  );
  return { overallAuc: result.overall.auc, domains, mutualInformation };
}
