import { DataError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import { parseRunResults, stringifyRunResults } from "../src/results.js";
import {
  comparisonRows,
  formatEpochs,
  formatSeconds,
  renderComparisonTable,
  renderResultsMarkdown,
} from "../src/table.js";
import { controlCharacters, sampleResults } from "./fixtures.js";

describe("results file", () => {
  it("round-trips through JSON and the schema; non-finite numbers become null", () => {
    const results = sampleResults();
    expect(parseRunResults(JSON.parse(stringifyRunResults(results)))).toEqual(results);
    results.models[0]!.test.perDomain[0]!.auc = Number.NaN;
    const reparsed = parseRunResults(JSON.parse(stringifyRunResults(results)));
    expect(reparsed.models[0]!.test.perDomain[0]!.auc).toBeNull();
  });

  it("names the file, the key path and the value of the first problem", () => {
    const broken = JSON.parse(stringifyRunResults(sampleResults()));
    broken.models[1].test.overall.auc = "high";
    expect(() => parseRunResults(broken, "out/results.json")).toThrow(DataError);
    expect(() => parseRunResults(broken, "out/results.json")).toThrow(
      'out/results.json is not an mdrec results file: models[1].test.overall.auc expected number, received string; received "high"',
    );
    delete broken.models;
    expect(() => parseRunResults(broken, "r.json")).toThrow(
      /models expected array, received undefined; received nothing \(missing\)/,
    );
    expect(() => parseRunResults([1, 2], "r.json")).toThrow(
      "r.json is not an mdrec results file: (top level)",
    );
    expect(() => parseRunResults({ ...sampleResults(), formatVersion: 99 }, "r.json")).toThrow(
      /formatVersion .*received 99/,
    );
  });
});

describe("comparison table", () => {
  it("has overall and per-domain AUC and logloss, parameters, experts per row, examples/s and wall time", () => {
    const rows = comparisonRows(sampleResults());
    expect(rows.map((row) => row.label)).toEqual([
      "AUC overall",
      "logloss overall",
      "AUC domain_0",
      "AUC domain_1",
      "AUC domain_2",
      "logloss domain_0",
      "logloss domain_1",
      "logloss domain_2",
      "parameters",
      "experts per row",
      "train examples/s",
      "epochs (best)",
      "wall time",
    ]);
    expect(rows[0]).toEqual({ label: "AUC overall", cells: ["0.7400", "0.7000"], best: 0 });
    expect(rows[1]!.best).toBe(0);
    expect(rows.find((row) => row.label === "experts per row")!.cells).toEqual(["3 of 5", "-"]);
    expect(rows.find((row) => row.label === "train examples/s")!.cells).toEqual(["4,322", "4,322"]);
  });

  it("renders for a terminal without colour codes, and as Markdown", () => {
    const text = renderComparisonTable(sampleResults());
    expect(controlCharacters(text)).toEqual([]);
    expect(text).toContain("│ AUC overall      │ *0.7400 │        0.7000 │");
    const markdown = renderResultsMarkdown(sampleResults());
    expect(markdown).toContain("| test metric | cesaa | shared-bottom |");
    expect(markdown).toContain("| AUC overall | **0.7400** | 0.7000 |");
    expect(markdown).toContain("| seed | `7` |");
  });

  it("shows the evaluated epoch when early stopping kept an earlier one", () => {
    expect(formatEpochs({ epochs: 3, bestEpoch: 2 })).toBe("3 (2)");
    expect(formatEpochs({ epochs: 2, bestEpoch: 2 })).toBe("2");
    expect(formatEpochs({ epochs: 2, bestEpoch: null })).toBe("2");
  });

  it("formats durations", () => {
    expect(formatSeconds(4.25)).toBe("4.3 s");
    expect(formatSeconds(125)).toBe("2 min 05 s");
    expect(formatSeconds(null)).toBe("-");
  });
});
