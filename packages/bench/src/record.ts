/** One measured figure. Suites return lists of these; `run.ts` writes them out. */
export interface BenchRecord {
  /** Suite name, e.g. `"data-loaders"`. */
  suite: string;
  /** What was measured, e.g. `"parse+encode MovieLens-1M format, 1M rows"`. */
  name: string;
  value: number;
  /** Unit of `value`, e.g. `"rows/s"`, `"MiB"`, `"s"`, `"ratio"`. */
  unit: string;
  /** Backend, sizes, anything needed to read the figure. */
  notes?: string;
}

/** A benchmark suite module under `src/suites/`. */
export interface BenchSuite {
  name: string;
  run(options: { quick: boolean }): Promise<BenchRecord[]>;
}
