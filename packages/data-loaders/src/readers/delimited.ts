import { DataError } from "@mdrec/core";
import { Parser } from "csv-parse";
import { type DecodeOptions, decodeText, type TextEncoding } from "../io/decode.js";
import { type Compression, readFileBytes } from "../io/files.js";
import type { InvalidRowHandler, RowChunk } from "./types.js";

/** Options of {@link readDelimited}. */
export interface DelimitedOptions {
  /** Field delimiter, any length. Defaults to `","`. */
  delimiter?: string;
  /** Defaults to true. */
  header?: boolean;
  /** Column names (required without a header; with a header, the names it must have). */
  columns?: string[];
  /** Defaults to `"utf-8"`. */
  encoding?: TextEncoding;
  /** Defaults to `'"'`; false when fields are never quoted. */
  quote?: string | false;
  /** Defaults to `"auto"`. */
  compression?: Compression;
  /** A chunk is yielded once this many rows are pending (checked per 64 KiB of text). Defaults to 2048: small chunks die young in the garbage collector. */
  chunkRows?: number;
  /** Called for rows with the wrong number of columns. Defaults to throwing `DataError`. */
  onInvalidRow?: InvalidRowHandler;
}

/** Reason under which rows with the wrong number of columns are reported. */
export const WRONG_COLUMN_COUNT = "wrong column count";

const throwInvalid: InvalidRowHandler = ({ message }) => {
  throw new DataError(message);
};

/**
 * Streams a delimited text file as chunks of string rows, in constant memory. Lines are split on
 * the delimiter directly while the text holds no quote character; from the first quote on, the
 * rest of the file goes through `csv-parse` (quoted fields, embedded delimiters and newlines).
 * Blank lines are ignored. Errors name the file, the line and the column.
 *
 * @example
 * for await (const chunk of readDelimited("ratings.dat", { delimiter: "::", header: false, columns: ["user", "movie", "rating", "time"], quote: false })) {
 *   console.log(chunk.rows.length);
 * }
 */
export async function* readDelimited(path: string, options: DelimitedOptions = {}): AsyncGenerator<RowChunk> {
  const delimiter = options.delimiter ?? ",";
  const header = options.header ?? true;
  const quote = options.quote ?? '"';
  const chunkRows = options.chunkRows ?? 2048;
  const onInvalidRow = options.onInvalidRow ?? throwInvalid;
  if (typeof delimiter !== "string" || delimiter.length === 0 || delimiter.includes("\n")) {
    throw new DataError(
      `delimiter for "${path}" must be a non-empty string without newlines, received ${JSON.stringify(delimiter)}`,
    );
  }
  if (!header && options.columns === undefined) {
    throw new DataError(`file "${path}" is read without a header, so columns must name its columns`);
  }
  let columns: string[] | undefined = header ? undefined : [...options.columns!];
  let expected = columns?.length ?? 0;
  const decodeOptions: DecodeOptions = {
    file: path,
    encoding: options.encoding ?? "utf-8",
    describeColumn: (linePrefix) => {
      const index = linePrefix.split(delimiter).length - 1;
      const name = columns?.[index];
      return `column ${index + 1}${name !== undefined ? ` ("${name}")` : ""}`;
    },
  };

  let rows: unknown[][] = [];
  let lines: number[] = [];
  let sawData = false;
  let dataLines = 0;
  const accept = (fields: string[], line: number) => {
    sawData = true;
    if (columns === undefined) {
      columns = checkHeader(fields, path, line, options.columns);
      expected = columns.length;
      return;
    }
    dataLines++;
    if (fields.length !== expected) {
      onInvalidRow({
        reason: WRONG_COLUMN_COUNT,
        file: path,
        line,
        message: `file "${path}", line ${line}: expected ${expected} columns (${columns.join(", ")}), found ${fields.length}${fields.length > expected && fields.length <= expected * 2 ? ` (a delimiter "${delimiter}" inside an unquoted field?)` : ""}`,
      });
      return;
    }
    rows.push(fields);
    lines.push(line);
  };
  const flush = (): RowChunk => {
    const chunk: RowChunk = { file: path, columns: columns!, rows, lines, position: "line" };
    rows = [];
    lines = [];
    return chunk;
  };

  let lineNumber = 0; // lines fully consumed by the fast path
  let pending = "";
  let parser: QuotedParser | undefined;
  for await (const text of decodeText(
    readFileBytes(path, { compression: options.compression }),
    decodeOptions,
  )) {
    if (parser) {
      parser.write(text);
    } else {
      const block = pending + text;
      const lastNewline = block.lastIndexOf("\n");
      if (lastNewline < 0) {
        pending = block;
        continue;
      }
      const complete = block.slice(0, lastNewline + 1);
      pending = block.slice(lastNewline + 1);
      const quoteAt = quote === false ? -1 : complete.indexOf(quote);
      if (quoteAt < 0) {
        lineNumber = splitLines(complete, delimiter, lineNumber, accept);
      } else {
        // Lines before the one holding the first quote stay on the fast path.
        const lineStart = complete.lastIndexOf("\n", quoteAt) + 1;
        lineNumber = splitLines(complete.slice(0, lineStart), delimiter, lineNumber, accept);
        parser = new QuotedParser(path, delimiter, quote as string, lineNumber, accept);
        parser.write(complete.slice(lineStart) + pending);
        pending = "";
      }
    }
    if (rows.length >= chunkRows) yield flush();
  }
  if (parser) {
    parser.end();
  } else if (pending.length > 0) {
    splitLines(`${pending}\n`, delimiter, lineNumber, accept);
  }
  if (!sawData) throw new DataError(`file "${path}" is empty`);
  if (dataLines === 0 && header) {
    throw new DataError(`file "${path}" has a header (${columns!.join(", ")}) but no data rows`);
  }
  if (rows.length > 0) yield flush();
}

/**
 * Splits complete lines (text ending in "\n") on the delimiter; returns the new line count. Fields
 * are cut from the block directly (no per-line substring first), the hot loop of every load.
 */
function splitLines(
  text: string,
  delimiter: string,
  lineNumber: number,
  accept: (fields: string[], line: number) => void,
): number {
  let start = 0;
  let line = lineNumber;
  const length = text.length;
  const delimiterLength = delimiter.length;
  while (start < length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = length;
    line++;
    let stop = end;
    if (stop > start && text.charCodeAt(stop - 1) === 13) stop--;
    if (stop > start) {
      const fields: string[] = [];
      let position = start;
      for (;;) {
        const next = text.indexOf(delimiter, position);
        if (next < 0 || next >= stop) {
          fields.push(text.slice(position, stop));
          break;
        }
        fields.push(text.slice(position, next));
        position = next + delimiterLength;
      }
      accept(fields, line);
    }
    start = end + 1;
  }
  return line;
}

/** csv-parse fed incrementally; records reach `accept` synchronously with their line numbers. */
class QuotedParser {
  private readonly parser: Parser;
  private lastRecordLine: number;

  constructor(
    private readonly file: string,
    delimiter: string,
    quote: string,
    private readonly lineOffset: number,
    accept: (fields: string[], line: number) => void,
  ) {
    this.lastRecordLine = lineOffset;
    this.parser = new Parser({
      delimiter,
      quote,
      relax_column_count: true,
      skip_empty_lines: true,
      on_record: (record: string[], context: { lines: number }) => {
        const line = lineOffset + context.lines;
        accept(record, line);
        this.lastRecordLine = line;
        return undefined;
      },
    });
    // Errors are read from `errored` right after each synchronous write.
    this.parser.on("error", () => {});
  }

  write(text: string): void {
    this.parser.write(text);
    this.check();
  }

  end(): void {
    this.parser.end();
    this.check();
  }

  private check(): void {
    const error = this.parser.errored as (Error & { code?: string; lines?: number }) | null;
    if (!error) return;
    if (error instanceof DataError) throw error;
    const startLine = this.lastRecordLine + 1;
    const line = error.lines !== undefined ? this.lineOffset + error.lines : startLine;
    if (error.code === "CSV_QUOTE_NOT_CLOSED") {
      throw new DataError(
        `file "${this.file}", line ${startLine}: unterminated quote, the quoted field opened in the row starting on line ${startLine} is still open at the end of the file (line ${line})`,
        { cause: error },
      );
    }
    throw new DataError(`file "${this.file}", line ${line}: ${error.message}`, { cause: error });
  }
}

function checkHeader(fields: string[], file: string, line: number, expected: string[] | undefined): string[] {
  const names = fields.map((field) => field.trim());
  const seen = new Map<string, number>();
  names.forEach((name, index) => {
    if (name.length === 0)
      throw new DataError(`file "${file}", line ${line}: header column ${index + 1} has an empty name`);
    const previous = seen.get(name);
    if (previous !== undefined) {
      throw new DataError(
        `file "${file}", line ${line}: header names column "${name}" twice (columns ${previous + 1} and ${index + 1})`,
      );
    }
    seen.set(name, index);
  });
  if (
    expected !== undefined &&
    (expected.length !== names.length || expected.some((name, index) => names[index] !== name))
  ) {
    throw new DataError(
      `file "${file}", line ${line}: header (${names.join(", ")}) does not match the declared columns (${expected.join(", ")})`,
    );
  }
  return names;
}
