import {
  type ColumnarDataset,
  domainCounts,
  type InspectReport,
  inspect,
  loadSchemaFile,
  movieLens1MSchema,
} from "@mdrec/data-loaders";
import Table from "cli-table3";
import type { CommandContext } from "../context.js";
import { readDataSource } from "../data.js";
import { describeDataSource, parseDataArgument } from "../data-argument.js";
import { formatInteger } from "../table.js";
import { DEFAULT_DATA } from "./compare.js";

const PLAIN = { head: [], border: [], "padding-left": 1, "padding-right": 1 };
const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** What `mdrec data inspect` reports. */
interface InspectSummary {
  source: string;
  rows: number;
  tasks: string[];
  users: number | null;
  domains: { domain: number; name: string; rows: number; share: number; clickRate: number | null }[];
  /** `values`: vocabulary size (encoded data) or distinct raw values (files read by `inspect`). */
  features: { name: string; kind: string; values: number | null }[];
  /** Rows that could not be read, by reason (files only). */
  skipped: { reason: string; count: number; example: string }[];
}

function summariseDataset(source: string, dataset: ColumnarDataset): InspectSummary {
  const counts = domainCounts(dataset);
  const positives = new Array<number>(dataset.numDomains).fill(0);
  for (let row = 0; row < dataset.numRows; row++) {
    positives[dataset.domainIds[row]!]! += dataset.labels[row * dataset.numTasks]!;
  }
  return {
    source,
    rows: dataset.numRows,
    tasks: [...dataset.taskNames],
    users: dataset.groupIds !== undefined ? new Set(dataset.groupIds).size : null,
    domains: dataset.domainNames.map((name, domain) => ({
      domain,
      name,
      rows: counts[domain]!,
      share: dataset.numRows > 0 ? counts[domain]! / dataset.numRows : 0,
      clickRate: counts[domain]! > 0 ? positives[domain]! / counts[domain]! : null,
    })),
    features: dataset.features.map((spec) => ({
      name: spec.name,
      kind: spec.kind,
      values: spec.kind === "categorical" ? spec.vocabularySize : null,
    })),
    skipped: [],
  };
}

function summariseReport(source: string, report: InspectReport): InspectSummary {
  const firstTask = Object.keys(report.labelRates)[0];
  return {
    source,
    rows: report.rows,
    tasks: Object.keys(report.labelRates),
    users: report.users ?? null,
    domains: report.domains.map((entry) => ({
      domain: entry.id,
      name: entry.name,
      rows: entry.rows,
      share: report.rows > 0 ? entry.rows / report.rows : 0,
      clickRate:
        firstTask === undefined || !Number.isFinite(entry.labelRates[firstTask])
          ? null
          : entry.labelRates[firstTask]!,
    })),
    features: Object.entries(report.fields).map(([name, field]) => ({
      name,
      kind: field.kind,
      values: field.kind === "categorical" ? field.cardinality : null,
    })),
    skipped: report.skipped.map((entry) => ({
      reason: entry.reason,
      count: entry.count,
      example: entry.examples[0]
        ? `${entry.examples[0].file}:${entry.examples[0].line}: ${entry.examples[0].message}`
        : "",
    })),
  };
}

/**
 * `mdrec data inspect`: rows, domains (size and click rate), tasks and features of a data source.
 * Files with a schema (csv, parquet, MovieLens-1M) are read by the streaming `inspect` of
 * data-loaders, which reports invalid rows instead of stopping at the first.
 */
export async function runDataInspect(context: CommandContext): Promise<void> {
  const { config } = context;
  const source = parseDataArgument(config.data ?? DEFAULT_DATA, config.schema);
  const described = describeDataSource(source);
  let summary: InspectSummary;
  if (source.kind === "csv" || source.kind === "parquet") {
    const schema = await loadSchemaFile(context.resolvePath(source.schema));
    const path = context.resolvePath(source.path);
    summary = summariseReport(
      described,
      await inspect({ path, format: source.kind === "csv" ? "delimited" : "parquet" }, schema),
    );
  } else if (source.kind === "movielens-1m") {
    const files = movieLens1MSchema(context.resolvePath(source.path));
    summary = summariseReport(described, await inspect(files.source, files.schema));
  } else {
    summary = summariseDataset(
      described,
      await readDataSource(source, { seed: config.seed, rows: config.rows, cwd: context.io.cwd }),
    );
  }
  if (config.json) {
    context.emitJson(summary);
    return;
  }
  context.print(
    `${summary.source}: ${formatInteger(summary.rows)} rows, ${summary.domains.length} domains, tasks ${summary.tasks.join(", ")}` +
      `${summary.users !== null ? `, ${formatInteger(summary.users)} users` : ""}, ${summary.features.length} features`,
  );
  const domainTable = new Table({
    head: ["domain", "name", "rows", "share", "click rate"],
    style: PLAIN,
    chars: COMPACT,
    colAligns: ["right", "left", "right", "right", "right"],
  });
  for (const entry of summary.domains) {
    domainTable.push([
      entry.domain,
      entry.name,
      formatInteger(entry.rows),
      `${(100 * entry.share).toFixed(1)}%`,
      entry.clickRate === null ? "-" : `${(100 * entry.clickRate).toFixed(1)}%`,
    ]);
  }
  context.print(domainTable.toString());
  const featureTable = new Table({
    head: ["feature", "kind", "values"],
    style: PLAIN,
    chars: COMPACT,
    colAligns: ["left", "left", "right"],
  });
  for (const entry of summary.features)
    featureTable.push([entry.name, entry.kind, formatInteger(entry.values)]);
  context.print(featureTable.toString());
  for (const entry of summary.skipped) {
    context.print(`skipped ${formatInteger(entry.count)} rows: ${entry.reason} (e.g. ${entry.example})`);
  }
}
