import "./register.js";

export { type AnalyzeRoutingOptions, analyzeRouting, type RoutingAnalysisResult } from "./analyze.js";
export { Cesaa } from "./cesaa.js";
export {
  CESAA_GATE_DEFAULTS,
  CESAA_MI_DEFAULTS,
  type CesaaGateOptions,
  type CesaaMiOptions,
  type CesaaOptions,
  type Dispatch,
  type ResolvedCesaaOptions,
  resolveCesaaOptions,
  type SharedMixing,
} from "./options.js";
