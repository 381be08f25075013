import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import {
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  ConfigError,
  DataError,
  formatValue,
} from "@mdrec/core";
import { resolveSource } from "./readers/rows.js";
import type { DataSource } from "./readers/types.js";

/**
 * A categorical input field. Values are strings (numbers are read as their decimal text) encoded
 * to ids in `[0, vocabularySize)`:
 * - `"vocabulary"` (default): ids by descending training frequency, id 0 for out-of-vocabulary;
 * - `"hashing"`: FNV-1a hash of the value modulo `numBuckets` (no fitting, no OOV);
 * - `"identity"`: the value is already an integer id in `[0, vocabularySize)`.
 */
export interface CategoricalFieldSchema {
  kind: "categorical";
  /** Field name, the key in `Batch.features`. */
  name: string;
  /** Source column. Defaults to `name`. */
  column?: string;
  /** Defaults to `"vocabulary"`. */
  encoding?: "vocabulary" | "hashing" | "identity";
  /** Vocabulary: values seen fewer times in training map to OOV. Defaults to 1. */
  minCount?: number;
  /** Vocabulary: keep at most this many most frequent values (plus the OOV id). Defaults to unlimited. */
  maxSize?: number;
  /** Hashing: number of buckets (required). */
  numBuckets?: number;
  /** Identity: number of ids (required). */
  vocabularySize?: number;
  /** Keep only the first of several separated values, e.g. `"|"` turns `"Action|Comedy"` into `"Action"`. */
  valueSeparator?: string;
  /** Embedding width for this field (passed to the feature spec). */
  embeddingDim?: number;
}

/**
 * A numeric input field. Values must parse as finite numbers (`"1,5"`, `"abc"`, `NaN` and
 * `Infinity` are invalid rows):
 * - `"standardize"` (default): `(x - mean) / std` with training mean and std;
 * - `"quantile"`: kept as is, with `numBuckets` training-quantile boundaries in the feature spec
 *   so the embedding layer embeds the bucket;
 * - `"none"`: kept as is.
 */
export interface NumericFieldSchema {
  kind: "numeric";
  name: string;
  /** Source column. Defaults to `name`. */
  column?: string;
  /** Defaults to `"standardize"`. */
  normalization?: "standardize" | "quantile" | "none";
  /** Quantile: number of buckets. Defaults to 10. */
  numBuckets?: number;
  /** Value used for empty cells. Without it an empty cell makes the row invalid. */
  fillValue?: number;
  /** Embedding width when bucketised. */
  embeddingDim?: number;
}

/** One input field of a {@link DataSchema}. */
export type FieldSchema = CategoricalFieldSchema | NumericFieldSchema;

/**
 * Where the domain of a row comes from. With `mapping`, each raw value maps to a domain id (a
 * value outside the mapping makes the row invalid); without it, the column holds domain ids in
 * `[0, numDomains)`.
 */
export interface DomainSchema {
  column: string;
  /** Raw value -> domain id, e.g. `{ "1": 0, "18": 0, "25": 1 }`. Ids must cover `0..D-1`. */
  mapping?: Record<string, number>;
  /** Domain names. Defaults to the raw values of each domain joined by `"|"`, or `domain_<id>`. */
  names?: string[];
  /** Number of domains (required without `mapping`). */
  numDomains?: number;
}

/** Comparison that turns a raw label into 0/1. */
export interface LabelRule {
  op: ">=" | ">" | "<=" | "<" | "==" | "!=";
  value: number;
}

/**
 * A task label. Without `rule` the value must be 0 or 1 (`true`/`false` accepted); with `rule`
 * the label is 1 when `raw <op> value` holds. `range` rejects raw values outside `[min, max]`
 * (e.g. a rating of 7 on a 1-5 scale).
 */
export interface LabelSchema {
  /** Task name. */
  name: string;
  /** Source column. Defaults to `name`. */
  column?: string;
  rule?: LabelRule;
  range?: [number, number];
}

/**
 * A lookup table joined to each row: the row's `on` column is looked up in the `key` column of
 * `source` (read fully into memory, e.g. `users.dat`), bringing `columns` into the row. A row whose
 * key is not in the table is invalid.
 */
export interface JoinSchema {
  source: DataSource;
  key: string;
  on: string;
  columns: string[];
}

/** The timestamp kept with each row for time splits, stored as int32 seconds. */
export interface TimeSchema {
  column: string;
  /** Name of the dataset column. Defaults to `"timestamp"`. */
  name?: string;
  /** Unit of the raw values. Defaults to `"s"`. */
  unit?: "s" | "ms";
}

/**
 * Declares how rows of a file become a {@link ColumnarDataset}: input fields, the domain, the
 * labels, and optionally the user column (`groupIds`, for GAUC and per-user splits), a
 * timestamp and lookup joins.
 *
 * @example
 * const schema: DataSchema = {
 *   features: [{ kind: "categorical", name: "user_id" }, { kind: "numeric", name: "price" }],
 *   domain: { column: "scenario", mapping: { app: 0, web: 1 } },
 *   labels: [{ name: "click" }],
 *   groupColumn: "user_id",
 * };
 */
export interface DataSchema {
  features: FieldSchema[];
  domain: DomainSchema;
  labels: LabelSchema[];
  /** Column of user ids, stored as `groupIds`. */
  groupColumn?: string;
  time?: TimeSchema;
  joins?: JoinSchema[];
}

const SCHEMA_KEYS = ["features", "domain", "labels", "groupColumn", "time", "joins"];
const CATEGORICAL_KEYS = [
  "kind",
  "name",
  "column",
  "encoding",
  "minCount",
  "maxSize",
  "numBuckets",
  "vocabularySize",
  "valueSeparator",
  "embeddingDim",
];
const NUMERIC_KEYS = ["kind", "name", "column", "normalization", "numBuckets", "fillValue", "embeddingDim"];
const DOMAIN_KEYS = ["column", "mapping", "names", "numDomains"];
const LABEL_KEYS = ["name", "column", "rule", "range"];
const JOIN_KEYS = ["source", "key", "on", "columns"];
const TIME_KEYS = ["column", "name", "unit"];

function assertName(where: string, value: unknown): asserts value is string {
  if (typeof value !== "string" || value.length === 0) {
    throw new ConfigError(`${where} must be a non-empty string, received ${formatValue(value)}`);
  }
}

/**
 * Validates a schema, throwing `ConfigError` naming the key (e.g. `schema.features[2].numBuckets`)
 * and the value received. Returns the schema for chaining.
 */
export function validateSchema(schema: DataSchema, where = "schema"): DataSchema {
  if (schema == null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new ConfigError(
      `${where} must be an object { features, domain, labels }, received ${formatValue(schema)}`,
    );
  }
  assertKnownKeys(where, schema, SCHEMA_KEYS);
  if (!Array.isArray(schema.features) || schema.features.length === 0) {
    throw new ConfigError(
      `${where}.features must be a non-empty array of fields, received ${formatValue(schema.features)}`,
    );
  }
  const names = new Set<string>();
  schema.features.forEach((field, index) => {
    const at = `${where}.features[${index}]`;
    if (field == null || typeof field !== "object")
      throw new ConfigError(`${at} must be an object, received ${formatValue(field)}`);
    assertOneOf(`${at}.kind`, field.kind, ["categorical", "numeric"]);
    assertKnownKeys(at, field, field.kind === "categorical" ? CATEGORICAL_KEYS : NUMERIC_KEYS);
    assertName(`${at}.name`, field.name);
    if (names.has(field.name)) throw new ConfigError(`${at}.name "${field.name}" is declared twice`);
    names.add(field.name);
    if (field.column !== undefined) assertName(`${at}.column`, field.column);
    if (field.embeddingDim !== undefined) assertInteger(`${at}.embeddingDim`, field.embeddingDim, 1);
    if (field.kind === "categorical") {
      const encoding = field.encoding ?? "vocabulary";
      assertOneOf(`${at}.encoding`, encoding, ["vocabulary", "hashing", "identity"]);
      if (field.minCount !== undefined) assertInteger(`${at}.minCount`, field.minCount, 1);
      if (field.maxSize !== undefined) assertInteger(`${at}.maxSize`, field.maxSize, 1);
      if (encoding === "hashing")
        assertInteger(`${at}.numBuckets (hashing)`, field.numBuckets, 1, 2 ** 31 - 1);
      if (encoding === "identity")
        assertInteger(`${at}.vocabularySize (identity)`, field.vocabularySize, 1, 2 ** 31 - 1);
      if (field.valueSeparator !== undefined) assertName(`${at}.valueSeparator`, field.valueSeparator);
    } else {
      const normalization = field.normalization ?? "standardize";
      assertOneOf(`${at}.normalization`, normalization, ["standardize", "quantile", "none"]);
      if (field.numBuckets !== undefined) assertInteger(`${at}.numBuckets`, field.numBuckets, 2, 10_000);
      if (
        field.fillValue !== undefined &&
        (typeof field.fillValue !== "number" || !Number.isFinite(field.fillValue))
      ) {
        throw new ConfigError(
          `${at}.fillValue must be a finite number, received ${formatValue(field.fillValue)}`,
        );
      }
    }
  });
  validateDomain(schema.domain, `${where}.domain`);
  if (!Array.isArray(schema.labels) || schema.labels.length === 0) {
    throw new ConfigError(
      `${where}.labels must be a non-empty array of labels, received ${formatValue(schema.labels)}`,
    );
  }
  const taskNames = new Set<string>();
  schema.labels.forEach((label, index) => {
    const at = `${where}.labels[${index}]`;
    if (label == null || typeof label !== "object")
      throw new ConfigError(`${at} must be an object, received ${formatValue(label)}`);
    assertKnownKeys(at, label, LABEL_KEYS);
    assertName(`${at}.name`, label.name);
    if (taskNames.has(label.name)) throw new ConfigError(`${at}.name "${label.name}" is declared twice`);
    taskNames.add(label.name);
    if (label.column !== undefined) assertName(`${at}.column`, label.column);
    if (label.rule !== undefined) {
      if (label.rule == null || typeof label.rule !== "object") {
        throw new ConfigError(`${at}.rule must be { op, value }, received ${formatValue(label.rule)}`);
      }
      assertKnownKeys(`${at}.rule`, label.rule, ["op", "value"]);
      assertOneOf(`${at}.rule.op`, label.rule.op, [">=", ">", "<=", "<", "==", "!="]);
      if (typeof label.rule.value !== "number" || !Number.isFinite(label.rule.value)) {
        throw new ConfigError(
          `${at}.rule.value must be a finite number, received ${formatValue(label.rule.value)}`,
        );
      }
    }
    if (label.range !== undefined) {
      const range = label.range;
      const ok =
        Array.isArray(range) &&
        range.length === 2 &&
        range.every((bound) => typeof bound === "number" && Number.isFinite(bound)) &&
        range[0] <= range[1];
      if (!ok)
        throw new ConfigError(
          `${at}.range must be [min, max] with min <= max, received ${formatValue(range)}`,
        );
    }
  });
  if (schema.groupColumn !== undefined) assertName(`${where}.groupColumn`, schema.groupColumn);
  if (schema.time !== undefined) {
    if (schema.time == null || typeof schema.time !== "object") {
      throw new ConfigError(
        `${where}.time must be { column, name?, unit? }, received ${formatValue(schema.time)}`,
      );
    }
    assertKnownKeys(`${where}.time`, schema.time, TIME_KEYS);
    assertName(`${where}.time.column`, schema.time.column);
    if (schema.time.name !== undefined) assertName(`${where}.time.name`, schema.time.name);
    if (schema.time.unit !== undefined) assertOneOf(`${where}.time.unit`, schema.time.unit, ["s", "ms"]);
    const timeName = schema.time.name ?? "timestamp";
    if (names.has(timeName)) {
      throw new ConfigError(
        `${where}.time.name "${timeName}" collides with a feature name; set time.name to another name`,
      );
    }
  }
  if (schema.joins !== undefined) {
    if (!Array.isArray(schema.joins))
      throw new ConfigError(`${where}.joins must be an array, received ${formatValue(schema.joins)}`);
    const joined = new Set<string>();
    schema.joins.forEach((join, index) => {
      const at = `${where}.joins[${index}]`;
      if (join == null || typeof join !== "object")
        throw new ConfigError(`${at} must be an object, received ${formatValue(join)}`);
      assertKnownKeys(at, join, JOIN_KEYS);
      resolveSource(join.source, `${at}.source`);
      assertName(`${at}.key`, join.key);
      assertName(`${at}.on`, join.on);
      if (!Array.isArray(join.columns) || join.columns.length === 0) {
        throw new ConfigError(
          `${at}.columns must be a non-empty list of column names, received ${formatValue(join.columns)}`,
        );
      }
      for (const column of join.columns) {
        assertName(`${at}.columns[]`, column);
        if (joined.has(column))
          throw new ConfigError(`${at}.columns: column "${column}" is brought by two joins`);
        joined.add(column);
      }
    });
  }
  return schema;
}

function validateDomain(domain: DomainSchema, where: string): void {
  if (domain == null || typeof domain !== "object") {
    throw new ConfigError(
      `${where} must be { column, mapping? | numDomains? }, received ${formatValue(domain)}`,
    );
  }
  assertKnownKeys(where, domain, DOMAIN_KEYS);
  assertName(`${where}.column`, domain.column);
  if (domain.mapping !== undefined) {
    if (domain.mapping == null || typeof domain.mapping !== "object" || Array.isArray(domain.mapping)) {
      throw new ConfigError(
        `${where}.mapping must be an object { value: domainId }, received ${formatValue(domain.mapping)}`,
      );
    }
    const ids = Object.entries(domain.mapping).map(([value, id]) => {
      assertInteger(`${where}.mapping["${value}"]`, id, 0, 100_000);
      return id;
    });
    if (ids.length === 0) throw new ConfigError(`${where}.mapping must map at least one value`);
    const numDomains = Math.max(...ids) + 1;
    for (let id = 0; id < numDomains; id++) {
      if (!ids.includes(id)) {
        throw new ConfigError(
          `${where}.mapping must use every domain id 0..${numDomains - 1}; no value maps to ${id}`,
        );
      }
    }
    if (domain.numDomains !== undefined && domain.numDomains !== numDomains) {
      throw new ConfigError(
        `${where}.numDomains=${domain.numDomains} disagrees with the mapping, which uses ${numDomains} domains`,
      );
    }
  } else {
    assertInteger(`${where}.numDomains (required without mapping)`, domain.numDomains, 1, 100_000);
  }
  if (domain.names !== undefined) {
    const count = numDomainsOf(domain);
    if (
      !Array.isArray(domain.names) ||
      domain.names.length !== count ||
      domain.names.some((name) => typeof name !== "string")
    ) {
      throw new ConfigError(
        `${where}.names must list ${count} domain names, received ${formatValue(domain.names)}`,
      );
    }
  }
}

/** Number of domains a domain schema declares. */
export function numDomainsOf(domain: DomainSchema): number {
  if (domain.mapping) return Math.max(...Object.values(domain.mapping)) + 1;
  return domain.numDomains!;
}

/** Domain names: declared, else the mapped raw values joined by "|", else `domain_<id>`. */
export function domainNamesOf(domain: DomainSchema): string[] {
  if (domain.names) return [...domain.names];
  const count = numDomainsOf(domain);
  if (!domain.mapping) return Array.from({ length: count }, (_, id) => `domain_${id}`);
  const values: string[][] = Array.from({ length: count }, () => []);
  for (const [value, id] of Object.entries(domain.mapping)) values[id]!.push(value);
  return values.map((list) => list.join("|"));
}

/** Parses and validates a schema given as JSON text or an already parsed object. */
export function parseSchema(json: string | object, where = "schema"): DataSchema {
  let value: unknown = json;
  if (typeof json === "string") {
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new ConfigError(`${where} is not valid JSON (${(error as Error).message})`, { cause: error });
    }
  }
  return validateSchema(value as DataSchema, where);
}

/**
 * Reads a JSON schema file. Relative paths in join sources are resolved against the file's directory.
 * @example const schema = await loadSchemaFile("data/schema.json");
 */
export async function loadSchemaFile(path: string): Promise<DataSchema> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "does not exist"
        : code === "EISDIR"
          ? "is a directory"
          : `cannot be read (${code})`;
    throw new DataError(`schema file "${path}" ${reason}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DataError(`schema file "${path}" is not valid JSON (${(error as Error).message})`, {
      cause: error,
    });
  }
  const directory = dirname(path);
  const schema = value as DataSchema;
  if (schema && Array.isArray(schema.joins)) {
    const absolute = (file: string) => (isAbsolute(file) ? file : join(directory, file));
    schema.joins = schema.joins.map((entry) => {
      const source = entry?.source;
      if (typeof source === "string") return { ...entry, source: absolute(source) };
      if (Array.isArray(source)) return { ...entry, source: source.map(absolute) };
      if (source && typeof source === "object" && "path" in source) {
        const path = source.path;
        return {
          ...entry,
          source: { ...source, path: typeof path === "string" ? absolute(path) : path.map(absolute) },
        };
      }
      return entry;
    });
  }
  return validateSchema(schema, `schema file "${path}"`);
}

/** The source column of a field or label (`column`, defaulting to the name). */
export function columnOf(entry: { name: string; column?: string }): string {
  return entry.column ?? entry.name;
}
