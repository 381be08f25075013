import { SeededRandom } from "@mdrec/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { auc, gauc, MetricsError } from "../src/index.js";

describe("gauc", () => {
  it("matches hand-computed values", () => {
    // User 7: AUC 1 (2 rows); user 9: AUC 0 (2 rows); user 3: one class, skipped.
    expect(gauc([0, 1, 0, 1, 1], [0.1, 0.9, 0.8, 0.2, 0.5], [7, 7, 9, 9, 3])).toEqual({
      value: 0.5,
      usersCounted: 2,
      usersSkipped: 1,
    });
    // User 1: 3 rows, AUC 0.5 (0.5 beats 0.1, loses to 0.9); user 2: 2 rows, AUC 1 -> (3 * 0.5 + 2 * 1) / 5.
    expect(gauc([1, 0, 0, 1, 0], [0.5, 0.9, 0.1, 0.6, 0.4], [1, 1, 1, 2, 2]).value).toBeCloseTo(0.7, 15);
    // Ties within a user count half.
    expect(gauc([1, 0], [0.3, 0.3], [5, 5]).value).toBe(0.5);
  });

  it("equals the impression-weighted mean of per-user AUC (property)", () => {
    const row = fc.tuple(
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: -2, max: 3 }),
    );
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 60 }), (rows) => {
        const labels = rows.map(([label]) => label);
        const scores = rows.map(([, level]) => level / 3);
        const groups = rows.map(([, , group]) => group * 1e10); // ids beyond 2^31 and negative ids
        let weighted = 0;
        let weight = 0;
        let counted = 0;
        const distinct = [...new Set(groups)];
        for (const group of distinct) {
          const members = groups.flatMap((id, index) => (id === group ? [index] : []));
          const groupLabels = members.map((index) => labels[index]!);
          if (groupLabels.every((label) => label === groupLabels[0])) continue;
          weighted +=
            members.length *
            auc(
              groupLabels,
              members.map((index) => scores[index]!),
            );
          weight += members.length;
          counted++;
        }
        const result = gauc(labels, scores, groups);
        expect(result.usersCounted).toBe(counted);
        expect(result.usersSkipped).toBe(distinct.length - counted);
        if (counted === 0) {
          expect(result.value).toBeNaN();
          expect(result.reason).toBe("single-class");
        } else {
          expect(result.value).toBeCloseTo(weighted / weight, 12);
          expect(result.reason).toBeUndefined();
        }
      }),
      { numRuns: 200 },
    );
  });

  it("handles many users above the radix threshold", () => {
    const random = new SeededRandom(3);
    const rows = 40_000;
    const labels = new Uint8Array(rows);
    const scores = new Float32Array(rows);
    const groups = new Int32Array(rows);
    for (let index = 0; index < rows; index++) {
      groups[index] = index < 30_000 ? 0 : 1 + random.nextInt(500);
      labels[index] = random.next() < 0.3 ? 1 : 0;
      scores[index] = random.next() * 0.8 + 0.2 * labels[index]!;
    }
    const rowsByGroup = new Map<number, number[]>();
    groups.forEach((group, index) => {
      const members = rowsByGroup.get(group) ?? [];
      members.push(index);
      rowsByGroup.set(group, members);
    });
    let weighted = 0;
    let weight = 0;
    let counted = 0;
    for (const members of rowsByGroup.values()) {
      const groupLabels = members.map((index) => labels[index]!);
      if (groupLabels.every((label) => label === groupLabels[0])) continue;
      weighted +=
        members.length *
        auc(
          groupLabels,
          members.map((index) => scores[index]!),
        );
      weight += members.length;
      counted++;
    }
    const result = gauc(labels, scores, groups);
    expect(result.usersCounted).toBe(counted);
    expect(result.usersCounted + result.usersSkipped).toBe(rowsByGroup.size);
    expect(result.value).toBeCloseTo(weighted / weight, 12);
  });

  it("returns NaN with reason when every user has one class", () => {
    expect(gauc([1, 1, 0], [0.2, 0.4, 0.5], [1, 1, 2])).toEqual({
      value: Number.NaN,
      usersCounted: 0,
      usersSkipped: 2,
      reason: "single-class",
    });
  });

  it("rejects bad input naming the place and value", () => {
    const check = (call: () => unknown, message: string) => {
      expect(call).toThrow(MetricsError);
      expect(call).toThrow(message);
    };
    check(() => gauc([], [], []), "gauc: empty input (0 rows)");
    check(
      () => gauc([0, 1], [0.1, 0.2], [1]),
      "gauc: labels and groupIds must have the same length, received labels.length=2 and groupIds.length=1",
    );
    check(() => gauc([0, 1], [0.1, 0.2], [1, 1.5]), "gauc: groupIds[1] must be an integer, received 1.5");
    check(
      () => gauc([0, 1], [0.1, 0.2], [Number.NaN, 1]),
      "gauc: groupIds[0] must be an integer, received NaN",
    );
    check(() => gauc([0, -1], [0.1, 0.2], [1, 1]), "gauc: labels[1] must be 0 or 1, received -1");
    check(
      () => gauc([0, 1], [Number.NaN, 0.2], [1, 1]),
      "gauc: scores[0] must be a number (not NaN), received NaN",
    );
    check(
      () => gauc([0, 1], [0.1, 0.2], null as unknown as number[]),
      "gauc: groupIds must be an array or typed array of numbers, received null",
    );
  });
});
