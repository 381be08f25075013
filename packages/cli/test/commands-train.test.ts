import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseRunResults } from "../src/results.js";
import { controlCharacters, FAST_FLAGS, runMdrec, tempDirectory } from "./fixtures.js";

const directory = tempDirectory("mdrec-train-");
afterAll(() => directory.cleanup());
const cwd = directory.path;

describe("mdrec train and mdrec eval", () => {
  it("trains and saves a model that eval scores identically on the same test split", async () => {
    const train = await runMdrec(
      ["train", "--model", "shared-bottom", ...FAST_FLAGS, "--seed", "5", "--out", "run"],
      { cwd },
    );
    expect(train.stderr).toBe("");
    expect(train.code).toBe(0);
    expect(train.stdout).toContain(
      "mdrec train: shared-bottom on synthetic:tiny (320 train / 40 validation / 40 test rows)",
    );
    expect(train.stdout).toContain(
      "Model: run/model (mdrec eval --model-dir run/model). Report: run/report.html.",
    );
    expect(controlCharacters(train.stdout)).toEqual([]);
    for (const file of [
      "model/model.json",
      "model/training-data.json",
      "results.json",
      "results.md",
      "report.html",
    ]) {
      expect(existsSync(join(cwd, "run", file)), file).toBe(true);
    }
    const results = parseRunResults(JSON.parse(readFileSync(join(cwd, "run", "results.json"), "utf8")));
    expect(results.kind).toBe("train");
    const trained = results.models[0]!.test.overall;

    const evaluation = await runMdrec(["eval", "--model-dir", "run/model", "--backend", "cpu", "--json"], {
      cwd,
    });
    expect(evaluation.code).toBe(0);
    const printed = JSON.parse(evaluation.stdout) as {
      model: string;
      seed: number;
      rows: number;
      test: { overall: { auc: number; logloss: number } };
    };
    expect(printed).toMatchObject({ model: "shared-bottom", seed: 5, rows: 40 });
    // The recorded data, seed and split give back the same test rows, so the same metrics.
    expect(printed.test.overall.auc).toBeCloseTo(trained.auc!, 6);
    expect(printed.test.overall.logloss).toBeCloseTo(trained.logloss!, 6);

    const table = await runMdrec(["eval", "--model-dir", "run/model", "--backend", "cpu"], { cwd });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain("shared-bottom on the test split of synthetic:tiny (40 rows, seed 5):");
    expect(table.stdout).toMatch(/│ overall\s+│\s+40 │/);
    expect(table.stdout).toMatch(/│ domain_0\s+│/);
  });

  it("eval without --model-dir, or with a directory that holds no model, fails with exit code 2 or 1", async () => {
    const missing = await runMdrec(["eval", "--backend", "cpu"], { cwd });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'mdrec: mdrec eval needs --model-dir <dir> (a directory written by mdrec train, or config key "modelDir")\n',
    );
    const empty = await runMdrec(["eval", "--model-dir", "nowhere", "--backend", "cpu"], { cwd });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/^mdrec: .*nowhere/);
  });
});
