import { resolve } from "node:path";
import {
  type ColumnarDataset,
  DatasetEncoders,
  type DatasetEncodersJSON,
  type DatasetSplits,
  domainCounts,
  generateSyntheticDataset,
  type LoadResult,
  loadAliCcp,
  loadDataset,
  loadKuaiRand,
  loadMovieLens1M,
  loadMovieLens100K,
  loadSchemaFile,
  type SplitOptions,
  splitDataset,
  syntheticPresets,
} from "@mdrec/data-loaders";
import { type DataSource, describeDataSource, type SyntheticPresetName } from "./data-argument.js";
import type { DatasetSummary } from "./results.js";

/** Options of {@link loadData}. */
export interface LoadDataOptions {
  /** Seed of the synthetic generator and of the split. */
  seed: number;
  /** Train, validation and test fractions. */
  split: [number, number, number];
  /** Rows of synthetic data to generate, overriding the preset. */
  rows?: number;
  /** Directory relative paths resolve against. Defaults to the process working directory. */
  cwd?: string;
  /**
   * Encoders fitted when the model was trained (file sources): rows are encoded with the training
   * vocabulary instead of fitting new encoders.
   */
  encoders?: DatasetEncodersJSON;
}

/** A data set split for training, with a summary for results and reports. */
export interface PreparedData {
  /** The data argument, canonical (e.g. `synthetic:small`). */
  source: string;
  /** All rows before the split. */
  full: ColumnarDataset;
  train: ColumnarDataset;
  validation: ColumnarDataset;
  test: ColumnarDataset;
  /** Notices from loading and splitting (skipped rows, a domain without rows in a part). */
  warnings: string[];
  summary: DatasetSummary;
  /** Encoders of file sources (fitted on the training rows), saved with a trained model. */
  encoders?: DatasetEncodersJSON;
}

/**
 * Loads a file source with the matching data-loaders function. With `split`, encoders are fitted
 * on the training rows only and the result has `splits`.
 */
async function loadFileSource(
  source: Exclude<DataSource, { kind: "synthetic" }>,
  options: { cwd: string; split?: SplitOptions; encoders?: DatasetEncodersJSON },
): Promise<LoadResult> {
  const path = resolve(options.cwd, source.path);
  const loadOptions = {
    ...(options.split ? { split: options.split } : {}),
    ...(options.encoders ? { encoders: DatasetEncoders.fromJSON(options.encoders) } : {}),
  };
  switch (source.kind) {
    case "movielens-1m":
      return loadMovieLens1M(path, loadOptions);
    case "movielens-100k":
      return loadMovieLens100K(path, loadOptions);
    case "kuairand":
      return loadKuaiRand(path, loadOptions);
    case "ali-ccp":
      return loadAliCcp(path, loadOptions);
    case "csv":
    case "parquet": {
      const schema = await loadSchemaFile(resolve(options.cwd, source.schema));
      return loadDataset(
        { path, format: source.kind === "csv" ? "delimited" : "parquet" },
        schema,
        loadOptions,
      );
    }
  }
}

function syntheticDataset(
  preset: SyntheticPresetName,
  seed: number,
  rows: number | undefined,
): ColumnarDataset {
  return generateSyntheticDataset({
    ...syntheticPresets[preset],
    seed,
    ...(rows !== undefined ? { numRows: rows } : {}),
  });
}

/**
 * Reads (or generates) every row a data source names, without splitting. File sources get
 * encoders fitted on all their rows (use {@link loadData} to fit on training rows only).
 */
export async function readDataSource(
  source: DataSource,
  options: Pick<LoadDataOptions, "seed" | "rows" | "cwd">,
): Promise<ColumnarDataset> {
  if (source.kind === "synthetic") return syntheticDataset(source.preset, options.seed, options.rows);
  return (await loadFileSource(source, { cwd: options.cwd ?? process.cwd() })).dataset;
}

/** Click rate per domain of the first task. */
function domainClickRates(dataset: ColumnarDataset): number[] {
  const positives = new Array<number>(dataset.numDomains).fill(0);
  const counts = domainCounts(dataset);
  for (let row = 0; row < dataset.numRows; row++) {
    positives[dataset.domainIds[row]!]! += dataset.labels[row * dataset.numTasks]!;
  }
  return positives.map((value, domain) => (counts[domain]! > 0 ? value / counts[domain]! : 0));
}

/**
 * Loads a data source and splits it (seeded, random) into train, validation and test.
 *
 * @example
 * const data = await loadData(parseDataArgument("synthetic:tiny"), { seed: 1, split: [0.8, 0.1, 0.1] });
 */
export async function loadData(source: DataSource, options: LoadDataOptions): Promise<PreparedData> {
  const splitOptions: SplitOptions = { fractions: options.split, seed: options.seed };
  let full: ColumnarDataset;
  let splits: DatasetSplits;
  const warnings: string[] = [];
  let encoders: DatasetEncodersJSON | undefined;
  if (source.kind === "synthetic") {
    full = syntheticDataset(source.preset, options.seed, options.rows);
    splits = splitDataset(full, splitOptions);
  } else {
    const loaded = await loadFileSource(source, {
      cwd: options.cwd ?? process.cwd(),
      split: splitOptions,
      encoders: options.encoders,
    });
    full = loaded.dataset;
    splits = loaded.splits!;
    encoders = loaded.encoders.toJSON();
    for (const skipped of loaded.report.skipped) {
      warnings.push(
        `skipped ${skipped.count} rows (${skipped.reason}), e.g. ${skipped.examples[0]?.message ?? "-"}`,
      );
    }
    warnings.push(...loaded.report.warnings.filter((warning) => !splits.warnings.includes(warning)));
  }
  warnings.push(...splits.warnings);
  const { train, validation, test } = splits;
  const described = describeDataSource(source);
  const prepared: PreparedData = {
    source: described,
    full,
    train,
    validation,
    test,
    warnings,
    summary: {
      source: described,
      rows: full.numRows,
      train: train.numRows,
      validation: validation.numRows,
      test: test.numRows,
      domainNames: [...full.domainNames],
      trainRowsPerDomain: domainCounts(train),
      domainCtr: domainClickRates(full),
      features: full.features.length,
      taskNames: [...full.taskNames],
    },
  };
  if (encoders !== undefined) prepared.encoders = encoders;
  return prepared;
}
