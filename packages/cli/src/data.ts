import { resolve } from "node:path";
import {
  type ColumnarDataset,
  domainCounts,
  generateSyntheticDataset,
  splitDataset,
  syntheticPresets,
} from "@mdrec/data-loaders";
import { type DataSource, describeDataSource } from "./data-argument.js";
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
  /** Notices from the split (a domain without rows in a part). */
  warnings: string[];
  summary: DatasetSummary;
}

/** Reads (or generates) the rows a data source names, before any split. */
export async function readDataSource(
  source: DataSource,
  options: Pick<LoadDataOptions, "seed" | "rows" | "cwd">,
): Promise<ColumnarDataset> {
  const cwd = options.cwd ?? process.cwd();
  switch (source.kind) {
    case "synthetic": {
      const preset = syntheticPresets[source.preset];
      return generateSyntheticDataset({
        ...preset,
        seed: options.seed,
        ...(options.rows !== undefined ? { numRows: options.rows } : {}),
      });
    }
    default:
      return readFileSource(source, cwd);
  }
}

async function readFileSource(source: Exclude<DataSource, { kind: "synthetic" }>, cwd: string): Promise<ColumnarDataset> {
  const path = resolve(cwd, source.path);
  void path;
  throw new Error(`data kind ${source.kind} is not supported yet`);
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
  const full = await readDataSource(source, options);
  const { train, validation, test, warnings } = splitDataset(full, { fractions: options.split, seed: options.seed });
  return {
    source: describeDataSource(source),
    full,
    train,
    validation,
    test,
    warnings,
    summary: {
      source: describeDataSource(source),
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
}
