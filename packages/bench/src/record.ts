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

/** What `run.ts` passes to every suite. */
export interface BenchRunOptions {
  /** Fewer steps and smaller sizes (`--quick`): a smoke run, not figures to quote. */
  quick: boolean;
  /**
   * Backends requested with `--backend` (mdrec names: `wasm`, `cpu`, ...). Undefined: suites
   * that compare backends use every backend that loads; the others run on the active one.
   */
  backends?: string[];
  /** Prints a progress line (to stderr). Suites may ignore it. */
  log?: (message: string) => void;
}

/** A benchmark suite module under `src/suites/`: it exports `suite`. */
export interface BenchSuite {
  name: string;
  /** Markdown printed above the suite's table in docs/benchmarks.md. */
  description?: string;
  run(options: BenchRunOptions): Promise<BenchRecord[]>;
}
