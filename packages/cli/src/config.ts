import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { BACKEND_PREFERENCE, type BackendName, ConfigError, formatValue, nearestKey } from "@mdrec/core";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { UsageError } from "./errors.js";

/** Early stopping on a validation metric. */
export interface EarlyStoppingConfig {
  /** Validation metric watched: `"auc"` (higher is better) or `"logloss"` (lower is better). */
  metric: "auc" | "logloss";
  /** Epochs without improvement before training stops. */
  patience: number;
}

/**
 * Everything a command can be configured with. Each key can come from the `--config` file
 * (JSON or YAML, same key names) or from the flag of the same name in kebab case
 * (`batchSize` <- `--batch-size`); flags win over the environment, which wins over the file.
 */
export interface CliConfig {
  /** Data argument (see docs/cli.md): `synthetic`, `synthetic:tiny`, `csv:<file>`, ... Defaults per command (`synthetic` or a preset). */
  data?: string;
  /** Schema file for `csv:` and `parquet:` data. */
  schema?: string;
  /** Model trained by `mdrec train`. Defaults to `"cesaa"`. */
  model: string;
  /** Models compared or benchmarked. Defaults to every registered model. */
  models?: string[];
  /** Per-model options passed to `createModel`, keyed by model name. Defaults to `{}`. */
  modelOptions: Record<string, Record<string, unknown>>;
  /** Saved model directory read by `mdrec eval`. */
  modelDir?: string;
  /** Backend to use; defaults to `MDREC_BACKEND`, else the command's default. */
  backend?: BackendName;
  /** Fall back to the next backend when the requested one cannot load. Defaults to false. */
  allowBackendFallback: boolean;
  /** Threads of the wasm backend. Defaults to 1. */
  threads: number;
  /** Seed of data generation, split, initialisation and shuffling. Defaults to 42. */
  seed: number;
  /** Output directory (`mdrec report`: output file). Defaults per command. */
  out?: string;
  /** Replace results of another run in `out`. Defaults to false. */
  overwrite: boolean;
  /** Training epochs. Defaults per command. */
  epochs?: number;
  /** Training batch size. Defaults per command. */
  batchSize?: number;
  /** Learning rate. Defaults to the trainer's default. */
  learningRate?: number;
  /** Optimizer name (see the trainer). Defaults to the trainer's default. */
  optimizer?: string;
  /** Decoupled weight decay. Defaults to the trainer's default. */
  weightDecay?: number;
  /** Global gradient-norm clip. Defaults to none. */
  gradientClip?: number;
  /**
   * Early stopping on the validation split, keeping the best epoch's weights; `false` trains every
   * epoch. Defaults per command (`compare` and `train`: AUC, patience 1).
   */
  earlyStopping?: EarlyStoppingConfig | false;
  /** Train, validation and test fractions. Defaults to `[0.8, 0.1, 0.1]`. */
  split: [number, number, number];
  /** Rows of synthetic data to generate (overrides the preset). */
  rows?: number;
  /** Timed training steps per model in `mdrec bench`. Defaults to 20. */
  steps: number;
  /** Print stack traces and per-step detail. Defaults to false. */
  verbose: boolean;
  /** Machine-readable output: one JSON document on stdout. Defaults to false. */
  json: boolean;
}

const text = (expected: string) => z.string({ error: expected }).min(1, { error: expected });
const flag = z.boolean({ error: "true or false" });
const integer = (min: number, expected: string) =>
  z.number({ error: expected }).int({ error: expected }).min(min, { error: expected });
const positiveNumber = (expected: string) => z.number({ error: expected }).positive({ error: expected });
const fraction = "a number in [0, 1]";

/** The zod schema of {@link CliConfig}; strict, so unknown keys are reported. */
export const cliConfigSchema = z.strictObject({
  data: text("a data argument such as synthetic or csv:<file>").optional(),
  schema: text("a path to a schema file").optional(),
  model: text("a model name").default("cesaa"),
  models: z
    .array(text("a model name"), { error: "a list of model names" })
    .min(1, { error: "a non-empty list of model names" })
    .optional(),
  modelOptions: z
    .record(z.string(), z.record(z.string(), z.unknown(), { error: "an object of model options" }), {
      error: "an object mapping model names to their options",
    })
    .default({}),
  modelDir: text("a path to a saved model directory").optional(),
  backend: z
    .enum(BACKEND_PREFERENCE, {
      error: `one of ${BACKEND_PREFERENCE.map((name) => JSON.stringify(name)).join(", ")}`,
    })
    .optional(),
  allowBackendFallback: flag.default(false),
  threads: integer(1, "a positive integer").default(1),
  seed: integer(0, "a non-negative integer").default(42),
  out: text("a path").optional(),
  overwrite: flag.default(false),
  epochs: integer(1, "a positive integer").optional(),
  batchSize: integer(1, "a positive integer").optional(),
  learningRate: positiveNumber("a finite number > 0").optional(),
  optimizer: text("an optimizer name").optional(),
  weightDecay: z
    .number({ error: "a finite number >= 0" })
    .min(0, { error: "a finite number >= 0" })
    .optional(),
  gradientClip: positiveNumber("a finite number > 0").optional(),
  earlyStopping: z
    .union(
      [
        z.literal(false),
        z.strictObject({
          metric: z.enum(["auc", "logloss"], { error: 'one of "auc", "logloss"' }).default("auc"),
          patience: integer(1, "a positive integer").default(1),
        }),
      ],
      { error: "false or an object { metric, patience }" },
    )
    .optional(),
  split: z
    .tuple(
      [
        z.number({ error: fraction }).min(0, { error: fraction }).max(1, { error: fraction }),
        z.number({ error: fraction }).min(0, { error: fraction }).max(1, { error: fraction }),
        z.number({ error: fraction }).min(0, { error: fraction }).max(1, { error: fraction }),
      ],
      { error: "three fractions [train, validation, test] summing to 1" },
    )
    .refine((parts) => Math.abs(parts[0] + parts[1] + parts[2] - 1) < 1e-6 && parts[0] > 0, {
      error: "three fractions [train, validation, test] summing to 1 with train > 0",
    })
    .default([0.8, 0.1, 0.1]),
  rows: integer(1, "a positive integer").optional(),
  steps: integer(1, "a positive integer").default(20),
  verbose: flag.default(false),
  json: flag.default(false),
});

/** Valid top-level config keys, in schema order. */
export const CONFIG_KEYS: readonly string[] = Object.keys(cliConfigSchema.shape);
const NESTED_KEYS: Record<string, readonly string[]> = { earlyStopping: ["metric", "patience"] };

/** Where a config value came from, for error messages. */
export type ConfigSource =
  | { kind: "file"; path: string }
  | { kind: "flag"; flag: string }
  | { kind: "env"; variable: string }
  | { kind: "default" };

/** Raw config values (before validation) with the source of each top-level key. */
export interface ConfigLayers {
  values: Record<string, unknown>;
  sources: Record<string, ConfigSource>;
}

/** `batchSize` -> `--batch-size`. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/**
 * Reads a config file: YAML for `.yaml` / `.yml`, JSON for `.json`, otherwise YAML (a superset
 * of JSON). Throws `ConfigError` naming the file (and line and column for syntax errors).
 */
export async function readConfigFile(path: string, cwd: string): Promise<Record<string, unknown>> {
  const absolute = resolve(cwd, path);
  let content: string;
  try {
    content = await readFile(absolute, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message;
    throw new ConfigError(`Cannot read config file ${path} (--config): ${reason}`, { cause: error });
  }
  let parsed: unknown;
  const extension = extname(absolute).toLowerCase();
  try {
    parsed = extension === ".json" ? JSON.parse(content) : parseYaml(content);
  } catch (error) {
    const where =
      error instanceof YAMLParseError && error.linePos
        ? `:${error.linePos[0].line}:${error.linePos[0].col}`
        : "";
    const message = (error as Error).message.split("\n")[0];
    throw new ConfigError(
      `Config file ${path}${where} is not valid ${extension === ".json" ? "JSON" : "YAML"}: ${message}`,
      {
        cause: error,
      },
    );
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(
      `Config file ${path} must hold an object of config keys, received ${formatValue(parsed)}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/** Describes where a top-level key came from: `--backend`, `environment variable MDREC_BACKEND`, `config key "backend" in run.yaml`. */
export function describeSource(key: string, sources: Record<string, ConfigSource>): string {
  return describeLocation([key], sources);
}

/** Describes a config location for messages: `--batch-size`, `config key "seed" in run.yaml`. */
function describeLocation(path: readonly PropertyKey[], sources: Record<string, ConfigSource>): string {
  const key = path.map(String).join(".");
  const top = String(path[0] ?? "");
  const source = sources[top];
  if (source?.kind === "flag") return path.length > 1 ? `${source.flag} (${key})` : source.flag;
  if (source?.kind === "env") return `environment variable ${source.variable}`;
  if (source?.kind === "file") return `config key "${key}" in ${source.path}`;
  return `config key "${key}"`;
}

/**
 * Validates merged config layers against {@link cliConfigSchema} and fills in defaults. Throws
 * one `ConfigError` listing every problem, each naming the key (or flag) and the value received;
 * unknown keys name the nearest valid key.
 */
export function validateConfig(layers: ConfigLayers): CliConfig {
  const result = cliConfigSchema.safeParse(layers.values, { reportInput: true });
  if (result.success) return result.data as CliConfig;
  const problems = expandUnionIssues(result.error.issues).map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const parent = issue.path.map(String).join(".");
      const known = parent === "" ? CONFIG_KEYS : (NESTED_KEYS[parent] ?? []);
      return issue.keys
        .map((key) => {
          const location = describeLocation([...issue.path, key], layers.sources);
          const suggestion = nearestKey(key, known);
          const hint = suggestion ? ` Did you mean "${suggestion}"?` : ` Valid keys: ${known.join(", ")}.`;
          return `Unknown ${location}.${hint}`;
        })
        .join("\n");
    }
    const location = describeLocation(issue.path, layers.sources);
    return `${location} must be ${issue.message}, received ${formatValue(issue.input)}`;
  });
  throw new ConfigError(problems.join("\n"));
}

/**
 * For a union that received an object (`earlyStopping: { patiense: 1 }`), the problems of the
 * object branch, with full paths, say more than "false or an object".
 */
function expandUnionIssues(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  return issues.flatMap((issue) => {
    const input = (issue as { input?: unknown }).input;
    if (
      issue.code !== "invalid_union" ||
      input === null ||
      typeof input !== "object" ||
      Array.isArray(input)
    ) {
      return [issue];
    }
    const objectBranch = issue.errors.at(-1) ?? [];
    return expandUnionIssues(
      objectBranch.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] }) as z.core.$ZodIssue),
    );
  });
}

/**
 * Converts a flag's text to a number when it reads as one (`"0.01"`, `"NaN"`, `"1e-3"`); any
 * other text stays a string so validation reports it as received.
 */
export function numberFromFlag(value: string): number | string {
  const trimmed = value.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(trimmed)) return Number(trimmed);
  if (/^[-+]?(NaN|Infinity)$/.test(trimmed)) return Number(trimmed);
  return value;
}

/**
 * Merges the config file, `MDREC_BACKEND` and flags (in that order, later wins) into raw layers
 * with sources, ready for {@link validateConfig}.
 */
export function mergeConfigLayers(
  file: { path: string; values: Record<string, unknown> } | undefined,
  env: Record<string, string | undefined>,
  flags: Record<string, unknown>,
): ConfigLayers {
  const values: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  if (file) {
    for (const [key, value] of Object.entries(file.values)) {
      values[key] = value;
      sources[key] = { kind: "file", path: file.path };
    }
  }
  const backendFromEnv = env.MDREC_BACKEND?.trim();
  if (backendFromEnv) {
    values.backend = backendFromEnv;
    sources.backend = { kind: "env", variable: "MDREC_BACKEND" };
  }
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    values[key] = value;
    sources[key] = { kind: "flag", flag: flagName(key) };
  }
  return { values, sources };
}

/** Rejects a config that lacks a key a command needs, naming the flag and the config key. */
export function requireKey<K extends keyof CliConfig>(
  config: CliConfig,
  key: K,
  command: string,
): asserts config is CliConfig & Required<Pick<CliConfig, K>> {
  if (config[key] === undefined) {
    throw new UsageError(
      `mdrec ${command} needs ${flagName(String(key))} <value> (or config key "${String(key)}")`,
    );
  }
}
