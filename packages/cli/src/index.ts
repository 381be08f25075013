export { runCli } from "./cli.js";
export { type BenchResult, benchModel } from "./commands/bench.js";
export { COMPARE_DEFAULTS, DEFAULT_DATA } from "./commands/compare.js";
export { TRAIN_DEFAULTS, TRAINING_DATA_FILE, type TrainingDataRecord } from "./commands/train.js";
export {
  type CompareOptions,
  compareModels,
  type TrainingBudget,
  type TrainModelOptions,
  trainAndEvaluate,
} from "./compare.js";
export {
  type CliConfig,
  CONFIG_KEYS,
  cliConfigSchema,
  type EarlyStoppingConfig,
  mergeConfigLayers,
  readConfigFile,
  validateConfig,
} from "./config.js";
export { CLI_VERSION } from "./context.js";
export { type LoadDataOptions, loadData, type PreparedData, readDataSource } from "./data.js";
export {
  DATA_KINDS,
  type DataSource,
  describeDataSource,
  FILE_DATA_KINDS,
  parseDataArgument,
  SYNTHETIC_PRESET_NAMES,
} from "./data-argument.js";
export { EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, exitCodeFor, OutputLockedError, UsageError } from "./errors.js";
export { BufferStream, bufferIo, type CliIo, type OutputStream, processIo } from "./io.js";
export {
  type OpenOutputOptions,
  type OutputDirectory,
  openOutputDirectory,
  RESULT_FILES,
} from "./output-dir.js";
export {
  createProgressReporter,
  type ProgressOptions,
  type ProgressReporter,
  type StepProgress,
} from "./progress.js";
export { renderChartSvg, renderReport } from "./report/render.js";
export {
  type DatasetSummary,
  type DomainMetricSummary,
  type EpochRecord,
  type GateRouting,
  type MetricSummary,
  type ModelResult,
  parseRunResults,
  RESULTS_FORMAT_VERSION,
  type RunResults,
  runResultsSchema,
  stringifyRunResults,
} from "./results.js";
export { renderComparisonTable, renderResultsMarkdown } from "./table.js";
