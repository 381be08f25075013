import { writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { DataError } from "@mdrec/core";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import { type RowChunk, readDelimited, readJsonLines, readParquet, readRows } from "../src/index.js";
import { decodeText, firstInvalidUtf8 } from "../src/io/decode.js";
import { caught, temporaryDirectory } from "./helpers.js";

const directory = temporaryDirectory();
afterAll(directory.cleanup);

function fixture(name: string, content: string | Buffer): string {
  const path = join(directory.path, name);
  writeFileSync(path, content);
  return path;
}

async function collect(
  chunks: AsyncIterable<RowChunk>,
): Promise<{ columns: string[]; rows: unknown[][]; lines: number[] }> {
  const result = { columns: [] as string[], rows: [] as unknown[][], lines: [] as number[] };
  for await (const chunk of chunks) {
    result.columns = chunk.columns;
    result.rows.push(...chunk.rows);
    result.lines.push(...chunk.lines);
  }
  return result;
}

async function dataError(action: () => Promise<unknown>): Promise<string> {
  const error = await caught(action);
  expect(error).toBeInstanceOf(DataError);
  return error.message;
}

describe("readDelimited", () => {
  it("reads a '::'-delimited file without header, with CRLF line ends and blank lines", async () => {
    const path = fixture(
      "ratings.dat",
      "1::10::5::978300760\r\n2::20::3::978302109\r\n\r\n3::30::4::978301968\n",
    );
    const { columns, rows, lines } = await collect(
      readDelimited(path, {
        delimiter: "::",
        header: false,
        columns: ["user", "movie", "rating", "time"],
        quote: false,
      }),
    );
    expect(columns).toEqual(["user", "movie", "rating", "time"]);
    expect(rows).toEqual([
      ["1", "10", "5", "978300760"],
      ["2", "20", "3", "978302109"],
      ["3", "30", "4", "978301968"],
    ]);
    expect(lines).toEqual([1, 2, 4]);
  });

  it("reads a header and quoted fields (embedded delimiter, quote and newline) through csv-parse", async () => {
    const path = fixture(
      "quoted.csv",
      'id,title,score\n1,plain,0.5\n2,"Heat, The",1.5\n3,"say ""hi""\nthere",2\n4,after,3\n',
    );
    const { columns, rows, lines } = await collect(readDelimited(path));
    expect(columns).toEqual(["id", "title", "score"]);
    expect(rows).toEqual([
      ["1", "plain", "0.5"],
      ["2", "Heat, The", "1.5"],
      ["3", 'say "hi"\nthere', "2"],
      ["4", "after", "3"],
    ]);
    expect(lines).toEqual([2, 3, 5, 6]);
  });

  it("supports a two-character delimiter inside quoted fields too", async () => {
    const path = fixture("quoted.dat", 'a::b\n"x::y"::2\n');
    const { rows } = await collect(readDelimited(path, { delimiter: "::" }));
    expect(rows).toEqual([["x::y", "2"]]);
  });

  it("decodes latin1 and utf-8, and removes a UTF-8 byte-order mark", async () => {
    const latin1 = fixture("movies.dat", Buffer.from("1::Am\xe9lie (2001)::Comedy|Romance\n", "latin1"));
    const { rows } = await collect(
      readDelimited(latin1, {
        delimiter: "::",
        header: false,
        columns: ["id", "title", "genres"],
        encoding: "latin1",
      }),
    );
    expect(rows[0]![1]).toBe("Amélie (2001)");
    const bom = fixture(
      "bom.csv",
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("user,city\n1,Zürich\n", "utf8")]),
    );
    const read = await collect(readDelimited(bom));
    expect(read.columns).toEqual(["user", "city"]);
    expect(read.rows).toEqual([["1", "Zürich"]]);
  });

  it("reads .gz files transparently and rejects a truncated one naming the file", async () => {
    const text = `a,b\n${Array.from({ length: 2000 }, (_, row) => `${row},${row * 2}`).join("\n")}\n`;
    const compressed = gzipSync(Buffer.from(text));
    const path = fixture("data.csv.gz", compressed);
    const { rows } = await collect(readDelimited(path, { chunkRows: 300 }));
    expect(rows).toHaveLength(2000);
    expect(rows[1999]).toEqual(["1999", "3998"]);
    const truncated = fixture("truncated.csv.gz", compressed.subarray(0, Math.floor(compressed.length / 2)));
    const message = await dataError(() => collect(readDelimited(truncated)));
    expect(message).toContain(`file "${truncated}" is a truncated or corrupt gzip file`);
    expect(message).toContain("unexpected end of file");
  });

  it("yields chunks of at most chunkRows rows", async () => {
    const path = fixture("many.csv", `x\n${Array.from({ length: 25 }, (_, row) => row).join("\n")}\n`);
    const sizes: number[] = [];
    for await (const chunk of readDelimited(path, { chunkRows: 10 })) sizes.push(chunk.rows.length);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(25);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(25);
  });

  describe("bad input", () => {
    it("missing file, directory, empty file, header only", async () => {
      const missing = join(directory.path, "nope.csv");
      expect(await dataError(() => collect(readDelimited(missing)))).toBe(`file "${missing}" does not exist`);
      const folder = join(directory.path, "folder.csv");
      await mkdir(folder, { recursive: true });
      expect(await dataError(() => collect(readDelimited(folder)))).toBe(
        `"${folder}" is a directory, expected a data file`,
      );
      const empty = fixture("empty.csv", "");
      expect(await dataError(() => collect(readDelimited(empty)))).toBe(`file "${empty}" is empty`);
      const blank = fixture("blank.csv", "\n\n");
      expect(await dataError(() => collect(readDelimited(blank)))).toBe(`file "${blank}" is empty`);
      const headerOnly = fixture("header-only.csv", "user,item,click\n");
      expect(await dataError(() => collect(readDelimited(headerOnly)))).toBe(
        `file "${headerOnly}" has a header (user, item, click) but no data rows`,
      );
    });

    it("wrong column count names the line and both counts; a handler can skip instead", async () => {
      const path = fixture("columns.csv", "a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n");
      expect(await dataError(() => collect(readDelimited(path)))).toBe(
        `file "${path}", line 3: expected 3 columns (a, b, c), found 2`,
      );
      const problems: { reason: string; line: number; message: string }[] = [];
      const { rows } = await collect(
        readDelimited(path, { onInvalidRow: (problem) => problems.push(problem) }),
      );
      expect(rows).toEqual([
        ["1", "2", "3"],
        ["10", "11", "12"],
      ]);
      expect(problems.map((problem) => [problem.reason, problem.line])).toEqual([
        ["wrong column count", 3],
        ["wrong column count", 4],
      ]);
      expect(problems[1]!.message).toBe(
        `file "${path}", line 4: expected 3 columns (a, b, c), found 4 (a delimiter "," inside an unquoted field?)`,
      );
    });

    it("header with a duplicate column, header differing from the declared columns", async () => {
      const duplicate = fixture("duplicate.csv", "user,item,user\n1,2,3\n");
      expect(await dataError(() => collect(readDelimited(duplicate)))).toBe(
        `file "${duplicate}", line 1: header names column "user" twice (columns 1 and 3)`,
      );
      const renamed = fixture("renamed.csv", "user,itm\n1,2\n");
      expect(await dataError(() => collect(readDelimited(renamed, { columns: ["user", "item"] })))).toBe(
        `file "${renamed}", line 1: header (user, itm) does not match the declared columns (user, item)`,
      );
    });

    it("undecodable bytes under utf-8 name the file, line and column", async () => {
      const path = fixture("latin1.csv", Buffer.from("id,title\n1,ok\n2,Am\xe9lie\n", "latin1"));
      expect(await dataError(() => collect(readDelimited(path)))).toBe(
        `file "${path}", line 3, column 2 ("title"): bytes 0xE9 0x6C 0x69 0x65 are not valid UTF-8 (declared encoding "utf-8"); if the file is latin1, pass encoding "latin1"`,
      );
    });

    it("a UTF-8 byte-order mark under latin1 and a UTF-16 mark are refused", async () => {
      const bom = fixture(
        "bom-latin1.csv",
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("a,b\n1,2\n")]),
      );
      expect(await dataError(() => collect(readDelimited(bom, { encoding: "latin1" })))).toBe(
        `file "${bom}", line 1: starts with a UTF-8 byte-order mark (0xEF 0xBB 0xBF) but encoding "latin1" was declared; pass encoding "utf-8"`,
      );
      const utf16 = fixture("utf16.csv", Buffer.from("\ufeffa,b\n1,2\n", "utf16le"));
      expect(await dataError(() => collect(readDelimited(utf16)))).toContain(
        `file "${utf16}", line 1: starts with a UTF-16 byte-order mark (0xFF 0xFE)`,
      );
    });

    it("an unterminated quote names the line where the row starts", async () => {
      const path = fixture("unterminated.csv", 'a,b\n1,2\n3,"open\n4,5\n');
      expect(await dataError(() => collect(readDelimited(path)))).toBe(
        `file "${path}", line 3: unterminated quote, the quoted field opened in the row starting on line 3 is still open at the end of the file (line 4)`,
      );
    });
  });
});

describe("decodeText", () => {
  async function* pieces(parts: number[][]): AsyncGenerator<Buffer> {
    for (const part of parts) yield Buffer.from(part);
  }

  it("joins a multi-byte character split across chunks", async () => {
    const bytes = [...Buffer.from("aé€😀\n", "utf8")];
    const parts = bytes.map((byte) => [byte]);
    let text = "";
    for await (const piece of decodeText(pieces(parts), { file: "x", encoding: "utf-8" })) text += piece;
    expect(text).toBe("aé€😀\n");
  });

  it("reports a character cut off at the end of the file", async () => {
    const error = await caught(async () => {
      for await (const _ of decodeText(pieces([[0x61, 0x0a, 0x62, 0xe2, 0x82]]), {
        file: "cut.txt",
        encoding: "utf-8",
      })) {
        // drain
      }
    });
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toBe(
      'file "cut.txt", line 2: bytes 0xE2 0x82 are not valid UTF-8 (a character is cut off) (declared encoding "utf-8"); if the file is latin1, pass encoding "latin1"',
    );
  });

  it("finds the first invalid UTF-8 byte (overlong, surrogate, stray continuation)", () => {
    expect(firstInvalidUtf8(Buffer.from("abc", "utf8"))).toBe(3);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0xc0, 0xaf]))).toBe(1);
    expect(firstInvalidUtf8(Uint8Array.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2);
    expect(firstInvalidUtf8(Uint8Array.from([0x80]))).toBe(0);
    expect(firstInvalidUtf8(Uint8Array.from([0xf0, 0x9f, 0x98, 0x80, 0xff]))).toBe(4);
  });
});

describe("readJsonLines", () => {
  it("reads objects, the requested keys in order, and .gz", async () => {
    const text = '{"user":"u1","click":1,"price":2.5}\n\n{"user":"u2","click":0,"price":1}\n';
    const path = fixture("events.jsonl.gz", gzipSync(text));
    const { columns, rows, lines } = await collect(readJsonLines(path, { columns: ["click", "user"] }));
    expect(columns).toEqual(["click", "user"]);
    expect(rows).toEqual([
      [1, "u1"],
      [0, "u2"],
    ]);
    expect(lines).toEqual([1, 3]);
  });

  it("invalid JSON, a non-object line and a missing key name the line", async () => {
    const broken = fixture("broken.jsonl", '{"a":1}\n{"a":\n');
    expect(await dataError(() => collect(readJsonLines(broken)))).toMatch(
      new RegExp(
        `^file "${broken.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}", line 2: invalid JSON \\(.*\\), received "\\{\\\\"a\\\\":"$`,
      ),
    );
    const array = fixture("array.jsonl", "[1,2]\n");
    expect(await dataError(() => collect(readJsonLines(array)))).toBe(
      `file "${array}", line 1: expected a JSON object, received [1,2]`,
    );
    const missing = fixture("missing.jsonl", '{"a":1,"b":2}\n{"a":3}\n');
    expect(await dataError(() => collect(readJsonLines(missing, { columns: ["a", "b"] })))).toBe(
      `file "${missing}", line 2, column "b": the object has no key "b" (keys: a)`,
    );
    const empty = fixture("empty.jsonl", "");
    expect(await dataError(() => collect(readJsonLines(empty)))).toBe(`file "${empty}" is empty`);
  });
});

describe("readParquet", () => {
  function writeParquet(
    name: string,
    columnData: { name: string; data: unknown[]; type?: string }[],
    rowGroupSize = 1000,
  ): string {
    const buffer = parquetWriteBuffer({ columnData: columnData as never, rowGroupSize });
    return fixture(name, Buffer.from(buffer));
  }

  it("reads the requested columns in order, across row groups, with bigint INT64", async () => {
    const path = writeParquet(
      "events.parquet",
      [
        { name: "user", data: ["a", "b", "c", "d", "e"], type: "STRING" },
        { name: "click", data: [1, 0, 1, 1, 0], type: "INT32" },
        { name: "big", data: [1n, 2n, 3n, 4n, 5n], type: "INT64" },
      ],
      2,
    );
    const { columns, rows, lines } = await collect(
      readParquet(path, { columns: ["click", "user", "big"], chunkRows: 2 }),
    );
    expect(columns).toEqual(["click", "user", "big"]);
    expect(rows).toEqual([
      [1, "a", 1n],
      [0, "b", 2n],
      [1, "c", 3n],
      [1, "d", 4n],
      [0, "e", 5n],
    ]);
    expect(lines).toEqual([1, 2, 3, 4, 5]);
    const all = await collect(readRows(path));
    expect(all.columns).toEqual(["user", "click", "big"]);
  });

  it("a missing column, a column of the wrong type and a truncated file raise DataError", async () => {
    const path = writeParquet("typed.parquet", [
      { name: "rating", data: ["high", "low"], type: "STRING" },
      { name: "user", data: [1, 2], type: "INT32" },
    ]);
    expect(await dataError(() => collect(readParquet(path, { columns: ["ratin"] })))).toBe(
      `Parquet file "${path}" has no column "ratin" (did you mean "rating"?); columns: rating, user`,
    );
    expect(await dataError(() => collect(readParquet(path, { numericColumns: ["rating"] })))).toBe(
      `Parquet file "${path}", column "rating": expected a numeric column, received type BYTE_ARRAY (UTF8)`,
    );
    const bytes = Buffer.from(
      parquetWriteBuffer({ columnData: [{ name: "x", data: [1, 2, 3], type: "INT32" }] as never }),
    );
    const truncated = fixture("truncated.parquet", bytes.subarray(0, bytes.length - 10));
    expect(await dataError(() => collect(readParquet(truncated)))).toMatch(
      /^file ".*truncated\.parquet" is not a readable Parquet file or is truncated/,
    );
  });
});

describe("readRows", () => {
  it("reads shards in order, choosing the reader by extension", async () => {
    const first = fixture("part-1.tsv", "a\tb\n1\t2\n");
    const second = fixture("part-2.tsv", "a\tb\n3\t4\n");
    const files: string[] = [];
    const { rows } = await collect(
      (async function* () {
        for await (const chunk of readRows([first, second])) {
          files.push(chunk.file);
          yield chunk;
        }
      })(),
    );
    expect(rows).toEqual([
      ["1", "2"],
      ["3", "4"],
    ]);
    expect(files).toEqual([first, second]);
  });

  it("rejects malformed sources naming the option", async () => {
    await expect(collect(readRows({ path: [] }))).rejects.toThrow(
      "source.path must be a non-empty path or list of paths, received []",
    );
    await expect(collect(readRows({ path: "x.csv", delimeter: ";" } as never))).rejects.toThrow(
      'Unknown key "delimeter" in source. Did you mean "delimiter"?',
    );
    await expect(collect(readRows({ path: "x.csv", header: false }))).rejects.toThrow(
      "source.columns must name the columns when header is false",
    );
  });
});
