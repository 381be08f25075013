// Loads report.html in headless Chromium (Debian's `chromium`, driven by playwright-core) and
// checks that the table and every chart rendered. CI installs chromium (.ci/run); where it is
// missing the test is skipped with the reason printed, never passed silently.
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { reportCharts } from "../src/report/charts.js";
import { renderReport } from "../src/report/render.js";
import { sampleResults, tempDirectory } from "./fixtures.js";

const CHROMIUM = process.env.MDREC_CHROMIUM ?? "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) {
  console.warn(
    `report-browser.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set MDREC_CHROMIUM)`,
  );
}

describe.skipIf(!available)("report.html in headless Chromium", () => {
  const directory = tempDirectory("mdrec-report-");
  let browser: import("playwright-core").Browser;

  beforeAll(async () => {
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    directory.cleanup();
  });

  it("renders the comparison table, every chart with marks, and needs no network", async () => {
    const results = sampleResults();
    const path = join(directory.path, "report.html");
    writeFileSync(path, await renderReport(results));
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith("file:")) requests.push(request.url());
    });
    await page.goto(pathToFileURL(path).href, { waitUntil: "load" });

    const rows = await page.$$eval("#comparison tbody tr", (elements) =>
      elements.map((row) => row.getAttribute("data-model")),
    );
    expect(rows).toEqual(results.models.map((model) => model.name));
    const headerCells = await page.$$eval("#comparison thead th", (elements) => elements.length);
    expect(headerCells).toBe(3 + results.dataset.domainNames.length + 5);

    const expected = reportCharts(results);
    const expectedIds = [...expected.main, ...expected.routing].map((chart) => chart.id);
    const charts = await page.$$eval("figure[data-chart]", (figures) =>
      figures.map((figure) => {
        const svg = figure.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return {
          id: figure.getAttribute("data-chart"),
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: svg
            ? svg.querySelectorAll("g.role-mark path, g.role-mark line, g.role-mark rect, g.role-mark text")
                .length
            : 0,
          dataMarks: svg
            ? svg.querySelectorAll(
                "g.mark-rect.role-mark path, g.mark-line.role-mark path, g.mark-symbol.role-mark path",
              ).length
            : 0,
        };
      }),
    );
    expect(charts.map((chart) => chart.id)).toEqual(expectedIds);
    expect(expectedIds).toEqual([
      "domain-auc",
      "loss-curves",
      "auc-curves",
      "domain-expert-mi",
      "utilisation-cesaa-0",
    ]);
    for (const chart of charts) {
      expect(chart.width, chart.id!).toBeGreaterThan(100);
      expect(chart.height, chart.id!).toBeGreaterThan(50);
      expect(chart.dataMarks, chart.id!).toBeGreaterThan(0);
    }
    const bars = charts.find((chart) => chart.id === "domain-auc")!;
    // One bar per model and slice: overall + 3 domains, 2 models.
    expect(bars.dataMarks).toBe(2 * 4);
    const heatmap = charts.find((chart) => chart.id === "utilisation-cesaa-0")!;
    expect(heatmap.dataMarks).toBe(3 * 4);

    expect(await page.$$eval("script", (scripts) => scripts.length)).toBe(0);
    expect(requests).toEqual([]);

    const screenshot = join(directory.path, "report.png");
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    if (process.env.MDREC_KEEP_SCREENSHOT)
      writeFileSync(process.env.MDREC_KEEP_SCREENSHOT, await page.screenshot({ fullPage: true }));
    await page.close();
  });
});
