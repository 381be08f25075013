import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, DataError, disposeBatch } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, describe, expect, it } from "vitest";
import {
  type ColumnarDataset,
  concatDatasets,
  type DataSchema,
  DatasetEncoders,
  fitEncoders,
  inspect,
  iterateBatches,
  loadDataset,
  StandardScaler,
  streamDataset,
  type VocabularyEncoder,
  validateDataset,
} from "../src/index.js";
import { caught, temporaryDirectory } from "./helpers.js";

const directory = temporaryDirectory();
afterAll(directory.cleanup);

function fixture(name: string, content: string | Buffer): string {
  const path = join(directory.path, name);
  writeFileSync(path, content);
  return path;
}

const HEADER = "user,item,price,rating,scenario,ts";
const ROWS = ["u1,i1,10,5,app,1000", "u2,i1,20,3,web,2000", "u1,i2,30,4,app,3000", "u3,i3,40,1,web,4000"];

const schema: DataSchema = {
  features: [
    { kind: "categorical", name: "user_id", column: "user" },
    { kind: "categorical", name: "item_id", column: "item" },
    { kind: "numeric", name: "price" },
  ],
  domain: { column: "scenario", mapping: { app: 0, web: 1 } },
  labels: [{ name: "click", column: "rating", rule: { op: ">=", value: 4 }, range: [1, 5] }],
  groupColumn: "user",
  time: { column: "ts" },
};

const csv = (rows: string[], header = HEADER) => `${header}\n${rows.join("\n")}\n`;

async function loadError(path: string, schemaToUse: DataSchema = schema): Promise<string> {
  const error = await caught(() => loadDataset(path, schemaToUse));
  expect(error).toBeInstanceOf(DataError);
  return error.message;
}

describe("loadDataset", () => {
  it("encodes a CSV by schema (golden values)", async () => {
    const path = fixture("golden.csv", csv(ROWS));
    const { dataset, encoders, report } = await loadDataset(path, schema);
    expect(() => validateDataset(dataset)).not.toThrow();
    expect(dataset.features).toEqual([
      { kind: "categorical", name: "user_id", vocabularySize: 4 },
      { kind: "categorical", name: "item_id", vocabularySize: 4 },
      { kind: "numeric", name: "price" },
    ]);
    // u1 twice, then u2 and u3 by value; id 0 is OOV.
    expect(Array.from(dataset.columns.user_id!)).toEqual([1, 2, 1, 3]);
    expect(Array.from(dataset.columns.item_id!)).toEqual([1, 1, 2, 3]);
    const std = Math.sqrt(125);
    expect(Array.from(dataset.columns.price!)).toEqual(
      [-15 / std, -5 / std, 5 / std, 15 / std].map(Math.fround),
    );
    expect(Array.from(dataset.labels)).toEqual([1, 0, 1, 0]);
    expect(Array.from(dataset.domainIds)).toEqual([0, 1, 0, 1]);
    expect(Array.from(dataset.groupIds!)).toEqual([0, 1, 0, 2]);
    expect(Array.from(dataset.columns.timestamp!)).toEqual([1000, 2000, 3000, 4000]);
    expect(dataset.domainNames).toEqual(["app", "web"]);
    expect(dataset.taskNames).toEqual(["click"]);
    expect((encoders.fields.user_id as VocabularyEncoder).values).toEqual(["u1", "u2", "u3"]);
    expect(report).toMatchObject({ files: [path], rowsRead: 4, rowsLoaded: 4, skipped: [], warnings: [] });
    // The loaded data batches.
    const [batch] = iterateBatches(dataset, { batchSize: 4 });
    expect(batch!.features.user_id!.arraySync()).toEqual([1, 2, 1, 3]);
    disposeBatch(batch!);
  });

  it("fits encoders on the training rows only when splitting", async () => {
    const path = fixture("split.csv", csv(ROWS));
    const { dataset, encoders, splits, report } = await loadDataset(path, schema, {
      split: { by: "time", timeColumn: "timestamp", fractions: [0.5, 0.25, 0.25] },
    });
    expect((encoders.fields.user_id as VocabularyEncoder).values).toEqual(["u1", "u2"]);
    expect((encoders.fields.item_id as VocabularyEncoder).values).toEqual(["i1"]);
    expect(encoders.fields.price).toEqual(new StandardScaler(15, 5));
    // u3 and i3 (test row) and i2 (validation row) were never seen in training: OOV id 0.
    expect(Array.from(dataset.columns.user_id!)).toEqual([1, 2, 1, 0]);
    expect(Array.from(splits!.test.columns.item_id!)).toEqual([0]);
    expect(Array.from(splits!.validation.columns.item_id!)).toEqual([0]);
    expect(Array.from(splits!.train.columns.price!)).toEqual([-1, 1]);
    expect(splits!.train.numRows).toBe(2);
    // Each domain has a single row outside train, so one part is empty: warned with counts.
    expect(report.warnings).toEqual([
      'domain 0 ("app") has no rows in test (train 1, validation 1, test 0 of 2 rows); its per-domain metrics there are undefined',
      'domain 1 ("web") has no rows in validation (train 1, validation 0, test 1 of 2 rows); its per-domain metrics there are undefined',
    ]);
  });

  it("reuses saved encoders (JSON) on new data: same ids, OOV counted and warned", async () => {
    const train = fixture("train.csv", csv(ROWS));
    const { encoders } = await loadDataset(train, schema);
    const restored = DatasetEncoders.fromJSON(JSON.stringify(encoders));
    const evaluation = fixture("eval.csv", csv(["u3,i1,25,2,web,5000", "u9,i2,25,4,app,6000"]));
    const { dataset, report } = await loadDataset(evaluation, schema, { encoders: restored });
    expect(Array.from(dataset.columns.user_id!)).toEqual([3, 0]);
    expect(Array.from(dataset.columns.item_id!)).toEqual([1, 2]);
    expect(Array.from(dataset.columns.price!)).toEqual([0, 0]);
    expect(report.outOfVocabulary).toEqual({ user_id: 1, item_id: 0 });
    expect(report.warnings).toEqual(['field "user_id": 1 of 2 rows (50.0%) are out of vocabulary (id 0)']);
    const other: DataSchema = { ...schema, features: schema.features.slice(0, 2) };
    await expect(loadDataset(evaluation, other, { encoders: restored })).rejects.toThrow(ConfigError);
  });

  it("reads the same rows from CSV, JSON lines and Parquet", async () => {
    const fromCsv = (await loadDataset(fixture("same.csv", csv(ROWS)), schema)).dataset;
    const objects = ROWS.map((row) => {
      const [user, item, price, rating, scenario, ts] = row.split(",");
      return JSON.stringify({
        user,
        item,
        price: Number(price),
        rating: Number(rating),
        scenario,
        ts: Number(ts),
      });
    });
    const fromJson = (await loadDataset(fixture("same.jsonl", `${objects.join("\n")}\n`), schema)).dataset;
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: "user", data: ["u1", "u2", "u1", "u3"], type: "STRING" },
        { name: "item", data: ["i1", "i1", "i2", "i3"], type: "STRING" },
        { name: "price", data: [10, 20, 30, 40], type: "DOUBLE" },
        { name: "rating", data: [5, 3, 4, 1], type: "INT32" },
        { name: "scenario", data: ["app", "web", "app", "web"], type: "STRING" },
        { name: "ts", data: [1000n, 2000n, 3000n, 4000n], type: "INT64" },
      ] as never,
    });
    const fromParquet = (await loadDataset(fixture("same.parquet", Buffer.from(parquet)), schema)).dataset;
    for (const other of [fromJson, fromParquet]) {
      for (const name of ["user_id", "item_id", "price", "timestamp"]) {
        expect(Array.from(other.columns[name]!)).toEqual(Array.from(fromCsv.columns[name]!));
      }
      expect(Array.from(other.labels)).toEqual(Array.from(fromCsv.labels));
      expect(Array.from(other.domainIds)).toEqual(Array.from(fromCsv.domainIds));
    }
  });

  it("skips invalid rows under onInvalidRow 'skip', counting and reporting each by reason", async () => {
    const path = fixture(
      "mixed.csv",
      csv([
        ...ROWS,
        "u4,i4,abc,5,app,1",
        "u5,i5,1,7,app,1",
        "u6,i6,1,5,tv,1",
        "u7,i7,1,5",
        "u8,i8,NaN,5,web,1",
        "u9,i9,2,5,web,2",
      ]),
    );
    const { dataset, report } = await loadDataset(path, schema, { onInvalidRow: "skip" });
    expect(dataset.numRows).toBe(5);
    expect(report.rowsRead).toBe(10);
    expect(report.rowsLoaded).toBe(5);
    const byReason = Object.fromEntries(report.skipped.map((entry) => [entry.reason, entry.count]));
    expect(byReason).toEqual({
      "unparsable number": 2,
      "label outside its rule": 1,
      "unknown domain value": 1,
      "wrong column count": 1,
    });
    const unknown = report.skipped.find((entry) => entry.reason === "unknown domain value")!;
    expect(unknown.examples).toEqual([
      {
        file: path,
        line: 8,
        message: `file "${path}", line 8, column "scenario" (domain): value "tv" is not in the domain mapping (known values: app, web)`,
      },
    ]);
    const error = await caught(() =>
      loadDataset(fixture("all-bad.csv", csv(["u1,i1,x,5,app,1"])), schema, { onInvalidRow: "skip" }),
    );
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toMatch(
      /^no valid rows in ".*all-bad\.csv" \(1 skipped: 1 unparsable number, e\.g\. file ".*", line 2, column "price" \(field "price"\): cannot parse "x" as a number\)$/,
    );
  });

  describe("bad input names file, line, column and value", () => {
    it.each([
      ["abc", 'column "price" (field "price"): cannot parse "abc" as a number'],
      [
        '"1,5"',
        'column "price" (field "price"): cannot parse "1,5" as a number (decimal comma? use "." as the decimal separator)',
      ],
      ["NaN", 'column "price" (field "price"): "NaN" is not a finite number'],
      ["Infinity", 'column "price" (field "price"): "Infinity" is not a finite number'],
      ["0x10", 'column "price" (field "price"): cannot parse "0x10" as a number'],
      ["", 'column "price" (field "price"): empty value (declare fillValue to fill missing values)'],
    ])("unparsable number %s", async (price, detail) => {
      const path = fixture("number.csv", csv([ROWS[0]!, `u2,i2,${price},4,app,2000`]));
      expect(await loadError(path)).toBe(`file "${path}", line 3, ${detail}`);
    });

    it("label outside its rule: rating 7 on 1-5, binary label 2", async () => {
      const rating = fixture("rating.csv", csv([ROWS[0]!, "u2,i2,1,7,app,2000"]));
      expect(await loadError(rating)).toBe(
        `file "${rating}", line 3, column "rating" (label "click"): value 7 is outside the allowed range [1, 5]`,
      );
      const binary = fixture("binary.csv", csv(["u1,i1,1,1,app,1", "u2,i2,1,2,app,2"]));
      const binarySchema: DataSchema = { ...schema, labels: [{ name: "click", column: "rating" }] };
      expect(await loadError(binary, binarySchema)).toBe(
        `file "${binary}", line 3, column "rating" (label "click"): value 2 is not a binary label (expected 0 or 1; declare a rule such as { "op": ">=", "value": 1 } to binarise)`,
      );
    });

    it("unknown domain value; domain id out of range without mapping", async () => {
      const path = fixture("domain.csv", csv([ROWS[0]!, "u2,i2,1,4,tv,2000"]));
      expect(await loadError(path)).toBe(
        `file "${path}", line 3, column "scenario" (domain): value "tv" is not in the domain mapping (known values: app, web)`,
      );
      const ids = fixture("domain-ids.csv", csv(["u1,i1,1,4,0,1", "u2,i2,1,4,3,2"]));
      const idSchema: DataSchema = { ...schema, domain: { column: "scenario", numDomains: 3 } };
      expect(await loadError(ids, idSchema)).toBe(
        `file "${ids}", line 3, column "scenario" (domain): value "3" is not a domain id in [0, numDomains=3)`,
      );
    });

    it("header mismatch: missing or renamed column", async () => {
      const path = fixture("renamed.csv", csv(["u1,i1,1,4,app,1"], "user,item,price,ratings,scenario,ts"));
      expect(await loadError(path)).toBe(
        `file "${path}": header has no column "rating" needed by label "click" (did you mean "ratings"?); columns: user, item, price, ratings, scenario, ts`,
      );
    });

    it("ids beyond 2^31 and negative ids: vocabulary keeps them as text, identity rejects them", async () => {
      const path = fixture(
        "ids.csv",
        csv(["3000000000,i1,1,4,app,1", "-7,i1,1,4,app,2", "3000000001,i2,1,4,app,3"]),
      );
      const { dataset, encoders } = await loadDataset(path, schema);
      expect(Array.from(dataset.columns.user_id!)).toEqual([2, 1, 3]);
      expect((encoders.fields.user_id as VocabularyEncoder).values).toEqual(
        ["-7", "3000000000", "3000000001"].sort(),
      );
      const identity: DataSchema = {
        ...schema,
        features: [
          {
            kind: "categorical",
            name: "user_id",
            column: "user",
            encoding: "identity",
            vocabularySize: 1000,
          },
        ],
      };
      const big = fixture("big-id.csv", csv(["5,i1,1,4,app,1", "3000000000,i1,1,4,app,2"]));
      expect(await loadError(big, identity)).toBe(
        `file "${big}", line 3, column "user" (field "user_id"): id 3000000000 is outside [0, vocabularySize=1000)`,
      );
      const negative = fixture("negative-id.csv", csv(["-7,i1,1,4,app,1"]));
      expect(await loadError(negative, identity)).toBe(
        `file "${negative}", line 2, column "user" (field "user_id"): id -7 is outside [0, vocabularySize=1000)`,
      );
      const json = fixture(
        "big.jsonl",
        '{"user":9007199254740993,"item":"i","price":1,"rating":4,"scenario":"app","ts":1}\n',
      );
      expect(await loadError(json)).toBe(
        `file "${json}", line 1, column "user" (field "user_id"): integer 9007199254740992 is beyond 2^53 and lost precision when parsed as a number; store ids as strings`,
      );
    });

    it("timestamps that do not fit int32 seconds", async () => {
      const path = fixture("ms.csv", csv(["u1,i1,1,4,app,1650000000000"]));
      expect(await loadError(path)).toBe(
        `file "${path}", line 2, column "ts" (time): value "1650000000000" is not a timestamp in int32 seconds (milliseconds? set time.unit to "ms")`,
      );
      const ms = await loadDataset(path, { ...schema, time: { column: "ts", unit: "ms" } });
      expect(Array.from(ms.dataset.columns.timestamp!)).toEqual([1650000000]);
    });

    it("missing file, directory, empty file, header only, Parquet column of the wrong type", async () => {
      const missing = join(directory.path, "absent.csv");
      expect(await loadError(missing)).toBe(`file "${missing}" does not exist`);
      expect(await loadError(directory.path)).toBe(
        `"${directory.path}" is a directory, expected a data file`,
      );
      const empty = fixture("nothing.csv", "");
      expect(await loadError(empty)).toBe(`file "${empty}" is empty`);
      const headerOnly = fixture("just-header.csv", `${HEADER}\n`);
      expect(await loadError(headerOnly)).toBe(
        `file "${headerOnly}" has a header (${HEADER.split(",").join(", ")}) but no data rows`,
      );
      const parquet = parquetWriteBuffer({
        columnData: [
          { name: "user", data: ["u1"], type: "STRING" },
          { name: "item", data: ["i1"], type: "STRING" },
          { name: "price", data: ["cheap"], type: "STRING" },
          { name: "rating", data: [5], type: "INT32" },
          { name: "scenario", data: ["app"], type: "STRING" },
          { name: "ts", data: [1], type: "INT32" },
        ] as never,
      });
      const wrongType = fixture("wrong-type.parquet", Buffer.from(parquet));
      expect(await loadError(wrongType)).toBe(
        `Parquet file "${wrongType}", column "price": expected a numeric column, received type BYTE_ARRAY (UTF8)`,
      );
    });

    it("rejects invalid options naming the key", async () => {
      const path = fixture("options.csv", csv(ROWS));
      await expect(loadDataset(path, schema, { onInvalidRows: "skip" } as never)).rejects.toThrow(
        'Unknown key "onInvalidRows" in loadDataset options. Did you mean "onInvalidRow"?',
      );
      await expect(loadDataset(path, schema, { onInvalidRow: "ignore" as never })).rejects.toThrow(
        'onInvalidRow must be one of "error", "skip", received "ignore"',
      );
    });
  });
});

describe("shards: fitEncoders + streamDataset", () => {
  const rows = Array.from(
    { length: 50 },
    (_, row) => `u${row % 7},i${row % 5},${row},${1 + (row % 5)},${row % 3 === 0 ? "web" : "app"},${row}`,
  );
  const shards = [
    fixture("shard-0.csv", csv(rows.slice(0, 20))),
    fixture("shard-1.csv.gz", Buffer.from(csv(rows.slice(20)))),
  ];
  // The second shard is plain text despite the name: compression "none" reads it as such.

  it("fitEncoders in one pass equals fitting in memory", async () => {
    const plain = [fixture("s0.csv", csv(rows.slice(0, 20))), fixture("s1.csv", csv(rows.slice(20)))];
    const streamed = await fitEncoders({ path: plain }, schema);
    const inMemory = (await loadDataset({ path: plain }, schema)).encoders;
    expect((streamed.fields.user_id as VocabularyEncoder).values).toEqual(
      (inMemory.fields.user_id as VocabularyEncoder).values,
    );
    const [a, b] = [streamed.fields.price as StandardScaler, inMemory.fields.price as StandardScaler];
    expect(a.mean).toBeCloseTo(b.mean, 9);
    expect(a.std).toBeCloseTo(b.std, 9);
  });

  it("streams chunks of at most chunkRows rows that concatenate to the in-memory dataset", async () => {
    const source = { path: shards, compression: "none" as const };
    const { dataset, encoders } = await loadDataset(source, schema);
    const stream = streamDataset(source, schema, { encoders, chunkRows: 16 });
    const chunks: ColumnarDataset[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.map((chunk) => chunk.numRows)).toEqual([16, 16, 16, 2]);
    const joined = concatDatasets(chunks);
    for (const name of Object.keys(dataset.columns))
      expect(Array.from(joined.columns[name]!)).toEqual(Array.from(dataset.columns[name]!));
    expect(Array.from(joined.groupIds!)).toEqual(Array.from(dataset.groupIds!));
    expect(stream.report.rowsLoaded).toBe(50);
    expect(stream.report.files).toEqual(shards);
  });

  it("stopping a stream early and batching chunks leaks no tensor", async () => {
    const source = { path: shards, compression: "none" as const };
    const encoders = await fitEncoders(source, schema);
    const before = tf.memory().numTensors;
    for await (const chunk of streamDataset(source, schema, { encoders, chunkRows: 10 })) {
      for (const batch of iterateBatches(chunk, { batchSize: 4, shuffle: true })) {
        disposeBatch(batch);
        break;
      }
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it("needs fitted encoders", () => {
    expect(() => streamDataset(shards, schema, {} as never)).toThrow(
      "streamDataset needs fitted encoders (fitEncoders or loadDataset), received undefined",
    );
  });
});

describe("inspect", () => {
  it("reports rows, per-domain counts and label rates, cardinalities and skipped rows", async () => {
    const path = fixture("inspect.csv", csv([...ROWS, "u5,i5,1,9,app,1"]));
    const report = await inspect(path, schema);
    expect(report.rows).toBe(4);
    expect(report.domains).toEqual([
      { id: 0, name: "app", rows: 2, labelRates: { click: 1 } },
      { id: 1, name: "web", rows: 2, labelRates: { click: 0 } },
    ]);
    expect(report.labelRates).toEqual({ click: 0.5 });
    expect(report.fields.user_id).toEqual({ kind: "categorical", column: "user", cardinality: 3 });
    expect(report.fields.price).toMatchObject({ kind: "numeric", min: 10, max: 40, mean: 25 });
    expect(report.users).toBe(3);
    expect(report.skipped).toHaveLength(1);
    expect(report.skipped[0]).toMatchObject({ reason: "label outside its rule", count: 1 });
  });
});
