import type { TopLevelSpec } from "vega-lite";
import type { RunResults } from "../results.js";
import { formatEpochs, formatInteger, formatMetric, formatSeconds } from "../table.js";
import { type ReportChart, reportCharts } from "./charts.js";

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/**
 * Renders a Vega-Lite spec to an SVG string on the server (no browser, no canvas): compile to
 * Vega, run a headless view, serialise. The report embeds the SVG, so it needs no script.
 */
export async function renderChartSvg(spec: TopLevelSpec): Promise<string> {
  const [vegaLite, vega] = await Promise.all([import("vega-lite"), import("vega")]);
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const STYLE = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6475; --line: #e3e6ec; --accent: #0b6bcb; --best: #e7f5e9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f7f8fa; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 60px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 36px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
.headline { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
.headline strong { color: var(--accent); }
.table-wrap { overflow-x: auto; background: white; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f0f2f6; font-weight: 600; position: sticky; top: 0; }
td.best { background: var(--best); font-weight: 600; }
td small, th small { display: block; color: var(--muted); font-size: 11px; font-weight: 400; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; background: white; border: 1px solid var(--line); border-radius: 8px; padding: 12px; max-width: 100%; overflow-x: auto; }
figure h3 { font-size: 14px; margin: 0 0 6px; }
figcaption { color: var(--muted); font-size: 12px; max-width: 560px; margin-top: 4px; }
dl.config { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; background: white; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; }
dl.config dt { color: var(--muted); }
dl.config dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; word-break: break-all; }
footer { color: var(--muted); font-size: 12px; margin-top: 40px; }
`;

function bestOf(values: (number | null)[], higherIsBetter: boolean): number {
  let best = -1;
  values.forEach((value, index) => {
    if (value === null || !Number.isFinite(value)) return;
    if (best === -1 || (higherIsBetter ? value > values[best]! : value < values[best]!)) best = index;
  });
  return values.length > 1 ? best : -1;
}

function comparisonTable(results: RunResults): string {
  const { models } = results;
  const domains = results.dataset.domainNames;
  const overallAuc = models.map((model) => model.test.overall.auc);
  const overallLogloss = models.map((model) => model.test.overall.logloss);
  const domainAuc = domains.map((_, domain) =>
    models.map((model) => model.test.perDomain.find((entry) => entry.domain === domain)?.auc ?? null),
  );
  const domainLogloss = domains.map((_, domain) =>
    models.map((model) => model.test.perDomain.find((entry) => entry.domain === domain)?.logloss ?? null),
  );
  const bestAuc = bestOf(overallAuc, true);
  const bestLogloss = bestOf(overallLogloss, false);
  const bestDomain = domainAuc.map((values) => bestOf(values, true));
  const head = [
    "model",
    "AUC",
    "logloss",
    ...domains.map((name) => `${escapeHtml(name)}<small>AUC / logloss</small>`),
    "parameters",
    "experts / row",
    "train examples/s",
    "epochs<small>(best)</small>",
    "wall time",
  ];
  const rows = models.map((model, index) => {
    const cell = (content: string, best: boolean) => `<td${best ? ' class="best"' : ""}>${content}</td>`;
    const experts =
      model.expertsPerRow === null
        ? "-"
        : `${formatInteger(model.expertsPerRow)}${model.totalExperts === null ? "" : ` of ${formatInteger(model.totalExperts)}`}`;
    return [
      `<tr data-model="${escapeHtml(model.name)}">`,
      `<td>${escapeHtml(model.name)}</td>`,
      cell(formatMetric(overallAuc[index]), bestAuc === index),
      cell(formatMetric(overallLogloss[index]), bestLogloss === index),
      ...domains.map((_, domain) =>
        cell(
          `${formatMetric(domainAuc[domain]![index]!)}<small>${formatMetric(domainLogloss[domain]![index]!)}</small>`,
          bestDomain[domain] === index,
        ),
      ),
      `<td>${formatInteger(model.parameters)}</td>`,
      `<td>${experts}</td>`,
      `<td>${formatInteger(model.trainExamplesPerSecond)}</td>`,
      `<td>${formatEpochs(model)}</td>`,
      `<td>${formatSeconds(model.wallSeconds)}</td>`,
      "</tr>",
    ].join("");
  });
  return [
    '<div class="table-wrap"><table id="comparison">',
    `<thead><tr>${head.map((text) => `<th>${text}</th>`).join("")}</tr></thead>`,
    `<tbody>${rows.join("\n")}</tbody>`,
    "</table></div>",
  ].join("\n");
}

function headline(results: RunResults): string {
  const ranked = results.models
    .filter((model) => model.test.overall.auc !== null)
    .sort((a, b) => b.test.overall.auc! - a.test.overall.auc!);
  if (ranked.length === 0) return "";
  const best = ranked[0]!;
  const runnerUp = ranked[1];
  const lead = runnerUp
    ? `, ${formatMetric(best.test.overall.auc! - runnerUp.test.overall.auc!)} ahead of <strong>${escapeHtml(runnerUp.name)}</strong>`
    : "";
  return `<div class="headline">Best test AUC: <strong>${escapeHtml(best.name)}</strong> with ${formatMetric(best.test.overall.auc)}${lead}.</div>`;
}

async function figure(chart: ReportChart): Promise<string> {
  const svg = await renderChartSvg(chart.spec);
  return [
    `<figure id="${escapeHtml(chart.id)}" data-chart="${escapeHtml(chart.id)}">`,
    `<h3>${escapeHtml(chart.title)}</h3>`,
    svg,
    `<figcaption>${escapeHtml(chart.caption)}</figcaption>`,
    "</figure>",
  ].join("\n");
}

function configList(results: RunResults): string {
  const entries: [string, string][] = [
    ["data", results.dataset.source],
    [
      "rows",
      `${formatInteger(results.dataset.rows)} (train ${formatInteger(results.dataset.train)}, validation ${formatInteger(results.dataset.validation)}, test ${formatInteger(results.dataset.test)})`,
    ],
    ["domains", results.dataset.domainNames.join(", ")],
    ["features", String(results.dataset.features)],
    ["seed", String(results.config.seed)],
    [
      "backend",
      `${results.environment.backend}${results.environment.threads > 1 ? ` (${results.environment.threads} threads)` : ""}`,
    ],
    [
      "versions",
      `mdrec ${results.environment.mdrec}, @tensorflow/tfjs-core ${results.environment.tfjs}, Node.js ${results.environment.node}`,
    ],
    ["platform", results.environment.platform],
    ["date", results.createdAt],
    ["run id", results.runId],
    ["total time", formatSeconds(results.totalSeconds)],
  ];
  for (const [key, value] of Object.entries(results.config)) {
    if (key === "seed" || key === "data") continue;
    entries.push([`config.${key}`, JSON.stringify(value)]);
  }
  return `<dl class="config">${entries.map(([key, value]) => `<dt>${escapeHtml(key)}</dt><dd>${escapeHtml(value)}</dd>`).join("")}</dl>`;
}

/**
 * Renders the HTML report of a run: one self-contained file (inline CSS and SVG, no script, no
 * network) with the comparison table, per-domain AUC bars, loss and AUC curves, each MoE model's
 * expert x domain utilisation heatmap, domain-expert MI over training and the run config.
 *
 * @example
 * const html = await renderReport(JSON.parse(readFileSync("mdrec-out/compare/results.json", "utf8")));
 */
export async function renderReport(results: RunResults): Promise<string> {
  const charts = reportCharts(results);
  const mainFigures = await Promise.all(charts.main.map(figure));
  const routingFigures = await Promise.all(charts.routing.map(figure));
  const modelNames = results.models.map((model) => model.name).join(", ");
  const title = `mdrec ${results.kind}: ${modelNames}`;
  const withoutGates = results.models
    .filter((model) => model.routing.length === 0)
    .map((model) => model.name);
  const routingNote = withoutGates.length
    ? `<p class="lead">No gates, so no routing: ${escapeHtml(withoutGates.join(", "))}.</p>`
    : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
<p class="lead">Data <code>${escapeHtml(results.dataset.source)}</code>, ${results.dataset.domainNames.length} domains, seed ${escapeHtml(String(results.config.seed))}, backend ${escapeHtml(results.environment.backend)}, ${escapeHtml(results.createdAt)}.</p>
${headline(results)}
<h2 id="comparison-heading">Comparison on the test split</h2>
${comparisonTable(results)}
<p class="lead">Shaded: best in the column. Experts per row: experts computed for each example (MoE models).</p>
<h2>Quality per domain and training curves</h2>
<div class="charts">
${mainFigures.join("\n")}
</div>
<h2>Routing: expert utilisation by domain</h2>
${routingNote}
<div class="charts">
${routingFigures.join("\n")}
</div>
<h2>Run configuration</h2>
${configList(results)}
<footer>Generated by mdrec ${escapeHtml(results.environment.mdrec)}. Re-render with <code>mdrec report results.json</code>.</footer>
</main>
</body>
</html>
`;
}
