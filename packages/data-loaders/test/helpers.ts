import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Exact AUC with ties by average rank (test helper; the metrics package owns the real one). */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>, rows?: ArrayLike<number>): number {
  const count = rows ? rows.length : scores.length;
  const pairs: [number, number][] = [];
  for (let position = 0; position < count; position++) {
    const row = rows ? rows[position]! : position;
    pairs.push([scores[row]!, labels[row]!]);
  }
  pairs.sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  let positives = 0;
  let start = 0;
  while (start < pairs.length) {
    let end = start;
    while (end < pairs.length && pairs[end]![0] === pairs[start]![0]) end++;
    const rank = (start + end + 1) / 2;
    for (let index = start; index < end; index++) {
      if (pairs[index]![1] === 1) {
        rankSum += rank;
        positives++;
      }
    }
    start = end;
  }
  const negatives = pairs.length - positives;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/** A fresh temporary directory and its cleanup. */
export function temporaryDirectory(prefix = "mdrec-data-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs `action` and returns the error it throws (fails the test when it does not throw). */
export async function caught(action: () => unknown): Promise<Error> {
  try {
    await action();
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected an error, none was thrown");
}

/** Element-wise equality of two typed arrays (much faster than `toEqual` on long arrays). */
export function sameValues(a: ArrayLike<number> | undefined, b: ArrayLike<number> | undefined): boolean {
  if (a === undefined || b === undefined || a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (!Object.is(a[index], b[index])) return false;
  return true;
}
