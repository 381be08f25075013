import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferIo, parseRunResults } from "@mdrec/cli";
import { listModels } from "@mdrec/models";
import { afterAll, describe, expect, it } from "vitest";
import { compareOnMovieLens } from "../src/movielens.js";

const root = mkdtempSync(join(tmpdir(), "mdrec-movielens-example-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const AGES = [1, 18, 25, 35, 45, 50, 56];
const GENRES = ["Action", "Comedy", "Drama", "Children's", "Sci-Fi"];

/**
 * Writes a small MovieLens-1M directory in the release's exact format: `::`-separated latin1
 * text without header. Younger users like action and comedy, older ones drama, so the label
 * (rating >= 4) depends on the domain (age group).
 */
function writeMovieLens(directory: string, options: { badRating?: boolean } = {}): void {
  mkdirSync(directory, { recursive: true });
  const users = Array.from({ length: 42 }, (_, index) => {
    const age = AGES[index % AGES.length]!;
    return `${index + 1}::${index % 2 === 0 ? "F" : "M"}::${age}::${index % 21}::${String(10000 + index * 37)}`;
  });
  const movies = Array.from({ length: 30 }, (_, index) => {
    // Latin-1 titles (é = 0xE9, ü = 0xFC) must survive decoding.
    const title =
      index === 0 ? "Amélie (2001)" : index === 1 ? "Das Boot (1981) Über" : `Movie ${index + 1} (1999)`;
    return `${index + 1}::${title}::${GENRES[index % GENRES.length]}|${GENRES[(index + 2) % GENRES.length]}`;
  });
  const ratings: string[] = [];
  for (let user = 1; user <= users.length; user++) {
    const young = AGES[(user - 1) % AGES.length]! < 25;
    for (let step = 0; step < 16; step++) {
      const movie = ((user * 7 + step * 11) % movies.length) + 1;
      const genre = GENRES[(movie - 1) % GENRES.length]!;
      const liked = young ? genre === "Action" || genre === "Comedy" : genre === "Drama";
      const rating = liked ? 4 + ((user + step) % 2) : 1 + ((user + step) % 3);
      ratings.push(`${user}::${movie}::${rating}::${978300000 + user * 1000 + step}`);
    }
  }
  if (options.badRating) ratings[2] = "1::3::7::978300760";
  writeFileSync(join(directory, "users.dat"), Buffer.from(`${users.join("\n")}\n`, "latin1"));
  writeFileSync(join(directory, "movies.dat"), Buffer.from(`${movies.join("\n")}\n`, "latin1"));
  writeFileSync(join(directory, "ratings.dat"), Buffer.from(`${ratings.join("\n")}\n`, "latin1"));
}

const FAST = ["--epochs", "1", "--batch-size", "128", "--backend", "cpu"];

describe("examples/movielens", () => {
  it("compares every registered model on a MovieLens-1M directory and writes the report", async () => {
    writeMovieLens(join(root, "ml-1m"));
    const io = bufferIo({ cwd: root });
    const code = await compareOnMovieLens(["--", "ml-1m", ...FAST, "--out", "out"], { io: io });
    expect(io.stderr.text).toBe("");
    expect(code).toBe(0);
    const results = parseRunResults(JSON.parse(readFileSync(join(root, "out", "results.json"), "utf8")));
    expect(results.models.map((model) => model.name)).toEqual(listModels());
    expect(results.models.map((model) => model.name)).toEqual(
      expect.arrayContaining(["shared-bottom", "mmoe", "ple", "star", "cesaa"]),
    );
    expect(results.dataset).toMatchObject({ rows: 672, domainNames: ["under-25", "25-34", "35+"] });
    // The config file's settings reach the run; the flags win over it.
    expect(results.config).toMatchObject({
      epochs: 1,
      batchSize: 128,
      learningRate: 0.001,
      weightDecay: 0.00001,
    });
    for (const model of results.models) {
      expect(model.test.perDomain.map((domain) => domain.name)).toEqual(["under-25", "25-34", "35+"]);
      expect(model.test.overall.auc).toEqual(expect.any(Number));
    }
    expect(results.models.find((model) => model.name === "ple")!.totalExperts).toBe(7); // 1 shared + 2 x 3 domains
    expect(io.stdout.text).toContain(
      "mdrec compare: shared-bottom, mmoe, ple, star, cesaa on movielens-1m:ml-1m",
    );
    expect(io.stdout.text).toContain("Report: out/report.html");
    expect(readFileSync(join(root, "out", "report.html"), "utf8")).toContain('<table id="comparison">');
  });

  it("without a directory prints how to get MovieLens-1M and exits 2", async () => {
    const io = bufferIo({ cwd: root, env: {} });
    expect(await compareOnMovieLens([], { io: io })).toBe(2);
    expect(io.stderr.text).toContain("No MovieLens-1M directory given (argument or MOVIELENS_DIR).");
    expect(io.stderr.text).toContain("https://files.grouplens.org/datasets/movielens/ml-1m.zip");
    expect(io.stdout.text).toBe("");
  });

  it("reads the directory from MOVIELENS_DIR and names missing files", async () => {
    mkdirSync(join(root, "partial"));
    writeFileSync(join(root, "partial", "users.dat"), "1::F::1::10::48067\n");
    const io = bufferIo({ cwd: root, env: { MOVIELENS_DIR: "partial" } });
    expect(await compareOnMovieLens(["--epochs", "1"], { io: io })).toBe(2);
    expect(io.stderr.text).toContain('MovieLens-1M directory "partial" lacks ratings.dat, movies.dat.');

    const missing = bufferIo({ cwd: root, env: { MOVIELENS_DIR: "nowhere" } });
    expect(await compareOnMovieLens([], { io: missing })).toBe(2);
    expect(missing.stderr.text).toContain(
      'MovieLens-1M directory "nowhere" does not exist or is not a directory.',
    );
  });

  it("passes bad data through as the CLI's one-line error (file, line, column, value) with exit 2", async () => {
    writeMovieLens(join(root, "bad"), { badRating: true });
    const io = bufferIo({ cwd: root });
    expect(await compareOnMovieLens(["bad", ...FAST, "--out", "bad-out"], { io: io })).toBe(2);
    expect(io.stderr.text).toMatch(/^mdrec: .*ratings\.dat", line 3, column "Rating".*7/);
  });
});
