import { isUtf8 } from "node:buffer";
import { DataError } from "@mdrec/core";

/** Text encodings of delimited and JSON-lines files. `latin1` is ISO-8859-1 (MovieLens files). */
export type TextEncoding = "utf-8" | "latin1";

/** Options of {@link decodeText}. */
export interface DecodeOptions {
  /** File name used in error messages. */
  file: string;
  encoding: TextEncoding;
  /** Names the column an undecodable byte falls in, given the text of its line before it. */
  describeColumn?: (linePrefix: string, line: number) => string | undefined;
}

/**
 * Decodes a byte stream into text chunks. A UTF-8 byte-order mark is removed; undecodable bytes
 * under `utf-8`, a UTF-8 mark under `latin1` and UTF-16 marks raise `DataError` naming the file,
 * the line and (when `describeColumn` is given) the column.
 */
export async function* decodeText(
  bytes: AsyncIterable<Buffer>,
  options: DecodeOptions,
): AsyncGenerator<string> {
  const { file, encoding } = options;
  let head: Buffer | undefined = Buffer.alloc(0);
  let carry: Buffer | undefined;
  let completedLines = 0;
  let lineTail = "";
  const track = (text: string) => {
    let position = text.indexOf("\n");
    if (position < 0) {
      lineTail += text;
      return;
    }
    let last = position;
    while (position >= 0) {
      completedLines++;
      last = position;
      position = text.indexOf("\n", position + 1);
    }
    lineTail = text.slice(last + 1);
  };
  const fail = (data: Buffer): never => {
    const offset = firstInvalidUtf8(data);
    const prefix = data.subarray(0, offset).toString("utf8");
    const newlineCount = prefix.split("\n").length - 1;
    const line = completedLines + newlineCount + 1;
    const linePrefix = newlineCount === 0 ? lineTail + prefix : prefix.slice(prefix.lastIndexOf("\n") + 1);
    const column = options.describeColumn?.(linePrefix, line);
    const shown = [...data.subarray(offset, Math.min(offset + 4, data.length))]
      .map((byte) => `0x${byte.toString(16).toUpperCase().padStart(2, "0")}`)
      .join(" ");
    const atEnd = offset + 4 > data.length && isIncompleteTail(data.subarray(offset));
    throw new DataError(
      `file "${file}", line ${line}${column ? `, ${column}` : ""}: bytes ${shown} are not valid UTF-8${atEnd ? " (a character is cut off)" : ""} (declared encoding "utf-8"); if the file is latin1, pass encoding "latin1"`,
    );
  };
  for await (const input of bytes) {
    let chunk = input;
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < 4) continue;
      chunk = stripByteOrderMark(head, file, encoding);
      head = undefined;
    }
    yield* emit(chunk);
  }
  if (head !== undefined && head.length > 0) yield* emit(stripByteOrderMark(head, file, encoding));
  if (carry !== undefined && carry.length > 0) fail(carry);

  // Text before an undecodable byte is yielded first, so the consumer has read the header and the
  // earlier lines when the error (which names the column) is built.
  function* emit(chunk: Buffer): Generator<string> {
    let text: string;
    let invalid: Buffer | undefined;
    if (encoding === "latin1") {
      text = chunk.toString("latin1");
    } else {
      const data = carry ? Buffer.concat([carry, chunk]) : chunk;
      const cut = completeLength(data);
      const complete = data.subarray(0, cut);
      carry = cut < data.length ? Buffer.from(data.subarray(cut)) : undefined;
      if (isUtf8(complete)) {
        text = complete.toString("utf8");
      } else {
        const offset = firstInvalidUtf8(complete);
        const valid = complete.subarray(0, offset).toString("utf8");
        const lineStart = valid.lastIndexOf("\n") + 1;
        text = valid.slice(0, lineStart);
        invalid = Buffer.from(complete.subarray(Buffer.byteLength(text, "utf8")));
      }
    }
    if (text.length > 0) {
      track(text);
      yield text;
    }
    if (invalid) fail(invalid);
  }
}

function stripByteOrderMark(head: Buffer, file: string, encoding: TextEncoding): Buffer {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) {
    if (encoding === "latin1") {
      throw new DataError(
        `file "${file}", line 1: starts with a UTF-8 byte-order mark (0xEF 0xBB 0xBF) but encoding "latin1" was declared; pass encoding "utf-8"`,
      );
    }
    return head.subarray(3);
  }
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new DataError(
      `file "${file}", line 1: starts with a UTF-16 byte-order mark (0x${head[0]!.toString(16).toUpperCase()} 0x${head[1]!.toString(16).toUpperCase()}); only UTF-8 and latin1 are supported, convert the file to UTF-8`,
    );
  }
  return head;
}

/** Length of the prefix of `data` that does not end inside a multi-byte UTF-8 sequence. */
function completeLength(data: Buffer): number {
  const length = data.length;
  for (let back = 1; back <= Math.min(3, length); back++) {
    const byte = data[length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead byte
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back && byte < 0xf8 ? length - back : length;
  }
  return length;
}

function isIncompleteTail(tail: Buffer): boolean {
  const lead = tail[0] ?? 0;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return needed > tail.length;
}

/** Offset of the first byte that starts an invalid UTF-8 sequence (data.length when valid). */
export function firstInvalidUtf8(data: Uint8Array): number {
  let index = 0;
  while (index < data.length) {
    const byte = data[index]!;
    if (byte < 0x80) {
      index++;
      continue;
    }
    let needed: number;
    let minimum: number;
    let codePoint: number;
    if (byte >= 0xc2 && byte <= 0xdf) {
      needed = 1;
      minimum = 0x80;
      codePoint = byte & 0x1f;
    } else if (byte >= 0xe0 && byte <= 0xef) {
      needed = 2;
      minimum = 0x800;
      codePoint = byte & 0x0f;
    } else if (byte >= 0xf0 && byte <= 0xf4) {
      needed = 3;
      minimum = 0x10000;
      codePoint = byte & 0x07;
    } else {
      return index;
    }
    if (index + needed >= data.length) return index;
    for (let offset = 1; offset <= needed; offset++) {
      const next = data[index + offset]!;
      if ((next & 0xc0) !== 0x80) return index;
      codePoint = (codePoint << 6) | (next & 0x3f);
    }
    if (codePoint < minimum || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff))
      return index;
    index += needed + 1;
  }
  return data.length;
}
