import "./gradients.js";

export {
  BACKEND_PREFERENCE,
  type BackendInfo,
  type BackendName,
  type InitBackendOptions,
  initBackend,
} from "./backend.js";
export {
  BackendError,
  CheckpointError,
  ConfigError,
  DataError,
  MdrecError,
  ShapeError,
  TrainingError,
} from "./errors.js";
export { writeFileAtomic } from "./io/atomic.js";
export {
  assignVariables,
  encodeVariables,
  loadLayer,
  type SavedLayerTopology,
  saveLayer,
} from "./io/layer-io.js";
export { hasSavedModel, nodeFileSystem } from "./io/node-file-io.js";
export {
  describeFastKernels,
  FAST_WASM_KERNELS,
  type FastKernelName,
  fastKernelNames,
  fastKernelsEnabled,
  type NativeGemmInfo,
  nativeGemmStatus,
  type RegisterFastKernelsOptions,
  registerFastKernels,
  unregisterFastKernels,
} from "./kernels/register.js";
export { disposeLayerWeights } from "./layers/dispose.js";
export { FeatureEmbedding, type FeatureEmbeddingArgs } from "./layers/feature-embedding.js";
export { Mlp, type MlpArgs } from "./layers/mlp.js";
export {
  ACTIVATIONS,
  type Activation,
  applyActivation,
  assertActivation,
} from "./ops/activations.js";
export { denseActivation } from "./ops/dense.js";
export {
  blockExpertDense,
  blockExpertMatMul,
  segmentExpertDense,
  segmentExpertMatMul,
} from "./ops/expert-matmul.js";
export { noisyGateLogits } from "./ops/noisy-gate-logits.js";
export {
  type ExpertLayerWeights,
  nativeRoutedExpertsAvailable,
  type RoutedEntries,
  type RoutedPool,
  routedExpertMixture,
  routedExpertPools,
} from "./ops/routed-experts.js";
export { gatherConcatRows, gatherRows, scatterAddRows } from "./ops/rows.js";
export { standardNormal } from "./ops/standard-normal.js";
export { createAdamOptimizer, FusedAdamOptimizer } from "./optimizers/fused-adam.js";
export { deriveSeed, globalRandomGenerator, nextSeed, SeededRandom, setGlobalSeed } from "./random.js";
export {
  type Batch,
  type CategoricalFeatureSpec,
  disposeBatch,
  type FeatureSpec,
  type NumericFeatureSpec,
  validateBatch,
  validateFeatureSpecs,
} from "./types.js";
export {
  assertIdsInRange,
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  assertTensor,
  editDistance,
  formatValue,
  nearestKey,
} from "./validate.js";
