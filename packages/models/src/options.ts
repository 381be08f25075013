import {
  type Activation,
  assertActivation,
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertOneOf,
  ConfigError,
  nextSeed,
  validateFeatureSpecs,
} from "@mdrec/core";
import type { DomainTowers, TowerMode } from "./layers/domain-towers.js";
import type { BaseModelOptions } from "./model.js";

/** `O` with every option present (defaults filled in). */
export type Resolved<O> = { [K in keyof O]-?: Exclude<O[K], undefined> };

/** Base options after defaults are filled in. */
export type ResolvedBaseOptions = Resolved<BaseModelOptions>;

/** A model's defaults: a value, or a function of the resolved base options (e.g. `numExperts = numDomains`). */
export type OptionDefaults<O> = {
  [K in Exclude<keyof O, keyof BaseModelOptions>]-?:
    | Exclude<O[K], undefined>
    | ((base: ResolvedBaseOptions) => Exclude<O[K], undefined>);
};

const BASE_KEYS = ["features", "numDomains", "numTasks", "embeddingDim", "seed"] as const;

/**
 * Checks a model's options and fills in defaults: unknown keys (with the nearest valid key),
 * the shared base options, then the model's own defaults. The result is a JSON-safe deep copy,
 * which is what `getConfig()` reports, so the seed drawn for an unseeded model is kept.
 *
 * @param where names the options in messages, e.g. `"mmoe options"`.
 */
export function resolveOptions<O extends BaseModelOptions>(
  where: string,
  options: O,
  defaults: OptionDefaults<O>,
): Resolved<O> {
  if (options == null || typeof options !== "object" || Array.isArray(options)) {
    throw new ConfigError(`${where} must be an object, received ${JSON.stringify(options)}`);
  }
  const modelKeys = Object.keys(defaults);
  assertKnownKeys(where, options, [...BASE_KEYS, ...modelKeys]);
  validateFeatureSpecs(options.features, `${where}.features`);
  assertInteger(`${where}.numDomains`, options.numDomains, 1);
  const base: ResolvedBaseOptions = {
    features: options.features,
    numDomains: options.numDomains,
    numTasks: options.numTasks ?? 1,
    embeddingDim: options.embeddingDim ?? 16,
    seed: options.seed ?? nextSeed(),
  };
  assertInteger(`${where}.numTasks`, base.numTasks, 1);
  assertInteger(`${where}.embeddingDim`, base.embeddingDim, 1);
  assertInteger(`${where}.seed`, base.seed, 0);
  const resolved: Record<string, unknown> = { ...base };
  for (const key of modelKeys) {
    const given = (options as Record<string, unknown>)[key];
    const fallback = (defaults as Record<string, unknown>)[key];
    resolved[key] = given !== undefined ? given : typeof fallback === "function" ? fallback(base) : fallback;
  }
  return structuredClone(resolved) as Resolved<O>;
}

/** Asserts a list of layer widths: positive integers, at least one unless `allowEmpty`. */
export function assertUnits(name: string, value: unknown, allowEmpty = false): asserts value is number[] {
  if (!Array.isArray(value) || (!allowEmpty && value.length === 0)) {
    throw new ConfigError(
      `${name} must be ${allowEmpty ? "an" : "a non-empty"} array of positive integers, received ${JSON.stringify(value)}`,
    );
  }
  value.forEach((width, index) => {
    assertInteger(`${name}[${index}]`, width, 1);
  });
}

/** Options of the per-domain (or shared) towers every tower-based model exposes. */
export interface TowerOptions {
  /** Hidden widths of each tower; a 1-unit linear output layer is appended. Defaults to `[8]`. */
  towerUnits?: number[];
  /**
   * `"per-domain"`: one tower per (domain, task), each row uses its own domain's tower.
   * `"shared"`: one tower per task fed `[h ; domain embedding]`. Defaults to `"per-domain"`.
   */
  towerMode?: TowerMode;
}

/** Activation and dropout shared by every MLP of a model. */
export interface MlpOptions {
  /** Hidden activation of every MLP. Defaults to `"relu"`. */
  activation?: Activation;
  /** Dropout rate after every hidden layer while training, in [0, 1). Defaults to 0. */
  dropout?: number;
}

/** Defaults of {@link MlpOptions}. */
export const MLP_DEFAULTS: Resolved<MlpOptions> = { activation: "relu", dropout: 0 };

/** Defaults of {@link TowerOptions}. */
export const TOWER_DEFAULTS: Resolved<TowerOptions> = { towerUnits: [8], towerMode: "per-domain" };

/** Validates resolved {@link MlpOptions}. */
export function assertMlpOptions(where: string, options: Resolved<MlpOptions>): void {
  assertActivation(`${where}.activation`, options.activation);
  assertNumber(`${where}.dropout`, options.dropout, { min: 0, max: 0.999 });
}

/** Options of models that end in {@link DomainTowers}: base, tower and MLP options. */
export interface TowerModelOptions extends BaseModelOptions, TowerOptions, MlpOptions {}

/**
 * {@link resolveOptions} for models with towers: also fills in and validates the
 * {@link TowerOptions} and {@link MlpOptions}, so `defaults` holds only the model's own options.
 */
export function resolveTowerModelOptions<O extends TowerModelOptions>(
  where: string,
  options: O,
  defaults: Omit<OptionDefaults<O>, keyof TowerOptions | keyof MlpOptions>,
): Resolved<O> {
  const resolved = resolveOptions(where, options, {
    ...TOWER_DEFAULTS,
    ...MLP_DEFAULTS,
    ...defaults,
  } as OptionDefaults<O>);
  assertUnits(`${where}.towerUnits`, resolved.towerUnits, true);
  assertOneOf(`${where}.towerMode`, resolved.towerMode, ["per-domain", "shared"]);
  assertMlpOptions(where, resolved);
  return resolved;
}
