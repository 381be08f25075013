import { assertInteger, assertOneOf, assertTensor, gatherRows } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable } from "@tensorflow/tfjs-layers";
import { oneHotFloat } from "./one-hot.js";

/** How a gate uses the domain of each row. */
export const DOMAIN_CONDITIONINGS = ["none", "embedding", "per-domain"] as const;

/**
 * - `"none"`: logits = x W (the domain is ignored).
 * - `"embedding"`: a learned domain embedding is concatenated to the gate input: logits = W [x ; emb(d)].
 * - `"per-domain"`: one gate matrix per domain: logits = x W_d.
 */
export type DomainConditioning = (typeof DOMAIN_CONDITIONINGS)[number];

/** Validated domain-conditioning settings of a gate. */
export interface ConditioningSettings {
  domainConditioning: DomainConditioning;
  /** Number of domains; undefined when `domainConditioning` is `"none"` and none was given. */
  numDomains: number | undefined;
  /** Width of the domain embedding (used by `"embedding"`). */
  domainEmbeddingDim: number;
}

/** Validates the conditioning arguments shared by every gate. */
export function validateConditioning(
  where: string,
  args: { domainConditioning?: DomainConditioning; numDomains?: number; domainEmbeddingDim?: number },
  defaultConditioning: DomainConditioning,
): ConditioningSettings {
  const domainConditioning = args.domainConditioning ?? defaultConditioning;
  assertOneOf(`${where} domainConditioning`, domainConditioning, DOMAIN_CONDITIONINGS);
  if (domainConditioning !== "none" || args.numDomains !== undefined) {
    const requirement =
      domainConditioning === "none" ? "" : ` (required when domainConditioning is "${domainConditioning}")`;
    assertInteger(`${where} numDomains${requirement}`, args.numDomains, 1);
  }
  const domainEmbeddingDim = args.domainEmbeddingDim ?? 8;
  assertInteger(`${where} domainEmbeddingDim`, domainEmbeddingDim, 1);
  return { domainConditioning, numDomains: args.numDomains, domainEmbeddingDim };
}

/** Creates a weight on the owning layer (`Layer.addWeight` is protected). */
export type AddWeight = (
  name: string,
  shape: number[],
  initializer: ReturnType<typeof initializers.zeros>,
) => LayerVariable;

/**
 * The domain-conditioned linear map from gate features to `outputs` logits (no bias, as in
 * the MMoE, PLE and noisy top-k formulas). Owns no layer: its weights are created on the gate
 * that uses it, so they are saved and trained with the gate.
 */
export class ConditionedLinear {
  private embedding: LayerVariable | null = null; // [numDomains, domainEmbeddingDim]
  private kernel: LayerVariable | null = null; // [features, outputs] or [features, numDomains * outputs]

  constructor(
    readonly settings: ConditioningSettings,
    readonly outputs: number,
  ) {}

  /** Width added to the gate input by the conditioning (the embedding width, or 0). */
  get inputExtension(): number {
    return this.settings.domainConditioning === "embedding" ? this.settings.domainEmbeddingDim : 0;
  }

  /** Creates the domain embedding table when `"embedding"` conditioning is on. */
  buildEmbedding(addWeight: AddWeight, seed: number): void {
    if (this.settings.domainConditioning !== "embedding") return;
    this.embedding = addWeight(
      "domain_embedding",
      [this.settings.numDomains!, this.settings.domainEmbeddingDim],
      initializers.randomUniform({ minval: -0.05, maxval: 0.05, seed }),
    );
  }

  /** Creates the gate matrix (Glorot-uniform per domain matrix) for features of width `featureDim`. */
  buildKernel(addWeight: AddWeight, featureDim: number, seed: number): void {
    const perDomain = this.settings.domainConditioning === "per-domain";
    const limit = Math.sqrt(6 / (featureDim + this.outputs));
    this.kernel = addWeight(
      "gate_kernel",
      [featureDim, perDomain ? this.settings.numDomains! * this.outputs : this.outputs],
      initializers.randomUniform({ minval: -limit, maxval: limit, seed }),
    );
  }

  /** `[x ; emb(d)]` for `"embedding"` conditioning, else `x`. */
  conditionInput(x: tf.Tensor2D, domainIds: tf.Tensor1D): tf.Tensor2D {
    if (!this.embedding) return x;
    const domainEmbedding = gatherRows(this.embedding.read() as tf.Tensor2D, domainIds); // [B, domainEmbeddingDim]
    return tf.concat([x, domainEmbedding], 1); // [B, dIn + domainEmbeddingDim]
  }

  /** `[B, outputs]` logits; for `"per-domain"` each row uses its own domain's matrix. */
  logits(features: tf.Tensor2D, domainIds: tf.Tensor1D): tf.Tensor2D {
    const kernel = this.kernel!.read() as tf.Tensor2D;
    const all = tf.matMul(features, kernel) as tf.Tensor2D; // [B, outputs] or [B, D * outputs]
    if (this.settings.domainConditioning !== "per-domain") return all;
    const batch = features.shape[0];
    const numDomains = this.settings.numDomains!;
    const perDomain = tf.reshape(all, [batch, numDomains, this.outputs]); // [B, D, outputs]
    // Select the row's domain by a one-hot product: gather with batchDims crashes on wasm.
    const selector = tf.reshape(oneHotFloat(domainIds, numDomains), [batch, numDomains, 1]); // [B, D, 1]
    return tf.sum(tf.mul(perDomain, selector), 1) as tf.Tensor2D; // [B, outputs]
  }
}

/** Validates `x` `[B, dIn]` float32 and `domainIds` int32 `[B]` passed to a gate. */
export function assertGateInputs(
  where: string,
  x: tf.Tensor2D,
  domainIds: tf.Tensor1D,
  inputDim: number | null,
  idsLabel = "domainIds",
): void {
  assertTensor(`${where} x`, x, { rank: 2, dtype: "float32", shape: [null, inputDim] });
  assertTensor(`${where} ${idsLabel}`, domainIds, { rank: 1, dtype: "int32", shape: [x.shape[0]] });
}
