import Table from "cli-table3";
import type { ModelResult, RunResults } from "./results.js";

/** `0.71234` -> `"0.7123"`; null -> `"-"`. */
export function formatMetric(value: number | null | undefined, digits = 4): string {
  return value === null || value === undefined || !Number.isFinite(value) ? "-" : value.toFixed(digits);
}

/** `12345.6` -> `"12,346"`. */
export function formatInteger(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? "-"
    : Math.round(value).toLocaleString("en-US");
}

/** Seconds as `"42.1 s"` or `"2 min 05 s"`. */
export function formatSeconds(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.round(seconds - minutes * 60)).padStart(2, "0")} s`;
}

/** `"3 (2)"`: epochs trained and, when early stopping kept an earlier one, the epoch evaluated. */
export function formatEpochs(model: Pick<ModelResult, "epochs" | "bestEpoch">): string {
  return model.bestEpoch !== null && model.bestEpoch !== model.epochs
    ? `${model.epochs} (${model.bestEpoch})`
    : String(model.epochs);
}

/** One row of the comparison: a metric across models, and which model is best on it. */
export interface ComparisonRow {
  /** Row label, e.g. `"AUC overall"`, `"AUC domain_3"`. */
  label: string;
  /** One formatted cell per model. */
  cells: string[];
  /** Index of the best model on this row, when the row is a quality metric. */
  best?: number;
}

function bestIndex(values: (number | null)[], higherIsBetter: boolean): number | undefined {
  let best: number | undefined;
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) return;
    const current = best === undefined ? undefined : values[best]!;
    if (current === undefined || current === null || (higherIsBetter ? value > current : value < current))
      best = index;
  });
  return values.filter((value) => value !== null).length > 1 ? best : undefined;
}

/**
 * The comparison as rows of metrics x columns of models: overall and per-domain AUC and
 * logloss, parameters, experts per row, train examples/s, wall time. Transposed (models as
 * columns) so eight domains still fit a terminal.
 */
export function comparisonRows(results: RunResults): ComparisonRow[] {
  const models = results.models;
  const metricRow = (label: string, pick: (model: ModelResult) => number | null, higherIsBetter: boolean) => {
    const values = models.map(pick);
    return {
      label,
      cells: values.map((value) => formatMetric(value)),
      best: bestIndex(values, higherIsBetter),
    };
  };
  const rows: ComparisonRow[] = [
    metricRow("AUC overall", (model) => model.test.overall.auc, true),
    metricRow("logloss overall", (model) => model.test.overall.logloss, false),
  ];
  results.dataset.domainNames.forEach((name, domain) => {
    rows.push(
      metricRow(
        `AUC ${name}`,
        (model) => model.test.perDomain.find((entry) => entry.domain === domain)?.auc ?? null,
        true,
      ),
    );
  });
  results.dataset.domainNames.forEach((name, domain) => {
    rows.push(
      metricRow(
        `logloss ${name}`,
        (model) => model.test.perDomain.find((entry) => entry.domain === domain)?.logloss ?? null,
        false,
      ),
    );
  });
  rows.push(
    { label: "parameters", cells: models.map((model) => formatInteger(model.parameters)) },
    {
      label: "experts per row",
      cells: models.map((model) =>
        model.expertsPerRow === null
          ? "-"
          : `${formatInteger(model.expertsPerRow)}${model.totalExperts === null ? "" : ` of ${formatInteger(model.totalExperts)}`}`,
      ),
    },
    { label: "train examples/s", cells: models.map((model) => formatInteger(model.trainExamplesPerSecond)) },
    { label: "epochs (best)", cells: models.map(formatEpochs) },
    { label: "wall time", cells: models.map((model) => formatSeconds(model.wallSeconds)) },
  );
  return rows;
}

/**
 * The comparison table for a terminal (box drawing, no colour codes, so it is the same in a
 * pipe). The best model on each quality row is marked with `*`.
 */
export function renderComparisonTable(results: RunResults): string {
  const table = new Table({
    head: ["test metric", ...results.models.map((model) => model.name)],
    style: { head: [], border: [], "padding-left": 1, "padding-right": 1 },
    // No rule between body rows: 20 rows stay readable without doubling the height.
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
    colAligns: ["left", ...results.models.map(() => "right" as const)],
  });
  for (const row of comparisonRows(results)) {
    table.push([row.label, ...row.cells.map((cell, index) => (index === row.best ? `*${cell}` : cell))]);
  }
  return `${table.toString()}\n* best on the row\n`;
}

/** The comparison and the run's settings as Markdown (`results.md`). */
export function renderResultsMarkdown(results: RunResults): string {
  const header = ["test metric", ...results.models.map((model) => model.name)];
  const lines = [
    `# mdrec ${results.kind}: ${results.models.map((model) => model.name).join(", ")}`,
    "",
    `Data \`${results.dataset.source}\` (${formatInteger(results.dataset.train)} train / ${formatInteger(results.dataset.validation)} validation / ${formatInteger(results.dataset.test)} test rows, ${results.dataset.domainNames.length} domains), ` +
      `seed ${String(results.config.seed)}, backend ${results.environment.backend}, ${results.createdAt}, total ${formatSeconds(results.totalSeconds)}.`,
    "",
    `| ${header.join(" | ")} |`,
    `|${header.map((_, index) => (index === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const row of comparisonRows(results)) {
    lines.push(
      `| ${[row.label, ...row.cells.map((cell, index) => (index === row.best ? `**${cell}**` : cell))].join(" | ")} |`,
    );
  }
  lines.push(
    "",
    "Bold: best on the row. Metrics on the test split; the report (`report.html`) has the curves and routing.",
    "",
  );
  lines.push("## Configuration", "", "| key | value |", "|---|---|");
  for (const [key, value] of Object.entries(results.config)) {
    lines.push(`| ${key} | \`${JSON.stringify(value)}\` |`);
  }
  lines.push(
    "",
    `mdrec ${results.environment.mdrec}, tfjs ${results.environment.tfjs}, Node.js ${results.environment.node}, ${results.environment.platform}.`,
    "",
  );
  return lines.join("\n");
}
