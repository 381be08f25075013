import { assignVariables, CheckpointError, ConfigError, encodeVariables, nodeFileSystem } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig, MultiDomainModel } from "./model.js";
import { createModel } from "./registry.js";

/** Version of the saved-model layout; a checkpoint with another version is refused. */
export const MODEL_FORMAT_VERSION = 1;

const FORMAT = "mdrec-model";

/** `modelTopology` of a saved model's `model.json`. */
export interface SavedModelTopology {
  format: typeof FORMAT;
  /** The model's `getConfig()`. */
  config: ModelConfig;
  /** How many of the saved weights are trainable (they come first, then the non-trainable state). */
  trainableWeights: number;
}

interface Checkpoint {
  config: ModelConfig;
  specs: tf.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

function allWeights(model: MultiDomainModel) {
  return [...model.trainableWeights(), ...model.nonTrainableWeights()];
}

/**
 * Saves a model's config and weights (trainable, then non-trainable state) to `directory`:
 * `model.json` plus one weights file, written atomically by `nodeFileSystem`.
 * `MultiDomainModelBase.save` calls this; custom models implementing the interface can too.
 */
export async function saveModel(model: MultiDomainModel, directory: string): Promise<void> {
  const trainable = model.trainableWeights();
  const { data, specs } = await encodeVariables([...trainable, ...model.nonTrainableWeights()]);
  const topology: SavedModelTopology = {
    format: FORMAT,
    config: model.getConfig(),
    trainableWeights: trainable.length,
  };
  await nodeFileSystem(directory).save!({
    modelTopology: topology as unknown as object,
    weightSpecs: specs,
    weightData: data,
    format: FORMAT,
    generatedBy: "@mdrec/models",
  });
}

async function readCheckpoint(directory: string): Promise<Checkpoint> {
  const artifacts = await nodeFileSystem(directory).load!();
  const topology = artifacts.modelTopology as Partial<SavedModelTopology> | undefined;
  if (topology?.format !== FORMAT || topology.config == null) {
    throw new CheckpointError(
      `${directory}/model.json is not an mdrec model (format ${JSON.stringify(topology?.format ?? null)}, expected "${FORMAT}")`,
    );
  }
  const version = topology.config.formatVersion;
  if (version !== MODEL_FORMAT_VERSION) {
    throw new CheckpointError(
      `${directory} was written with model formatVersion ${JSON.stringify(version)}; this @mdrec/models reads formatVersion ${MODEL_FORMAT_VERSION}`,
    );
  }
  return {
    config: topology.config,
    specs: artifacts.weightSpecs ?? [],
    weightData: artifacts.weightData as ArrayBuffer,
  };
}

function describe(value: unknown): string {
  return value === undefined ? "(absent)" : JSON.stringify(value);
}

/**
 * Lists the differences between two JSON values as `path: a vs b` lines.
 * `ignore` holds paths whose differences do not matter.
 */
export function diffConfigs(
  saved: unknown,
  current: unknown,
  ignore: readonly string[] = [],
  path = "",
): string[] {
  if (ignore.includes(path)) return [];
  const bothObjects =
    saved !== null && current !== null && typeof saved === "object" && typeof current === "object";
  if (bothObjects && Array.isArray(saved) === Array.isArray(current)) {
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(current)])];
    return keys.flatMap((key) =>
      diffConfigs(
        (saved as Record<string, unknown>)[key],
        (current as Record<string, unknown>)[key],
        ignore,
        Array.isArray(saved) ? `${path}[${key}]` : path ? `${path}.${key}` : key,
      ),
    );
  }
  return JSON.stringify(saved) === JSON.stringify(current)
    ? []
    : [`${path || "(root)"}: checkpoint ${describe(saved)}, model ${describe(current)}`];
}

function assignCheckpoint(model: MultiDomainModel, checkpoint: Checkpoint, directory: string): void {
  const variables = allWeights(model);
  if (checkpoint.specs.length !== variables.length) {
    throw new CheckpointError(
      `${directory} holds ${checkpoint.specs.length} weights but model "${model.name}" has ${variables.length}`,
    );
  }
  const values = tf.io.decodeWeights(checkpoint.weightData, checkpoint.specs);
  assignVariables(variables, values, checkpoint.specs, directory);
}

/**
 * Loads weights saved by `model.save()` into an existing model. Refuses a checkpoint of another
 * model, format version or configuration, naming what differs (the seed is ignored: it only
 * sets the initial weights, which the checkpoint replaces).
 */
export async function loadWeights(model: MultiDomainModel, directory: string): Promise<void> {
  const checkpoint = await readCheckpoint(directory);
  const differences = diffConfigs(checkpoint.config, model.getConfig(), ["options.seed"]);
  if (differences.length > 0) {
    throw new CheckpointError(
      `${directory} was saved from a different model configuration: ${differences.join("; ")}`,
    );
  }
  assignCheckpoint(model, checkpoint, directory);
}

/**
 * Recreates a saved model: reads its config, creates it through the registry, builds it and
 * assigns the saved weights. The model's package must be imported (registered) first.
 *
 * @example
 * await model.save("./checkpoints/mmoe");
 * const restored = await loadModel("./checkpoints/mmoe");
 */
export async function loadModel(directory: string): Promise<MultiDomainModel> {
  const checkpoint = await readCheckpoint(directory);
  let model: MultiDomainModel;
  try {
    model = createModel(checkpoint.config.name, checkpoint.config.options);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new CheckpointError(`${directory}/model.json cannot be turned into a model: ${error.message}`, {
      cause: error,
    });
  }
  try {
    assignCheckpoint(model, checkpoint, directory);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}
