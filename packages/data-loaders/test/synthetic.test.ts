import { ConfigError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import { generateSyntheticDataset, syntheticPresets, validateDataset } from "../src/index.js";
import { auc, sameValues } from "./helpers.js";

const BASE = { numRows: 20_000, numUsers: 1500, numItems: 800 };

describe("generateSyntheticDataset", () => {
  it("is deterministic for a seed and differs across seeds", () => {
    const options = { ...BASE, numRows: 5000, includeLogits: true };
    const first = generateSyntheticDataset({ ...options, seed: 3 });
    const second = generateSyntheticDataset({ ...options, seed: 3 });
    const other = generateSyntheticDataset({ ...options, seed: 4 });
    expect(sameValues(second.labels, first.labels)).toBe(true);
    expect(sameValues(second.domainIds, first.domainIds)).toBe(true);
    expect(sameValues(second.truth.logits, first.truth.logits)).toBe(true);
    for (const name of Object.keys(first.columns))
      expect(sameValues(second.columns[name], first.columns[name])).toBe(true);
    expect(second.truth.domainBias).toEqual(first.truth.domainBias);
    expect(sameValues(other.labels, first.labels)).toBe(false);
    expect(sameValues(other.columns.user_id, first.columns.user_id)).toBe(false);
    expect(sameValues(other.truth.logits, first.truth.logits)).toBe(false);
  });

  it("has the declared shapes, vocabularies and value ranges", () => {
    const data = generateSyntheticDataset({
      ...BASE,
      numExtraFields: 3,
      vocabularySize: 50,
      numericFields: 2,
    });
    expect(() => validateDataset(data)).not.toThrow();
    expect(data.numRows).toBe(20_000);
    expect(data.numTasks).toBe(1);
    expect(data.numDomains).toBe(8);
    expect(data.domainNames).toHaveLength(8);
    expect(data.taskNames).toEqual(["click"]);
    expect(sameValues(data.groupIds, data.columns.user_id)).toBe(true);
    const names = data.features.map((spec) => spec.name);
    expect(names).toEqual([
      "user_id",
      "item_id",
      "user_attr_0",
      "user_attr_1",
      "user_attr_2",
      "item_attr_0",
      "item_attr_1",
      "item_attr_2",
      "extra_0",
      "extra_1",
      "extra_2",
      "numeric_0",
      "numeric_1",
    ]);
    for (const spec of data.features) {
      const column = data.columns[spec.name]!;
      expect(column).toHaveLength(data.numRows);
      if (spec.kind === "categorical") {
        expect(column).toBeInstanceOf(Int32Array);
        // id 0 is the OOV id: the generator never emits it.
        expect(Math.min(...column)).toBeGreaterThanOrEqual(1);
        expect(Math.max(...column)).toBeLessThan(spec.vocabularySize);
      } else {
        expect(column).toBeInstanceOf(Float32Array);
        const mean = Array.from(column).reduce((sum, value) => sum + value, 0) / column.length;
        expect(Math.abs(mean)).toBeLessThan(0.05);
      }
    }
    expect(data.features.find((spec) => spec.name === "extra_0")).toMatchObject({ vocabularySize: 50 });
    expect(data.features.find((spec) => spec.name === "user_id")).toMatchObject({ vocabularySize: 1501 });
    expect(new Set(data.labels)).toEqual(new Set([0, 1]));
  });

  it("follows the domain shares and CTRs it is given (and the unequal defaults)", () => {
    const shares = [4, 2, 1, 1];
    const ctr = [0.1, 0.5, 0.3, 0.2];
    const data = generateSyntheticDataset({
      ...BASE,
      numDomains: 4,
      numPatterns: 2,
      domainShares: shares,
      domainCtr: ctr,
    });
    const counts = [0, 0, 0, 0];
    const clicks = [0, 0, 0, 0];
    data.domainIds.forEach((domain, row) => {
      counts[domain]!++;
      clicks[domain]! += data.labels[row]!;
    });
    counts.forEach((count, domain) => {
      expect(count / data.numRows).toBeCloseTo(shares[domain]! / 8, 1);
      expect(Math.abs(clicks[domain]! / count - ctr[domain]!)).toBeLessThan(0.03);
    });
    const defaults = generateSyntheticDataset(BASE);
    const defaultCounts = new Array(8).fill(0);
    for (const domain of defaults.domainIds) defaultCounts[domain]++;
    // Geometric shares 0.75^d: each domain smaller than the previous one.
    for (let domain = 1; domain < 8; domain++)
      expect(defaultCounts[domain]).toBeLessThan(defaultCounts[domain - 1]);
  });

  it("plants a strong, domain-specific signal (Bayes-optimal AUC from the true logits)", () => {
    const data = generateSyntheticDataset({ ...BASE, includeLogits: true });
    const logits = data.truth.logits!;
    expect(auc(logits, data.labels)).toBeGreaterThan(0.78);
    const probabilities = data.truth.probabilities!;
    expect(probabilities[0]).toBeCloseTo(1 / (1 + Math.exp(-logits[0]!)), 5);
    for (let domain = 0; domain < data.numDomains; domain++) {
      const rows = [...data.domainIds.keys()].filter((row) => data.domainIds[row] === domain);
      expect(auc(logits, data.labels, rows)).toBeGreaterThan(0.72);
    }
  });

  it("a per-domain lookup on the domain's own planted pattern beats chance and beats another group's pattern", () => {
    const data = generateSyntheticDataset({
      ...BASE,
      numRows: 40_000,
      numDomains: 4,
      numPatterns: 4,
      domainShares: [1, 1, 1, 1],
    });
    const { truth } = data;
    expect(truth.domainGroup).toEqual([0, 1, 2, 3]);
    expect(truth.domainPatterns).toEqual([[0], [1, 2], [2], [3, 0]]);
    const half = data.numRows / 2;
    // Fit click rate per (user attribute, item attribute) cell on the first half, score the second.
    const lookupAuc = (domain: number, pattern: number) => {
      const { userField, itemField } = truth.patternFields[pattern]!;
      const users = data.columns[userField]!;
      const items = data.columns[itemField]!;
      const clicks = new Map<number, [number, number]>();
      for (let row = 0; row < half; row++) {
        if (data.domainIds[row] !== domain) continue;
        const key = users[row]! * 1000 + items[row]!;
        const cell = clicks.get(key) ?? [0, 0];
        cell[0] += data.labels[row]!;
        cell[1] += 1;
        clicks.set(key, cell);
      }
      const scores = new Float32Array(data.numRows);
      const rows: number[] = [];
      for (let row = half; row < data.numRows; row++) {
        if (data.domainIds[row] !== domain) continue;
        const cell = clicks.get(users[row]! * 1000 + items[row]!) ?? [0, 0];
        scores[row] = (cell[0] + 1) / (cell[1] + 2);
        rows.push(row);
      }
      return auc(scores, data.labels, rows);
    };
    for (let domain = 0; domain < 4; domain++) {
      const own = truth.domainPatterns[domain]![0]!;
      const foreign = [0, 1, 2, 3].find((pattern) => !truth.domainPatterns[domain]!.includes(pattern))!;
      const ownAuc = lookupAuc(domain, own);
      expect(ownAuc).toBeGreaterThan(0.62);
      expect(ownAuc).toBeGreaterThan(lookupAuc(domain, foreign) + 0.05);
    }
    expect(new Set(truth.patternFields.map((pair) => `${pair.userField}/${pair.itemField}`)).size).toBe(4);
  });

  it("generates 100k rows fast and offers size presets", () => {
    const started = performance.now();
    const data = generateSyntheticDataset({ numRows: 100_000 });
    // Generous bound for a shared 2-core machine; typical is ~0.1-0.3 s.
    expect(performance.now() - started).toBeLessThan(3000);
    expect(data.numRows).toBe(100_000);
    expect(generateSyntheticDataset(syntheticPresets.tiny).numRows).toBe(2000);
    expect(syntheticPresets.small.numRows).toBe(20_000);
    expect(generateSyntheticDataset({ numRows: 10 }).numRows).toBe(10);
  });

  it("rejects invalid options with messages naming the option and value", () => {
    expect(() => generateSyntheticDataset({ numRows: 0 })).toThrow(ConfigError);
    expect(() => generateSyntheticDataset({ numRows: 0 })).toThrow(
      "numRows must be an integer >= 1, received 0",
    );
    expect(() => generateSyntheticDataset({ numDomain: 3 } as never)).toThrow(
      'Unknown key "numDomain" in generateSyntheticDataset options. Did you mean "numDomains"?',
    );
    expect(() => generateSyntheticDataset({ numDomains: 3, domainShares: [1, 2] })).toThrow(
      "domainShares must have numDomains=3 entries, received [1,2]",
    );
    expect(() => generateSyntheticDataset({ numDomains: 2, domainCtr: [0.2, 1.5] })).toThrow(
      "domainCtr[1] must be a number in (0, 1), received 1.5",
    );
    expect(() => generateSyntheticDataset({ noise: Number.NaN })).toThrow(
      "noise must be a finite number >= 0, received NaN",
    );
    expect(() => generateSyntheticDataset({ numPatterns: 8, numAttributes: 2 })).toThrow(
      "numAttributes must be an integer in [3, 100], received 2",
    );
  });
});
