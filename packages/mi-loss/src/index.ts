export { entropy, mutualInformationFromCounts } from "./discrete.js";
export {
  type DomainExpertEntropies,
  domainExpertEntropies,
  domainExpertMutualInformation,
} from "./mutual-information.js";
export {
  MutualInformationLoss,
  type MutualInformationLossArgs,
  type MutualInformationLossOutput,
} from "./mutual-information-loss.js";
