import Table from "cli-table3";
import { domainCounts } from "@mdrec/data-loaders";
import type { CommandContext } from "../context.js";
import { describeDataSource, parseDataArgument } from "../data-argument.js";
import { readDataSource } from "../data.js";
import { formatInteger } from "../table.js";

const PLAIN = { head: [], border: [], "padding-left": 1, "padding-right": 1 };
const COMPACT = { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" };

/** `mdrec data inspect`: rows, domains (size and click rate), tasks and features of a data source. */
export async function runDataInspect(context: CommandContext): Promise<void> {
  const { config } = context;
  const source = parseDataArgument(config.data, config.schema);
  const dataset = await readDataSource(source, { seed: config.seed, rows: config.rows, cwd: context.io.cwd });
  const counts = domainCounts(dataset);
  const positives = new Array<number>(dataset.numDomains).fill(0);
  for (let row = 0; row < dataset.numRows; row++) {
    positives[dataset.domainIds[row]!]! += dataset.labels[row * dataset.numTasks]!;
  }
  const domains = dataset.domainNames.map((name, domain) => ({
    domain,
    name,
    rows: counts[domain]!,
    share: dataset.numRows > 0 ? counts[domain]! / dataset.numRows : 0,
    clickRate: counts[domain]! > 0 ? positives[domain]! / counts[domain]! : null,
  }));
  const features = dataset.features.map((spec) => ({
    name: spec.name,
    kind: spec.kind,
    vocabularySize: spec.kind === "categorical" ? spec.vocabularySize : null,
  }));
  const summary = {
    source: describeDataSource(source),
    rows: dataset.numRows,
    tasks: dataset.taskNames,
    users: dataset.groupIds !== undefined ? new Set(dataset.groupIds).size : null,
    domains,
    features,
  };
  if (config.json) {
    context.emitJson(summary);
    return;
  }
  context.print(
    `${summary.source}: ${formatInteger(summary.rows)} rows, ${domains.length} domains, tasks ${summary.tasks.join(", ")}` +
      `${summary.users !== null ? `, ${formatInteger(summary.users)} users` : ""}, ${features.length} features`,
  );
  const domainTable = new Table({
    head: ["domain", "name", "rows", "share", "click rate"],
    style: PLAIN,
    chars: COMPACT,
    colAligns: ["right", "left", "right", "right", "right"],
  });
  for (const entry of domains) {
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
    head: ["feature", "kind", "vocabulary"],
    style: PLAIN,
    chars: COMPACT,
    colAligns: ["left", "left", "right"],
  });
  for (const entry of features) featureTable.push([entry.name, entry.kind, formatInteger(entry.vocabularySize)]);
  context.print(featureTable.toString());
}
