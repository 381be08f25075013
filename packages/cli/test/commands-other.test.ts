import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMdrec, tempDirectory } from "./fixtures.js";

const directory = tempDirectory("mdrec-other-");
afterAll(() => directory.cleanup());
const cwd = directory.path;

// A small CSV in a declared schema: 2 domains, a user and an item field, a click label.
function writeCsvFixture(): void {
  const lines = ["user,item,scenario,click"];
  for (let row = 0; row < 240; row++) {
    const user = row % 17;
    const item = (row * 7) % 23;
    lines.push(`u${user},i${item},${row % 3 === 0 ? "web" : "app"},${(user + item) % 3 === 0 ? 1 : 0}`);
  }
  writeFileSync(join(cwd, "clicks.csv"), `${lines.join("\n")}\n`);
  writeFileSync(
    join(cwd, "schema.json"),
    JSON.stringify({
      features: [
        { kind: "categorical", name: "user" },
        { kind: "categorical", name: "item" },
      ],
      domain: { column: "scenario", mapping: { app: 0, web: 1 } },
      labels: [{ name: "click" }],
      groupColumn: "user",
    }),
  );
}
writeCsvFixture();

describe("mdrec bench", () => {
  it("prints train and inference examples/s per model", async () => {
    const run = await runMdrec(
      [
        "bench",
        "--models",
        "shared-bottom",
        "--data",
        "synthetic:tiny",
        "--rows",
        "600",
        "--steps",
        "2",
        "--batch-size",
        "64",
        "--backend",
        "cpu",
        "--json",
      ],
      { cwd },
    );
    expect(run.code).toBe(0);
    const printed = JSON.parse(run.stdout) as {
      backend: string;
      results: {
        model: string;
        trainExamplesPerSecond: number;
        inferenceExamplesPerSecond: number;
        steps: number;
      }[];
    };
    expect(printed.backend).toBe("cpu");
    expect(printed.results).toHaveLength(1);
    expect(printed.results[0]!).toMatchObject({ model: "shared-bottom", steps: 2 });
    expect(printed.results[0]!.trainExamplesPerSecond).toBeGreaterThan(0);
    expect(printed.results[0]!.inferenceExamplesPerSecond).toBeGreaterThan(0);
    expect(run.stderr).toContain("[shared-bottom] train ");
  });
});

describe("mdrec data inspect", () => {
  it("summarises the synthetic data", async () => {
    const run = await runMdrec(["data", "inspect", "--data", "synthetic:tiny"], { cwd });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("synthetic:tiny: 2,000 rows, 4 domains, tasks click");
    expect(run.stdout).toMatch(/│\s+0 │ domain_0 │/);
    expect(run.stdout).toMatch(/│ user_id\s+│ categorical │\s+301 │/);
  });

  it("reads a CSV through its schema file, as JSON", async () => {
    const run = await runMdrec(
      ["data", "inspect", "--data", "csv:clicks.csv", "--schema", "schema.json", "--json"],
      { cwd },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as {
      rows: number;
      users: number;
      domains: { name: string; rows: number }[];
      features: { name: string; values: number }[];
    };
    expect(summary.rows).toBe(240);
    expect(summary.users).toBe(17);
    expect(summary.domains.map((domain) => domain.rows)).toEqual([160, 80]);
    expect(summary.features).toEqual([
      { name: "user", kind: "categorical", values: 17 },
      { name: "item", kind: "categorical", values: 23 },
    ]);
  });

  it("names a missing data file and a missing schema file", async () => {
    const noFile = await runMdrec(["data", "inspect", "--data", "csv:nope.csv", "--schema", "schema.json"], {
      cwd,
    });
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain("nope.csv");
    const noSchema = await runMdrec(
      ["data", "inspect", "--data", "csv:clicks.csv", "--schema", "missing.json"],
      { cwd },
    );
    expect(noSchema.code).toBe(2);
    expect(noSchema.stderr).toContain('schema file "');
    expect(noSchema.stderr).toContain('missing.json" does not exist');
  });
});

describe("mdrec train on a CSV", () => {
  it("fits encoders on the training rows and saves them for eval", async () => {
    const run = await runMdrec(
      [
        "train",
        "--model",
        "shared-bottom",
        "--data",
        "csv:clicks.csv",
        "--schema",
        "schema.json",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--backend",
        "cpu",
        "--out",
        "csv-run",
      ],
      { cwd },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const evaluation = await runMdrec(
      ["eval", "--model-dir", "csv-run/model", "--backend", "cpu", "--json"],
      { cwd },
    );
    expect(evaluation.code).toBe(0);
    expect(JSON.parse(evaluation.stdout)).toMatchObject({
      model: "shared-bottom",
      data: expect.stringMatching(/^csv:clicks\.csv \(schema .*schema\.json\)$/),
    });
  });
});
