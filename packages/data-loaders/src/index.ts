export { type BatchOptions, epochRowOrder, iterateBatches, numBatches } from "./batching.js";
export { type ColumnarDataset, concatDatasets, domainCounts, takeRows, validateDataset } from "./dataset.js";
export {
  type CategoricalEncoder,
  DatasetEncoders,
  type DatasetEncodersJSON,
  type FieldEncoder,
  type FieldEncoderJSON,
  fieldEncoderFromJSON,
  fnv1a32,
  HashingEncoder,
  IdentityEncoder,
  type NumericEncoder,
  PassThrough,
  QuantileBucketizer,
  StandardScaler,
  VocabularyEncoder,
} from "./encoders.js";
export {
  ALI_CCP_CATEGORICAL,
  ALI_CCP_NUMERIC,
  type AliCcpOptions,
  type FormatLoadOptions,
  KUAIRAND_LOG_COLUMNS,
  KUAIRAND_TABS,
  type KuaiRandOptions,
  loadAliCcp,
  loadKuaiRand,
  loadMovieLens1M,
  loadMovieLens100K,
  type MovieLens1MOptions,
  type MovieLens100KOptions,
  movieLens1MSchema,
} from "./formats.js";
export type { TextEncoding } from "./io/decode.js";
export type { Compression } from "./io/files.js";
export {
  type DatasetStream,
  type DomainSummary,
  type FitOptions,
  fitEncoders,
  type InspectReport,
  inspect,
  type LoadOptions,
  type LoadResult,
  loadDataset,
  type StreamOptions,
  streamDataset,
} from "./load.js";
export { type DelimitedOptions, readDelimited } from "./readers/delimited.js";
export { type JsonLinesOptions, readJsonLines } from "./readers/jsonl.js";
export { type ParquetOptions, readParquet } from "./readers/parquet.js";
export { type ReadRowsOptions, readRows } from "./readers/rows.js";
export type { DataSource, FileFormat, FileSource, InvalidRowHandler, RowChunk } from "./readers/types.js";
export {
  type CategoricalFieldSchema,
  type DataSchema,
  type DomainSchema,
  type FieldSchema,
  type JoinSchema,
  type LabelRule,
  type LabelSchema,
  loadSchemaFile,
  type NumericFieldSchema,
  parseSchema,
  type TimeSchema,
  validateSchema,
} from "./schema.js";
export {
  type DatasetSplits,
  type SplitOptions,
  splitByRowIndices,
  splitDataset,
  splitRowIndices,
} from "./split.js";
export { type StreamBatchOptions, streamBatches } from "./stream-batching.js";
export {
  generateSyntheticDataset,
  type SyntheticDataset,
  type SyntheticOptions,
  type SyntheticTruth,
  syntheticPresets,
} from "./synthetic.js";
export type { LoadReport, OnInvalidRow, SkippedRows } from "./table.js";
