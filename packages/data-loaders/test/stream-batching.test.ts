import "@tensorflow/tfjs-backend-wasm";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Batch, ConfigError, DataError, disposeBatch } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";
import {
  type ColumnarDataset,
  concatDatasets,
  type DataSchema,
  iterateBatches,
  loadDataset,
  type StreamBatchOptions,
  streamBatches,
  streamDataset,
} from "../src/index.js";
import { caught, temporaryDirectory } from "./helpers.js";

const TOTAL_ROWS = 1000;

/**
 * Rows `[start, start + numRows)` of one stream, 2 tasks; global row r has user_id r + 1,
 * score = chunk index, domain r % 3, labels [r % 2, 1 - r % 2].
 */
function chunkOf(start: number, numRows: number, chunkIndex: number): ColumnarDataset {
  const labels = new Float32Array(numRows * 2);
  for (let row = 0; row < numRows; row++) {
    labels[row * 2] = (start + row) % 2;
    labels[row * 2 + 1] = 1 - ((start + row) % 2);
  }
  return {
    features: [
      { kind: "categorical", name: "user_id", vocabularySize: TOTAL_ROWS + 1 },
      { kind: "numeric", name: "score" },
    ],
    columns: {
      user_id: Int32Array.from({ length: numRows }, (_, row) => start + row + 1),
      score: new Float32Array(numRows).fill(chunkIndex),
    },
    domainIds: Int32Array.from({ length: numRows }, (_, row) => (start + row) % 3),
    labels,
    numRows,
    numTasks: 2,
    numDomains: 3,
    domainNames: ["a", "b", "c"],
    taskNames: ["click", "like"],
  };
}

/** Consecutive chunks of the given sizes. */
function chunksOf(sizes: number[]): ColumnarDataset[] {
  let start = 0;
  return sizes.map((size, index) => {
    const chunk = chunkOf(start, size, index);
    start += size;
    return chunk;
  });
}

interface Instrumented extends AsyncIterable<ColumnarDataset> {
  /** "pull k" when chunk k is requested, "return" when the consumer closes the source. */
  events: string[];
}

/**
 * An async chunk source that resolves each chunk after a few microtasks and records when chunks
 * are requested and when it is closed. `failAt` makes the pull of that chunk throw. Microtasks
 * (not timers) keep the tests deterministic: a consumer step that waits for a macrotask sees all
 * the work the producer could do meanwhile.
 */
function instrumentedSource(chunks: ColumnarDataset[], events: string[] = [], failAt?: number): Instrumented {
  return {
    events,
    [Symbol.asyncIterator]() {
      let index = 0;
      return {
        async next(): Promise<IteratorResult<ColumnarDataset>> {
          const current = index++;
          events.push(`pull ${current}`);
          for (let tick = 0; tick < 3; tick++) await null;
          if (current === failAt) throw new DataError(`source failed reading chunk ${current}`);
          if (current >= chunks.length) return { done: true, value: undefined };
          return { done: false, value: chunks[current]! };
        },
        async return(): Promise<IteratorResult<ColumnarDataset>> {
          events.push("return");
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/** Global row index of every row of every batch, disposing the batches. */
async function rowsOf(batches: AsyncIterable<Batch>): Promise<number[][]> {
  const result: number[][] = [];
  for await (const batch of batches) {
    result.push(Array.from(batch.features.user_id!.dataSync(), (id) => id - 1));
    disposeBatch(batch);
  }
  return result;
}

function tensorsOf(batch: Batch) {
  const values = {
    user_id: [
      batch.features.user_id!.dtype,
      batch.features.user_id!.shape,
      batch.features.user_id!.arraySync(),
    ],
    score: [batch.features.score!.dtype, batch.features.score!.shape, batch.features.score!.arraySync()],
    domainIds: [batch.domainIds.dtype, batch.domainIds.shape, batch.domainIds.arraySync()],
    labels: [batch.labels.dtype, batch.labels.shape, batch.labels.arraySync()],
  };
  disposeBatch(batch);
  return values;
}

const range = (start: number, end: number) =>
  Array.from({ length: end - start }, (_, index) => start + index);

describe("streamBatches", () => {
  it("keeps stream order across chunk boundaries without a shuffle buffer (golden)", async () => {
    const sizes = [4, 3, 5];
    expect(await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 5 }))).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
      [10, 11],
    ]);
    expect(await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 5, dropLast: true }))).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
    ]);
    expect(await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 12, dropLast: true }))).toEqual([
      range(0, 12),
    ]);
    // A one-row buffer is stream order too.
    expect(await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 5, shuffleBuffer: 1 }))).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
      [10, 11],
    ]);
  });

  it("builds batches with the tensor layout and values of iterateBatches", async () => {
    const chunks = chunksOf([4, 3, 5]);
    const streamed: ReturnType<typeof tensorsOf>[] = [];
    for await (const batch of streamBatches(instrumentedSource(chunks), { batchSize: 5 }))
      streamed.push(tensorsOf(batch));
    const inMemory = [...iterateBatches(concatDatasets(chunks), { batchSize: 5 })].map(tensorsOf);
    expect(streamed).toEqual(inMemory);
    // The second batch spans chunks 1 and 2 (score holds the chunk index).
    expect(streamed[1]!.score).toEqual(["float32", [5], [1, 1, 2, 2, 2]]);
    expect(streamed[1]!.user_id).toEqual(["int32", [5], [6, 7, 8, 9, 10]]);
    expect(streamed[1]!.domainIds).toEqual(["int32", [5], [2, 0, 1, 2, 0]]);
    expect(streamed[1]!.labels).toEqual([
      "float32",
      [5, 2],
      [
        [1, 0],
        [0, 1],
        [1, 0],
        [0, 1],
        [1, 0],
      ],
    ]);
  });

  it("yields every row exactly once per pass with a shuffle buffer", async () => {
    const sizes = [30, 1, 0, 45, 27];
    for (const shuffleBuffer of [2, 7, 40, 1000]) {
      const rows = await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 16, shuffleBuffer, seed: 3 }));
      expect(rows.map((batch) => batch.length)).toEqual([16, 16, 16, 16, 16, 16, 7]);
      expect(rows.flat().sort((a, b) => a - b)).toEqual(range(0, 103));
      expect(rows.flat()).not.toEqual(range(0, 103));
      const dropped = await rowsOf(
        streamBatches(chunksOf(sizes), { batchSize: 16, shuffleBuffer, seed: 3, dropLast: true }),
      );
      expect(dropped).toEqual(rows.slice(0, 6));
    }
  });

  it("shuffles by the seed: same seed same batches (whatever the chunking), other seed other order", async () => {
    const order = async (seed: number, sizes = [50, 50, 50]) =>
      (await rowsOf(streamBatches(chunksOf(sizes), { batchSize: 10, shuffleBuffer: 32, seed }))).flat();
    const first = await order(1);
    expect(await order(1)).toEqual(first);
    expect(await order(1, [7, 100, 43])).toEqual(first);
    expect(await order(2)).not.toEqual(first);
    expect(first).not.toEqual(range(0, 150));
  });

  it("mixes rows across chunks: batches span chunks and early positions draw from later chunks", async () => {
    const chunks = chunksOf([100, 100, 100, 100]);
    const chunkOfRow = (row: number) => Math.floor(row / 100);
    const rows = (
      await rowsOf(streamBatches(chunks, { batchSize: 32, shuffleBuffer: 200, seed: 11 }))
    ).flat();
    expect(rows).toHaveLength(400);
    const firstBatchChunks = new Set(rows.slice(0, 32).map(chunkOfRow));
    expect(firstBatchChunks.size).toBeGreaterThanOrEqual(2);
    // The first 10% of the output draws from a buffer holding chunks 0 and 1 (then 2) about
    // equally: its mean source chunk is about 0.5, where stream order gives 0.
    const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
    const head = rows.slice(0, 40).map(chunkOfRow);
    expect(mean(head)).toBeGreaterThan(0.3);
    // Every chunk reaches the second half of the output, and chunk 3 rows reach the first half.
    const secondHalf = new Set(rows.slice(200).map(chunkOfRow));
    expect([...secondHalf].sort()).toEqual([0, 1, 2, 3]);
    expect(rows.slice(0, 200).map(chunkOfRow)).toContain(3);
    // Displacement: the average distance between input and output position is large.
    const displacement = mean(rows.map((row, position) => Math.abs(row - position)));
    expect(displacement).toBeGreaterThan(50);
  });

  it("prefetch 1 requests the next chunk while the consumer trains on the current batch", async () => {
    const run = async (prefetch: number) => {
      const events: string[] = [];
      const heldTensors: number[] = [];
      const before = tf.memory().numTensors;
      const iterator = streamBatches(instrumentedSource(chunksOf([10, 10, 10, 10]), events), {
        batchSize: 10,
        prefetch,
      });
      for (let step = 0; ; step++) {
        events.push(`ask ${step}`);
        const result = await iterator.next();
        if (result.done) break;
        events.push(`receive ${step}`);
        // A training step that yields to the event loop, as an awaited fit step does.
        await new Promise((resolve) => setImmediate(resolve));
        heldTensors.push(tf.memory().numTensors - before);
        disposeBatch(result.value);
      }
      expect(tf.memory().numTensors).toBe(before);
      return { events, heldTensors };
    };
    const prefetched = await run(1);
    for (let chunk = 1; chunk < 4; chunk++) {
      // Chunk k + 1 is pulled before the consumer has finished batch k and asked for batch k + 1.
      expect(prefetched.events.indexOf(`pull ${chunk}`)).toBeLessThan(
        prefetched.events.indexOf(`ask ${chunk}`),
      );
      expect(prefetched.events.indexOf(`pull ${chunk}`)).toBeLessThan(
        prefetched.events.indexOf(`receive ${chunk - 1}`),
      );
    }
    // While the consumer trains, the next batch's 4 tensors exist already (none after the last).
    expect(prefetched.heldTensors).toEqual([8, 8, 8, 4]);

    const lazy = await run(0);
    for (let chunk = 1; chunk < 4; chunk++) {
      expect(lazy.events.indexOf(`pull ${chunk}`)).toBeGreaterThan(lazy.events.indexOf(`ask ${chunk}`));
    }
    expect(lazy.heldTensors).toEqual([4, 4, 4, 4]);
    expect((await run(2)).heldTensors).toEqual([12, 12, 8, 4]);
  });

  it("stopping early disposes the prefetched batches and closes the source", async () => {
    const before = tf.memory().numTensors;
    for (const prefetch of [0, 1, 3]) {
      const source = instrumentedSource(chunksOf([10, 10, 10, 10, 10]));
      let seen = 0;
      for await (const batch of streamBatches(source, { batchSize: 4, shuffleBuffer: 8, prefetch })) {
        disposeBatch(batch);
        if (++seen === 2) break;
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(source.events.filter((event) => event === "return")).toHaveLength(1);
      expect(source.events).not.toContain("pull 5");
    }

    // A throw in the consumer's loop body.
    const throwing = instrumentedSource(chunksOf([10, 10, 10]));
    const error = await caught(async () => {
      for await (const batch of streamBatches(throwing, { batchSize: 5, prefetch: 2 })) {
        disposeBatch(batch);
        throw new Error("training step failed");
      }
    });
    expect(error.message).toBe("training step failed");
    expect(tf.memory().numTensors).toBe(before);
    expect(throwing.events).toContain("return");

    // An explicit return() right after the first batch, and one before any batch.
    const explicit = instrumentedSource(chunksOf([10, 10]));
    const iterator = streamBatches(explicit, { batchSize: 3, prefetch: 2 });
    const first = await iterator.next();
    disposeBatch(first.value as Batch);
    expect(await iterator.return(undefined)).toEqual({ done: true, value: undefined });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(tf.memory().numTensors).toBe(before);
    expect(explicit.events).toContain("return");
    const untouched = instrumentedSource(chunksOf([10]));
    await streamBatches(untouched, { batchSize: 3 }).return(undefined);
    expect(untouched.events).toEqual([]);
  });

  it("passes a source error to the consumer after the batches produced before it", async () => {
    const before = tf.memory().numTensors;
    const received: number[][] = [];
    const source = instrumentedSource(chunksOf([10, 10, 10]), [], 2);
    const error = await caught(async () => {
      for await (const batch of streamBatches(source, { batchSize: 5, prefetch: 3 })) {
        received.push(Array.from(batch.features.user_id!.dataSync(), (id) => id - 1));
        disposeBatch(batch);
        // The prefetched pull of chunk 2 fails during this step, before the consumer asks for it:
        // that must not surface as an unhandled rejection.
        await new Promise((resolve) => setImmediate(resolve));
      }
    });
    expect(error).toBeInstanceOf(DataError);
    expect(error.message).toBe("source failed reading chunk 2");
    expect(received).toEqual([range(0, 5), range(5, 10), range(10, 15), range(15, 20)]);
    expect(tf.memory().numTensors).toBe(before);
    // The source failed by itself: it is not closed a second time.
    expect(source.events).not.toContain("return");
  });

  it("matches loadDataset + iterateBatches when fed by streamDataset", async () => {
    const directory = temporaryDirectory();
    afterAll(directory.cleanup);
    const lines = Array.from(
      { length: 37 },
      (_, row) => `u${row % 7},i${row % 5},${row},${1 + (row % 5)},${row % 3 === 0 ? "web" : "app"}`,
    );
    const path = join(directory.path, "events.csv");
    writeFileSync(path, `user,item,price,rating,scenario\n${lines.join("\n")}\n`);
    const schema: DataSchema = {
      features: [
        { kind: "categorical", name: "user_id", column: "user" },
        { kind: "categorical", name: "item_id", column: "item" },
        { kind: "numeric", name: "price" },
      ],
      domain: { column: "scenario", mapping: { app: 0, web: 1 } },
      labels: [{ name: "click", column: "rating", rule: { op: ">=", value: 4 }, range: [1, 5] }],
    };
    const { dataset, encoders } = await loadDataset(path, schema);
    const values = (batch: Batch) => {
      const result = [
        ...Object.values(batch.features).map((tensor) => tensor.arraySync()),
        batch.domainIds.arraySync(),
        batch.labels.arraySync(),
      ];
      disposeBatch(batch);
      return result;
    };
    const streamed: unknown[] = [];
    const chunks = streamDataset(path, schema, { encoders, chunkRows: 8 });
    for await (const batch of streamBatches(chunks, { batchSize: 5 })) streamed.push(values(batch));
    expect(streamed).toEqual([...iterateBatches(dataset, { batchSize: 5 })].map(values));
    const shuffled = await rowsOf(
      streamBatches(streamDataset(path, schema, { encoders, chunkRows: 8 }), {
        batchSize: 5,
        shuffleBuffer: 16,
      }),
    );
    expect(shuffled.flat()).toHaveLength(37);
  });

  it("gives identical batches on the wasm backend", async () => {
    const options: StreamBatchOptions = { batchSize: 6, shuffleBuffer: 9, seed: 4 };
    const collect = async () => {
      const result: ReturnType<typeof tensorsOf>[] = [];
      for await (const batch of streamBatches(chunksOf([5, 11, 8]), options)) result.push(tensorsOf(batch));
      return result;
    };
    const cpu = await collect();
    try {
      await tf.setBackend("wasm");
      await tf.ready();
      const wasm = await collect();
      expect(tf.getBackend()).toBe("wasm");
      expect(wasm).toEqual(cpu);
    } finally {
      await tf.setBackend("cpu");
    }
  });

  it("rejects invalid options before reading a chunk, naming the option and value", () => {
    const source = instrumentedSource(chunksOf([4]));
    const call = (options: unknown) => () => streamBatches(source, options as StreamBatchOptions);
    expect(call({ batchSize: 0 })).toThrow(ConfigError);
    expect(call({ batchSize: 0 })).toThrow("batchSize must be an integer >= 1, received 0");
    expect(call({ batchSize: 2.5 })).toThrow("batchSize must be an integer >= 1, received 2.5");
    expect(call({ batchSize: 4, shuffleBuffer: -1 })).toThrow(
      "shuffleBuffer must be an integer >= 0, received -1",
    );
    expect(call({ batchSize: 4, prefetch: 1.5 })).toThrow("prefetch must be an integer >= 0, received 1.5");
    expect(call({ batchSize: 4, seed: "7" })).toThrow("seed must be an integer >= ");
    expect(call({ batchSize: 4, seed: "7" })).toThrow('received "7"');
    expect(call({ batchSize: 4, dropLast: "yes" })).toThrow('dropLast must be a boolean, received "yes"');
    expect(call({ batchSize: 4, shufleBuffer: 8 })).toThrow(
      'Unknown key "shufleBuffer" in streamBatches options. Did you mean "shuffleBuffer"?',
    );
    expect(call(undefined)).toThrow(
      "streamBatches options must be an object with batchSize, received undefined",
    );
    expect(() => streamBatches(42 as never, { batchSize: 4 })).toThrow(
      "streamBatches chunks must be an async iterable of ColumnarDataset (e.g. streamDataset), received 42",
    );
    expect(source.events).toEqual([]);
  });

  it("rejects a chunk that disagrees with the first, naming the chunk and the field", async () => {
    const before = tf.memory().numTensors;
    const failure = async (chunks: ColumnarDataset[]) => {
      const source = instrumentedSource(chunks);
      const error = await caught(() => rowsOf(streamBatches(source, { batchSize: 4, prefetch: 2 })));
      expect(tf.memory().numTensors).toBe(before);
      return error;
    };
    const [zero, one, two] = chunksOf([4, 4, 4]);

    const otherVocabulary = {
      ...two!,
      features: [{ ...two!.features[0]!, vocabularySize: 7 }, two!.features[1]!],
    };
    const vocabularyError = await failure([zero!, one!, otherVocabulary]);
    expect(vocabularyError).toBeInstanceOf(DataError);
    expect(vocabularyError.message).toBe(
      'chunk 2.features[0] differs from chunk 0: expected {"kind":"categorical","name":"user_id","vocabularySize":1001}, received {"kind":"categorical","name":"user_id","vocabularySize":7}',
    );

    // The same spec with its keys in another order is the same feature.
    const reordered = {
      ...one!,
      features: [{ vocabularySize: 1001, name: "user_id", kind: "categorical" as const }, one!.features[1]!],
    };
    expect((await rowsOf(streamBatches([zero!, reordered], { batchSize: 4 }))).flat()).toEqual(range(0, 8));

    const fewerFeatures = { ...one!, features: [one!.features[0]!] };
    expect((await failure([zero!, fewerFeatures])).message).toBe(
      'chunk 1.features differs from chunk 0: expected 2 features ["user_id","score"], received [{"kind":"categorical","name":"user_id","vocabularySize":1001}]',
    );

    const oneTask = { ...one!, numTasks: 1, labels: new Float32Array(4), taskNames: ["click"] };
    expect((await failure([zero!, oneTask])).message).toBe(
      "chunk 1.numTasks differs from chunk 0: expected 2, received 1",
    );

    const wrongType = { ...one!, columns: { ...one!.columns, user_id: new Float32Array(4) } };
    expect((await failure([zero!, wrongType])).message).toBe(
      "chunk 1.columns.user_id must be an Int32Array of length 4, received Float32Array of length 4",
    );

    const shortLabels = { ...zero!, labels: new Float32Array(3) };
    expect((await failure([shortLabels])).message).toBe(
      "chunk 0.labels must be a Float32Array of length 8, received Float32Array of length 3",
    );

    expect((await failure([zero!, null as never])).message).toBe(
      "chunk 1 must be a ColumnarDataset, received null",
    );
  });
});
