import { describe, expect, it } from "vitest";
import { reportCharts } from "../src/report/charts.js";
import { escapeHtml, renderReport } from "../src/report/render.js";
import { sampleResults } from "./fixtures.js";

describe("renderReport", () => {
  it("is one self-contained file: inline SVG per chart, no script, no external resource", async () => {
    const results = sampleResults();
    const html = await renderReport(results);
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/\b(src|href)=/i);
    // The only URLs are XML namespaces of the inline SVG.
    const urls = [...html.matchAll(/https?:\/\/[^\s"')]+/g)].map((match) => match[0]);
    expect(new Set(urls)).toEqual(new Set(["http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"]));
    const charts = reportCharts(results);
    const figures = [...html.matchAll(/<figure id="([^"]+)"[^>]*>\s*<h3>[^<]*<\/h3>\s*<svg/g)].map(
      (match) => match[1],
    );
    expect(figures).toEqual([...charts.main, ...charts.routing].map((chart) => chart.id));
    expect(html.match(/<tr data-model=/g)).toHaveLength(2);
    expect(html).toContain(
      "Best test AUC: <strong>cesaa</strong> with 0.7400, 0.0400 ahead of <strong>shared-bottom</strong>.",
    );
    expect(html).toContain("No gates, so no routing: shared-bottom.");
    for (const fact of [
      "synthetic:tiny",
      "seed",
      "cpu",
      "4.22.0",
      "2025-01-02T03:04:05.000Z",
      "run-fixture",
    ]) {
      expect(html).toContain(fact);
    }
  });

  it("leaves out the MI chart when no model has gates, and escapes names", async () => {
    const results = sampleResults();
    results.models = [results.models[1]!];
    results.models[0]!.name = "<b>odd</b>";
    const charts = reportCharts(results);
    expect(charts.main.map((chart) => chart.id)).toEqual(["domain-auc", "loss-curves", "auc-curves"]);
    expect(charts.routing).toEqual([]);
    const html = await renderReport(results);
    expect(html).not.toContain("<b>odd</b>");
    expect(html).toContain("&lt;b&gt;odd&lt;/b&gt;");
  });

  it("draws one heatmap per gate with a cell per domain and expert", () => {
    const results = sampleResults();
    const chart = reportCharts(results).routing[0]!;
    const values = (chart.spec.data as { values: { domain: string; expert: string; share: number }[] })
      .values;
    expect(values).toHaveLength(3 * 4);
    expect(values[0]).toEqual({ domain: "domain_0", expert: "E0", share: 0.7 });
  });

  it("escapes HTML", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });
});
