import { describe, expect, it } from "vitest";
import { describeDataSource, parseDataArgument } from "../src/data-argument.js";
import { UsageError } from "../src/errors.js";

function usageError(run: () => unknown): UsageError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return error as UsageError;
  }
  throw new Error("expected a UsageError");
}

describe("parseDataArgument", () => {
  it("parses every documented form", () => {
    expect(parseDataArgument("synthetic")).toEqual({ kind: "synthetic", preset: "default" });
    expect(parseDataArgument("synthetic:tiny")).toEqual({ kind: "synthetic", preset: "tiny" });
    expect(parseDataArgument("synthetic:small")).toEqual({ kind: "synthetic", preset: "small" });
    expect(parseDataArgument("movielens-1m:./ml-1m")).toEqual({ kind: "movielens-1m", path: "./ml-1m" });
    expect(parseDataArgument("movielens-100k:/data/ml-100k")).toEqual({
      kind: "movielens-100k",
      path: "/data/ml-100k",
    });
    expect(parseDataArgument("kuairand:log.csv")).toEqual({ kind: "kuairand", path: "log.csv" });
    expect(parseDataArgument("ali-ccp:C:\\data\\train.csv")).toEqual({
      kind: "ali-ccp",
      path: "C:\\data\\train.csv",
    });
    expect(parseDataArgument("csv:clicks.csv", "schema.json")).toEqual({
      kind: "csv",
      path: "clicks.csv",
      schema: "schema.json",
    });
    expect(parseDataArgument("parquet:clicks.parquet", "s.yaml")).toEqual({
      kind: "parquet",
      path: "clicks.parquet",
      schema: "s.yaml",
    });
  });

  it("refuses a kind without its path, naming the argument and the value", () => {
    expect(usageError(() => parseDataArgument("csv:", "s.json")).message).toBe(
      '--data "csv:": "csv:" must be followed by a path (the file), e.g. csv:./data.csv',
    );
    expect(usageError(() => parseDataArgument("movielens-1m")).message).toContain(
      '--data "movielens-1m": "movielens-1m:" must be followed by a path (the directory holding users.dat, movies.dat and ratings.dat)',
    );
    expect(usageError(() => parseDataArgument("parquet:   ", "s.json")).message).toContain(
      '"parquet:" must be followed by a path',
    );
  });

  it("refuses csv and parquet without --schema", () => {
    expect(usageError(() => parseDataArgument("csv:clicks.csv")).message).toBe(
      '--data "csv:clicks.csv" needs --schema <file> (or config key "schema") describing its columns',
    );
  });

  it("refuses unknown kinds and presets with the nearest valid one", () => {
    expect(usageError(() => parseDataArgument("movielens:x")).message).toMatch(
      /^--data "movielens:x": unknown data kind "movielens" \(did you mean "movielens-1m"\?\); expected one of synthetic, movielens-1m:<path>/,
    );
    expect(usageError(() => parseDataArgument("s3://bucket/file")).message).toContain(
      'unknown data kind "s3"',
    );
    expect(usageError(() => parseDataArgument("synthetic:huge")).message).toBe(
      '--data "synthetic:huge": unknown synthetic preset "huge"; presets: tiny, small, default',
    );
    expect(usageError(() => parseDataArgument("synthetic:smal")).message).toContain(
      '(did you mean "synthetic:small"?)',
    );
  });

  it("describes sources canonically", () => {
    expect(describeDataSource(parseDataArgument("synthetic"))).toBe("synthetic:default");
    expect(describeDataSource(parseDataArgument("csv:a.csv", "s.json"))).toBe("csv:a.csv (schema s.json)");
    expect(describeDataSource(parseDataArgument("kuairand:k.csv"))).toBe("kuairand:k.csv");
  });
});
