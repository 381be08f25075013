import { MdrecError } from "@mdrec/core";

/**
 * Metric inputs that cannot be scored: empty input, arrays of different lengths, a label that is
 * not 0/1, a NaN score, an id out of range. The message names the function, the array and index
 * and the value received, e.g. `auc: labels[3] must be 0 or 1, received 2`. Invalid options
 * (`k`, `numDomains`, `epsilon`, unknown keys) raise `ConfigError` from `@mdrec/core` instead.
 */
export class MetricsError extends MdrecError {
  constructor(message: string) {
    super("INVALID_METRIC_INPUT", message);
  }
}
