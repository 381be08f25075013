export { disposeRouting, type Routing } from "@mdrec/experts";
export {
  importanceLoss,
  type LoadBalanceOptions,
  switchLoadLoss,
} from "./balance.js";
export { CgcGate, type CgcGateArgs } from "./cgc-gate.js";
export { DOMAIN_CONDITIONINGS, type DomainConditioning } from "./conditioning.js";
export type { Gate } from "./gate.js";
export { oneHotFloat } from "./one-hot.js";
export { SoftmaxGate, type SoftmaxGateArgs } from "./softmax-gate.js";
export { TopKGate, type TopKGateArgs } from "./top-k-gate.js";
