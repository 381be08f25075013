import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where the reference scripts live (`packages/bench/reference`). */
export const REFERENCE_DIRECTORY = fileURLToPath(new URL("../../reference/", import.meta.url));

/** Debian's interpreter, which sees `python3-torch`; `MDREC_BENCH_PYTHON` overrides it. */
export function pythonPath(): string {
  return process.env.MDREC_BENCH_PYTHON ?? "/usr/bin/python3";
}

/** Whether PyTorch is importable, and why not when it is not. */
export type TorchAvailability = { available: true; version: string } | { available: false; reason: string };

/** Checks once whether the reference can run here. */
export function probeTorch(): TorchAvailability {
  const python = pythonPath();
  if (!existsSync(python)) {
    return {
      available: false,
      reason: `${python} not found (install Debian's python3-torch, or set MDREC_BENCH_PYTHON)`,
    };
  }
  const result = spawnSync(python, ["-c", "import torch, numpy; print(torch.__version__)"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    const why = (result.stderr || result.error?.message || "unknown error").trim().split("\n").at(-1);
    return {
      available: false,
      reason: `${python} cannot import torch and numpy (${why}); install python3-torch`,
    };
  }
  return { available: true, version: result.stdout.trim() };
}

/** One thread (and allocator) setting tried for PyTorch. */
export interface ThreadSetting {
  /** `OPENBLAS_NUM_THREADS` (OpenBLAS's own pool, used by torch's matmuls on Debian). */
  openblasThreads: number;
  /** `torch.set_num_threads` (intra-op OpenMP pool). */
  torchThreads: number;
  /**
   * glibc's malloc keeps freed blocks in the process ({@link KEEP_FREED_MEMORY}) instead of
   * giving every block over 128 KiB back to the system when it is freed. PyTorch allocates each
   * op's output afresh, so with the default every large tensor faults its pages in again: on our
   * VMs `[1024, 128] @ [128, 256]` ran at 21 GFLOP/s instead of 78 and a `[1024, 256]` relu + add
   * took 3.5 ms instead of 0.12 ms; the reference MMoE trained at 8-10k instead of 28k examples/s.
   * PyTorch's CPU tuning guides recommend jemalloc or tcmalloc for this; these glibc tunables get
   * the same effect without installing anything.
   */
  keepFreedMemory: boolean;
}

/** The glibc tunables of {@link ThreadSetting.keepFreedMemory}: blocks up to 32 MiB come from the heap, which is trimmed only past 256 MiB free. */
export const KEEP_FREED_MEMORY = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456";

/** The environment of a reference process with `setting`. */
export function torchEnvironment(setting: ThreadSetting): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENBLAS_NUM_THREADS: String(setting.openblasThreads),
    OMP_NUM_THREADS: String(setting.torchThreads),
  };
  if (setting.keepFreedMemory) {
    env.GLIBC_TUNABLES = [process.env.GLIBC_TUNABLES, KEEP_FREED_MEMORY].filter(Boolean).join(":");
  }
  return env;
}

/** A setting as the tables print it. */
export function settingText(setting: ThreadSetting): string {
  const malloc = setting.keepFreedMemory ? "" : ", glibc malloc defaults";
  return `OPENBLAS_NUM_THREADS=${setting.openblasThreads}, torch.set_num_threads(${setting.torchThreads})${malloc}`;
}

/** What one reference run prints (see reference/common.py). */
export interface TorchResult {
  trainExamplesPerSecond: number;
  trainExamplesPerSecondMean: number;
  inferenceExamplesPerSecond: number;
  inferenceExamplesPerSecondMean: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  finalLoss: number;
  torchThreads: number;
  openblasThreads: string;
  torchVersion: string;
  parameters: number;
}

/**
 * Runs `reference/<script>` with one thread setting on the batches in `dataDirectory`.
 * @param args extra flags, e.g. `["--steps", "30"]`.
 */
export function runTorchReference(
  script: string,
  setting: ThreadSetting,
  dataDirectory: string,
  args: string[],
): Promise<TorchResult> {
  const env = torchEnvironment(setting);
  const argv = [script, "--data", dataDirectory, "--threads", String(setting.torchThreads), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(pythonPath(), argv, { cwd: REFERENCE_DIRECTORY, env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const line = stdout.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !line.startsWith("{")) {
        reject(
          new Error(`${script} exited with ${code}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`),
        );
        return;
      }
      resolve(JSON.parse(line) as TorchResult);
    });
  });
}

/**
 * A PyTorch reference process in `--serve` mode: one training step, inference pass or
 * single-row prediction per call, so the bench can alternate single steps of both engines and
 * expose them to the same load from other processes.
 */
export class TorchSession {
  private readonly pending: ((line: string) => void)[] = [];
  private buffered = "";
  private stderr = "";
  private exited: string | null = null;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      this.buffered += chunk;
      let newline = this.buffered.indexOf("\n");
      while (newline >= 0) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        this.pending.shift()?.(line);
        newline = this.buffered.indexOf("\n");
      }
    });
    child.stderr.on("data", (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-2000);
    });
    child.on("close", (code) => {
      this.exited = `exited with ${code}: ${this.stderr.trim().split("\n").slice(-2).join(" | ")}`;
      for (const resolve of this.pending.splice(0)) resolve("");
    });
  }

  /** Starts `reference/<script> --serve` and waits for its warm-up to finish. */
  static async start(script: string, setting: ThreadSetting, dataDirectory: string): Promise<TorchSession> {
    const env = torchEnvironment(setting);
    const argv = [
      script,
      "--serve",
      "--warmup",
      "3",
      "--data",
      dataDirectory,
      "--threads",
      String(setting.torchThreads),
    ];
    const session = new TorchSession(spawn(pythonPath(), argv, { cwd: REFERENCE_DIRECTORY, env }));
    const ready = await session.next();
    if (!ready.startsWith("{") || !(JSON.parse(ready) as { ready?: boolean }).ready) {
      throw new Error(`${script} --serve did not start (${session.exited ?? ready})`);
    }
    return session;
  }

  private next(): Promise<string> {
    return new Promise((resolve) => {
      if (this.exited !== null) resolve("");
      else this.pending.push(resolve);
    });
  }

  /** Runs one command; returns PyTorch's own wall time of it in ms. */
  async run(command: "train" | "infer" | "latency"): Promise<number> {
    const answer = this.next();
    this.child.stdin.write(`${command}\n`);
    const line = await answer;
    if (!line.startsWith("{")) throw new Error(`PyTorch reference ${this.exited ?? `answered ${line}`}`);
    const parsed = JSON.parse(line) as { seconds?: number; error?: string };
    if (parsed.seconds === undefined) throw new Error(`PyTorch reference: ${parsed.error ?? line}`);
    return parsed.seconds * 1000;
  }

  /** Ends the process. */
  close(): void {
    if (this.exited === null) this.child.stdin.end("quit\n");
  }
}
