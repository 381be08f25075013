import { ConfigError, nearestKey } from "@mdrec/core";
import type { BaseModelOptions, MultiDomainModel } from "./model.js";

/** Builds a model from its options. Receives the caller's options unchanged. */
export type ModelFactory = (options: BaseModelOptions & Record<string, unknown>) => MultiDomainModel;

/** Named option sets of a model (merged under the caller's options), e.g. `tiny`. */
export type ModelPresets = Record<string, Record<string, unknown>>;

/** What the registry knows about a model. */
export interface ModelInfo {
  /** Registry name, e.g. `"mmoe"`. */
  name: string;
  /** One line for `mdrec` listings. */
  description: string;
  /** Named option sets; every model has `tiny` (sizes for tests that run in seconds). */
  presets: ModelPresets;
}

/** Options of {@link registerModel}. */
export interface RegisterModelOptions {
  /** One line for `mdrec` listings. */
  description: string;
  /**
   * Named option sets without the data-dependent base options, e.g.
   * `{ tiny: { expertUnits: [8] } }`. A `tiny` preset (a model that trains in seconds on a few
   * thousand rows) is expected: the parametrised model tests use it. Defaults to `{ tiny: {} }`.
   */
  presets?: ModelPresets;
  /** Replace an existing registration of the same name instead of refusing. Defaults to false. */
  replace?: boolean;
}

/**
 * Maps registry names to option types so {@link createModel} type-checks its options.
 * Packages that register a model extend it by declaration merging:
 * `declare module "@mdrec/models" { interface ModelOptionsByName { cesaa: CesaaOptions } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by declaration merging in models.ts and downstream packages
export interface ModelOptionsByName {}

/** Options accepted by `createModel(name, ...)`: typed for known names, open for the rest. */
export type OptionsFor<Name extends string> = Name extends keyof ModelOptionsByName
  ? ModelOptionsByName[Name]
  : BaseModelOptions & Record<string, unknown>;

const NAME_PATTERN = /^[a-z][a-z0-9-]*$/;
interface Registration {
  factory: ModelFactory;
  description: string;
  presets: ModelPresets;
}

const registry = new Map<string, Registration>();

function knownNames(): string {
  return [...registry.keys()].map((name) => JSON.stringify(name)).join(", ");
}

/**
 * Adds a model to the registry so `createModel`, `loadModel`, the CLI and the parametrised
 * model tests pick it up.
 *
 * @example
 * registerModel("my-model", (options) => new MyModel(options), { description: "My baseline" });
 */
export function registerModel(name: string, factory: ModelFactory, options: RegisterModelOptions): void {
  if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
    throw new ConfigError(
      `registerModel name must be lower-case letters, digits and dashes starting with a letter, received ${JSON.stringify(name)}`,
    );
  }
  if (typeof factory !== "function") {
    throw new ConfigError(`registerModel("${name}") factory must be a function, received ${typeof factory}`);
  }
  if (typeof options?.description !== "string" || options.description.length === 0) {
    throw new ConfigError(
      `registerModel("${name}") needs a non-empty description, received ${JSON.stringify(options?.description)}`,
    );
  }
  if (registry.has(name) && options.replace !== true) {
    throw new ConfigError(`Model "${name}" is already registered (pass { replace: true } to replace it)`);
  }
  const presets = structuredClone(options.presets ?? { tiny: {} });
  for (const [preset, values] of Object.entries(presets)) {
    if (values == null || typeof values !== "object" || Array.isArray(values)) {
      throw new ConfigError(
        `registerModel("${name}") preset "${preset}" must be an options object, received ${JSON.stringify(values)}`,
      );
    }
  }
  registry.set(name, { factory, description: options.description, presets });
}

/** Registry names in registration order. */
export function listModels(): string[] {
  return [...registry.keys()];
}

function lookup(name: string): Registration {
  const entry = typeof name === "string" ? registry.get(name) : undefined;
  if (entry === undefined) {
    const suggestion = typeof name === "string" ? nearestKey(name, [...registry.keys()]) : undefined;
    const hint = suggestion ? ` Did you mean "${suggestion}"?` : "";
    throw new ConfigError(`Unknown model ${JSON.stringify(name)}.${hint} Known models: ${knownNames()}.`);
  }
  return entry;
}

/** Name, description and presets of a registered model. Unknown names throw like {@link createModel}. */
export function getModelInfo(name: string): ModelInfo {
  const { description, presets } = lookup(name);
  return { name, description, presets: structuredClone(presets) };
}

/**
 * A registered preset of a model, to spread under the data-dependent options:
 * `createModel("star", { ...modelPreset("star", "tiny"), features, numDomains })`.
 * Unknown presets throw a `ConfigError` listing the model's presets.
 */
export function modelPreset(name: string, preset: string): Record<string, unknown> {
  const { presets } = lookup(name);
  const values = presets[preset];
  if (values === undefined) {
    throw new ConfigError(
      `Model "${name}" has no preset ${JSON.stringify(preset)}; its presets: ${Object.keys(presets)
        .map((key) => JSON.stringify(key))
        .join(", ")}`,
    );
  }
  return structuredClone(values);
}

/**
 * Creates a registered model. Unknown names throw a `ConfigError` listing the known ones.
 *
 * @example
 * const model = createModel("mmoe", { features, numDomains: 4, numExperts: 4, seed: 7 });
 */
export function createModel<Name extends string>(name: Name, options: OptionsFor<Name>): MultiDomainModel {
  return lookup(name).factory(options as BaseModelOptions & Record<string, unknown>);
}
