export { type ExpertGroups, groupSlotsByExpert } from "./dispatch.js";
export {
  type DispatchRecord,
  ExpertInvocationCounter,
  ExpertPool,
  type ExpertPoolArgs,
} from "./expert-pool.js";
export { denseWeights, mixExperts } from "./mix.js";
export { disposeRouting, type Routing } from "./routing.js";
