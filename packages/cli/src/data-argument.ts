import { nearestKey } from "@mdrec/core";
import { UsageError } from "./errors.js";

/** Size presets of the embedded synthetic data set. */
export const SYNTHETIC_PRESET_NAMES = ["tiny", "small", "default"] as const;
/** One of {@link SYNTHETIC_PRESET_NAMES}. */
export type SyntheticPresetName = (typeof SYNTHETIC_PRESET_NAMES)[number];

/** Kinds of `--data` argument that name a file or directory after the colon. */
export const FILE_DATA_KINDS = [
  "movielens-1m",
  "movielens-100k",
  "kuairand",
  "ali-ccp",
  "csv",
  "parquet",
] as const;
/** One of {@link FILE_DATA_KINDS}. */
export type FileDataKind = (typeof FILE_DATA_KINDS)[number];

/** Every `--data` kind. */
export const DATA_KINDS = ["synthetic", ...FILE_DATA_KINDS] as const;

/** A parsed `--data` argument. */
export type DataSource =
  | { kind: "synthetic"; preset: SyntheticPresetName }
  | { kind: Exclude<FileDataKind, "csv" | "parquet">; path: string }
  | { kind: "csv" | "parquet"; path: string; schema: string };

const PATH_NOUN: Record<FileDataKind, string> = {
  "movielens-1m": "directory holding users.dat, movies.dat and ratings.dat",
  "movielens-100k": "directory holding u.data, u.user and u.item",
  kuairand: "file",
  "ali-ccp": "file",
  csv: "file",
  parquet: "file",
};

/**
 * Parses a `--data` argument: `synthetic`, `synthetic:<tiny|small|default>`,
 * `movielens-1m:<dir>`, `movielens-100k:<dir>`, `kuairand:<file>`, `ali-ccp:<file>`,
 * `csv:<file>` or `parquet:<file>` (the last two need `schema`). Throws {@link UsageError}
 * naming the argument and the value received.
 *
 * @example parseDataArgument("csv:clicks.csv", "schema.json") // { kind: "csv", path: "clicks.csv", schema: "schema.json" }
 */
export function parseDataArgument(argument: string, schema?: string): DataSource {
  const colon = argument.indexOf(":");
  const kind = colon === -1 ? argument : argument.slice(0, colon);
  const rest = colon === -1 ? undefined : argument.slice(colon + 1);
  if (kind === "synthetic") {
    if (rest === undefined || rest === "") return { kind: "synthetic", preset: "default" };
    if (!(SYNTHETIC_PRESET_NAMES as readonly string[]).includes(rest)) {
      const suggestion = nearestKey(rest, SYNTHETIC_PRESET_NAMES);
      throw new UsageError(
        `--data ${JSON.stringify(argument)}: unknown synthetic preset ${JSON.stringify(rest)}` +
          `${suggestion ? ` (did you mean "synthetic:${suggestion}"?)` : ""}; presets: ${SYNTHETIC_PRESET_NAMES.join(", ")}`,
      );
    }
    return { kind: "synthetic", preset: rest as SyntheticPresetName };
  }
  if (!(FILE_DATA_KINDS as readonly string[]).includes(kind)) {
    const suggestion = nearestKey(kind, DATA_KINDS);
    throw new UsageError(
      `--data ${JSON.stringify(argument)}: unknown data kind ${JSON.stringify(kind)}` +
        `${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; expected one of synthetic, ${FILE_DATA_KINDS.map((name) => `${name}:<path>`).join(", ")}`,
    );
  }
  const fileKind = kind as FileDataKind;
  if (rest === undefined || rest.trim() === "") {
    throw new UsageError(
      `--data ${JSON.stringify(argument)}: "${fileKind}:" must be followed by a path (the ${PATH_NOUN[fileKind]}), e.g. ${fileKind}:${fileKind.startsWith("movielens") ? "./ml-data" : "./data.csv"}`,
    );
  }
  if (fileKind === "csv" || fileKind === "parquet") {
    if (schema === undefined || schema.trim() === "") {
      throw new UsageError(
        `--data ${JSON.stringify(argument)} needs --schema <file> (or config key "schema") describing its columns`,
      );
    }
    return { kind: fileKind, path: rest, schema };
  }
  return { kind: fileKind, path: rest };
}

/** The canonical text of a data source, as written in results and reports. */
export function describeDataSource(source: DataSource): string {
  if (source.kind === "synthetic") return `synthetic:${source.preset}`;
  if (source.kind === "csv" || source.kind === "parquet")
    return `${source.kind}:${source.path} (schema ${source.schema})`;
  return `${source.kind}:${source.path}`;
}
