export { type BatchOptions, epochRowOrder, iterateBatches, numBatches } from "./batching.js";
export { type ColumnarDataset, concatDatasets, domainCounts, takeRows, validateDataset } from "./dataset.js";
export { type DatasetSplits, type SplitOptions, splitDataset, splitRowIndices } from "./split.js";
export {
  generateSyntheticDataset,
  type SyntheticDataset,
  type SyntheticOptions,
  type SyntheticTruth,
  syntheticPresets,
} from "./synthetic.js";
