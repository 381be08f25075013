import { DataError, nearestKey } from "@mdrec/core";
import { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } from "hyparquet";
import { assertReadableFile } from "../io/files.js";
import type { RowChunk } from "./types.js";

/** Options of {@link readParquet}. */
export interface ParquetOptions {
  /** Columns to read, in order. Defaults to every top-level column. */
  columns?: string[];
  /** Columns that must hold numbers (INT32, INT64, FLOAT, DOUBLE, BOOLEAN); checked before reading. */
  numericColumns?: string[];
  /** Rows per yielded chunk (row groups are read in slices of this size). Defaults to 65536. */
  chunkRows?: number;
}

const NUMERIC_TYPES = new Set(["INT32", "INT64", "FLOAT", "DOUBLE", "BOOLEAN"]);

/**
 * Streams a Parquet file (pure JS, `hyparquet`) as chunks of rows, one row-group slice at a time,
 * so memory stays bounded by `chunkRows`. Values are numbers, bigints (INT64), strings, booleans
 * or null. A missing column or a column of the wrong type raises `DataError` before any row is read.
 *
 * @example for await (const chunk of readParquet("part-0.parquet", { columns: ["user", "click"] })) { ... }
 */
export async function* readParquet(path: string, options: ParquetOptions = {}): AsyncGenerator<RowChunk> {
  await assertReadableFile(path);
  const chunkRows = options.chunkRows ?? 65_536;
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw new DataError(
      `file "${path}" is not a readable Parquet file or is truncated (${(error as Error).message})`,
      {
        cause: error,
      },
    );
  }
  const schema = parquetSchema(metadata);
  const available = schema.children.map((child) => child.element.name);
  const columns = options.columns ? [...options.columns] : available;
  for (const column of columns) {
    if (!available.includes(column)) {
      const suggestion = nearestKey(column, available);
      throw new DataError(
        `Parquet file "${path}" has no column "${column}"${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; columns: ${available.join(", ")}`,
      );
    }
  }
  for (const column of options.numericColumns ?? []) {
    const element = schema.children.find((child) => child.element.name === column)?.element;
    if (!element) continue;
    const logical = element.logical_type?.type ?? element.converted_type;
    const isString = logical === "STRING" || logical === "UTF8" || logical === "ENUM" || logical === "JSON";
    if (element.type === undefined || !NUMERIC_TYPES.has(element.type) || isString) {
      throw new DataError(
        `Parquet file "${path}", column "${column}": expected a numeric column, received type ${element.type ?? "group"}${logical ? ` (${logical})` : ""}`,
      );
    }
  }
  const total = Number(metadata.num_rows);
  if (total === 0) throw new DataError(`Parquet file "${path}" has no rows`);
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupRows = Number(group.num_rows);
    for (let start = groupStart; start < groupStart + groupRows; start += chunkRows) {
      const end = Math.min(start + chunkRows, groupStart + groupRows);
      let rows: unknown[][] = [];
      try {
        await parquetRead({
          file,
          metadata,
          columns,
          rowStart: start,
          rowEnd: end,
          onComplete: (result: unknown[][]) => {
            rows = result;
          },
        });
      } catch (error) {
        throw new DataError(
          `Parquet file "${path}", rows ${start + 1}-${end}: cannot be decoded, the file is truncated or corrupt (${(error as Error).message})`,
          { cause: error },
        );
      }
      const lines = new Array<number>(rows.length);
      for (let index = 0; index < rows.length; index++) lines[index] = start + index + 1;
      yield { file: path, columns, rows, lines, position: "row" };
    }
    groupStart += groupRows;
  }
}
