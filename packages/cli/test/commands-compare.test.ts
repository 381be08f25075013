import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { acquireDirectoryLock } from "@mdrec/trainer";
import { afterAll, describe, expect, it } from "vitest";
import { parseRunResults } from "../src/results.js";
import { controlCharacters, FAST_FLAGS, runMdrec, TEST_MODELS, tempDirectory } from "./fixtures.js";

const directory = tempDirectory("mdrec-compare-");
afterAll(() => directory.cleanup());
const cwd = directory.path;

describe("mdrec compare", () => {
  it("trains each model, prints one table and writes results.json, results.md and report.html", async () => {
    const run = await runMdrec(
      ["compare", "--models", TEST_MODELS.join(","), ...FAST_FLAGS, "--out", "cmp"],
      { cwd },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("mdrec backend: cpu (requested by --backend");
    expect(run.stdout).toMatch(/│ test metric\s+│ shared-bottom │\s+mmoe │/);
    expect(run.stdout).toMatch(/│ AUC domain_3\s+│/);
    expect(run.stdout).toContain("Report: cmp/report.html (open it in a browser)");
    // Not a TTY: plain progress lines, no bar control characters (BAD_INPUTS 28).
    expect(controlCharacters(run.stdout)).toEqual([]);
    expect(run.stdout).toContain("[mmoe] training: 3 steps");
    expect(run.stdout).toMatch(
      /\[mmoe\] epoch 1\/1: loss \d.* \| validation AUC \d\.\d+ logloss \d\.\d+ MI \d/,
    );
    const results = parseRunResults(JSON.parse(readFileSync(join(cwd, "cmp", "results.json"), "utf8")));
    expect(results.kind).toBe("compare");
    expect(results.models.map((model) => model.name)).toEqual(TEST_MODELS);
    expect(results.config).toMatchObject({
      data: "synthetic:tiny",
      seed: 42,
      epochs: 1,
      batchSize: 128,
      rows: 400,
    });
    expect(results.environment.backend).toBe("cpu");
    expect(results.dataset).toMatchObject({ rows: 400, train: 320, validation: 40, test: 40 });
    expect(results.models[1]!.routing.length).toBeGreaterThan(0);
    expect(results.models[1]!.history[0]!.domainExpertMi).not.toBeNull();
    for (const model of results.models) {
      expect(model.history).toHaveLength(1);
      expect(model.test.perDomain).toHaveLength(4);
      expect(model.trainExamplesPerSecond).toBeGreaterThan(0);
      expect(model.parameters).toBeGreaterThan(0);
    }
    expect(readFileSync(join(cwd, "cmp", "results.md"), "utf8")).toContain(
      "| test metric | shared-bottom | mmoe |",
    );
    const html = readFileSync(join(cwd, "cmp", "report.html"), "utf8");
    expect(html).toContain('<table id="comparison">');
    expect(html).toContain('<figure id="utilisation-mmoe-0"');
    expect(existsSync(join(cwd, "cmp", "mdrec.lock"))).toBe(false);

    // The same directory again: refused, naming the earlier run (BAD_INPUTS 27).
    const again = await runMdrec(["compare", "--models", "shared-bottom", ...FAST_FLAGS, "--out", "cmp"], {
      cwd,
    });
    expect(again.code).toBe(2);
    expect(again.stderr).toBe(
      `mdrec: --out cmp already holds results of another run (mdrec compare, run ${results.runId}, written ${results.createdAt}): report.html, results.json, results.md. ` +
        "Pass --overwrite to replace them, or choose another --out.\n",
    );

    // `mdrec report` re-renders the report from results.json.
    const report = await runMdrec(["report", "cmp/results.json", "--out", "again.html"], { cwd });
    expect(report.code).toBe(0);
    expect(report.stdout).toContain(`Report: again.html (2 models, run ${results.runId})`);
    expect(readFileSync(join(cwd, "again.html"), "utf8")).toContain('<tr data-model="mmoe">');
  });

  it("--overwrite replaces the results; --json prints one JSON document on stdout", async () => {
    const first = await runMdrec(["compare", "--models", "shared-bottom", ...FAST_FLAGS, "--out", "json"], {
      cwd,
    });
    expect(first.code).toBe(0);
    const run = await runMdrec(
      [
        "compare",
        "--models",
        "shared-bottom",
        ...FAST_FLAGS,
        "--out",
        "json",
        "--overwrite",
        "--json",
        "--seed",
        "3",
      ],
      { cwd },
    );
    expect(run.code).toBe(0);
    const printed = parseRunResults(JSON.parse(run.stdout));
    expect(printed.config.seed).toBe(3);
    const written = parseRunResults(JSON.parse(readFileSync(join(cwd, "json", "results.json"), "utf8")));
    expect(written.runId).toBe(printed.runId);
    // Human-readable output went to stderr.
    expect(run.stderr).toContain("mdrec backend: cpu");
    expect(run.stderr).toContain("Report: json/report.html");
  });

  it("refuses an output directory another run is writing, with exit code 1", async () => {
    const lock = await acquireDirectoryLock(join(cwd, "locked"));
    try {
      const run = await runMdrec(["compare", "--models", "shared-bottom", ...FAST_FLAGS, "--out", "locked"], {
        cwd,
      });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^mdrec: --out locked: .* is in use by another run \(pid \d+/);
      expect(run.stderr).not.toContain("    at ");
    } finally {
      await lock.release();
    }
  });
});
