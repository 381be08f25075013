import * as tf from "@tensorflow/tfjs-core";
import { serialization } from "@tensorflow/tfjs-core";
import type { layers } from "@tensorflow/tfjs-layers";
import { CheckpointError } from "../errors.js";
import { nodeFileSystem } from "./node-file-io.js";

/** Layers that remember the input shape they were built with (every mdrec layer). */
interface BuildShapeAware {
  builtInputShape: unknown;
}

/** Topology written by {@link saveLayer}. */
export interface SavedLayerTopology {
  format: "mdrec-layer";
  className: string;
  config: serialization.ConfigDict;
  inputShape: unknown;
  metadata?: Record<string, unknown>;
}

/**
 * Encodes a list of variables as tfjs weight data. Names are prefixed with their position
 * (`0:mlp/kernel_0`) so two variables with the same name stay distinct.
 * @example const { data, specs } = await encodeVariables(layer.weights);
 */
export async function encodeVariables(
  variables: readonly { name: string; read(): tf.Tensor }[],
): Promise<{ data: ArrayBuffer; specs: tf.io.WeightsManifestEntry[] }> {
  const named = variables.map((variable, index) => ({
    name: `${index}:${variable.name}`,
    tensor: variable.read(),
  }));
  return tf.io.encodeWeights(named);
}

/**
 * Writes `values` (decoded weights, in saved order) into `variables`, after checking that the
 * count and every shape match ({@link CheckpointError} naming the weight otherwise; nothing is
 * written then). Disposes `values`.
 * @param where names the checkpoint in error messages.
 */
export function assignVariables(
  variables: readonly {
    name: string;
    shape: readonly (number | null)[];
    dtype?: tf.DataType;
    write(value: tf.Tensor): unknown;
  }[],
  values: tf.NamedTensorMap,
  specs: readonly tf.io.WeightsManifestEntry[],
  where: string,
): void {
  const fail = (message: string): never => {
    for (const spec of specs) values[spec.name]?.dispose();
    throw new CheckpointError(message);
  };
  if (specs.length !== variables.length) {
    fail(`${where} holds ${specs.length} weights but the model has ${variables.length}`);
  }
  specs.forEach((spec, index) => {
    const variable = variables[index]!;
    const value = values[spec.name];
    const weight = `${where}: weight ${index} "${spec.name}"`;
    if (value === undefined) {
      fail(`${weight} is listed in the manifest but has no data`);
      return;
    }
    if (variable.dtype !== undefined && value.dtype !== variable.dtype) {
      fail(`${weight} has dtype ${value.dtype} but the model's "${variable.name}" has ${variable.dtype}`);
    }
    if (value.shape.join(",") !== variable.shape.join(",")) {
      fail(
        `${weight} has shape [${value.shape.join(", ")}] but the model's "${variable.name}" has [${variable.shape.join(", ")}]`,
      );
    }
  });
  specs.forEach((spec, index) => {
    const value = values[spec.name]!;
    variables[index]!.write(value);
    value.dispose();
  });
}

/**
 * Saves a built mdrec layer (config + input shape + weights, in `layer.weights` order) to
 * `directory` through {@link nodeFileSystem}, atomically. The layer's class must be registered
 * with `serialization.registerClass` and expose `builtInputShape` (every mdrec layer does).
 * @param metadata stored in `model.json` beside the config.
 * @example await saveLayer(gate, "./checkpoints/gate");
 */
export async function saveLayer(
  layer: layers.Layer,
  directory: string,
  metadata?: Record<string, unknown>,
): Promise<void> {
  const shape = (layer as unknown as BuildShapeAware).builtInputShape;
  if (!layer.built || shape == null) {
    throw new CheckpointError(
      `Cannot save layer "${layer.name}": it has not been built (call it once first)`,
    );
  }
  const className = (layer.constructor as unknown as { className: string }).className;
  const topology: SavedLayerTopology = {
    format: "mdrec-layer",
    className,
    config: layer.getConfig(),
    inputShape: shape,
  };
  if (metadata) topology.metadata = metadata;
  const { data, specs } = await encodeVariables(layer.weights);
  await nodeFileSystem(directory).save!({
    modelTopology: topology as unknown as object,
    weightSpecs: specs,
    weightData: data,
    format: "mdrec-layer",
    generatedBy: "mdrec",
  });
}

/**
 * Loads a layer saved by {@link saveLayer}: rebuilds it from its config and input shape, then
 * restores the weights. The package defining the class must be imported first. Throws
 * {@link CheckpointError} naming the directory when anything does not match.
 * @example const gate = await loadLayer<TopKGate>("./checkpoints/gate");
 */
export async function loadLayer<T extends layers.Layer>(directory: string): Promise<T> {
  const artifacts = await nodeFileSystem(directory).load!();
  const topology = artifacts.modelTopology as SavedLayerTopology | undefined;
  if (topology?.format !== "mdrec-layer") {
    throw new CheckpointError(
      `${directory}/model.json is not an mdrec layer (format ${JSON.stringify(topology?.format)})`,
    );
  }
  const entry = serialization.SerializationMap.getMap().classNameMap[topology.className];
  if (!entry) {
    throw new CheckpointError(
      `${directory}: layer class "${topology.className}" is not registered (import the package that defines it)`,
    );
  }
  const [cls, fromConfig] = entry;
  let layer: T;
  try {
    layer = (fromConfig ?? serialization.Serializable.fromConfig)(cls, topology.config) as unknown as T;
    layer.build(topology.inputShape as number[]);
  } catch (error) {
    throw new CheckpointError(
      `${directory}: cannot rebuild layer class "${topology.className}" from its saved config: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const specs = artifacts.weightSpecs ?? [];
    const values = tf.io.decodeWeights(artifacts.weightData as ArrayBuffer, specs);
    assignVariables(layer.weights, values, specs, directory);
  } catch (error) {
    try {
      layer.dispose();
    } catch {
      // a foreign layer class may refuse to dispose before its first call; the original error matters
    }
    throw error;
  }
  return layer;
}
