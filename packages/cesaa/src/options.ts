import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  ConfigError,
  formatValue,
} from "@mdrec/core";
import { DOMAIN_CONDITIONINGS, type DomainConditioning, type LoadBalanceOptions } from "@mdrec/gating";
import { assertUnits, type Resolved, resolveTowerModelOptions, type TowerModelOptions } from "@mdrec/models";

/** How the S shared experts are combined. */
export type SharedMixing = "mean" | "learned";

/** How the N domain-specific experts are computed. */
export type Dispatch = "sparse" | "dense";

/** Options of the CES gate (a `TopKGate` from `@mdrec/gating`). */
export interface CesaaGateOptions {
  /** Add `N(0, 1) * softplus(W_n x)` to the gate logits while training. Defaults to true. */
  noise?: boolean;
  /**
   * Mixing weights = softmax over the k kept logits (true), or the full-softmax values of the
   * kept experts, not summing to 1 (false, as in Mod-Squad). Defaults to true.
   */
  renormalize?: boolean;
  /**
   * How the row's domain enters the gate: `"embedding"` (`W_g [x ; emb(d)]`), `"per-domain"`
   * (one gate matrix per domain) or `"none"`. Defaults to `"embedding"`.
   */
  domainConditioning?: DomainConditioning;
  /** Width of the gate's domain embedding (`"embedding"` conditioning). Defaults to 8. */
  domainEmbeddingDim?: number;
}

/** Options of the AEA term (a `MutualInformationLoss` from `@mdrec/mi-loss`). */
export interface CesaaMiOptions {
  /**
   * lambda, the weight of `-I(D;E)` in the training loss; 0 turns AEA off. Defaults to 0.03, the
   * top of the Mod-Squad range 5e-4 .. 3e-2 and the smallest value that changed the routing on
   * the synthetic data (see the README).
   */
  weight?: number;
  /** Weight on H(E) (expert balance). Defaults to 1. */
  expertEntropyWeight?: number;
  /** Weight on H(E|D) (per-domain sharpness). Defaults to 1. */
  conditionalEntropyWeight?: number;
  /**
   * Momentum m in [0, 1) of the moving average of P(e|d) and P(d) across batches; 0 = batch
   * estimates only. The gradient flows through the batch part only, so m scales the AEA gradient
   * by (1 - m). Defaults to 0 (see the README).
   */
  movingAverage?: number;
}

/** Options of {@link Cesaa}. Every model-specific option has a documented default. */
export interface CesaaOptions extends TowerModelOptions {
  /** Hidden widths of each tower; a 1-unit linear output layer is appended. Defaults to `[32]`. */
  towerUnits?: number[];
  /** S, domain-shared experts, always computed for every row (>= 0). Defaults to 2. */
  numSharedExperts?: number;
  /** N, domain-specific experts the CES gate chooses from (>= 1). Defaults to 8. */
  numSpecificExperts?: number;
  /** Specific experts kept per row, in [1, N]. Defaults to 2. */
  k?: number;
  /** Widths of every expert MLP (shared and specific). Defaults to `[64, 32]`. */
  expertUnits?: number[];
  /** `"mean"`: h_shared = mean_s Es_s(x); `"learned"`: a softmax gate mixes the S shared experts. Defaults to `"mean"`. */
  sharedMixing?: SharedMixing;
  /**
   * `"sparse"`: each specific expert runs only on the rows routed to it (S + k experts per row);
   * `"dense"`: every specific expert runs on every row and the routing mixes them (reference).
   * Both give the same output. Defaults to `"sparse"`.
   */
  dispatch?: Dispatch;
  /** The CES gate. Missing keys take their defaults. */
  gate?: CesaaGateOptions;
  /** The AEA mutual-information term. Missing keys take their defaults. */
  mi?: CesaaMiOptions;
  /** Weights of the gate's load-balance losses (`importance`, `load`). Defaults to none (`{}`). */
  loadBalance?: LoadBalanceOptions;
}

/** Defaults of {@link CesaaGateOptions}. */
export const CESAA_GATE_DEFAULTS: Resolved<CesaaGateOptions> = {
  noise: true,
  renormalize: true,
  domainConditioning: "embedding",
  domainEmbeddingDim: 8,
};

/** Defaults of {@link CesaaMiOptions}. */
export const CESAA_MI_DEFAULTS: Resolved<CesaaMiOptions> = {
  weight: 0.03,
  expertEntropyWeight: 1,
  conditionalEntropyWeight: 1,
  movingAverage: 0,
};

/** {@link CesaaOptions} with every default filled in, nested ones included. */
export type ResolvedCesaaOptions = Omit<Resolved<CesaaOptions>, "gate" | "mi" | "loadBalance"> & {
  gate: Resolved<CesaaGateOptions>;
  mi: Resolved<CesaaMiOptions>;
  loadBalance: Required<LoadBalanceOptions>;
};

const WHERE = "cesaa options";

function nestedOptions<T extends object>(name: string, value: unknown, defaults: T): T {
  if (value === undefined) return { ...defaults };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`${WHERE}.${name} must be an object, received ${formatValue(value)}`);
  }
  assertKnownKeys(`${WHERE}.${name}`, value, Object.keys(defaults));
  const merged: Record<string, unknown> = { ...(defaults as Record<string, unknown>) };
  for (const [key, given] of Object.entries(value)) if (given !== undefined) merged[key] = given;
  return merged as T;
}

function assertBoolean(name: string, value: unknown): void {
  if (typeof value !== "boolean") {
    throw new ConfigError(`${name} must be a boolean, received ${formatValue(value)}`);
  }
}

/**
 * Checks CESAA's options and fills in every default, nested `gate`, `mi` and `loadBalance`
 * included, so the result is what `getConfig()` reports. Throws `ConfigError` naming the key and
 * the value received (`cesaa options.k must be an integer in [1, numSpecificExperts=8], received 9`).
 */
export function resolveCesaaOptions(options: CesaaOptions): ResolvedCesaaOptions {
  // CESAA's towers default to [32] hidden units instead of the family's [8].
  const withTowerDefault =
    options !== null && typeof options === "object" && options.towerUnits === undefined
      ? { ...options, towerUnits: [32] }
      : options;
  const resolved = resolveTowerModelOptions(WHERE, withTowerDefault, {
    numSharedExperts: 2,
    numSpecificExperts: 8,
    k: 2,
    expertUnits: [64, 32],
    sharedMixing: "mean",
    dispatch: "sparse",
    gate: CESAA_GATE_DEFAULTS,
    mi: CESAA_MI_DEFAULTS,
    loadBalance: {},
  });
  const { numSharedExperts, numSpecificExperts, k } = resolved;
  assertInteger(`${WHERE}.numSharedExperts`, numSharedExperts, 0);
  assertInteger(`${WHERE}.numSpecificExperts`, numSpecificExperts, 1);
  assertInteger(`${WHERE}.k`, k, 1, numSpecificExperts, `numSpecificExperts=${numSpecificExperts}`);
  assertUnits(`${WHERE}.expertUnits`, resolved.expertUnits);
  assertOneOf(`${WHERE}.sharedMixing`, resolved.sharedMixing, ["mean", "learned"]);
  assertOneOf(`${WHERE}.dispatch`, resolved.dispatch, ["sparse", "dense"]);

  const gate = nestedOptions("gate", options.gate, CESAA_GATE_DEFAULTS);
  assertBoolean(`${WHERE}.gate.noise`, gate.noise);
  assertBoolean(`${WHERE}.gate.renormalize`, gate.renormalize);
  assertOneOf(`${WHERE}.gate.domainConditioning`, gate.domainConditioning, DOMAIN_CONDITIONINGS);
  assertInteger(`${WHERE}.gate.domainEmbeddingDim`, gate.domainEmbeddingDim, 1);

  const mi = nestedOptions("mi", options.mi, CESAA_MI_DEFAULTS);
  assertNumber(`${WHERE}.mi.weight`, mi.weight, { min: 0 });
  assertNumber(`${WHERE}.mi.expertEntropyWeight`, mi.expertEntropyWeight, { min: 0 });
  assertNumber(`${WHERE}.mi.conditionalEntropyWeight`, mi.conditionalEntropyWeight, { min: 0 });
  assertNumber(`${WHERE}.mi.movingAverage`, mi.movingAverage, { min: 0, max: 1, exclusiveMax: true });

  const loadBalance = nestedOptions("loadBalance", options.loadBalance, { importance: 0, load: 0 });
  assertNumber(`${WHERE}.loadBalance.importance`, loadBalance.importance, { min: 0 });
  assertNumber(`${WHERE}.loadBalance.load`, loadBalance.load, { min: 0 });

  return { ...resolved, gate, mi, loadBalance };
}
