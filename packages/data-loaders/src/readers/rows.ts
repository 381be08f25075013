import { assertKnownKeys, assertOneOf, ConfigError, formatValue } from "@mdrec/core";
import { readDelimited } from "./delimited.js";
import { readJsonLines } from "./jsonl.js";
import { readParquet } from "./parquet.js";
import type { DataSource, FileFormat, FileSource, InvalidRowHandler, RowChunk } from "./types.js";

const FILE_SOURCE_KEYS = [
  "path",
  "format",
  "delimiter",
  "header",
  "columns",
  "encoding",
  "quote",
  "compression",
];

/** A {@link DataSource} with every file listed and format-specific defaults filled in. */
export interface ResolvedSource extends Omit<FileSource, "path"> {
  files: string[];
}

/** Normalises a path, a list of shard paths or a {@link FileSource}, validating its options. */
export function resolveSource(source: DataSource, where = "source"): ResolvedSource {
  const spec: FileSource = typeof source === "string" || Array.isArray(source) ? { path: source } : source;
  if (spec == null || typeof spec !== "object") {
    throw new ConfigError(
      `${where} must be a path, a list of paths or { path, ... }, received ${formatValue(source)}`,
    );
  }
  assertKnownKeys(where, spec, FILE_SOURCE_KEYS);
  const files = typeof spec.path === "string" ? [spec.path] : spec.path;
  if (
    !Array.isArray(files) ||
    files.length === 0 ||
    files.some((file) => typeof file !== "string" || file.length === 0)
  ) {
    throw new ConfigError(
      `${where}.path must be a non-empty path or list of paths, received ${formatValue(spec.path)}`,
    );
  }
  if (spec.format !== undefined)
    assertOneOf(`${where}.format`, spec.format, ["delimited", "jsonl", "parquet"]);
  if (spec.encoding !== undefined) assertOneOf(`${where}.encoding`, spec.encoding, ["utf-8", "latin1"]);
  if (spec.compression !== undefined)
    assertOneOf(`${where}.compression`, spec.compression, ["auto", "gzip", "none"]);
  if (spec.delimiter !== undefined && (typeof spec.delimiter !== "string" || spec.delimiter.length === 0)) {
    throw new ConfigError(
      `${where}.delimiter must be a non-empty string, received ${formatValue(spec.delimiter)}`,
    );
  }
  if (
    spec.quote !== undefined &&
    spec.quote !== false &&
    (typeof spec.quote !== "string" || spec.quote.length !== 1)
  ) {
    throw new ConfigError(
      `${where}.quote must be one character or false, received ${formatValue(spec.quote)}`,
    );
  }
  if (
    spec.columns !== undefined &&
    (!Array.isArray(spec.columns) || spec.columns.some((name) => typeof name !== "string"))
  ) {
    throw new ConfigError(
      `${where}.columns must be a list of column names, received ${formatValue(spec.columns)}`,
    );
  }
  if (
    spec.header === false &&
    spec.columns === undefined &&
    formatOf(files[0]!, spec.format) === "delimited"
  ) {
    throw new ConfigError(`${where}.columns must name the columns when header is false`);
  }
  const { path: _path, ...rest } = spec;
  return { ...rest, files: [...files] };
}

/** The format of `file`: the explicit one, else by extension (after `.gz`), else delimited. */
export function formatOf(file: string, format?: FileFormat): FileFormat {
  if (format) return format;
  const name = file.toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".parquet") || name.endsWith(".pq")) return "parquet";
  if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) return "jsonl";
  return "delimited";
}

function defaultDelimiter(file: string): string {
  const name = file.toLowerCase().replace(/\.gz$/, "");
  return name.endsWith(".tsv") || name.endsWith(".tab") ? "\t" : ",";
}

/** Options of {@link readRows}. */
export interface ReadRowsOptions {
  /** Columns to read from JSON lines and Parquet (delimited text always yields every column). */
  columns?: string[];
  /** Parquet columns that must hold numbers. */
  numericColumns?: string[];
  /** Rows per chunk. */
  chunkRows?: number;
  /** Receives unreadable rows; defaults to throwing `DataError`. */
  onInvalidRow?: InvalidRowHandler;
}

/**
 * Streams every file of a source, in order, as {@link RowChunk}s, choosing the reader by format.
 *
 * @example
 * for await (const chunk of readRows({ path: ["a.csv.gz", "b.csv.gz"] })) console.log(chunk.file, chunk.rows.length);
 */
export async function* readRows(source: DataSource, options: ReadRowsOptions = {}): AsyncGenerator<RowChunk> {
  const resolved = resolveSource(source);
  for (const file of resolved.files) {
    const format = formatOf(file, resolved.format);
    if (format === "parquet") {
      yield* readParquet(file, {
        ...(options.columns ? { columns: options.columns } : {}),
        ...(options.numericColumns ? { numericColumns: options.numericColumns } : {}),
        ...(options.chunkRows ? { chunkRows: options.chunkRows } : {}),
      });
    } else if (format === "jsonl") {
      yield* readJsonLines(file, {
        ...(options.columns ? { columns: options.columns } : {}),
        ...(resolved.encoding ? { encoding: resolved.encoding } : {}),
        ...(resolved.compression ? { compression: resolved.compression } : {}),
        ...(options.chunkRows ? { chunkRows: options.chunkRows } : {}),
        ...(options.onInvalidRow ? { onInvalidRow: options.onInvalidRow } : {}),
      });
    } else {
      yield* readDelimited(file, {
        delimiter: resolved.delimiter ?? defaultDelimiter(file),
        header: resolved.header ?? true,
        ...(resolved.columns ? { columns: resolved.columns } : {}),
        ...(resolved.encoding ? { encoding: resolved.encoding } : {}),
        ...(resolved.quote !== undefined ? { quote: resolved.quote } : {}),
        ...(resolved.compression ? { compression: resolved.compression } : {}),
        ...(options.chunkRows ? { chunkRows: options.chunkRows } : {}),
        ...(options.onInvalidRow ? { onInvalidRow: options.onInvalidRow } : {}),
      });
    }
  }
}
