import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, DataError } from "@mdrec/core";
import { afterAll, describe, expect, it } from "vitest";
import { type DataSchema, loadSchemaFile, parseSchema, validateSchema } from "../src/index.js";
import { caught, temporaryDirectory } from "./helpers.js";

const directory = temporaryDirectory();
afterAll(directory.cleanup);

const valid: DataSchema = {
  features: [
    { kind: "categorical", name: "user_id", column: "user" },
    { kind: "numeric", name: "price" },
  ],
  domain: { column: "age", mapping: { "1": 0, "18": 0, "25": 1 } },
  labels: [{ name: "click", column: "rating", rule: { op: ">=", value: 4 }, range: [1, 5] }],
  groupColumn: "user",
  time: { column: "ts", unit: "ms" },
};

function withChange(change: (schema: DataSchema) => void): DataSchema {
  const schema = structuredClone(valid);
  change(schema);
  return schema;
}

describe("validateSchema", () => {
  it("accepts a valid schema", () => {
    expect(validateSchema(valid)).toBe(valid);
  });

  it.each([
    [
      (s: DataSchema) => ((s as unknown as Record<string, unknown>).label = []),
      'Unknown key "label" in schema. Did you mean "labels"?',
    ],
    [
      (s: DataSchema) => (s.features = []),
      "schema.features must be a non-empty array of fields, received []",
    ],
    [
      (s: DataSchema) => ((s.features[0] as unknown as Record<string, unknown>).kind = "text"),
      'schema.features[0].kind must be one of "categorical", "numeric", received "text"',
    ],
    [
      (s: DataSchema) => ((s.features[0] as unknown as Record<string, unknown>).minCnt = 2),
      'Unknown key "minCnt" in schema.features[0]. Did you mean "minCount"?',
    ],
    [
      (s: DataSchema) => (s.features[1]!.name = "user_id"),
      'schema.features[1].name "user_id" is declared twice',
    ],
    [
      (s: DataSchema) => (s.features[0] = { kind: "categorical", name: "x", encoding: "hashing" }),
      "schema.features[0].numBuckets (hashing) must be an integer in [1, 2147483647], received undefined",
    ],
    [
      (s: DataSchema) =>
        (s.features[0] = { kind: "categorical", name: "x", encoding: "identity", vocabularySize: 0 }),
      "schema.features[0].vocabularySize (identity) must be an integer in [1, 2147483647], received 0",
    ],
    [
      (s: DataSchema) => (s.features[1] = { kind: "numeric", name: "p", fillValue: Number.NaN }),
      "schema.features[1].fillValue must be a finite number, received NaN",
    ],
    [
      (s: DataSchema) => (s.domain = { column: "age", mapping: { a: 0, b: 2 } }),
      "schema.domain.mapping must use every domain id 0..2; no value maps to 1",
    ],
    [
      (s: DataSchema) => (s.domain = { column: "age", mapping: { a: -1 } }),
      'schema.domain.mapping["a"] must be an integer in [0, 100000], received -1',
    ],
    [
      (s: DataSchema) => (s.domain = { column: "tab" }),
      "schema.domain.numDomains (required without mapping) must be an integer in [1, 100000], received undefined",
    ],
    [
      (s: DataSchema) => (s.domain.names = ["only-one"]),
      'schema.domain.names must list 2 domain names, received ["only-one"]',
    ],
    [
      (s: DataSchema) => (s.labels[0]!.rule = { op: "=>" as never, value: 4 }),
      'schema.labels[0].rule.op must be one of ">=", ">", "<=", "<", "==", "!=", received "=>"',
    ],
    [
      (s: DataSchema) => (s.labels[0]!.range = [5, 1]),
      "schema.labels[0].range must be [min, max] with min <= max, received [5,1]",
    ],
    [
      (s: DataSchema) => (s.time = { column: "ts", name: "price" }),
      'schema.time.name "price" collides with a feature name; set time.name to another name',
    ],
  ])("rejects %#", (change, message) => {
    const error = (() => {
      try {
        validateSchema(withChange(change));
      } catch (thrown) {
        return thrown as Error;
      }
      throw new Error("no error");
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(message);
  });
});

describe("parseSchema and loadSchemaFile", () => {
  it("parses JSON text and resolves join paths against the schema file", async () => {
    expect(parseSchema(JSON.stringify(valid))).toEqual(valid);
    expect(() => parseSchema("{ nope")).toThrow(/^schema is not valid JSON \(/);
    const schema = { ...valid, joins: [{ source: "users.csv", key: "user", on: "user", columns: ["age"] }] };
    const path = join(directory.path, "schema.json");
    writeFileSync(path, JSON.stringify(schema));
    const loaded = await loadSchemaFile(path);
    expect(loaded.joins![0]!.source).toBe(join(directory.path, "users.csv"));
  });

  it("names the schema file when it is missing, a directory or not JSON", async () => {
    const missing = join(directory.path, "missing.json");
    let error = await caught(() => loadSchemaFile(missing));
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toBe(`schema file "${missing}" does not exist`);
    error = await caught(() => loadSchemaFile(directory.path));
    expect(error.message).toBe(`schema file "${directory.path}" is a directory`);
    const broken = join(directory.path, "broken.json");
    writeFileSync(broken, "{");
    error = await caught(() => loadSchemaFile(broken));
    expect(error.message).toMatch(/^schema file ".*broken\.json" is not valid JSON/);
    const typo = join(directory.path, "typo.json");
    writeFileSync(typo, JSON.stringify({ ...valid, feature: [] }));
    error = await caught(() => loadSchemaFile(typo));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(`Unknown key "feature" in schema file "${typo}". Did you mean "features"?`);
  });
});
