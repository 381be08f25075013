import { ConfigError, DataError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import {
  type ColumnarDataset,
  generateSyntheticDataset,
  splitDataset,
  takeRows,
  validateDataset,
} from "../src/index.js";
import { caught } from "./helpers.js";

function rowIds(dataset: ColumnarDataset): number[] {
  return Array.from(dataset.columns.row!, (value) => value);
}

/** A dataset whose `row` column holds each row's original index. */
function indexed(numRows: number, numDomains = 2, extra: Partial<ColumnarDataset> = {}): ColumnarDataset {
  return {
    features: [{ kind: "categorical", name: "row", vocabularySize: numRows }],
    columns: {
      row: Int32Array.from({ length: numRows }, (_, row) => row),
      time: Float32Array.from({ length: numRows }, (_, row) => (row * 7919) % numRows),
    },
    domainIds: Int32Array.from({ length: numRows }, (_, row) => row % numDomains),
    labels: Float32Array.from({ length: numRows }, (_, row) => row % 2),
    numRows,
    numTasks: 1,
    numDomains,
    domainNames: Array.from({ length: numDomains }, (_, domain) => `d${domain}`),
    taskNames: ["click"],
    ...extra,
  };
}

describe("takeRows", () => {
  it("copies the chosen rows of every column, labels and groups, in order", () => {
    const dataset = indexed(6, 2, {
      numTasks: 2,
      labels: Float32Array.from({ length: 12 }, (_, i) => i),
      taskNames: ["a", "b"],
      groupIds: Int32Array.from([5, 5, 6, 6, 7, 7]),
    });
    const taken = takeRows(dataset, [4, 1, 1]);
    expect(rowIds(taken)).toEqual([4, 1, 1]);
    expect(Array.from(taken.labels)).toEqual([8, 9, 2, 3, 2, 3]);
    expect(Array.from(taken.domainIds)).toEqual([0, 1, 1]);
    expect(Array.from(taken.groupIds!)).toEqual([7, 5, 5]);
    expect(taken.columns.time).toBeInstanceOf(Float32Array);
    expect(taken.numRows).toBe(3);
    expect(() => validateDataset(taken)).not.toThrow();
  });

  it("rejects out-of-range row indices naming the position and value", () => {
    expect(() => takeRows(indexed(3), [0, 3])).toThrow(ConfigError);
    expect(() => takeRows(indexed(3), [0, 3])).toThrow(
      "rowIndices[1] must be an integer in [0, numRows=3), received 3",
    );
  });
});

describe("splitDataset", () => {
  it("random split: disjoint, covering, sized by fractions, seeded", () => {
    const dataset = indexed(1000);
    const { train, validation, test, warnings } = splitDataset(dataset, { seed: 1 });
    expect([train.numRows, validation.numRows, test.numRows]).toEqual([800, 100, 100]);
    const all = [...rowIds(train), ...rowIds(validation), ...rowIds(test)];
    expect(new Set(all).size).toBe(1000);
    expect(warnings).toEqual([]);
    // Rows keep their original relative order inside a part.
    expect(rowIds(train)).toEqual([...rowIds(train)].sort((a, b) => a - b));
    expect(rowIds(splitDataset(dataset, { seed: 1 }).test)).toEqual(rowIds(test));
    expect(rowIds(splitDataset(dataset, { seed: 2 }).test)).not.toEqual(rowIds(test));
    const custom = splitDataset(dataset, { fractions: [0.5, 0.25, 0.25] });
    expect([custom.train.numRows, custom.validation.numRows, custom.test.numRows]).toEqual([500, 250, 250]);
  });

  it("time split: the earliest rows train, the latest test", () => {
    const dataset = indexed(100);
    const { train, validation, test } = splitDataset(dataset, {
      by: "time",
      timeColumn: "time",
      fractions: [0.6, 0.2, 0.2],
    });
    const times = (part: ColumnarDataset) => Array.from(part.columns.time!);
    expect(Math.max(...times(train))).toBeLessThan(Math.min(...times(validation)));
    expect(Math.max(...times(validation))).toBeLessThan(Math.min(...times(test)));
    expect([train.numRows, validation.numRows, test.numRows]).toEqual([60, 20, 20]);
  });

  it("leave-last-out per user: last row to test, the one before to validation", () => {
    // users: 1 has rows 0,2,4 (times 30, 10, 20); 2 has rows 1,3; 3 has row 5.
    const dataset = indexed(6, 1, {
      groupIds: Int32Array.from([1, 2, 1, 2, 1, 3]),
    });
    dataset.columns.time = Float32Array.from([30, 5, 10, 6, 20, 1]);
    const byTime = splitDataset(dataset, { leaveLastOutBy: "groupIds", timeColumn: "time" });
    expect(rowIds(byTime.test)).toEqual([0, 3]);
    expect(rowIds(byTime.validation)).toEqual([4]);
    expect(rowIds(byTime.train)).toEqual([1, 2, 5]);
    const byOrder = splitDataset(dataset, { leaveLastOutBy: "groupIds" });
    expect(rowIds(byOrder.test)).toEqual([3, 4]);
    expect(rowIds(byOrder.validation)).toEqual([2]);
    expect(byOrder.warnings).toEqual([]);
  });

  it("warns with counts when a domain has no rows in a part, or fails when asked to", async () => {
    // Domain 1 has a single row: it cannot be in train, validation and test at once.
    const dataset = indexed(50, 2, {
      domainIds: Int32Array.from({ length: 50 }, (_, row) => (row === 7 ? 1 : 0)),
    });
    const { warnings } = splitDataset(dataset, { seed: 3 });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^domain 1 \("d1"\) has no rows in .*validation.* \(train \d, validation 0, test \d of 1 rows\)/,
    );
    const error = await caught(() => splitDataset(dataset, { seed: 3, onEmptyDomain: "error" }));
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toContain('domain 1 ("d1") has no rows in');
  });

  it("splits the synthetic data set with every domain in every part", () => {
    const data = generateSyntheticDataset({ numRows: 5000, numUsers: 300, numItems: 200 });
    const { train, validation, test, warnings } = splitDataset(data);
    expect(warnings).toEqual([]);
    expect(train.numRows + validation.numRows + test.numRows).toBe(5000);
    expect(() => validateDataset(train)).not.toThrow();
  });

  it("rejects invalid options naming the option and value", () => {
    const dataset = indexed(10);
    expect(() => splitDataset(dataset, { fractions: [0.8, 0.3, 0.1] })).toThrow(
      "fractions must be three numbers >= 0 summing to 1, received [0.8,0.3,0.1]",
    );
    expect(() => splitDataset(dataset, { by: "time" })).toThrow(
      'by="time" needs timeColumn, received undefined',
    );
    expect(() => splitDataset(dataset, { by: "date" as never })).toThrow(
      'by must be one of "random", "time", received "date"',
    );
    expect(() => splitDataset(dataset, { by: "time", timeColumn: "tme" })).toThrow(
      'timeColumn="tme" is not a column of the dataset (did you mean "time"?); columns: row, time',
    );
    expect(() => splitDataset(dataset, { leaveLastOutBy: "row", fractions: [0.8, 0.1, 0.1] })).toThrow(
      'leaveLastOutBy="row" splits each user\'s last rows; remove fractions (received [0.8,0.1,0.1])',
    );
    expect(() => splitDataset(dataset, { seeed: 1 } as never)).toThrow(
      'Unknown key "seeed" in splitDataset options. Did you mean "seed"?',
    );
  });
});
