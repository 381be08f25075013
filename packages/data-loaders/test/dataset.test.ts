import { ConfigError, DataError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import { type ColumnarDataset, concatDatasets, domainCounts, validateDataset } from "../src/index.js";

function small(): ColumnarDataset {
  return {
    features: [
      { kind: "categorical", name: "user", vocabularySize: 3 },
      { kind: "numeric", name: "price" },
    ],
    columns: { user: Int32Array.from([1, 2, 0]), price: Float32Array.from([0.5, 1, 2]) },
    domainIds: Int32Array.from([0, 1, 1]),
    labels: Float32Array.from([1, 0, 1]),
    numRows: 3,
    numTasks: 1,
    numDomains: 2,
    domainNames: ["a", "b"],
    taskNames: ["click"],
    groupIds: Int32Array.from([7, 8, 7]),
  };
}

describe("validateDataset", () => {
  it("accepts a consistent dataset and counts rows per domain", () => {
    expect(() => validateDataset(small())).not.toThrow();
    expect(domainCounts(small())).toEqual([1, 2]);
  });

  it.each([
    [
      (d: ColumnarDataset) => (d.columns.user = Int32Array.from([1, 3, 0])),
      "dataset.columns.user[1] must be in [0, vocabularySize=3), received 3",
    ],
    [
      (d: ColumnarDataset) => (d.columns.price = Float32Array.from([1])),
      "dataset.columns.price must have length 3, received 1",
    ],
    [
      (d: ColumnarDataset) => (d.columns.user = Float32Array.from([1, 2, 0])),
      "dataset.columns.user (categorical) must be an Int32Array, received Float32Array",
    ],
    [
      (d: ColumnarDataset) => (d.domainIds = Int32Array.from([0, 2, 1])),
      "dataset.domainIds[1] must be in [0, numDomains=2), received 2",
    ],
    [
      (d: ColumnarDataset) => (d.labels = Float32Array.from([1, 0])),
      "dataset.labels must have length 3, received 2",
    ],
    [
      (d: ColumnarDataset) => (d.domainNames = ["a"]),
      'dataset.domainNames must have numDomains=2 entries, received ["a"]',
    ],
  ])("rejects an inconsistency (%#)", (change, message) => {
    const dataset = small();
    change(dataset);
    expect(() => validateDataset(dataset)).toThrow(DataError);
    expect(() => validateDataset(dataset)).toThrow(message);
  });
});

describe("concatDatasets", () => {
  it("appends rows of every column, labels and groups", () => {
    const joined = concatDatasets([small(), small()]);
    expect(joined.numRows).toBe(6);
    expect(Array.from(joined.columns.user!)).toEqual([1, 2, 0, 1, 2, 0]);
    expect(Array.from(joined.groupIds!)).toEqual([7, 8, 7, 7, 8, 7]);
    expect(() => validateDataset(joined)).not.toThrow();
  });

  it("refuses datasets with different features or domains, and an empty list", () => {
    const other = small();
    other.numDomains = 3;
    other.domainNames = ["a", "b", "c"];
    expect(() => concatDatasets([small(), other])).toThrow(ConfigError);
    expect(() => concatDatasets([small(), other])).toThrow(/^datasets\[1\] differs from datasets\[0\]/);
    expect(() => concatDatasets([])).toThrow("datasets must be a non-empty array, received []");
  });
});
