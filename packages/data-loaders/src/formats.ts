import { join } from "node:path";
import { assertKnownKeys, assertNumber, assertOneOf, ConfigError, DataError, formatValue } from "@mdrec/core";
import { type LoadOptions, type LoadResult, loadDatasetWithTables } from "./load.js";
import { readRows } from "./readers/rows.js";
import type { FileSource } from "./readers/types.js";
import type { DataSchema, FieldSchema } from "./schema.js";
import { InvalidRowCollector, type JoinTable, type OnInvalidRow } from "./table.js";

/** Options shared by the real data-set loaders. */
export interface FormatLoadOptions extends LoadOptions {
  /** Vocabulary `minCount` of every categorical field. Defaults to 1. */
  minCount?: number;
}

const BASE_KEYS = ["encoders", "split", "onInvalidRow", "minCount"];

function pickLoadOptions(options: FormatLoadOptions, defaultInvalid: OnInvalidRow = "error"): LoadOptions {
  const result: LoadOptions = { onInvalidRow: options.onInvalidRow ?? defaultInvalid };
  if (options.encoders) result.encoders = options.encoders;
  if (options.split) result.split = options.split;
  return result;
}

function vocabulary(
  name: string,
  column: string,
  minCount: number | undefined,
  extra: Partial<FieldSchema> = {},
): FieldSchema {
  return { kind: "categorical", name, column, ...(minCount ? { minCount } : {}), ...extra } as FieldSchema;
}

// ---------------------------------------------------------------------------------------------
// MovieLens-1M

/** Options of {@link loadMovieLens1M}. */
export interface MovieLens1MOptions extends FormatLoadOptions {
  /** A rating >= this is a positive label. Defaults to 4. */
  positiveRating?: number;
  /** User attribute that defines the domain. Defaults to `"age"`. */
  domainBy?: "age" | "gender" | "occupation";
  /** Raw attribute value -> domain id; defaults per `domainBy` (age groups {1,18}, {25}, {35,45,50,56}). */
  domainMapping?: Record<string, number>;
  /** Domain names (defaults: `"under-25"`, `"25-34"`, `"35+"` for the default age groups). */
  domainNames?: string[];
  /** File names inside the directory. Defaults to `ratings.dat`, `users.dat`, `movies.dat`. */
  files?: { ratings?: string; users?: string; movies?: string };
}

const AGE_GROUPS: Record<string, number> = { "1": 0, "18": 0, "25": 1, "35": 2, "45": 2, "50": 2, "56": 2 };

/**
 * Schema and sources of MovieLens-1M (`UserID::MovieID::Rating::Timestamp` ratings joined with
 * `UserID::Gender::Age::Occupation::Zip-code` users and `MovieID::Title::Genres` movies, all
 * `::`-delimited latin1 without header or quoting). Features: `user_id`, `movie_id`, `gender`,
 * `age`, `occupation`, `zip`, `genre` (first listed genre); label `rating >= positiveRating`
 * (ratings outside 1-5 are invalid); domain from `domainBy`; `groupIds` = users; `timestamp` kept.
 */
export function movieLens1MSchema(
  directory: string,
  options: MovieLens1MOptions = {},
): { source: FileSource; schema: DataSchema } {
  const positiveRating = options.positiveRating ?? 4;
  assertNumber("positiveRating", positiveRating, { min: 1, max: 5 });
  const domainBy = options.domainBy ?? "age";
  assertOneOf("domainBy", domainBy, ["age", "gender", "occupation"]);
  const files = { ratings: "ratings.dat", users: "users.dat", movies: "movies.dat", ...options.files };
  const text = { delimiter: "::", header: false, encoding: "latin1", quote: false } as const;
  const defaultMapping =
    domainBy === "age"
      ? AGE_GROUPS
      : domainBy === "gender"
        ? { F: 0, M: 1 }
        : Object.fromEntries(Array.from({ length: 21 }, (_, occupation) => [String(occupation), occupation]));
  const mapping = options.domainMapping ?? defaultMapping;
  const names =
    options.domainNames ??
    (options.domainMapping === undefined && domainBy === "age" ? ["under-25", "25-34", "35+"] : undefined);
  const minCount = options.minCount;
  const schema: DataSchema = {
    features: [
      vocabulary("user_id", "UserID", minCount),
      vocabulary("movie_id", "MovieID", minCount),
      vocabulary("gender", "Gender", undefined),
      vocabulary("age", "Age", undefined),
      vocabulary("occupation", "Occupation", undefined),
      vocabulary("zip", "Zip-code", minCount),
      vocabulary("genre", "Genres", undefined, { valueSeparator: "|" }),
    ],
    domain: {
      column: domainBy === "age" ? "Age" : domainBy === "gender" ? "Gender" : "Occupation",
      mapping,
      ...(names ? { names } : {}),
    },
    labels: [{ name: "click", column: "Rating", rule: { op: ">=", value: positiveRating }, range: [1, 5] }],
    groupColumn: "UserID",
    time: { column: "Timestamp", name: "timestamp", unit: "s" },
    joins: [
      {
        source: {
          path: join(directory, files.users),
          columns: ["UserID", "Gender", "Age", "Occupation", "Zip-code"],
          ...text,
        },
        key: "UserID",
        on: "UserID",
        columns: ["Gender", "Age", "Occupation", "Zip-code"],
      },
      {
        source: { path: join(directory, files.movies), columns: ["MovieID", "Title", "Genres"], ...text },
        key: "MovieID",
        on: "MovieID",
        columns: ["Genres"],
      },
    ],
  };
  const source: FileSource = {
    path: join(directory, files.ratings),
    columns: ["UserID", "MovieID", "Rating", "Timestamp"],
    ...text,
  };
  return { source, schema };
}

/**
 * Loads MovieLens-1M from a directory holding `ratings.dat`, `users.dat` and `movies.dat` (the
 * files are not shipped: download them from GroupLens). See {@link movieLens1MSchema}.
 *
 * @example
 * const { dataset, splits } = await loadMovieLens1M("data/ml-1m", { split: { seed: 1 } });
 */
export async function loadMovieLens1M(
  directory: string,
  options: MovieLens1MOptions = {},
): Promise<LoadResult> {
  assertKnownKeys("loadMovieLens1M options", options, [
    ...BASE_KEYS,
    "positiveRating",
    "domainBy",
    "domainMapping",
    "domainNames",
    "files",
  ]);
  const { source, schema } = movieLens1MSchema(directory, options);
  return loadDatasetWithTables(source, schema, pickLoadOptions(options), []);
}

// ---------------------------------------------------------------------------------------------
// MovieLens-100K

/** Options of {@link loadMovieLens100K}. */
export interface MovieLens100KOptions extends FormatLoadOptions {
  /** A rating >= this is a positive label. Defaults to 4. */
  positiveRating?: number;
  /** Defaults to `"age"`: ages < 25, 25-34, >= 35 (the MovieLens-1M groups). */
  domainBy?: "age" | "gender";
}

const ML100K_GENRES = [
  "unknown",
  "Action",
  "Adventure",
  "Animation",
  "Children's",
  "Comedy",
  "Crime",
  "Documentary",
  "Drama",
  "Fantasy",
  "Film-Noir",
  "Horror",
  "Musical",
  "Mystery",
  "Romance",
  "Sci-Fi",
  "Thriller",
  "War",
  "Western",
];

/**
 * Loads MovieLens-100K from a directory holding `u.data` (tab-separated `user item rating
 * timestamp`), `u.user` (`id|age|gender|occupation|zip`) and `u.item` (`id|title|release
 * date|video release date|IMDb URL|` + 19 genre flags, latin1). Same features, label and domains
 * as {@link loadMovieLens1M}; the genre is the first flagged one.
 *
 * @example const { dataset } = await loadMovieLens100K("data/ml-100k");
 */
export async function loadMovieLens100K(
  directory: string,
  options: MovieLens100KOptions = {},
): Promise<LoadResult> {
  assertKnownKeys("loadMovieLens100K options", options, [...BASE_KEYS, "positiveRating", "domainBy"]);
  const positiveRating = options.positiveRating ?? 4;
  assertNumber("positiveRating", positiveRating, { min: 1, max: 5 });
  const domainBy = options.domainBy ?? "age";
  assertOneOf("domainBy", domainBy, ["age", "gender"]);
  const collector = new InvalidRowCollector(options.onInvalidRow ?? "error");
  const itemFile = join(directory, "u.item");
  const items = new Map<string, unknown[]>();
  const itemColumns = ["item", "title", "release_date", "video_release_date", "url", ...ML100K_GENRES];
  for await (const chunk of readRows(
    { path: itemFile, delimiter: "|", header: false, columns: itemColumns, encoding: "latin1", quote: false },
    { onInvalidRow: collector.handle },
  )) {
    for (const row of chunk.rows as string[][]) {
      const flag = row.slice(5).indexOf("1");
      items.set(row[0]!, [flag >= 0 ? ML100K_GENRES[flag]! : "none"]);
    }
  }
  const genres: JoinTable = { on: "item", columns: ["genre"], file: itemFile, rows: items };
  const ageMapping: Record<string, number> = {};
  for (let age = 0; age <= 120; age++) ageMapping[String(age)] = age < 25 ? 0 : age < 35 ? 1 : 2;
  const minCount = options.minCount;
  const schema: DataSchema = {
    features: [
      vocabulary("user_id", "user", minCount),
      vocabulary("movie_id", "item", minCount),
      vocabulary("gender", "gender", undefined),
      vocabulary("age", "age", undefined),
      vocabulary("occupation", "occupation", undefined),
      vocabulary("zip", "zip", minCount),
      vocabulary("genre", "genre", undefined),
    ],
    domain:
      domainBy === "age"
        ? { column: "age", mapping: ageMapping, names: ["under-25", "25-34", "35+"] }
        : { column: "gender", mapping: { F: 0, M: 1 } },
    labels: [{ name: "click", column: "rating", rule: { op: ">=", value: positiveRating }, range: [1, 5] }],
    groupColumn: "user",
    time: { column: "timestamp", name: "timestamp", unit: "s" },
    joins: [
      {
        source: {
          path: join(directory, "u.user"),
          delimiter: "|",
          header: false,
          columns: ["user", "age", "gender", "occupation", "zip"],
          encoding: "latin1",
          quote: false,
        },
        key: "user",
        on: "user",
        columns: ["age", "gender", "occupation", "zip"],
      },
    ],
  };
  const source: FileSource = {
    path: join(directory, "u.data"),
    delimiter: "\t",
    header: false,
    columns: ["user", "item", "rating", "timestamp"],
    quote: false,
  };
  return loadDatasetWithTables(source, schema, pickLoadOptions(options), [genres]);
}

// ---------------------------------------------------------------------------------------------
// KuaiRand

/** The columns of the public KuaiRand interaction logs (`log_standard_*.csv`, `log_random_*.csv`). */
export const KUAIRAND_LOG_COLUMNS = [
  "user_id",
  "video_id",
  "date",
  "hourmin",
  "time_ms",
  "is_click",
  "is_like",
  "is_follow",
  "is_comment",
  "is_forward",
  "is_hate",
  "long_view",
  "play_time_ms",
  "duration_ms",
  "profile_stay_time",
  "comment_stay_time",
  "is_profile_enter",
  "is_rand",
  "tab",
] as const;

/** KuaiRand tabs kept as domains, in domain order: tab 1 -> domain 0, 0 -> 1, 4 -> 2, 2 -> 3, 6 -> 4. */
export const KUAIRAND_TABS = [1, 0, 4, 2, 6] as const;

/** Options of {@link loadKuaiRand}. */
export interface KuaiRandOptions extends FormatLoadOptions {
  /** Binary log columns used as tasks. Defaults to `["is_click"]`. */
  tasks?: string[];
  /** Optional `user_features_*.csv` joined on `user_id`. */
  userFeatures?: string;
  /** Columns of `userFeatures` used as categorical fields. Defaults to the `*_range` and activity columns. */
  userFeatureColumns?: string[];
}

const KUAIRAND_USER_COLUMNS = [
  "user_active_degree",
  "is_lowactive_period",
  "is_live_streamer",
  "is_video_author",
  "follow_user_num_range",
  "fans_user_num_range",
  "friend_user_num_range",
  "register_days_range",
];

/**
 * Loads KuaiRand interaction logs (CSV with header, see {@link KUAIRAND_LOG_COLUMNS}; read:
 * `user_id`, `video_id`, `hourmin`, `time_ms`, `tab` and the task columns). Domain = `tab`
 * ({@link KUAIRAND_TABS}); rows of other tabs are skipped and counted in `report.skipped` under
 * "unknown domain value" (the default `onInvalidRow` here is `"skip"`). Features: `user_id`,
 * `video_id`, `hourmin`, plus user features when `userFeatures` is given; `groupIds` = users;
 * `timestamp` from `time_ms`.
 *
 * @example const { dataset, report } = await loadKuaiRand(["log_standard_4_08_to_4_21_1k.csv"]);
 */
export async function loadKuaiRand(
  files: string | string[],
  options: KuaiRandOptions = {},
): Promise<LoadResult> {
  assertKnownKeys("loadKuaiRand options", options, [
    ...BASE_KEYS,
    "tasks",
    "userFeatures",
    "userFeatureColumns",
  ]);
  const tasks = options.tasks ?? ["is_click"];
  if (!Array.isArray(tasks) || tasks.length === 0)
    throw new ConfigError(`tasks must be a non-empty list of label columns, received ${formatValue(tasks)}`);
  const minCount = options.minCount;
  const userColumns = options.userFeatures ? (options.userFeatureColumns ?? KUAIRAND_USER_COLUMNS) : [];
  const schema: DataSchema = {
    features: [
      vocabulary("user_id", "user_id", minCount),
      vocabulary("video_id", "video_id", minCount),
      vocabulary("hourmin", "hourmin", undefined),
      ...userColumns.map((column) => vocabulary(column, column, undefined)),
    ],
    domain: {
      column: "tab",
      mapping: Object.fromEntries(KUAIRAND_TABS.map((tab, domain) => [String(tab), domain])),
      names: KUAIRAND_TABS.map((tab) => `tab_${tab}`),
    },
    labels: tasks.map((task) => ({ name: task, column: task })),
    groupColumn: "user_id",
    time: { column: "time_ms", name: "timestamp", unit: "ms" },
    ...(options.userFeatures
      ? { joins: [{ source: options.userFeatures, key: "user_id", on: "user_id", columns: userColumns }] }
      : {}),
  };
  return loadDatasetWithTables({ path: files }, schema, pickLoadOptions(options, "skip"), []);
}

// ---------------------------------------------------------------------------------------------
// Ali-CCP

/** Categorical columns of the common Ali-CCP CSV form (field ids of the original feature groups). */
export const ALI_CCP_CATEGORICAL = [
  "101",
  "121",
  "122",
  "124",
  "125",
  "126",
  "127",
  "128",
  "129",
  "205",
  "206",
  "207",
  "210",
  "216",
  "508",
  "509",
  "702",
  "853",
  "109_14",
  "110_14",
  "127_14",
  "150_14",
];
/** Numeric (value) columns of the common Ali-CCP CSV form. */
export const ALI_CCP_NUMERIC = ["D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"];

/** Options of {@link loadAliCcp}. */
export interface AliCcpOptions extends FormatLoadOptions {
  /** Label columns used as tasks. Defaults to `["click"]` (add `"purchase"` for CVR). */
  tasks?: string[];
  /** Categorical columns. Defaults to {@link ALI_CCP_CATEGORICAL}. */
  categoricalColumns?: string[];
  /** Numeric columns, standardised. Defaults to {@link ALI_CCP_NUMERIC}; `[]` for none. */
  numericColumns?: string[];
}

/**
 * Loads Ali-CCP in its common preprocessed CSV form (header `click,purchase,101,121,...,301,...`,
 * one column per feature field, as used by public multi-domain benchmarks). Domain = field `301`
 * (values 1, 2, 3 -> domains 0, 1, 2); label `click`; `groupIds` = field `101` (user id).
 *
 * @example const { dataset } = await loadAliCcp(["ali_ccp_train.csv", "ali_ccp_val.csv"]);
 */
export async function loadAliCcp(files: string | string[], options: AliCcpOptions = {}): Promise<LoadResult> {
  assertKnownKeys("loadAliCcp options", options, [
    ...BASE_KEYS,
    "tasks",
    "categoricalColumns",
    "numericColumns",
  ]);
  const tasks = options.tasks ?? ["click"];
  if (!Array.isArray(tasks) || tasks.length === 0)
    throw new ConfigError(`tasks must be a non-empty list of label columns, received ${formatValue(tasks)}`);
  const minCount = options.minCount;
  const categorical = options.categoricalColumns ?? ALI_CCP_CATEGORICAL;
  const numeric = options.numericColumns ?? ALI_CCP_NUMERIC;
  if (categorical.includes("301"))
    throw new DataError('field "301" is the domain; remove it from categoricalColumns');
  const schema: DataSchema = {
    features: [
      ...categorical.map((column) => vocabulary(`f${column}`, column, minCount)),
      ...numeric.map((column): FieldSchema => ({ kind: "numeric", name: column, column })),
    ],
    domain: { column: "301", mapping: { "1": 0, "2": 1, "3": 2 }, names: ["301=1", "301=2", "301=3"] },
    labels: tasks.map((task) => ({ name: task, column: task })),
    ...(categorical.includes("101") ? { groupColumn: "101" } : {}),
  };
  return loadDatasetWithTables({ path: files }, schema, pickLoadOptions(options), []);
}
