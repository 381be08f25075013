import {
  assertInteger,
  assertKnownKeys,
  type Batch,
  ConfigError,
  disposeBatch,
  formatValue,
} from "@mdrec/core";
import { expertShare, expertUsageCounts, expertUtilization, routingMutualInformation } from "@mdrec/metrics";
import { entropy } from "@mdrec/mi-loss";
import type { MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";

/** Options of {@link analyzeRouting}. */
export interface AnalyzeRoutingOptions {
  /** Which entry of the model output's `routing` to analyse. Defaults to 0 (CESAA's CES gate). */
  gate?: number;
  /**
   * Dispose every batch after its forward pass, as suits a generator such as
   * `iterateBatches(data, ...)`. Defaults to true.
   */
  disposeBatches?: boolean;
}

/** How a gate routed a set of rows (inference mode, so no gate noise). */
export interface RoutingAnalysisResult {
  /**
   * `[numDomains, numExperts]`: `U[d][e]` = share of domain d's routing slots that chose
   * expert e, an estimate of P(e | d). Rows sum to 1; a domain without rows is all zeros.
   */
  utilization: number[][];
  /** I(D;E) in nats from the joint slot counts; 0 = every domain routes alike, at most log(min(D, N)). */
  mutualInformation: number;
  /**
   * Share of the routed rows computed by each expert, length `numExperts`, summing to 1:
   * (rows that chose e) / (rows * k). Each row counts once for each of its k experts.
   */
  rowsPerExpert: number[];
  /**
   * `I(D;E) / sqrt(H(D) H(E))` in [0, 1] (1 = the expert choice determines the domain and vice
   * versa); absent when a single domain or a single expert was seen.
   */
  normalizedMutualInformation?: number;
  /** Rows analysed. */
  rows: number;
}

const ANALYZE_KEYS = ["gate", "disposeBatches"];

/**
 * Runs `model` in inference mode over `batches` and measures how its gate routes rows: the
 * expert-utilisation matrix, the domain-expert mutual information and the load per expert
 * (computed with `@mdrec/metrics`' `expertUtilization`, `expertUsageCounts`,
 * `routingMutualInformation` and `expertShare`). Works for any model whose output reports routing.
 *
 * @example
 * const { utilization, mutualInformation } = analyzeRouting(model, iterateBatches(test, { batchSize: 1024 }));
 */
export function analyzeRouting(
  model: MultiDomainModel,
  batches: Iterable<Batch>,
  options: AnalyzeRoutingOptions = {},
): RoutingAnalysisResult {
  assertKnownKeys("analyzeRouting options", options, ANALYZE_KEYS);
  const gate = options.gate ?? 0;
  assertInteger("analyzeRouting options.gate", gate, 0);
  const disposeBatches = options.disposeBatches ?? true;
  if (typeof disposeBatches !== "boolean") {
    throw new ConfigError(
      `analyzeRouting options.disposeBatches must be a boolean, received ${formatValue(disposeBatches)}`,
    );
  }
  const domainChunks: Int32Array[] = [];
  const indexChunks: Int32Array[] = [];
  let numExperts = 0;
  let k = 0;
  for (const batch of batches) {
    let chosen: tf.Tensor2D; // int32 [B, k]
    try {
      chosen = tf.tidy(() => {
        const { routing } = model.call(batch, { training: false });
        if (routing.length === 0) {
          throw new ConfigError(`analyzeRouting: model "${model.name}" reports no routing (it has no gates)`);
        }
        const selected = routing[gate];
        if (selected === undefined) {
          throw new ConfigError(
            `analyzeRouting options.gate must be in [0, ${routing.length}) (the gates model "${model.name}" reports), received ${gate}`,
          );
        }
        numExperts = selected.probs.shape[1];
        return selected.indices;
      });
      domainChunks.push(Int32Array.from(batch.domainIds.dataSync()));
    } finally {
      if (disposeBatches) disposeBatch(batch);
    }
    k = chosen.shape[1];
    indexChunks.push(Int32Array.from(chosen.dataSync()));
    chosen.dispose();
  }
  const domainIds = concatenate(domainChunks);
  const indices = concatenate(indexChunks);
  if (domainIds.length === 0) throw new ConfigError("analyzeRouting batches must hold at least one row");
  const usage = { domainIds, indices, numDomains: model.numDomains, numExperts, k };
  const counts = expertUsageCounts(usage); // [D, N]
  const mutualInformation = routingMutualInformation(counts);
  const result: RoutingAnalysisResult = {
    utilization: expertUtilization(usage),
    mutualInformation,
    rowsPerExpert: expertShare({ indices, numExperts }),
    rows: domainIds.length,
  };
  const domainEntropy = entropy(counts.map((line) => line.reduce((sum, value) => sum + value, 0)));
  const expertEntropy = entropy(
    counts[0]!.map((_, expert) => counts.reduce((sum, line) => sum + line[expert]!, 0)),
  );
  if (domainEntropy > 0 && expertEntropy > 0) {
    result.normalizedMutualInformation = Math.min(
      1,
      mutualInformation / Math.sqrt(domainEntropy * expertEntropy),
    );
  }
  return result;
}

function concatenate(chunks: readonly Int32Array[]): Int32Array {
  const result = new Int32Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    result.set(chunk, offset);
    offset += chunk.length;
  }
  return result;
}
