import type { TextEncoding } from "../io/decode.js";
import type { Compression } from "../io/files.js";

/** File formats the readers understand. */
export type FileFormat = "delimited" | "jsonl" | "parquet";

/**
 * One or more files of the same layout (shards are read in the given order).
 *
 * Defaults by extension (after an optional `.gz`): `.csv` -> delimiter `","`, `.tsv`/`.tab` ->
 * `"\t"`, `.jsonl`/`.ndjson` -> JSON lines, `.parquet` -> Parquet; any other extension is
 * delimited with `","` unless `delimiter` is given.
 */
export interface FileSource {
  /** A file path or a list of shard paths. */
  path: string | string[];
  /** Defaults to the extension's format, else `"delimited"`. */
  format?: FileFormat;
  /** Field delimiter of delimited text, any length (e.g. `"::"`). */
  delimiter?: string;
  /** Whether the first line names the columns. Defaults to true (delimited text). */
  header?: boolean;
  /** Column names when `header` is false; with a header, the names the header must match. */
  columns?: string[];
  /** Text encoding. Defaults to `"utf-8"` (with fatal errors on undecodable bytes). */
  encoding?: TextEncoding;
  /** Quote character, or false when fields are never quoted (MovieLens). Defaults to `'"'`. */
  quote?: string | false;
  /** Defaults to `"auto"`: gunzip when the name ends in `.gz`. */
  compression?: Compression;
}

/** What readers and loaders accept: a path, a list of shard paths or a {@link FileSource}. */
export type DataSource = string | string[] | FileSource;

/** A block of rows read from one file, values in `columns` order. */
export interface RowChunk {
  file: string;
  columns: string[];
  /** Row values: strings for delimited text, JSON values for JSON lines, typed values for Parquet. */
  rows: unknown[][];
  /** 1-based line (text) or row (Parquet) number of each row, for error messages. */
  lines: number[];
  /** What `lines` counts. */
  position: "line" | "row";
}

/**
 * Receives a row that cannot be read. Throwing aborts the read (`onInvalidRow: "error"`);
 * returning drops the row, which the caller counts and reports (`"skip"`).
 */
export type InvalidRowHandler = (problem: {
  reason: string;
  file: string;
  line: number;
  message: string;
}) => void;
