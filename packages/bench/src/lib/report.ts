import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { BenchRecord } from "../record.js";
import type { MachineInfo } from "./machine.js";
import { KEEP_FREED_MEMORY } from "./pytorch.js";

/** One suite's latest results in bench-results.json. */
export interface SuiteResult {
  date: string;
  quick: boolean;
  machine: MachineInfo;
  /** The backend line of the run (`initBackend`), e.g. `wasm (simd; 1 thread; mdrec fast kernels)`. */
  backend: string;
  seconds: number;
  description?: string;
  records: BenchRecord[];
  /** Set when the suite threw; its records are then empty. */
  error?: string;
}

/** bench-results.json: the latest result of every suite (a run with `--only` updates only those). */
export interface BenchResults {
  date: string;
  machine: MachineInfo;
  backend: string;
  suites: Record<string, SuiteResult>;
}

/** Reads an existing results file, or null when there is none or it is unreadable. */
export function readResults(path: string): BenchResults | null {
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as BenchResults;
    return parsed && typeof parsed.suites === "object" ? parsed : null;
  } catch {
    return null;
  }
}

/** A number as people read it: thousands separated, 3 significant digits below 100. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString("en-US");
  if (magnitude === 0) return "0";
  return Number(value.toPrecision(3)).toString();
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function machineLine(machine: MachineInfo, backend: string, date: string, quick: boolean): string {
  return (
    `${date.slice(0, 19).replace("T", " ")} UTC${quick ? " (quick run: smoke figures, not for quoting)" : ""}; ` +
    `${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, load average ${machine.loadAverage} at start; ` +
    `${machine.os}; Node ${machine.node}; TensorFlow.js ${machine.tfjs}; backend ${backend}`
  );
}

/** The records as an aligned text table for the terminal. */
export function textTable(records: readonly BenchRecord[]): string {
  const rows = records.map((entry) => [entry.name, formatNumber(entry.value), entry.unit]);
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length), 4));
  return rows
    .map((row) => `  ${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padStart(widths[1]!)}  ${row[2]!}`)
    .join("\n");
}

/** Looks a record up by suite and exact name. */
function find(results: BenchResults, suite: string, name: string): BenchRecord | undefined {
  return results.suites[suite]?.records.find((entry) => entry.name === name);
}

/** A target-table row: a figure with a threshold (`pass`), or one only reported (no `pass`). */
interface TargetRow {
  label: string;
  suite: string;
  name: string;
  target: string;
  pass?: (value: number) => boolean;
}

/** A figure the table reports next to the targets, without a threshold of its own. */
function reported(label: string, suite: string, name: string, target = "(reported)"): TargetRow {
  return { label, suite, name, target };
}

/** The issue 7 targets that the results cover, as markdown table rows. */
function targetRows(results: BenchResults): string[] {
  const dispatchSuite = "sparse-dispatch";
  const targets: TargetRow[] = [
    {
      label: "MMoE training, default backend / PyTorch (head-to-head)",
      suite: "throughput",
      name: "mmoe train mdrec / PyTorch (head-to-head)",
      target: ">= 0.5 (goal 1.0)",
      pass: (value) => value >= 0.5,
    },
    {
      label: "MMoE inference, default backend / PyTorch (head-to-head)",
      suite: "throughput",
      name: "mmoe inference mdrec / PyTorch (head-to-head)",
      target: ">= 1.0",
      pass: (value) => value >= 1,
    },
    reported(
      "CESAA training, default backend / PyTorch (head-to-head)",
      "throughput",
      "cesaa train mdrec / PyTorch (head-to-head)",
    ),
    reported(
      "CESAA inference, default backend / PyTorch (head-to-head)",
      "throughput",
      "cesaa inference mdrec / PyTorch (head-to-head)",
    ),
    reported(
      "MMoE training, wasm stock kernels / PyTorch best (before)",
      "throughput",
      "mmoe train mdrec (wasm, stock kernels) / PyTorch best",
    ),
    reported(
      "MMoE inference, wasm stock kernels / PyTorch best (before)",
      "throughput",
      "mmoe inference mdrec (wasm, stock kernels) / PyTorch best",
    ),
    {
      label: "CESAA N=16 dense/sparse train step ratio / ideal 4.5",
      suite: dispatchSuite,
      name: "N=16 train ratio / ideal",
      target: ">= 0.8",
      pass: (value) => value >= 0.8,
    },
    reported(
      "CESAA N=16 fixed per-step cost F (ms, sparse step on 16-row batches)",
      dispatchSuite,
      "N=16 fixed per-step cost F",
    ),
    reported(
      "CESAA N=16 ratio / ideal reachable with that F (no dispatch overhead at all)",
      dispatchSuite,
      "N=16 ratio / ideal reachable with F",
    ),
    reported(
      "CESAA N=16 largest F (ms) that allows 0.8 x ideal",
      dispatchSuite,
      "N=16 largest F that allows 0.8 x ideal",
    ),
    reported(
      "PyTorch reference, same comparison: N=16 dense/sparse train step ratio / ideal 4.5",
      dispatchSuite,
      "PyTorch N=16 train ratio / ideal",
    ),
    reported(
      "CESAA N=16 sparse train step, PyTorch / mdrec (> 1: mdrec faster)",
      dispatchSuite,
      "N=16 sparse train step, PyTorch / mdrec",
    ),
    reported(
      "CESAA sparse train step N=32 / N=4 (flat = 1)",
      dispatchSuite,
      "N=32 sparse train step / N=4",
      "roughly flat (reported)",
    ),
  ];
  const rows: string[] = [];
  for (const target of targets) {
    const entry = find(results, target.suite, target.name);
    if (entry === undefined) continue;
    const verdict = target.pass === undefined ? "" : target.pass(entry.value) ? "met" : "not met";
    rows.push(`| ${target.label} | ${formatNumber(entry.value)} | ${target.target} | ${verdict} |`);
  }
  const memory =
    results.suites.throughput?.records.filter((entry) => entry.name.includes("growth over")) ?? [];
  for (const entry of memory) {
    const isTensors = entry.unit === "tensors";
    const verdict = isTensors
      ? entry.value === 0
        ? "met"
        : "not met"
      : entry.value <= 16
        ? "met"
        : "not met";
    rows.push(
      `| ${escapeCell(entry.name)} | ${formatNumber(entry.value)} ${entry.unit} | ${isTensors ? "0" : "no growth (<= 16 MiB)"} | ${verdict} |`,
    );
  }
  return rows;
}

/** What the backend labels in the tables mean, and how to switch each speed-up off. */
const SPEED_NOTES = [
  "## What the backends in these tables are",
  "",
  "- **wasm**: the default backend where `@tensorflow/tfjs-node` is not installed, with `@mdrec/core`'s",
  "  kernel overrides (`registerFastKernels`, installed by `initBackend`): `BatchMatMul` and",
  "  `_FusedMatMul` never take the stock scalar loop that transposed and batched products fall into",
  "  (every backward matmul is transposed), `Identity` shares buffers instead of copying every tensor",
  "  tfjs saves for the backward pass, `Sum`, `Slice`, `SplitV`, `Unpack`, `GatherV2`, `Transpose` and",
  "  `Concat` read the wasm heap in place. Where a C compiler exists, the matmuls go to the system BLAS",
  "  (OpenBLAS `sgemm`, itself on one thread) through a small Node-API add-on that `@mdrec/core`",
  "  compiles on first use into `~/.cache/mdrec` and whose own thread pool (one thread per core unless",
  "  `MDREC_BLAS_THREADS` says otherwise) spreads the products of each call and large Adam updates;",
  "  with it, experts run as strided BLAS calls (`blockExpertMatMul`, `segmentExpertMatMul`: no",
  "  transposes, slices or concats; a sparse layer's expert segments in one call) with each expert's",
  "  bias and relu applied in place and a one-kernel backward pass for both (`blockExpertDense`,",
  "  `segmentExpertDense`), a routed expert pool (sparse experts, CESAA's shared experts, domain towers:",
  "  `routedExpertMixture`) is one kernel forward and one backward with each expert whole on one thread,",
  "  bias + relu is one pass, bias-gradient sums are BLAS products, narrow and",
  "  small products (gates, towers, per-domain sums) stay on the calling thread, tiny batched products",
  "  (the per-row expert mixture) skip BLAS, the embedding lookups of a batch and their gradient are",
  "  one C loop each, row gathers copy rows in C, the noisy top-k gate's `logits + noise *",
  "  softplus(x W_n)` is one vectorised C kernel (`noisyGateLogits`), and Adam updates each variable",
  "  in one fused pass (bit-identical to `tf.train.adam`). The backend line says",
  "  `native GEMM <library> (<OpenBLAS kernel family> kernels, <n> BLAS threads), fused Adam`; the",
  "  kernel family is OpenBLAS's own choice for the CPU or `OPENBLAS_CORETYPE`'s (the PyTorch",
  "  reference inherits the same environment, so both run the same OpenBLAS kernels).",
  "  Switches: `initBackend({ fastKernels: false })` or `MDREC_FAST_KERNELS=0` (stock kernels),",
  "  `MDREC_NATIVE_GEMM=0` (TypeScript kernels only), `MDREC_FUSED_ADAM=0`, `MDREC_BLAS_THREADS=1`.",
  "- **wasm, stock kernels**: TensorFlow.js 4.22 as shipped (the state before this work).",
  "- **cpu**: tfjs's JavaScript backend; its matmul is plain JavaScript (~70% of a training step) and",
  "  no cheap override helps it, so `initBackend` prefers wasm.",
  "- **PyTorch**: Debian's `python3-torch` 1.13 on OpenBLAS, each process with",
  `  \`GLIBC_TUNABLES=${KEEP_FREED_MEMORY}\` so that`,
  "  glibc keeps freed blocks: with its defaults every op's fresh output faults its pages in again, which",
  "  on these VMs made PyTorch 2.5-3.5x slower (one sweep setting still runs with the defaults).",
  "",
  "Stock faults the overrides avoid, each with a regression test in `packages/core/test`: the wasm",
  "`_FusedMatMul` adds the bias wrongly with a transpose or a batch; the wasm XNNPACK path caches its",
  "packed weights by tensor id, and tfjs gives one id to tensors of different shapes (`Reshape`), which",
  "read out of bounds (stock) or produced NaN.",
  "",
];

/** docs/benchmarks.md generated from the results. */
export function markdown(results: BenchResults): string {
  const lines: string[] = [
    "# Benchmarks",
    "",
    "Generated by `pnpm bench` (packages/bench) from `bench-results.json`; do not edit by hand.",
    "Run `pnpm bench` for everything, `pnpm bench -- --quick` for a smoke run, `--only throughput,sparse-dispatch`",
    "for some suites (the others keep their previous results), `--backend wasm` to measure one backend.",
    "The machines are shared with other work: compare figures measured in the same run (the ratios do),",
    "not across runs. Speed targets live here, never in unit tests.",
    "",
  ];
  const targets = targetRows(results);
  if (targets.length > 0) {
    lines.push(
      "## Issue 7 targets",
      "",
      "| figure | measured | target | |",
      "|---|---:|---|---|",
      ...targets,
      "",
    );
  }
  lines.push(...SPEED_NOTES);
  for (const [name, suite] of Object.entries(results.suites).sort(([left], [right]) =>
    left.localeCompare(right),
  )) {
    lines.push(`## ${name}`, "", machineLine(suite.machine, suite.backend, suite.date, suite.quick), "");
    if (suite.description) lines.push(suite.description, "");
    if (suite.error !== undefined) {
      lines.push(`This suite failed: ${escapeCell(suite.error)}`, "");
      continue;
    }
    lines.push("| measurement | value | unit | notes |", "|---|---:|---|---|");
    for (const entry of suite.records) {
      lines.push(
        `| ${escapeCell(entry.name)} | ${formatNumber(entry.value)} | ${entry.unit} | ${escapeCell(entry.notes ?? "")} |`,
      );
    }
    lines.push(`\nSuite wall time: ${formatNumber(suite.seconds)} s.`, "");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}

/** Writes `text` to `path`, creating the directory. */
export async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}
