/** Sorted copy of `values`. */
function sorted(values: readonly number[]): number[] {
  return [...values].sort((left, right) => left - right);
}

/** The `fraction` quantile (nearest rank) of `values`; NaN when empty. */
export function quantile(values: readonly number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const ordered = sorted(values);
  const rank = Math.min(ordered.length - 1, Math.max(0, Math.ceil(fraction * ordered.length) - 1));
  return ordered[rank]!;
}

/** Median of `values`. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/**
 * Calls `step` `warmUp` times untimed, then `timed` times, returning each timed call's wall
 * time in ms. Medians of these are what the suites report: the machine is shared, and the
 * median shrugs off the steps another process preempted.
 */
export async function timeSteps(
  step: () => void | Promise<void>,
  warmUp: number,
  timed: number,
): Promise<number[]> {
  for (let index = 0; index < warmUp; index++) await step();
  const times: number[] = [];
  for (let index = 0; index < timed; index++) {
    const started = performance.now();
    await step();
    times.push(performance.now() - started);
  }
  return times;
}

/**
 * Steps per round when two contenders alternate (the first step of a round is not timed): in
 * rounds both see the same load from other processes, and after that first step each runs with
 * its own data in cache (single alternated steps measured each one cold, just after the other
 * evicted it).
 */
export const ROUND_STEPS = 4;

/** Bytes to MiB. */
export function mebibytes(bytes: number): number {
  return bytes / (1024 * 1024);
}
