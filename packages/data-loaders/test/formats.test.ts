import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DataError } from "@mdrec/core";
import { afterAll, describe, expect, it } from "vitest";
import {
  KUAIRAND_LOG_COLUMNS,
  loadAliCcp,
  loadDataset,
  loadKuaiRand,
  loadMovieLens1M,
  loadMovieLens100K,
  loadSchemaFile,
  type VocabularyEncoder,
  validateDataset,
} from "../src/index.js";
import { caught, temporaryDirectory } from "./helpers.js";

const directory = temporaryDirectory();
afterAll(directory.cleanup);

function write(path: string, content: string, encoding: BufferEncoding = "utf8"): string {
  writeFileSync(path, Buffer.from(content, encoding));
  return path;
}

function movieLens1M(name: string, ratings: string[]): string {
  const folder = join(directory.path, name);
  mkdirSync(folder, { recursive: true });
  // The exact GroupLens layouts: `::`-delimited, no header, latin1 (note the é).
  write(
    join(folder, "users.dat"),
    "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::15::55117\n4::M::45::7::02460\n",
    "latin1",
  );
  write(
    join(folder, "movies.dat"),
    "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Jumanji (1995)::Adventure|Children's|Fantasy\n3::Amélie (2001)::Comedy|Romance\n",
    "latin1",
  );
  write(join(folder, "ratings.dat"), `${ratings.join("\n")}\n`, "latin1");
  return folder;
}

describe("loadMovieLens1M", () => {
  const ratings = [
    "1::1::5::978300760",
    "2::3::3::978302109",
    "3::2::4::978301968",
    "4::1::1::978300275",
    "1::3::4::978824291",
  ];

  it("joins users and movies, labels rating >= 4, domains from age groups", async () => {
    const { dataset, encoders, report } = await loadMovieLens1M(movieLens1M("ml-1m", ratings));
    expect(() => validateDataset(dataset)).not.toThrow();
    expect(dataset.features.map((spec) => spec.name)).toEqual([
      "user_id",
      "movie_id",
      "gender",
      "age",
      "occupation",
      "zip",
      "genre",
    ]);
    expect(Array.from(dataset.labels)).toEqual([1, 0, 1, 0, 1]);
    // ages 1, 56, 25, 45, 1 -> {1,18} 0, {25} 1, {35,45,50,56} 2
    expect(Array.from(dataset.domainIds)).toEqual([0, 2, 1, 2, 0]);
    expect(dataset.domainNames).toEqual(["under-25", "25-34", "35+"]);
    expect((encoders.fields.genre as VocabularyEncoder).values).toEqual(["Animation", "Comedy", "Adventure"]);
    const genre = encoders.fields.genre as VocabularyEncoder;
    expect(Array.from(dataset.columns.genre!)).toEqual(
      ["Animation", "Comedy", "Adventure", "Animation", "Comedy"].map((g) => genre.encode(g)),
    );
    expect((encoders.fields.zip as VocabularyEncoder).values).toContain("02460");
    expect(Array.from(dataset.columns.timestamp!)).toEqual([
      978300760, 978302109, 978301968, 978300275, 978824291,
    ]);
    expect(Array.from(dataset.groupIds!)).toEqual([0, 1, 2, 3, 0]);
    expect(report.rowsLoaded).toBe(5);
  });

  it("takes the positive threshold and the domain attribute as options", async () => {
    const folder = movieLens1M("ml-1m-options", ratings);
    const { dataset } = await loadMovieLens1M(folder, { positiveRating: 5, domainBy: "gender" });
    expect(Array.from(dataset.labels)).toEqual([1, 0, 0, 0, 0]);
    expect(Array.from(dataset.domainIds)).toEqual([0, 1, 1, 1, 0]);
    expect(dataset.domainNames).toEqual(["F", "M"]);
    const custom = await loadMovieLens1M(folder, {
      domainMapping: { "1": 0, "18": 0, "25": 0, "35": 1, "45": 1, "50": 1, "56": 1 },
    });
    expect(Array.from(custom.dataset.domainIds)).toEqual([0, 1, 0, 1, 0]);
    await expect(loadMovieLens1M(folder, { domainBy: "zip" as never })).rejects.toThrow(
      'domainBy must be one of "age", "gender", "occupation", received "zip"',
    );
  });

  it("a rating outside 1-5 and a user missing from users.dat name ratings.dat and the line", async () => {
    const badRating = movieLens1M("ml-1m-bad-rating", ["1::1::5::978300760", "2::1::7::978300761"]);
    let error = await caught(() => loadMovieLens1M(badRating));
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toBe(
      `file "${join(badRating, "ratings.dat")}", line 2, column "Rating" (label "click"): value 7 is outside the allowed range [1, 5]`,
    );
    const unknownUser = movieLens1M("ml-1m-bad-user", ["1::1::5::978300760", "99::1::4::978300761"]);
    error = await caught(() => loadMovieLens1M(unknownUser));
    expect(error.message).toBe(
      `file "${join(unknownUser, "ratings.dat")}", line 2, column "UserID" (join key): value "99" has no row in "${join(unknownUser, "users.dat")}"`,
    );
    const skipped = await loadMovieLens1M(unknownUser, { onInvalidRow: "skip" });
    expect(skipped.dataset.numRows).toBe(1);
    expect(skipped.report.skipped).toMatchObject([{ reason: "unknown join key", count: 1 }]);
  });

  it("a missing ratings.dat names the file", async () => {
    const folder = join(directory.path, "ml-1m-empty");
    mkdirSync(folder, { recursive: true });
    write(join(folder, "users.dat"), "1::F::1::10::48067\n");
    write(join(folder, "movies.dat"), "1::Toy Story (1995)::Animation\n");
    const error = await caught(() => loadMovieLens1M(folder));
    expect(error.message).toBe(`file "${join(folder, "ratings.dat")}" does not exist`);
  });
});

describe("loadMovieLens100K", () => {
  it("reads u.data, u.user and u.item (first flagged genre, latin1)", async () => {
    const folder = join(directory.path, "ml-100k");
    mkdirSync(folder, { recursive: true });
    write(join(folder, "u.data"), "1\t2\t5\t881250949\n2\t1\t3\t891717742\n3\t2\t4\t878887116\n");
    write(join(folder, "u.user"), "1|24|M|technician|85711\n2|53|F|other|94043\n3|30|M|writer|32067\n");
    const flags = (on: number[]) =>
      Array.from({ length: 19 }, (_, index) => (on.includes(index) ? "1" : "0")).join("|");
    write(
      join(folder, "u.item"),
      `1|Toy Story (1995)|01-Jan-1995||http://x|${flags([3, 4, 5])}\n2|Les Misérables (1995)|01-Jan-1995||http://y|${flags([8])}\n`,
      "latin1",
    );
    const { dataset, encoders } = await loadMovieLens100K(folder);
    expect(Array.from(dataset.labels)).toEqual([1, 0, 1]);
    // ages 24, 53, 30 -> <25, >=35, 25-34
    expect(Array.from(dataset.domainIds)).toEqual([0, 2, 1]);
    const genre = encoders.fields.genre as VocabularyEncoder;
    expect(Array.from(dataset.columns.genre!)).toEqual([
      genre.encode("Drama"),
      genre.encode("Animation"),
      genre.encode("Drama"),
    ]);
    expect(genre.values).toEqual(["Drama", "Animation"]);
  });
});

describe("loadKuaiRand", () => {
  it("maps tabs 1, 0, 4, 2, 6 to domains 0..4 and reports rows of other tabs as skipped", async () => {
    const header = KUAIRAND_LOG_COLUMNS.join(",");
    const row = (user: number, video: number, click: number, tab: number) =>
      `${user},${video},20220408,1600,${1649404800000 + user * 1000},${click},0,0,0,0,0,1,5000,10000,0,0,0,0,${tab}`;
    const path = write(
      join(directory.path, "log_standard_4_08_to_4_21_1k.csv"),
      `${header}\n${[row(1, 10, 1, 1), row(2, 11, 0, 0), row(1, 12, 1, 4), row(3, 10, 0, 2), row(2, 13, 1, 6), row(3, 14, 0, 9)].join("\n")}\n`,
    );
    const { dataset, report } = await loadKuaiRand(path, { tasks: ["is_click", "long_view"] });
    expect(Array.from(dataset.domainIds)).toEqual([0, 1, 2, 3, 4]);
    expect(dataset.domainNames).toEqual(["tab_1", "tab_0", "tab_4", "tab_2", "tab_6"]);
    expect(dataset.taskNames).toEqual(["is_click", "long_view"]);
    expect(Array.from(dataset.labels)).toEqual([1, 1, 0, 1, 1, 1, 0, 1, 1, 1]);
    expect(Array.from(dataset.columns.timestamp!)).toEqual([
      1649404801, 1649404802, 1649404801, 1649404803, 1649404802,
    ]);
    expect(report.skipped).toEqual([
      {
        reason: "unknown domain value",
        count: 1,
        examples: [
          {
            file: path,
            line: 7,
            message: `file "${path}", line 7, column "tab" (domain): value "9" is not in the domain mapping (known values: 0, 1, 2, 4, 6)`,
          },
        ],
      },
    ]);
  });
});

describe("loadAliCcp", () => {
  it("reads the common CSV form: domain from field 301, label click", async () => {
    const header = ["click", "purchase", "101", "121", "205", "301", "D109_14"].join(",");
    const path = write(
      join(directory.path, "ali_ccp_train.csv"),
      `${header}\n1,0,u1,3,i1,1,0.5\n0,0,u2,4,i2,2,1.5\n0,0,u1,3,i3,3,2.5\n1,1,u3,4,i1,1,3.5\n`,
    );
    const { dataset } = await loadAliCcp(path, {
      categoricalColumns: ["101", "121", "205"],
      numericColumns: ["D109_14"],
      tasks: ["click", "purchase"],
    });
    expect(dataset.features.map((spec) => spec.name)).toEqual(["f101", "f121", "f205", "D109_14"]);
    expect(Array.from(dataset.domainIds)).toEqual([0, 1, 2, 0]);
    expect(Array.from(dataset.labels)).toEqual([1, 0, 0, 0, 0, 0, 1, 1]);
    expect(Array.from(dataset.groupIds!)).toEqual([0, 1, 0, 2]);
    // With the default column list, a missing column is named with the header.
    const error = await caught(() => loadAliCcp(path));
    expect(error.message).toBe(
      `file "${path}": header has no column "122" needed by field "f122" (did you mean "121"?); columns: click, purchase, 101, 121, 205, 301, D109_14`,
    );
  });
});

describe("any CSV by a JSON schema file", () => {
  it("loads with a schema read from disk, including a join resolved next to the schema", async () => {
    const folder = join(directory.path, "by-schema");
    mkdirSync(folder, { recursive: true });
    write(join(folder, "users.csv"), "uid,segment\n1,gold\n2,silver\n");
    write(join(folder, "events.csv"), "uid,item,clicked,page\n1,a,1,home\n2,b,0,search\n1,b,1,search\n");
    write(
      join(folder, "schema.json"),
      JSON.stringify({
        features: [
          { kind: "categorical", name: "item" },
          { kind: "categorical", name: "segment", encoding: "hashing", numBuckets: 16 },
        ],
        domain: { column: "page", mapping: { home: 0, search: 1 } },
        labels: [{ name: "click", column: "clicked" }],
        groupColumn: "uid",
        joins: [{ source: "users.csv", key: "uid", on: "uid", columns: ["segment"] }],
      }),
    );
    const schema = await loadSchemaFile(join(folder, "schema.json"));
    const { dataset } = await loadDataset(join(folder, "events.csv"), schema);
    expect(Array.from(dataset.domainIds)).toEqual([0, 1, 1]);
    expect(Array.from(dataset.labels)).toEqual([1, 0, 1]);
    expect(dataset.features[1]).toEqual({ kind: "categorical", name: "segment", vocabularySize: 16 });
    expect(dataset.columns.segment![0]).toBe(dataset.columns.segment![2]);
  });
});
