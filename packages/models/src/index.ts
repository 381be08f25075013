import "./builtins.js";

export { type ExpertCounts, MultiDomainModelBase } from "./base.js";
export {
  diffConfigs,
  loadModel,
  loadWeights,
  MODEL_FORMAT_VERSION,
  type SavedModelTopology,
  saveModel,
} from "./checkpoint.js";
export {
  DomainTowers,
  type DomainTowersArgs,
  type TowerDispatch,
  type TowerMode,
} from "./layers/domain-towers.js";
export { PartitionedNorm, type PartitionedNormArgs } from "./layers/partitioned-norm.js";
export { rowRouting } from "./layers/row-routing.js";
export { type StarDispatch, StarFcn, type StarFcnArgs } from "./layers/star-fcn.js";
export { Mmoe, type MmoeOptions } from "./mmoe.js";
export type { BaseModelOptions, ModelConfig, ModelOutput, ModelSummary, MultiDomainModel } from "./model.js";
export {
  assertMlpOptions,
  assertUnits,
  MLP_DEFAULTS,
  type MlpOptions,
  type OptionDefaults,
  type Resolved,
  type ResolvedBaseOptions,
  resolveOptions,
  resolveTowerModelOptions,
  TOWER_DEFAULTS,
  type TowerModelOptions,
  type TowerOptions,
} from "./options.js";
export { Ple, type PleOptions } from "./ple.js";
export {
  createModel,
  getModelInfo,
  listModels,
  type ModelFactory,
  type ModelInfo,
  type ModelOptionsByName,
  type ModelPresets,
  modelPreset,
  type OptionsFor,
  type RegisterModelOptions,
  registerModel,
} from "./registry.js";
export { SharedBottom, type SharedBottomOptions } from "./shared-bottom.js";
export { Star, type StarOptions } from "./star.js";
