import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { assignVariables, CheckpointError, ConfigError, encodeVariables, writeFileAtomic } from "@mdrec/core";
import type { ModelConfig, MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import type { BestEvaluation, EpochSummary, EvaluationRecord, LossValues } from "./events.js";
import { type DatasetFingerprint, diffJson } from "./fingerprint.js";
import type { EncodedOptimizerState } from "./optimizer.js";
import type { MonitorMetric, OptimizerName } from "./options.js";
import type { LearningRateSchedule, ResolvedSchedule } from "./schedule.js";

/** `format` of every checkpoint file written by this package. */
export const CHECKPOINT_FORMAT = "mdrec-checkpoint";
/** Layout version; a checkpoint with another version is refused. */
export const CHECKPOINT_FORMAT_VERSION = 1;
/** The commit point: names the current checkpoint directory inside the checkpoint root. */
export const CHECKPOINT_POINTER_FILE = "checkpoint.json";

const MANIFEST_FILE = "manifest.json";
const DIRECTORY_PATTERN = /^ckpt-\d{9}-[0-9a-f]{8}$/;
const PARTIAL_PATTERN = /^\.ckpt-\d{9}-[0-9a-f]{8}\.partial$/;
// JSON has no NaN or Infinity (metrics can be NaN), so they are written as tagged strings.
const NUMBER_TAG = "__mdrec_number__:";

/** Training options that must not change across a resume (they define the run). */
export interface TrainingSettings {
  optimizer: OptimizerName;
  learningRate: number;
  /** The schedule as given (compared on resume). */
  schedule: LearningRateSchedule | null;
  /** The schedule with defaults filled at the start of the run (used on resume). */
  resolvedSchedule: ResolvedSchedule;
  weightDecay: number;
  gradientClip: number | null;
  taskWeights: number[] | null;
  batchSize: number;
  seed: number;
  monitor: MonitorMetric;
  earlyStopping: { metric: MonitorMetric; patience: number; minDelta: number } | null;
  restoreBestWeights: boolean;
  evaluateEvery: "epoch" | number;
}

/** Sums over the steps of the epoch in progress, so a mid-epoch resume completes the epoch's summary. */
export interface EpochProgress {
  /** Row-weighted sums of each loss. */
  lossSums: LossValues;
  steps: number;
  examples: number;
  seconds: number;
  learningRate: number;
}

/** One binary file of a checkpoint. */
export interface CheckpointFileEntry {
  file: string;
  bytes: number;
  sha256: string;
  specs: tf.io.WeightsManifestEntry[];
}

/** Everything a checkpoint records besides its tensors (`manifest.json`). */
export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  formatVersion: number;
  /** ISO time of writing. */
  createdAt: string;
  /** Steps completed. */
  step: number;
  /** Data position to resume from: 0-based epoch and the index of its next batch. */
  epoch: number;
  nextBatch: number;
  /** The model's `getConfig()`. */
  modelConfig: ModelConfig;
  training: TrainingSettings;
  dataset: DatasetFingerprint;
  /** State of the global generator of `@mdrec/core` (dropout masks, gate noise). */
  randomState: number;
  /** Optimizer scalars outside its weights (Adam's beta powers). */
  optimizerInternals: Record<string, number>;
  /** Number of trainable weights; the model file holds them first, then the non-trainable state. */
  trainableWeights: number;
  files: { model: CheckpointFileEntry; optimizer: CheckpointFileEntry; best?: CheckpointFileEntry };
  epochProgress: EpochProgress;
  best: BestEvaluation | null;
  evaluationsWithoutImprovement: number;
  stoppedEarly: boolean;
  history: EpochSummary[];
  evaluations: EvaluationRecord[];
  /** Caller's JSON (`FitOptions.checkpointExtra`). */
  extra: unknown;
}

/** What {@link readCheckpoint} reports. */
export interface CheckpointInfo {
  /** Directory of the current checkpoint. */
  path: string;
  manifest: CheckpointManifest;
}

/** The fields of a manifest that the caller provides (files are filled in by the writer). */
export type CheckpointContent = Omit<
  CheckpointManifest,
  "format" | "formatVersion" | "createdAt" | "files" | "optimizerInternals"
>;

/** Encoded tensors of one checkpoint. */
export interface CheckpointTensors {
  model: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
  optimizer: EncodedOptimizerState;
  best?: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
}

/** A checkpoint read back with its verified binary files. */
export interface LoadedCheckpoint extends CheckpointInfo {
  model: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
  optimizer: EncodedOptimizerState;
  best?: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] };
}

function stringify(value: unknown): string {
  return JSON.stringify(value, (_key, item) =>
    typeof item === "number" && !Number.isFinite(item) ? `${NUMBER_TAG}${item}` : item,
  );
}

function parse(text: string): unknown {
  return JSON.parse(text, (_key, item) =>
    typeof item === "string" && item.startsWith(NUMBER_TAG) ? Number(item.slice(NUMBER_TAG.length)) : item,
  );
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function writeDurable(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a checkpoint under `root` and commits it. The files go to a hidden `.ckpt-*.partial`
 * directory, which is renamed to `ckpt-<step>-<id>`; then `checkpoint.json` is replaced atomically
 * (temp file + rename) to name it: that rename is the commit point. Older checkpoint directories
 * are removed after the commit. A failure at any point (disk full, directory not writable, a
 * kill) leaves the previous checkpoint current and intact.
 *
 * @returns the committed checkpoint directory.
 */
export async function writeCheckpoint(
  root: string,
  content: CheckpointContent,
  tensors: CheckpointTensors,
): Promise<string> {
  const name = `ckpt-${String(content.step).padStart(9, "0")}-${randomBytes(4).toString("hex")}`;
  const partial = join(root, `.${name}.partial`);
  const directory = join(root, name);
  try {
    await mkdir(partial, { recursive: true });
    const writeBinary = async (
      file: string,
      encoded: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] },
    ) => {
      const bytes = new Uint8Array(encoded.data);
      await writeDurable(join(partial, file), bytes);
      return { file, bytes: bytes.byteLength, sha256: sha256(bytes), specs: encoded.specs };
    };
    const files: CheckpointManifest["files"] = {
      model: await writeBinary("model.bin", tensors.model),
      optimizer: await writeBinary("optimizer.bin", tensors.optimizer),
    };
    if (tensors.best) files.best = await writeBinary("best.bin", tensors.best);
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      ...content,
      optimizerInternals: tensors.optimizer.internals,
      files,
    };
    await writeDurable(join(partial, MANIFEST_FILE), stringify(manifest));
    await rename(partial, directory);
    const pointer = {
      format: CHECKPOINT_FORMAT,
      formatVersion: CHECKPOINT_FORMAT_VERSION,
      directory: name,
      step: content.step,
      epoch: content.epoch,
      nextBatch: content.nextBatch,
      createdAt: manifest.createdAt,
    };
    await writeFileAtomic(join(root, CHECKPOINT_POINTER_FILE), JSON.stringify(pointer, null, 2));
  } catch (error) {
    await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    await rm(directory, { recursive: true, force: true }).catch(() => undefined);
    const reason = error instanceof CheckpointError ? error.message : (error as Error).message;
    throw new CheckpointError(
      `Cannot write checkpoint at step ${content.step} in ${root} (the previous checkpoint, if any, is kept): ${reason}`,
      { cause: error },
    );
  }
  // Old checkpoints are only removed once the new one is committed; a failure here is harmless.
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry !== name && (DIRECTORY_PATTERN.test(entry) || PARTIAL_PATTERN.test(entry))) {
      await rm(join(root, entry), { recursive: true, force: true }).catch(() => undefined);
    }
  }
  return directory;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new CheckpointError(`Cannot read ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
}

async function readPointer(root: string): Promise<string | undefined> {
  const path = join(root, CHECKPOINT_POINTER_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new CheckpointError(`Cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  let pointer: { format?: unknown; formatVersion?: unknown; directory?: unknown };
  try {
    pointer = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(
      `${path} is not valid JSON (corrupted checkpoint): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  checkFormat(pointer, path);
  if (typeof pointer.directory !== "string" || !DIRECTORY_PATTERN.test(pointer.directory)) {
    throw new CheckpointError(
      `${path} names no valid checkpoint directory, received ${JSON.stringify(pointer.directory)}`,
    );
  }
  return join(root, pointer.directory);
}

function checkFormat(value: { format?: unknown; formatVersion?: unknown } | null, path: string): void {
  if (value?.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      `${path} is not an mdrec checkpoint (format ${JSON.stringify(value?.format ?? null)}, expected "${CHECKPOINT_FORMAT}")`,
    );
  }
  if (value.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      `${path} was written with checkpoint formatVersion ${JSON.stringify(value.formatVersion)}; this @mdrec/trainer reads formatVersion ${CHECKPOINT_FORMAT_VERSION}`,
    );
  }
}

async function readManifest(directory: string): Promise<CheckpointManifest> {
  const path = join(directory, MANIFEST_FILE);
  const text = await readText(path, "checkpoint manifest");
  let manifest: CheckpointManifest;
  try {
    manifest = parse(text) as CheckpointManifest;
  } catch (error) {
    throw new CheckpointError(
      `${path} is not valid JSON (truncated or corrupted checkpoint): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  checkFormat(manifest, path);
  return manifest;
}

function expectedBytes(specs: readonly tf.io.WeightsManifestEntry[]): number {
  const bytesPerElement: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
  return specs.reduce(
    (sum, spec) =>
      sum + spec.shape.reduce((product, size) => product * size, 1) * (bytesPerElement[spec.dtype] ?? 4),
    0,
  );
}

async function readBinary(
  directory: string,
  entry: CheckpointFileEntry,
): Promise<{ data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] }> {
  const path = join(directory, entry.file);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new CheckpointError(`Cannot read checkpoint file ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const described = expectedBytes(entry.specs);
  if (bytes.byteLength !== entry.bytes || bytes.byteLength !== described) {
    throw new CheckpointError(
      `${path} holds ${bytes.byteLength} bytes but the manifest says ${entry.bytes} (weights describe ${described}): truncated or corrupted checkpoint`,
    );
  }
  if (sha256(bytes) !== entry.sha256) {
    throw new CheckpointError(`${path} does not match its sha256 in the manifest: corrupted checkpoint`);
  }
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return { data, specs: entry.specs };
}

/**
 * Reads and verifies the current checkpoint under `root` (sizes and sha256 of every file).
 * @returns undefined when `root` holds no checkpoint (`checkpoint.json` missing).
 * @throws CheckpointError when the checkpoint is unreadable, truncated, corrupted or of another format version.
 */
export async function loadCheckpointFiles(root: string): Promise<LoadedCheckpoint | undefined> {
  const directory = await readPointer(root);
  if (directory === undefined) return undefined;
  const manifest = await readManifest(directory);
  const result: LoadedCheckpoint = {
    path: directory,
    manifest,
    model: await readBinary(directory, manifest.files.model),
    optimizer: {
      ...(await readBinary(directory, manifest.files.optimizer)),
      internals: manifest.optimizerInternals,
    },
  };
  if (manifest.files.best) result.best = await readBinary(directory, manifest.files.best);
  return result;
}

/**
 * Reads the manifest of the current checkpoint under `root`: step, data position, model config,
 * training settings, history, best evaluation and the caller's `extra` JSON. Use it to rebuild
 * the model (`createModel(manifest.modelConfig.name, manifest.modelConfig.options)`) and the
 * encoders before resuming.
 *
 * @throws CheckpointError when `root` holds no readable checkpoint.
 * @example
 * const { manifest } = await readCheckpoint("./runs/cesaa/checkpoints");
 * console.log(manifest.step, manifest.history.length, manifest.extra);
 */
export async function readCheckpoint(root: string): Promise<CheckpointInfo> {
  const directory = await readPointer(root);
  if (directory === undefined) {
    throw new CheckpointError(`${root} holds no checkpoint (${CHECKPOINT_POINTER_FILE} not found)`);
  }
  return { path: directory, manifest: await readManifest(directory) };
}

/** True when `root` holds a committed checkpoint. */
export async function hasCheckpoint(root: string): Promise<boolean> {
  try {
    await readFile(join(root, CHECKPOINT_POINTER_FILE));
    return true;
  } catch {
    return false;
  }
}

/** Every variable a checkpoint saves for a model: trainable weights first, then the non-trainable state. */
export function modelVariables(model: MultiDomainModel) {
  return [...model.trainableWeights(), ...model.nonTrainableWeights()];
}

/** Encodes a model's variables for a checkpoint. */
export function encodeModelWeights(model: MultiDomainModel) {
  return encodeVariables(modelVariables(model));
}

/**
 * Refuses a checkpoint written for another model configuration, naming each difference. The
 * model seed is ignored: it only sets the initial weights, which the checkpoint replaces.
 */
export function assertSameModel(manifest: CheckpointManifest, model: MultiDomainModel, where: string): void {
  const differences = diffJson(manifest.modelConfig, model.getConfig(), "model", ["options.seed"]);
  if (differences.length > 0) {
    throw new CheckpointError(`${where} was written for a different model: ${differences.join("; ")}`);
  }
}

/** Writes encoded variables into the model (count and shapes checked). */
export function assignModelWeights(
  model: MultiDomainModel,
  encoded: { data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] },
  where: string,
): void {
  const values = tf.io.decodeWeights(encoded.data, encoded.specs);
  assignVariables(modelVariables(model), values, encoded.specs, where);
}

/** Options of {@link loadCheckpointWeights}. */
export interface LoadCheckpointWeightsOptions {
  /**
   * `"last"`: the weights at the checkpoint's step. `"best"`: the weights of the best evaluation
   * (only in runs with `restoreBestWeights`). Defaults to `"last"`.
   */
  which?: "last" | "best";
}

/**
 * Loads the weights of the current checkpoint under `root` into `model` (for evaluation or
 * export; use `fit(..., { resume: true })` to continue training). Refuses a checkpoint of
 * another model configuration.
 *
 * @example
 * const model = createModel(manifest.modelConfig.name, manifest.modelConfig.options);
 * await loadCheckpointWeights(model, "./runs/cesaa/checkpoints", { which: "best" });
 */
export async function loadCheckpointWeights(
  model: MultiDomainModel,
  root: string,
  options: LoadCheckpointWeightsOptions = {},
): Promise<CheckpointInfo> {
  const which = options.which ?? "last";
  if (which !== "last" && which !== "best") {
    throw new ConfigError(
      `loadCheckpointWeights options.which must be "last" or "best", received ${JSON.stringify(which)}`,
    );
  }
  const loaded = await loadCheckpointFiles(root);
  if (loaded === undefined) {
    throw new CheckpointError(`${root} holds no checkpoint (${CHECKPOINT_POINTER_FILE} not found)`);
  }
  assertSameModel(loaded.manifest, model, loaded.path);
  const source = which === "best" ? loaded.best : loaded.model;
  if (source === undefined) {
    throw new CheckpointError(
      `${loaded.path} holds no best weights (the run did not use restoreBestWeights or has not evaluated yet)`,
    );
  }
  assignModelWeights(model, source, loaded.path);
  return { path: loaded.path, manifest: loaded.manifest };
}
