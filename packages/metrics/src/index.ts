export type { NumericArray } from "./arrays.js";
export { AucAccumulator, auc, aucWithReason, type MetricReason, type MetricResult } from "./auc.js";
export {
  type DomainMetricSet,
  type DomainMetrics,
  DomainMetricsAccumulator,
  type DomainMetricsAccumulatorArgs,
  type EvaluateByDomainArgs,
  evaluateByDomain,
  type MetricSet,
} from "./by-domain.js";
export { MetricsError } from "./errors.js";
export { type GroupedMetricResult, gauc } from "./gauc.js";
export {
  type CalibrationReason,
  type CalibrationResult,
  calibration,
  calibrationWithReason,
  DEFAULT_LOGLOSS_EPSILON,
  logloss,
} from "./pointwise.js";
export { hitRateAtK, ndcgAtK, type RelevantItems, type RetrievalResult, recallAtK } from "./retrieval.js";
export {
  type ExpertShareArgs,
  expertShare,
  expertUsageCounts,
  expertUtilization,
  type RoutingUsageArgs,
  routingMutualInformation,
  type UsageEntropyOptions,
  usageEntropy,
} from "./routing.js";
