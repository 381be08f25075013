import type { TopLevelSpec } from "vega-lite";
import type { GateRouting, ModelResult, RunResults } from "../results.js";

/** A chart of the report: an id (for tests and anchors), a title, a caption and its Vega-Lite spec. */
export interface ReportChart {
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";
const CONFIG = {
  font: FONT,
  view: { stroke: null },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: "#e6e6e6" },
  legend: { labelFontSize: 11, titleFontSize: 12 },
} as const;

// One colour per model, the same in every chart.
function modelColor(results: RunResults) {
  return {
    field: "model",
    type: "nominal",
    title: "model",
    scale: { domain: results.models.map((model) => model.name), scheme: "tableau10" },
  } as const;
}

function paddedRange(values: number[], fallback: [number, number]): [number, number] {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return fallback;
  const low = Math.min(...finite);
  const high = Math.max(...finite);
  const pad = Math.max((high - low) * 0.15, 0.01);
  return [Math.max(fallback[0], low - pad), Math.min(fallback[1], high + pad)];
}

/** Grouped bars of test AUC per domain (and overall), one bar per model. */
export function domainAucChart(results: RunResults): ReportChart {
  const values: { domain: string; model: string; auc: number }[] = [];
  for (const model of results.models) {
    if (model.test.overall.auc !== null)
      values.push({ domain: "overall", model: model.name, auc: model.test.overall.auc });
    for (const entry of model.test.perDomain) {
      if (entry.auc !== null) values.push({ domain: entry.name, model: model.name, auc: entry.auc });
    }
  }
  const [low, high] = paddedRange(
    values.map((value) => value.auc),
    [0, 1],
  );
  const domainOrder = ["overall", ...results.dataset.domainNames];
  return {
    id: "domain-auc",
    title: "Test AUC per domain",
    caption:
      "Each group is a domain (first: all test rows); the axis starts near the lowest AUC to show differences.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: Math.max(360, Math.min(900, domainOrder.length * results.models.length * 14)),
      height: 260,
      data: { values },
      mark: { type: "bar", clip: true, tooltip: true },
      encoding: {
        x: { field: "domain", type: "nominal", sort: domainOrder, title: null, axis: { labelAngle: -30 } },
        xOffset: { field: "model", type: "nominal", sort: results.models.map((model) => model.name) },
        y: {
          field: "auc",
          type: "quantitative",
          title: "AUC",
          scale: { domain: [low, high], zero: false, nice: false },
        },
        color: modelColor(results),
      },
      config: CONFIG,
    },
  };
}

/** Training and validation loss per epoch, one colour per model, dashed for validation. */
export function lossCurveChart(results: RunResults): ReportChart {
  const values: { model: string; epoch: number; split: string; loss: number }[] = [];
  for (const model of results.models) {
    for (const record of model.history) {
      values.push({ model: model.name, epoch: record.epoch, split: "train", loss: record.trainLoss });
      if (record.validationLogloss !== null) {
        values.push({
          model: model.name,
          epoch: record.epoch,
          split: "validation",
          loss: record.validationLogloss,
        });
      }
    }
  }
  return {
    id: "loss-curves",
    title: "Loss per epoch",
    caption:
      "Solid: mean training loss (binary cross-entropy, auxiliary losses excluded) over the epoch. Dashed: validation logloss after the epoch.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: 340,
      height: 220,
      data: { values },
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1, format: "d" } },
        y: { field: "loss", type: "quantitative", title: "loss", scale: { zero: false } },
        color: modelColor(results),
        strokeDash: { field: "split", type: "nominal", title: "split", sort: ["train", "validation"] },
        detail: { field: "split" },
      },
      config: CONFIG,
    },
  };
}

/** Validation AUC per epoch, one line per model. */
export function aucCurveChart(results: RunResults): ReportChart {
  const values = results.models.flatMap((model) =>
    model.history
      .filter((record) => record.validationAuc !== null)
      .map((record) => ({ model: model.name, epoch: record.epoch, auc: record.validationAuc! })),
  );
  return {
    id: "auc-curves",
    title: "Validation AUC per epoch",
    caption: "AUC on the validation split after each epoch.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: 340,
      height: 220,
      data: { values },
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1, format: "d" } },
        y: { field: "auc", type: "quantitative", title: "validation AUC", scale: { zero: false } },
        color: modelColor(results),
      },
      config: CONFIG,
    },
  };
}

/** Domain-expert mutual information of the validation routing per epoch, MoE models only. */
export function mutualInformationChart(results: RunResults): ReportChart | undefined {
  const values = results.models.flatMap((model) =>
    model.history
      .filter((record) => record.domainExpertMi !== null)
      .map((record) => ({ model: model.name, epoch: record.epoch, mi: record.domainExpertMi! })),
  );
  if (values.length === 0) return undefined;
  return {
    id: "domain-expert-mi",
    title: "Domain-expert mutual information over training",
    caption:
      "I(D; E) in nats between a row's domain and the expert its first gate chooses, measured on the validation split after each epoch. Higher: domains use more distinct experts.",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: 340,
      height: 220,
      data: { values },
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "epoch", type: "quantitative", title: "epoch", axis: { tickMinStep: 1, format: "d" } },
        y: { field: "mi", type: "quantitative", title: "I(D; E) (nats)" },
        color: modelColor(results),
      },
      config: CONFIG,
    },
  };
}

/** Heatmap of one gate's utilisation: domains as rows, experts as columns, share of routing weight as colour. */
export function utilisationChart(
  results: RunResults,
  model: ModelResult,
  routing: GateRouting,
  index: number,
): ReportChart {
  const values = routing.utilisation.flatMap((row, domain) =>
    row.map((share, expert) => ({
      domain: results.dataset.domainNames[domain] ?? `domain ${domain}`,
      expert: `E${expert}`,
      share,
    })),
  );
  const numExperts = routing.utilisation[0]?.length ?? 0;
  const gateLabel = model.routing.length > 1 ? ` (${routing.gate})` : "";
  return {
    id: `utilisation-${model.name}-${index}`,
    title: `${model.name}: expert utilisation by domain${gateLabel}`,
    caption: `Share of each domain's routing weight that goes to each expert on the test split (rows sum to 1). I(D; E) = ${routing.mutualInformation.toFixed(3)} nats.`,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      width: Math.max(160, Math.min(640, numExperts * 34)),
      height: Math.max(80, routing.utilisation.length * 24),
      data: { values },
      encoding: {
        x: { field: "expert", type: "ordinal", title: "expert", sort: null },
        y: { field: "domain", type: "ordinal", title: null, sort: null },
      },
      layer: [
        {
          mark: { type: "rect", tooltip: true },
          encoding: {
            color: {
              field: "share",
              type: "quantitative",
              title: "share",
              scale: { scheme: "blues", domain: [0, 1] },
            },
          },
        },
        {
          mark: { type: "text", fontSize: 9 },
          encoding: {
            text: { field: "share", type: "quantitative", format: ".2f" },
            color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "#222" },
          },
        },
      ],
      config: CONFIG,
    },
  };
}

/** Every chart of the report, in page order. */
export function reportCharts(results: RunResults): { main: ReportChart[]; routing: ReportChart[] } {
  const main = [domainAucChart(results), lossCurveChart(results), aucCurveChart(results)];
  const mi = mutualInformationChart(results);
  if (mi) main.push(mi);
  const routing = results.models.flatMap((model) =>
    model.routing.map((gate, index) => utilisationChart(results, model, gate, index)),
  );
  return { main, routing };
}
