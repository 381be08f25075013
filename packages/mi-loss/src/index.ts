export { entropy, mutualInformationFromCounts } from "./discrete.js";
