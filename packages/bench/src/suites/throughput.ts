import "@mdrec/cesaa";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import {
  type BackendName,
  type Batch,
  describeFastKernels,
  disposeBatch,
  initBackend,
  nativeGemmStatus,
  registerFastKernels,
} from "@mdrec/core";
import { createModel, listModels, type MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import {
  probeTorch,
  runTorchReference,
  settingText,
  type ThreadSetting,
  type TorchResult,
  TorchSession,
} from "../lib/pytorch.js";
import { mebibytes, median, quantile, ROUND_STEPS, timeSteps } from "../lib/stats.js";
import {
  concatRows,
  type HostBatch,
  ModelTrainer,
  makeHostBatches,
  modelOptions,
  toBatch,
  WORKLOAD,
  writeReferenceData,
} from "../lib/workload.js";
import type { BenchRecord, BenchRunOptions, BenchSuite } from "../record.js";

const SUITE = "throughput";

/** A backend configuration to measure. */
interface Variant {
  label: string;
  backend: BackendName;
  fastKernels: boolean;
  /** False: the TypeScript kernels only, as for users without a C compiler. */
  nativeGemm?: boolean;
  /** The default backend's figures are the ones compared with PyTorch. */
  isDefault: boolean;
}

const VARIANTS: Variant[] = [
  { label: "node-gpu", backend: "node-gpu", fastKernels: true, isDefault: false },
  { label: "node", backend: "node", fastKernels: true, isDefault: false },
  { label: "wasm", backend: "wasm", fastKernels: true, isDefault: true },
  { label: "wasm, no native GEMM", backend: "wasm", fastKernels: true, nativeGemm: false, isDefault: false },
  { label: "wasm, stock kernels", backend: "wasm", fastKernels: false, isDefault: false },
  { label: "cpu", backend: "cpu", fastKernels: false, isDefault: false },
];

/** Steps per measurement: the stock kernels are ~5x and `cpu` ~25x slower than the default. */
function stepsFor(variant: Variant, quick: boolean) {
  const slow = variant.backend === "cpu" ? 3 : !variant.fastKernels ? 2 : 1;
  const scale = (full: number, short: number, minimum: number) =>
    Math.max(minimum, Math.round((quick ? short : full) / slow));
  return {
    warmUp: quick ? 1 : 2,
    train: scale(20, 4, 2),
    inference: scale(10, 3, 2),
    latency: scale(200, 40, 20),
  };
}

/** PyTorch's settings: every thread count with freed memory kept, then glibc's defaults once (for the record). */
const THREAD_SETTINGS: ThreadSetting[] = [
  { openblasThreads: 1, torchThreads: 1, keepFreedMemory: true },
  { openblasThreads: 1, torchThreads: 2, keepFreedMemory: true },
  { openblasThreads: 2, torchThreads: 1, keepFreedMemory: true },
  { openblasThreads: 2, torchThreads: 2, keepFreedMemory: true },
  { openblasThreads: 1, torchThreads: 1, keepFreedMemory: false },
];

function record(name: string, value: number, unit: string, notes?: string): BenchRecord {
  return notes === undefined
    ? { suite: SUITE, name, value, unit }
    : { suite: SUITE, name, value, unit, notes };
}

/** What one model measured on one backend. */
interface ModelFigures {
  model: string;
  variant: Variant;
  trainExamplesPerSecond: number;
  inferenceExamplesPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  finalLoss: number;
  parameters: number;
}

async function measureModel(
  name: string,
  variant: Variant,
  host: { train: HostBatch[]; inference: HostBatch; single: HostBatch },
  quick: boolean,
): Promise<ModelFigures> {
  const steps = stepsFor(variant, quick);
  const model: MultiDomainModel = createModel(name, modelOptions(name, 1));
  const trainer = new ModelTrainer(model);
  const batches = host.train.map(toBatch);
  const inference = toBatch(host.inference);
  const single = toBatch(host.single);
  try {
    let cursor = 0;
    let loss = Number.NaN;
    const trainTimes = await timeSteps(
      () => {
        trainer.step(batches[cursor++ % batches.length]!);
        // One scalar read per step: it ends the step on asynchronous backends and checks the loss.
        loss = trainer.lastLoss();
      },
      steps.warmUp,
      steps.train,
    );
    const predict = async (batch: Batch) => {
      const probabilities = model.predict(batch);
      await probabilities.data();
      probabilities.dispose();
    };
    const inferenceTimes = await timeSteps(() => predict(inference), 1, steps.inference);
    const latencies = await timeSteps(() => predict(single), 3, steps.latency);
    if (!Number.isFinite(loss)) throw new Error(`${name} on ${variant.label}: training loss is ${loss}`);
    return {
      model: name,
      variant,
      trainExamplesPerSecond: (WORKLOAD.trainBatch / median(trainTimes)) * 1000,
      inferenceExamplesPerSecond: (WORKLOAD.inferenceBatch / median(inferenceTimes)) * 1000,
      latencyP50Ms: median(latencies),
      latencyP99Ms: quantile(latencies, 0.99),
      finalLoss: loss,
      parameters: model.summary().parameters,
    };
  } finally {
    trainer.dispose();
    model.dispose();
    for (const batch of [...batches, inference, single]) disposeBatch(batch);
  }
}

/** Tensor count, RSS and wasm heap over many training steps of MMoE on the default backend. */
/** A full V8 garbage collection (the gc function of --expose-gc, enabled at run time). */
function fullGc(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

async function measureMemory(
  host: HostBatch[],
  quick: boolean,
  log: (message: string) => void,
): Promise<BenchRecord[]> {
  // The first steps allocate once (BLAS thread buffers, wasm heap growth, JIT); growth is
  // measured after them, with a full GC before each reading so V8's collection timing (its heap
  // swings by ~60 MiB between collections in this loop) does not read as growth.
  const warmUp = quick ? 10 : 100;
  const totalSteps = warmUp + (quick ? 100 : 1000);
  const model = createModel<string>("mmoe", modelOptions("mmoe", 1));
  const trainer = new ModelTrainer(model);
  const batches = host.map(toBatch);
  const heapBytes = () => {
    const backend = tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } };
    return backend.wasm?.HEAPU8.length ?? 0;
  };
  const collectedRss = () => {
    fullGc();
    return process.memoryUsage().rss;
  };
  try {
    for (let step = 0; step < warmUp; step++) trainer.step(batches[step % batches.length]!);
    trainer.lastLoss();
    const tensorsBefore = tf.memory().numTensors;
    const rssBefore = collectedRss();
    const heapBefore = heapBytes();
    for (let step = warmUp; step < totalSteps; step++) {
      trainer.step(batches[step % batches.length]!);
      if (step % 100 === 0)
        log(`  memory check: step ${step}/${totalSteps}, loss ${trainer.lastLoss().toFixed(4)}`);
    }
    const finalLoss = trainer.lastLoss();
    const tensorGrowth = tf.memory().numTensors - tensorsBefore;
    const rssGrowth = mebibytes(collectedRss() - rssBefore);
    const heapGrowth = mebibytes(heapBytes() - heapBefore);
    const notes = `mmoe on ${tf.getBackend()}, steps ${warmUp} -> ${totalSteps} (after ${warmUp} warm-up steps; full GC before each RSS reading), batch ${WORKLOAD.trainBatch}, final loss ${finalLoss.toFixed(4)}`;
    return [
      record(
        `tensor count growth over ${totalSteps - warmUp} training steps`,
        tensorGrowth,
        "tensors",
        notes,
      ),
      record(`RSS growth over ${totalSteps - warmUp} training steps`, rssGrowth, "MiB", notes),
      record(`wasm heap growth over ${totalSteps - warmUp} training steps`, heapGrowth, "MiB", notes),
      record("RSS after the memory check", mebibytes(process.memoryUsage().rss), "MiB", notes),
    ];
  } finally {
    trainer.dispose();
    model.dispose();
    for (const batch of batches) disposeBatch(batch);
  }
}

/** PyTorch's figures per thread setting, and the best of them. */
async function measureTorch(
  script: string,
  dataDirectory: string,
  settings: ThreadSetting[],
  quick: boolean,
  log: (message: string) => void,
): Promise<{ runs: { setting: ThreadSetting; result: TorchResult }[]; best: TorchResult }> {
  const args = [
    "--steps",
    quick ? "8" : "30",
    "--infer-steps",
    quick ? "4" : "10",
    "--warmup",
    quick ? "2" : "5",
  ];
  const runs: { setting: ThreadSetting; result: TorchResult }[] = [];
  for (const setting of settings) {
    const result = await runTorchReference(script, setting, dataDirectory, args);
    log(
      `  pytorch ${script} ${settingText(setting)}: ` +
        `train ${result.trainExamplesPerSecond.toFixed(0)} ex/s, inference ${result.inferenceExamplesPerSecond.toFixed(0)} ex/s`,
    );
    runs.push({ setting, result });
  }
  const bestOf = (key: "trainExamplesPerSecond" | "inferenceExamplesPerSecond") =>
    runs.reduce((best, run) => (run.result[key] > best.result[key] ? run : best));
  const train = bestOf("trainExamplesPerSecond").result;
  const inference = bestOf("inferenceExamplesPerSecond").result;
  return {
    runs,
    best: {
      ...train,
      inferenceExamplesPerSecond: inference.inferenceExamplesPerSecond,
      latencyP50Ms: Math.min(...runs.map((run) => run.result.latencyP50Ms)),
      latencyP99Ms: Math.min(...runs.map((run) => run.result.latencyP99Ms)),
    },
  };
}

/**
 * mdrec on the default backend and PyTorch (a `--serve` process per thread setting) measured in
 * alternating rounds of a few steps each, so both see the same load from other processes.
 * Reports each engine's median and the median of the per-round ratios.
 */
async function headToHead(
  model: string,
  script: string,
  settings: { train: ThreadSetting; inference: ThreadSetting },
  dataDirectory: string,
  host: { train: HostBatch[]; inference: HostBatch; single: HostBatch },
  quick: boolean,
  log: (message: string) => void,
): Promise<BenchRecord[]> {
  const pairs = { train: quick ? 3 : 20, inference: quick ? 2 : 12, latency: quick ? 5 : 50 };
  const instance = createModel<string>(model, modelOptions(model, 1));
  const trainer = new ModelTrainer(instance);
  const batches = host.train.map(toBatch);
  const inference = toBatch(host.inference);
  const single = toBatch(host.single);
  // PyTorch runs each phase with its own best thread setting from the sweep (one process each
  // when they differ), so every ratio is against PyTorch at its fastest for that phase.
  const sameSetting =
    settings.train.openblasThreads === settings.inference.openblasThreads &&
    settings.train.torchThreads === settings.inference.torchThreads &&
    settings.train.keepFreedMemory === settings.inference.keepFreedMemory;
  const torchTrain = await TorchSession.start(script, settings.train, dataDirectory);
  const torchInference = sameSetting
    ? torchTrain
    : await TorchSession.start(script, settings.inference, dataDirectory).catch((error: unknown) => {
        torchTrain.close();
        throw error;
      });
  let cursor = 0;
  const ours = {
    train: () => {
      trainer.step(batches[cursor++ % batches.length]!);
      trainer.lastLoss();
    },
    predict: async (batch: Batch) => {
      const probabilities = instance.predict(batch);
      await probabilities.data();
      probabilities.dispose();
    },
  };
  // Rounds of ROUND_STEPS steps of one engine, then of the other (see ROUND_STEPS).
  const BLOCK = ROUND_STEPS;
  const alternate = async (
    rounds: number,
    command: "train" | "infer" | "latency",
    step: () => void | Promise<void>,
  ) => {
    const torch = command === "train" ? torchTrain : torchInference;
    const mdrecTimes: number[] = [];
    const torchTimes: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const theirs: number[] = [];
      for (let index = 0; index < BLOCK; index++) {
        const seconds = await torch.run(command);
        if (index > 0) theirs.push(seconds);
      }
      const mine = await timeSteps(step, 1, BLOCK - 1);
      mdrecTimes.push(...mine);
      torchTimes.push(...theirs);
      ratios.push(median(theirs) / median(mine)); // > 1: mdrec is faster
    }
    return { mdrec: median(mdrecTimes), torch: median(torchTimes), ratio: median(ratios) };
  };
  try {
    for (let index = 0; index < 3; index++) {
      ours.train();
      await ours.predict(inference);
    }
    log(`  ${model}: ${pairs.train} alternating rounds of ${BLOCK} training steps`);
    const train = await alternate(pairs.train, "train", ours.train);
    log(`  ${model}: ${pairs.inference} alternating rounds of ${BLOCK} inference passes`);
    const infer = await alternate(pairs.inference, "infer", () => ours.predict(inference));
    const latency = await alternate(pairs.latency, "latency", () => ours.predict(single));
    const notes = `mdrec on ${describeFastKernels("wasm")}; PyTorch training with ${settingText(settings.train)}, inference with ${settingText(settings.inference)}; alternating rounds of ${BLOCK} steps, medians`;
    const perSecond = (rows: number, milliseconds: number) => (rows / milliseconds) * 1000;
    log(
      `  ${model}: train ${perSecond(WORKLOAD.trainBatch, train.mdrec).toFixed(0)} vs ${perSecond(WORKLOAD.trainBatch, train.torch).toFixed(0)} ex/s, ` +
        `inference ${perSecond(WORKLOAD.inferenceBatch, infer.mdrec).toFixed(0)} vs ${perSecond(WORKLOAD.inferenceBatch, infer.torch).toFixed(0)} ex/s`,
    );
    return [
      record(
        `${model} head-to-head: mdrec train`,
        perSecond(WORKLOAD.trainBatch, train.mdrec),
        "examples/s",
        notes,
      ),
      record(
        `${model} head-to-head: PyTorch train`,
        perSecond(WORKLOAD.trainBatch, train.torch),
        "examples/s",
        notes,
      ),
      record(
        `${model} train mdrec / PyTorch (head-to-head)`,
        train.ratio,
        "ratio",
        `median over ${pairs.train} alternating rounds (${BLOCK} steps each, first untimed) of PyTorch / mdrec median step time`,
      ),
      record(
        `${model} head-to-head: mdrec inference`,
        perSecond(WORKLOAD.inferenceBatch, infer.mdrec),
        "examples/s",
        notes,
      ),
      record(
        `${model} head-to-head: PyTorch inference`,
        perSecond(WORKLOAD.inferenceBatch, infer.torch),
        "examples/s",
        notes,
      ),
      record(
        `${model} inference mdrec / PyTorch (head-to-head)`,
        infer.ratio,
        "ratio",
        `median over ${pairs.inference} alternating rounds (${BLOCK} passes each, first untimed) of PyTorch / mdrec median pass time, 4096 rows each`,
      ),
      record(`${model} head-to-head: mdrec single-row latency p50`, latency.mdrec, "ms", notes),
      record(`${model} head-to-head: PyTorch single-row latency p50`, latency.torch, "ms", notes),
    ];
  } finally {
    torchTrain.close();
    if (!sameSetting) torchInference.close();
    trainer.dispose();
    instance.dispose();
    for (const batch of [...batches, inference, single]) disposeBatch(batch);
  }
}

async function run({ quick, backends, log = () => {} }: BenchRunOptions): Promise<BenchRecord[]> {
  const records: BenchRecord[] = [];
  const host = makeHostBatches(8, WORKLOAD.trainBatch, 42);
  const sets = {
    train: host,
    inference: concatRows(host, WORKLOAD.inferenceBatch),
    single: concatRows(host, 1),
  };
  const models = listModels();
  const torch = probeTorch();
  const dataDirectory = await mkdtemp(join(tmpdir(), "mdrec-bench-"));
  const torchBest = new Map<string, TorchResult>();
  const torchSetting = new Map<string, { train: ThreadSetting; inference: ThreadSetting }>();
  const torchModels: Record<string, string> = { mmoe: "mmoe.py", cesaa: "cesaa.py" };
  try {
    if (torch.available) {
      await writeReferenceData(dataDirectory, host);
      const settings = quick ? [THREAD_SETTINGS[0]!, THREAD_SETTINGS[3]!] : THREAD_SETTINGS;
      for (const [model, script] of Object.entries(torchModels)) {
        log(`PyTorch ${torch.version} reference: ${script}`);
        const { runs, best } = await measureTorch(script, dataDirectory, settings, quick, log);
        torchBest.set(model, best);
        const fastest = (key: "trainExamplesPerSecond" | "inferenceExamplesPerSecond") =>
          runs.reduce((left, right) => (right.result[key] > left.result[key] ? right : left)).setting;
        torchSetting.set(model, {
          train: fastest("trainExamplesPerSecond"),
          inference: fastest("inferenceExamplesPerSecond"),
        });
        for (const { setting, result } of runs) {
          const notes = `${settingText(setting)}; final loss ${result.finalLoss.toFixed(4)}; torch ${result.torchVersion}`;
          records.push(
            record(
              `pytorch ${model} train (${settingText(setting)})`,
              result.trainExamplesPerSecond,
              "examples/s",
              notes,
            ),
          );
          records.push(
            record(
              `pytorch ${model} inference (${settingText(setting)})`,
              result.inferenceExamplesPerSecond,
              "examples/s",
              notes,
            ),
          );
        }
      }
    } else {
      log(`PyTorch reference skipped: ${torch.reason}`);
      records.push(record("pytorch reference", 0, "skipped", torch.reason));
    }

    const figures: ModelFigures[] = [];
    for (const variant of VARIANTS) {
      if (backends !== undefined && !backends.includes(variant.backend)) continue;
      try {
        await initBackend({ prefer: variant.backend, fastKernels: variant.fastKernels, log });
        if (variant.nativeGemm === false) {
          // Without the add-on the default already is this variant: measure it once.
          if (!nativeGemmStatus().enabled) continue;
          registerFastKernels("wasm", { nativeGemm: false });
          log(`  ${describeFastKernels("wasm")}`);
        }
      } catch (error) {
        const reason = (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
        log(`  ${variant.label}: not measured (${reason})`);
        records.push(record(`backend ${variant.label}`, 0, "skipped", reason));
        continue;
      }
      for (const name of models) {
        log(`  ${name} on ${variant.label}`);
        const result = await measureModel(name, variant, sets, quick);
        figures.push(result);
        const notes = `${variant.label}; batch ${WORKLOAD.trainBatch} train / ${WORKLOAD.inferenceBatch} inference; ${result.parameters} parameters; final loss ${result.finalLoss.toFixed(4)}`;
        records.push(
          record(`${name} train (${variant.label})`, result.trainExamplesPerSecond, "examples/s", notes),
        );
        records.push(
          record(
            `${name} inference (${variant.label})`,
            result.inferenceExamplesPerSecond,
            "examples/s",
            notes,
          ),
        );
        records.push(
          record(`${name} single-row latency p50 (${variant.label})`, result.latencyP50Ms, "ms", notes),
        );
        records.push(
          record(`${name} single-row latency p99 (${variant.label})`, result.latencyP99Ms, "ms", notes),
        );
      }
      if (variant.isDefault) {
        log("  memory check (mmoe, default backend)");
        records.push(...(await measureMemory(host, quick, log)));
      }
    }

    if (torch.available && (backends === undefined || backends.includes("wasm"))) {
      await initBackend({ prefer: "wasm", log });
      for (const [model, script] of Object.entries(torchModels)) {
        if (!models.includes(model)) continue;
        log(`Head-to-head ${model}: mdrec (default backend) and PyTorch in alternating rounds`);
        records.push(
          ...(await headToHead(model, script, torchSetting.get(model)!, dataDirectory, sets, quick, log)),
        );
      }
    }
    for (const [model, best] of torchBest) {
      records.push(
        record(`pytorch ${model} train (best setting)`, best.trainExamplesPerSecond, "examples/s"),
      );
      records.push(
        record(`pytorch ${model} inference (best setting)`, best.inferenceExamplesPerSecond, "examples/s"),
      );
      records.push(record(`pytorch ${model} single-row latency p50 (best setting)`, best.latencyP50Ms, "ms"));
      for (const figure of figures.filter((entry) => entry.model === model)) {
        const label = figure.variant.label;
        records.push(
          record(
            `${model} train mdrec (${label}) / PyTorch best`,
            figure.trainExamplesPerSecond / best.trainExamplesPerSecond,
            "ratio",
            "PyTorch's best thread setting in the sweep at the start of the suite",
          ),
        );
        records.push(
          record(
            `${model} inference mdrec (${label}) / PyTorch best`,
            figure.inferenceExamplesPerSecond / best.inferenceExamplesPerSecond,
            "ratio",
            "PyTorch's best thread setting in the sweep at the start of the suite",
          ),
        );
      }
    }
    return records;
  } finally {
    await rm(dataDirectory, { recursive: true, force: true });
    await initBackend({ log: () => {} });
  }
}

/**
 * Training and inference throughput of every registered model on every backend that loads, at
 * issue 7's fixed configuration, with single-row latency, a memory check over many steps, and
 * the PyTorch reference of MMoE and CESAA on the same batches.
 */
export const suite: BenchSuite = {
  name: SUITE,
  description: [
    "Every registered model at one fixed configuration: 8 categorical fields (vocabulary 10k,",
    "embedding dim 16, so x is [B, 128]), experts 128 -> 256 -> 128 (MMoE: 4 experts; PLE: 1 shared +",
    "1 per domain; shared-bottom and STAR: the same widths as their MLP; CESAA: S=2 shared, N=16",
    "specific, k=2), towers [8], 3 domains, Adam 1e-3, batch 1024 to train and 4096 to infer, on",
    "synthetic batches with a learnable signal. Throughput is batch / median step time (the machine",
    "is shared; the median ignores preempted steps); a step includes one scalar loss read. Inference",
    "reads the probabilities back. The PyTorch reference (`packages/bench/reference/*.py`, Debian",
    "`python3-torch` with OpenBLAS) trains the same models on the same batches under each thread",
    "setting; ratios divide mdrec by PyTorch's best setting measured in the same run.",
  ].join(" "),
  run,
};
