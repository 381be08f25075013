import { randomBytes } from "node:crypto";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type * as tf from "@tensorflow/tfjs-core";
import { CheckpointError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";

const MODEL_FILE = "model.json";
const WEIGHTS_PATTERN = /^weights-[0-9a-f]{12}\.bin$/;

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

function expectedBytes(specs: tf.io.WeightsManifestEntry[]): number {
  const bytesPerElement: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
  return specs.reduce((sum, spec) => {
    const size = spec.shape.reduce((product, dimension) => product * dimension, 1);
    return sum + size * (bytesPerElement[spec.dtype] ?? 4);
  }, 0);
}

/**
 * A `tf.io.IOHandler` that saves to and loads from a directory on the local disk without
 * tfjs-node: `model.json` (topology + weights manifest) and one weights file.
 *
 * Saving is atomic: the weights go to a new uniquely named `weights-<id>.bin`, then
 * `model.json` is replaced by rename (the commit point), then older weights files are removed.
 * An interrupted save leaves the previous model loadable. Loading checks that the weights file
 * holds exactly the bytes the manifest describes.
 *
 * Works with `model.save(nodeFileSystem(dir))` and `tf.loadLayersModel(nodeFileSystem(dir))`.
 */
export function nodeFileSystem(directory: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const weightsFile = `weights-${randomBytes(6).toString("hex")}.bin`;
      const weights = toUint8Array(artifacts.weightData as ArrayBuffer | ArrayBuffer[] | undefined);
      await writeFileAtomic(join(directory, weightsFile), weights);
      const modelJson = {
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        trainingConfig: artifacts.trainingConfig,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: [`./${weightsFile}`], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFileAtomic(join(directory, MODEL_FILE), JSON.stringify(modelJson));
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
      const modelPath = join(directory, MODEL_FILE);
      let text: string;
      try {
        text = await readFile(modelPath, "utf8");
      } catch (error) {
        throw new CheckpointError(`Cannot read ${modelPath}: ${(error as Error).message}`, { cause: error });
      }
      let modelJson: {
        modelTopology?: object;
        weightsManifest?: tf.io.WeightsManifestConfig;
        format?: string;
        generatedBy?: string;
        convertedBy?: string | null;
        trainingConfig?: tf.io.TrainingConfig;
        userDefinedMetadata?: Record<string, object>;
      };
      try {
        modelJson = JSON.parse(text);
      } catch (error) {
        throw new CheckpointError(`${modelPath} is not valid JSON: ${(error as Error).message}`, { cause: error });
      }
      const manifest = modelJson.weightsManifest ?? [];
      const specs: tf.io.WeightsManifestEntry[] = [];
      const parts: Uint8Array[] = [];
      for (const group of manifest) {
        specs.push(...group.weights);
        for (const path of group.paths) {
          const weightsPath = join(directory, path);
          try {
            parts.push(new Uint8Array(await readFile(weightsPath)));
          } catch (error) {
            throw new CheckpointError(`Cannot read weights file ${weightsPath} named in ${modelPath}: ${(error as Error).message}`, {
              cause: error,
            });
          }
        }
      }
      const data = toUint8Array(parts.map((part) => part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength) as ArrayBuffer));
      const expected = expectedBytes(specs);
      if (data.byteLength !== expected) {
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
      if (modelJson.trainingConfig !== undefined) artifacts.trainingConfig = modelJson.trainingConfig;
      if (modelJson.userDefinedMetadata !== undefined) {
        artifacts.userDefinedMetadata = modelJson.userDefinedMetadata as Record<string, object>;
      }
      return artifacts;
    },
  };
}

/** True when `directory` holds a saved model (`model.json`). */
export async function hasSavedModel(directory: string): Promise<boolean> {
  try {
    return (await stat(join(directory, MODEL_FILE))).isFile();
  } catch {
    return false;
  }
}
