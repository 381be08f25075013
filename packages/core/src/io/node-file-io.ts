import { randomBytes } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { isAbsolute, join, normalize, sep } from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { CheckpointError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";

const MODEL_FILE = "model.json";
const WEIGHTS_PATTERN = /^weights-[0-9a-f]{12}\.bin$/;

/** The `model.json` written by {@link nodeFileSystem}: tfjs's layout, one weights group. */
interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology?: object;
  trainingConfig?: tf.io.TrainingConfig;
  weightsManifest?: tf.io.WeightsManifestConfig;
  signature?: object;
  userDefinedMetadata?: Record<string, object>;
  modelInitializer?: object;
  initializerSignature?: object;
}

function toUint8Array(data: ArrayBuffer | ArrayBuffer[] | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const total = data.reduce((sum, part) => sum + part.byteLength, 0);
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const part of data) {
    joined.set(new Uint8Array(part), offset);
    offset += part.byteLength;
  }
  return joined;
}

const BYTES_PER_ELEMENT: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const BYTES_PER_QUANTIZED_ELEMENT: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** Bytes the manifest describes, or undefined when it holds string weights (variable length). */
function expectedBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    if (spec.dtype === "string") return undefined;
    const size = spec.shape.reduce((product, dimension) => product * dimension, 1);
    const quantized = spec.quantization?.dtype;
    total +=
      size * (quantized ? BYTES_PER_QUANTIZED_ELEMENT[quantized]! : (BYTES_PER_ELEMENT[spec.dtype] ?? 4));
  }
  return total;
}

function isRelativeInside(path: string): boolean {
  return !isAbsolute(path) && !normalize(path).split(sep).includes("..");
}

/**
 * A `tf.io.IOHandler` that saves to and loads from a directory on the local disk without
 * tfjs-node: `model.json` (topology + weights manifest, tfjs's format) and one weights file.
 *
 * Saving is atomic: the weights go to a new uniquely named `weights-<id>.bin`, then
 * `model.json` is replaced by rename (the commit point), then older weights files are removed.
 * A failed or interrupted save leaves the previous model loadable and no stray files. Loading
 * checks that the weights hold exactly the bytes the manifest describes. Errors are
 * {@link CheckpointError}s naming the file.
 *
 * Works with `model.save(nodeFileSystem(dir))` and `tf.loadLayersModel(nodeFileSystem(dir))`.
 *
 * @example
 * await model.save(nodeFileSystem("./checkpoints/best"));
 * const restored = await tf.loadLayersModel(nodeFileSystem("./checkpoints/best"));
 */
export function nodeFileSystem(directory: string): tf.io.IOHandler {
  if (typeof directory !== "string" || directory.length === 0) {
    throw new CheckpointError(
      `nodeFileSystem directory must be a non-empty path, received ${String(directory)}`,
    );
  }
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new CheckpointError(
          `nodeFileSystem(${directory}) saves JSON topologies only, received binary topology`,
        );
      }
      const weightsFile = `weights-${randomBytes(6).toString("hex")}.bin`;
      const weights = toUint8Array(artifacts.weightData as ArrayBuffer | ArrayBuffer[] | undefined);
      const modelJson: ModelJson = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [`./${weightsFile}`], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig !== undefined) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.signature !== undefined) modelJson.signature = artifacts.signature;
      if (artifacts.userDefinedMetadata !== undefined)
        modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      if (artifacts.modelInitializer !== undefined) modelJson.modelInitializer = artifacts.modelInitializer;
      if (artifacts.initializerSignature !== undefined) {
        modelJson.initializerSignature = artifacts.initializerSignature;
      }
      // Serialise before touching the disk: a topology that cannot be written fails the save
      // without leaving anything behind.
      let text: string;
      try {
        text = JSON.stringify(modelJson);
      } catch (error) {
        throw new CheckpointError(
          `Cannot save to ${directory}: the model topology is not JSON-serialisable (${(error as Error).message})`,
          { cause: error },
        );
      }
      const weightsPath = join(directory, weightsFile);
      await writeFileAtomic(weightsPath, weights);
      try {
        await writeFileAtomic(join(directory, MODEL_FILE), text);
      } catch (error) {
        await rm(weightsPath, { force: true }).catch(() => undefined);
        throw error;
      }
      for (const entry of await readdir(directory)) {
        if (WEIGHTS_PATTERN.test(entry) && entry !== weightsFile) {
          await rm(join(directory, entry), { force: true });
        }
      }
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: "JSON",
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      try {
        return await loadOnce(directory);
      } catch (error) {
        // A concurrent save may have replaced model.json and removed the weights it named
        // between our two reads: the new model.json names weights that exist.
        if ((error as { weightsMissing?: boolean }).weightsMissing) return loadOnce(directory);
        throw error;
      }
    },
  };
}

async function loadOnce(directory: string): Promise<tf.io.ModelArtifacts> {
  const modelPath = join(directory, MODEL_FILE);
  let text: string;
  try {
    text = await readFile(modelPath, "utf8");
  } catch (error) {
    throw new CheckpointError(`Cannot read ${modelPath}: ${(error as Error).message}`, { cause: error });
  }
  let modelJson: ModelJson;
  try {
    modelJson = JSON.parse(text);
  } catch (error) {
    throw new CheckpointError(`${modelPath} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (modelJson === null || typeof modelJson !== "object" || Array.isArray(modelJson)) {
    throw new CheckpointError(`${modelPath} must hold a JSON object, received ${text.slice(0, 80)}`);
  }
  const manifest = modelJson.weightsManifest ?? [];
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: ArrayBuffer[] = [];
  if (!Array.isArray(manifest)) {
    throw new CheckpointError(`${modelPath}: weightsManifest must be an array of { paths, weights } groups`);
  }
  for (const [index, group] of manifest.entries()) {
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new CheckpointError(
        `${modelPath}: weightsManifest[${index}] must have arrays "paths" and "weights"`,
      );
    }
    specs.push(...group.weights);
    for (const path of group.paths) {
      if (typeof path !== "string" || !isRelativeInside(path)) {
        throw new CheckpointError(
          `${modelPath}: weights path ${JSON.stringify(path)} must be relative to the model directory`,
        );
      }
      const weightsPath = join(directory, path);
      try {
        const bytes = await readFile(weightsPath);
        parts.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      } catch (error) {
        const failure = new CheckpointError(
          `Cannot read weights file ${weightsPath} named in ${modelPath}: ${(error as Error).message}`,
          { cause: error },
        );
        if ((error as NodeJS.ErrnoException).code === "ENOENT") {
          Object.defineProperty(failure, "weightsMissing", { value: true });
        }
        throw failure;
      }
    }
  }
  const data = toUint8Array(parts);
  const expected = expectedBytes(specs);
  if (expected !== undefined && data.byteLength !== expected) {
    throw new CheckpointError(
      `Weights in ${directory} hold ${data.byteLength} bytes but ${modelPath} describes ${expected} bytes (truncated or corrupted checkpoint)`,
    );
  }
  const artifacts: tf.io.ModelArtifacts = {
    modelTopology: modelJson.modelTopology,
    weightSpecs: specs,
    weightData: data.buffer as ArrayBuffer,
  };
  if (modelJson.format !== undefined) artifacts.format = modelJson.format;
  if (modelJson.generatedBy !== undefined) artifacts.generatedBy = modelJson.generatedBy;
  if (modelJson.convertedBy != null) artifacts.convertedBy = modelJson.convertedBy;
  if (modelJson.trainingConfig !== undefined) artifacts.trainingConfig = modelJson.trainingConfig;
  if (modelJson.signature !== undefined) artifacts.signature = modelJson.signature;
  if (modelJson.userDefinedMetadata !== undefined)
    artifacts.userDefinedMetadata = modelJson.userDefinedMetadata;
  if (modelJson.modelInitializer !== undefined) artifacts.modelInitializer = modelJson.modelInitializer;
  if (modelJson.initializerSignature !== undefined) {
    artifacts.initializerSignature = modelJson.initializerSignature;
  }
  return artifacts;
}

/**
 * True when `directory` holds a saved model (`model.json`).
 * @example if (await hasSavedModel(dir)) model = await loadLayer(dir);
 */
export async function hasSavedModel(directory: string): Promise<boolean> {
  try {
    return (await stat(join(directory, MODEL_FILE))).isFile();
  } catch {
    return false;
  }
}
