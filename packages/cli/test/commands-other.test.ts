import { mkdirSync, writeFileSync } from "node:fs";
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

// MovieLens-1M's three `::`-separated files, 12 users x 10 movies.
function writeMovieLensFixture(): void {
  const folder = join(cwd, "ml-1m");
  mkdirSync(folder);
  const ages = [1, 18, 25, 35, 45, 50, 56];
  const users = Array.from(
    { length: 12 },
    (_, user) =>
      `${user + 1}::${user % 2 ? "F" : "M"}::${ages[user % ages.length]}::${user % 5}::0000${user}`,
  );
  const movies = Array.from(
    { length: 10 },
    (_, movie) => `${movie + 1}::Movie ${movie + 1} (1999)::${movie % 2 ? "Comedy|Drama" : "Action"}`,
  );
  const ratings: string[] = [];
  for (let user = 1; user <= 12; user++) {
    for (let movie = 1; movie <= 10; movie++)
      ratings.push(`${user}::${movie}::${1 + ((user * movie) % 5)}::${978300000 + user * 100 + movie}`);
  }
  writeFileSync(join(folder, "users.dat"), `${users.join("\n")}\n`);
  writeFileSync(join(folder, "movies.dat"), `${movies.join("\n")}\n`);
  writeFileSync(join(folder, "ratings.dat"), `${ratings.join("\n")}\n`);
}
writeMovieLensFixture();

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

  it("reads a MovieLens-1M directory", async () => {
    const run = await runMdrec(["data", "inspect", "--data", "movielens-1m:ml-1m", "--json"], { cwd });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const summary = JSON.parse(run.stdout) as { rows: number; users: number; domains: { rows: number }[] };
    expect(summary.rows).toBe(120);
    expect(summary.users).toBe(12);
    expect(summary.domains.reduce((total, domain) => total + domain.rows, 0)).toBe(120);
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
