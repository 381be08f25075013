import { ConfigError, DataError, formatValue } from "@mdrec/core";
import { type ColumnarDataset, validateDataset } from "@mdrec/data-loaders";
import type { MultiDomainModel } from "@mdrec/models";

/** Throws unless `model` looks like a {@link MultiDomainModel}. */
export function assertModel(model: unknown, where: string): asserts model is MultiDomainModel {
  const candidate = model as Partial<MultiDomainModel> | null;
  const methods = ["call", "predict", "trainableWeights", "nonTrainableWeights", "getConfig"] as const;
  const missing = methods.filter((method) => typeof candidate?.[method] !== "function");
  if (candidate === null || typeof candidate !== "object" || missing.length > 0) {
    throw new ConfigError(
      `${where} must be a MultiDomainModel (from createModel), received ${candidate === null || typeof candidate !== "object" ? formatValue(candidate) : `an object without ${missing.join(", ")}`}`,
    );
  }
}

/**
 * Checks that a dataset fits a model before any tensor is made: the dataset is internally
 * consistent (lengths, id ranges), has rows, has exactly the model's features with the same kinds
 * and no larger vocabularies, the model's task count and no more domains than the model.
 * @param where names the dataset in messages (`"train"`, `"fit options.validation"`).
 */
export function checkDatasetForModel(model: MultiDomainModel, dataset: ColumnarDataset, where: string): void {
  assertModel(model, "model");
  validateDataset(dataset, where);
  if (dataset.numRows === 0) throw new DataError(`${where} has no rows`);
  if (dataset.numTasks !== model.numTasks) {
    throw new DataError(
      `${where} has numTasks=${dataset.numTasks} but model "${model.name}" has numTasks=${model.numTasks}`,
    );
  }
  if (dataset.numDomains > model.numDomains) {
    throw new DataError(
      `${where} has numDomains=${dataset.numDomains} but model "${model.name}" has numDomains=${model.numDomains}`,
    );
  }
  const dataFeatures = new Map(dataset.features.map((spec) => [spec.name, spec]));
  const modelNames = new Set(model.features.map((spec) => spec.name));
  for (const spec of model.features) {
    const data = dataFeatures.get(spec.name);
    if (data === undefined) {
      throw new DataError(
        `model "${model.name}" feature "${spec.name}" is not in ${where}.features (${where} has: ${[...dataFeatures.keys()].join(", ")})`,
      );
    }
    if (data.kind !== spec.kind) {
      throw new DataError(
        `${where} feature "${spec.name}" is ${data.kind} but model "${model.name}" declares it ${spec.kind}`,
      );
    }
    if (
      spec.kind === "categorical" &&
      data.kind === "categorical" &&
      data.vocabularySize > spec.vocabularySize
    ) {
      throw new DataError(
        `${where} feature "${spec.name}" has vocabularySize=${data.vocabularySize} but model "${model.name}" embeds only ${spec.vocabularySize} ids`,
      );
    }
  }
  for (const name of dataFeatures.keys()) {
    if (!modelNames.has(name)) {
      throw new DataError(
        `${where} feature "${name}" is not declared by model "${model.name}" (model features: ${[...modelNames].join(", ")})`,
      );
    }
  }
}
