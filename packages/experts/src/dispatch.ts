import { DataError } from "@mdrec/core";

/** Routing slots grouped by expert (a counting sort of the flat `[B * k]` indices). */
export interface ExpertGroups {
  /** Slots routed to each expert, `[numExperts]`. */
  counts: number[];
  /** Start of each expert's segment in `slots` / `rows`, `[numExperts]`. */
  offsets: number[];
  /** Flat slot positions `row * k + slot`, grouped by expert (row order kept inside a group). */
  slots: Int32Array;
  /** Row of each entry of `slots`. */
  rows: Int32Array;
}

/**
 * Groups the `B * k` routing slots by expert in O(B * k + N), checking every id: a counting
 * sort, row order kept inside each expert's group.
 * @param indices row-major `[B, k]` expert ids, as read from `Routing.indices`.
 * @param slotsPerRow k.
 * @param numExperts N; ids must be in `[0, N)`.
 * @param label names the ids in the error for one out of range.
 * @example
 * const groups = groupSlotsByExpert(domainIds.dataSync(), 1, numDomains, "domainIds");
 * // groups.rows: row ids grouped by domain, groups.counts: rows per domain
 */
export function groupSlotsByExpert(
  indices: ArrayLike<number>,
  slotsPerRow: number,
  numExperts: number,
  label = "ExpertPool.sparse: routing.indices",
): ExpertGroups {
  const total = indices.length;
  const counts = new Array<number>(numExperts).fill(0);
  for (let position = 0; position < total; position++) {
    const expert = indices[position]!;
    if (!(expert >= 0 && expert < numExperts)) {
      const row = Math.floor(position / slotsPerRow);
      throw new DataError(
        `${label}[${row}][${position - row * slotsPerRow}] must be in [0, numExperts=${numExperts}), received ${expert}`,
      );
    }
    counts[expert]! += 1;
  }
  const offsets = new Array<number>(numExperts).fill(0);
  for (let expert = 1; expert < numExperts; expert++)
    offsets[expert] = offsets[expert - 1]! + counts[expert - 1]!;
  const cursor = [...offsets];
  const slots = new Int32Array(total);
  const rows = new Int32Array(total);
  for (let position = 0; position < total; position++) {
    const expert = indices[position]!;
    const target = cursor[expert]!;
    cursor[expert] = target + 1;
    slots[target] = position;
    rows[target] = Math.floor(position / slotsPerRow);
  }
  return { counts, offsets, slots, rows };
}
