import type { Batch, FeatureSpec } from "@mdrec/core";
import type { Routing } from "@mdrec/experts";
import type * as tf from "@tensorflow/tfjs-core";
import type { LayerVariable } from "@tensorflow/tfjs-layers";

/** What every model returns from {@link MultiDomainModel.call}. */
export interface ModelOutput {
  /** `[B, numTasks]` pre-sigmoid scores. */
  logits: tf.Tensor2D;
  /** One entry per gate that routed rows (empty for models without gates). */
  routing: Routing[];
  /** Named auxiliary losses (already weighted) that the trainer adds to the task loss. */
  auxLosses: Record<string, tf.Scalar>;
}

/** Size and cost figures of a model. */
export interface ModelSummary {
  /** Registry name, e.g. `"mmoe"`. */
  name: string;
  /** Trainable parameter count. */
  parameters: number;
  /** Experts computed per row (MoE models only). */
  expertsPerRow?: number;
  /** Experts in the model (MoE models only). */
  totalExperts?: number;
}

/** Options shared by every model. Model-specific options extend it. */
export interface BaseModelOptions {
  /** Input fields. */
  features: FeatureSpec[];
  /** Number of domains; domain ids are in `[0, numDomains)`. */
  numDomains: number;
  /** Number of binary tasks (label columns). Defaults to 1. */
  numTasks?: number;
  /** Default embedding width. Defaults to 16. */
  embeddingDim?: number;
  /** Seed for weight initialisation. Defaults to a draw from the global generator. */
  seed?: number;
}

/** JSON that, with the weights, reconstructs a model (`createModel(config.name, config.options)`). */
export interface ModelConfig {
  /** Registry name. */
  name: string;
  /** The model's full options, defaults filled in. */
  options: BaseModelOptions & Record<string, unknown>;
  /** mdrec model-format version. */
  formatVersion: number;
}

/**
 * The one interface shared by CESAA and every baseline, so the trainer, the CLI and the tests
 * treat all models alike.
 */
export interface MultiDomainModel {
  /** Registry name. */
  readonly name: string;
  readonly numDomains: number;
  readonly numTasks: number;
  readonly features: readonly FeatureSpec[];
  /** Forward pass. Tensors in the output belong to the caller (dispose or call inside tf.tidy). */
  call(batch: Batch, options: { training: boolean }): ModelOutput;
  /** Probabilities `[B, numTasks]` in inference mode. */
  predict(batch: Batch): tf.Tensor2D;
  /** Variables the optimizer updates. */
  trainableWeights(): LayerVariable[];
  /** State that is saved but not trained (batch-norm and moving-average statistics). */
  nonTrainableWeights(): LayerVariable[];
  getConfig(): ModelConfig;
  summary(): ModelSummary;
  /** Saves config and weights atomically to `directory`. */
  save(directory: string): Promise<void>;
  /** Frees every variable. */
  dispose(): void;
}
