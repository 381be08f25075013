import { DataError } from "@mdrec/core";
import { decodeText, type TextEncoding } from "../io/decode.js";
import { type Compression, readFileBytes } from "../io/files.js";
import type { InvalidRowHandler, RowChunk } from "./types.js";

/** Options of {@link readJsonLines}. */
export interface JsonLinesOptions {
  /** Keys to read, in order. Defaults to the keys of the first object. */
  columns?: string[];
  /** Defaults to `"utf-8"`. */
  encoding?: TextEncoding;
  /** Defaults to `"auto"`. */
  compression?: Compression;
  /** A chunk is yielded once this many rows are pending (checked per 64 KiB of text). Defaults to 2048: small chunks die young in the garbage collector. */
  chunkRows?: number;
  /** Called for lines that are not JSON objects or miss a key. Defaults to throwing `DataError`. */
  onInvalidRow?: InvalidRowHandler;
}

/** Reason under which unreadable JSON lines are reported. */
export const INVALID_JSON = "invalid JSON";
/** Reason under which rows without a needed column are reported. */
export const MISSING_COLUMN = "missing column";

const throwInvalid: InvalidRowHandler = ({ message }) => {
  throw new DataError(message);
};

/**
 * Streams a JSON-lines file (one JSON object per line) as chunks of rows holding the values of
 * `columns`, in constant memory. Blank lines are ignored.
 *
 * @example
 * for await (const chunk of readJsonLines("events.jsonl.gz", { columns: ["user", "item", "click"] })) { ... }
 */
export async function* readJsonLines(path: string, options: JsonLinesOptions = {}): AsyncGenerator<RowChunk> {
  const chunkRows = options.chunkRows ?? 2048;
  const onInvalidRow = options.onInvalidRow ?? throwInvalid;
  let columns = options.columns ? [...options.columns] : undefined;
  let rows: unknown[][] = [];
  let lines: number[] = [];
  let lineNumber = 0;
  let pending = "";
  let sawLine = false;
  const handle = (text: string, line: number) => {
    if (text.trim().length === 0) return;
    sawLine = true;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
      onInvalidRow({
        reason: INVALID_JSON,
        file: path,
        line,
        message: `file "${path}", line ${line}: invalid JSON (${(error as Error).message}), received ${JSON.stringify(shown)}`,
      });
      return;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      onInvalidRow({
        reason: INVALID_JSON,
        file: path,
        line,
        message: `file "${path}", line ${line}: expected a JSON object, received ${JSON.stringify(value)}`,
      });
      return;
    }
    const record = value as Record<string, unknown>;
    if (columns === undefined) columns = Object.keys(record);
    const row = new Array<unknown>(columns.length);
    for (let index = 0; index < columns.length; index++) {
      const key = columns[index]!;
      if (!(key in record)) {
        onInvalidRow({
          reason: MISSING_COLUMN,
          file: path,
          line,
          message: `file "${path}", line ${line}, column "${key}": the object has no key "${key}" (keys: ${Object.keys(record).join(", ")})`,
        });
        return;
      }
      row[index] = record[key];
    }
    rows.push(row);
    lines.push(line);
  };
  const flush = (): RowChunk => {
    const chunk: RowChunk = { file: path, columns: columns ?? [], rows, lines, position: "line" };
    rows = [];
    lines = [];
    return chunk;
  };
  const bytes = readFileBytes(path, { compression: options.compression });
  for await (const text of decodeText(bytes, { file: path, encoding: options.encoding ?? "utf-8" })) {
    const block = pending + text;
    let start = 0;
    let end = block.indexOf("\n", start);
    while (end >= 0) {
      lineNumber++;
      handle(block.slice(start, end), lineNumber);
      start = end + 1;
      end = block.indexOf("\n", start);
    }
    pending = block.slice(start);
    if (rows.length >= chunkRows) yield flush();
  }
  if (pending.length > 0) handle(pending, ++lineNumber);
  if (!sawLine) throw new DataError(`file "${path}" is empty`);
  if (rows.length > 0) yield flush();
}
