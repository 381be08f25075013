import "@tensorflow/tfjs-backend-wasm";
import { ConfigError, disposeBatch } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { type ColumnarDataset, epochRowOrder, iterateBatches, numBatches } from "../src/index.js";

/** 10 rows, 2 tasks; row r has user_id r + 1, score r / 10, domain r % 3, labels [r % 2, 1 - r % 2]. */
function tinyDataset(numRows = 10): ColumnarDataset {
  const labels = new Float32Array(numRows * 2);
  for (let row = 0; row < numRows; row++) {
    labels[row * 2] = row % 2;
    labels[row * 2 + 1] = 1 - (row % 2);
  }
  return {
    features: [
      { kind: "categorical", name: "user_id", vocabularySize: numRows + 1 },
      { kind: "numeric", name: "score" },
    ],
    columns: {
      user_id: Int32Array.from({ length: numRows }, (_, row) => row + 1),
      score: Float32Array.from({ length: numRows }, (_, row) => row / 10),
      timestamp: Int32Array.from({ length: numRows }, (_, row) => 1000 + row),
    },
    domainIds: Int32Array.from({ length: numRows }, (_, row) => row % 3),
    labels,
    numRows,
    numTasks: 2,
    numDomains: 3,
    domainNames: ["a", "b", "c"],
    taskNames: ["click", "like"],
  };
}

function rowsOf(
  batches: Iterable<ReturnType<typeof iterateBatches> extends Generator<infer B> ? B : never>,
): number[][] {
  const result: number[][] = [];
  for (const batch of batches) {
    result.push(Array.from(batch.features.user_id!.dataSync(), (id) => id - 1));
    disposeBatch(batch);
  }
  return result;
}

describe("numBatches", () => {
  it("counts full and partial batches", () => {
    expect(numBatches(10, 4)).toBe(3);
    expect(numBatches(10, 4, true)).toBe(2);
    expect(numBatches(8, 4, true)).toBe(2);
    expect(numBatches(0, 4)).toBe(0);
    expect(() => numBatches(10, 0)).toThrow("batchSize must be an integer >= 1, received 0");
  });
});

describe("iterateBatches", () => {
  it("yields tensors with the documented dtypes, shapes and values (golden batch)", () => {
    const [first] = iterateBatches(tinyDataset(), { batchSize: 4 });
    expect(first!.features.user_id!.dtype).toBe("int32");
    expect(Array.from(first!.features.user_id!.dataSync())).toEqual([1, 2, 3, 4]);
    expect(first!.features.score!.dtype).toBe("float32");
    expect(first!.features.score!.arraySync()).toEqual([0, 0.1, 0.2, 0.3].map(Math.fround));
    expect(first!.domainIds.dtype).toBe("int32");
    expect(first!.domainIds.arraySync()).toEqual([0, 1, 2, 0]);
    expect(first!.labels.shape).toEqual([4, 2]);
    expect(first!.labels.arraySync()).toEqual([
      [0, 1],
      [1, 0],
      [0, 1],
      [1, 0],
    ]);
    // Only the declared features are batched, not extra columns such as timestamp.
    expect(Object.keys(first!.features)).toEqual(["user_id", "score"]);
    disposeBatch(first!);
  });

  it("covers every row exactly once per epoch, with and without shuffle and dropLast", () => {
    const dataset = tinyDataset(103);
    for (const shuffle of [false, true]) {
      const rows = rowsOf(iterateBatches(dataset, { batchSize: 16, shuffle, seed: 5 }));
      expect(rows.map((batch) => batch.length)).toEqual([16, 16, 16, 16, 16, 16, 7]);
      expect(rows.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 103 }, (_, row) => row));
    }
    const dropped = rowsOf(iterateBatches(dataset, { batchSize: 16, dropLast: true }));
    expect(dropped).toHaveLength(6);
    expect(new Set(dropped.flat()).size).toBe(96);
  });

  it("shuffles with the seed and epoch: same inputs same order, different epoch different order", () => {
    const dataset = tinyDataset(50);
    const order = (seed: number, epoch: number) =>
      rowsOf(iterateBatches(dataset, { batchSize: 50, shuffle: true, seed, epoch }))[0];
    expect(order(1, 0)).toEqual(order(1, 0));
    expect(order(1, 0)).not.toEqual(order(1, 1));
    expect(order(1, 0)).not.toEqual(order(2, 0));
    expect(order(1, 0)).not.toEqual(Array.from({ length: 50 }, (_, row) => row));
    expect(Array.from(epochRowOrder(50, { shuffle: true, seed: 1, epoch: 1 }))).toEqual(order(1, 1));
  });

  it("startBatch resumes mid-epoch and yields exactly the remainder", () => {
    const dataset = tinyDataset(37);
    const options = { batchSize: 5, shuffle: true, seed: 9, epoch: 3 };
    const full = rowsOf(iterateBatches(dataset, options));
    expect(rowsOf(iterateBatches(dataset, { ...options, startBatch: 3 }))).toEqual(full.slice(3));
    expect(rowsOf(iterateBatches(dataset, { ...options, startBatch: full.length }))).toEqual([]);
  });

  it("creates one batch at a time: stopping early leaks no tensor", () => {
    const dataset = tinyDataset(40);
    const before = tf.memory().numTensors;
    const iterator = iterateBatches(dataset, { batchSize: 4, shuffle: true });
    expect(tf.memory().numTensors).toBe(before);
    const first = iterator.next().value!;
    // 2 features + domainIds + labels, nothing prefetched.
    expect(tf.memory().numTensors).toBe(before + 4);
    disposeBatch(first);
    for (const batch of iterator) {
      disposeBatch(batch);
      break;
    }
    expect(tf.memory().numTensors).toBe(before);
    // A batch used inside tf.tidy leaves nothing behind either.
    tf.tidy(() => {
      const [batch] = iterateBatches(dataset, { batchSize: 8 });
      return tf.sum(batch!.labels);
    }).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it("gives identical batches on the wasm backend", async () => {
    const dataset = tinyDataset(12);
    const cpu = [...iterateBatches(dataset, { batchSize: 5, shuffle: true, seed: 2 })].map((batch) => {
      const values = [
        batch.features.user_id!.arraySync(),
        batch.features.score!.arraySync(),
        batch.labels.arraySync(),
      ];
      disposeBatch(batch);
      return values;
    });
    try {
      await tf.setBackend("wasm");
      await tf.ready();
      const wasm = [...iterateBatches(dataset, { batchSize: 5, shuffle: true, seed: 2 })].map((batch) => {
        expect(tf.getBackend()).toBe("wasm");
        const values = [
          batch.features.user_id!.arraySync(),
          batch.features.score!.arraySync(),
          batch.labels.arraySync(),
        ];
        disposeBatch(batch);
        return values;
      });
      expect(wasm).toEqual(cpu);
    } finally {
      await tf.setBackend("cpu");
    }
  });

  it("rejects invalid options before the first batch, naming the option and value", () => {
    const dataset = tinyDataset();
    expect(() => iterateBatches(dataset, { batchSize: 0 })).toThrow(ConfigError);
    expect(() => iterateBatches(dataset, { batchSize: 0 })).toThrow(
      "batchSize must be an integer >= 1, received 0",
    );
    expect(() => iterateBatches(dataset, { batchSize: 2.5 })).toThrow("received 2.5");
    expect(() => iterateBatches(dataset, { batchSize: 4, startBatch: 4 })).toThrow(
      "startBatch must be an integer in [0, numBatches=3], received 4",
    );
    expect(() => iterateBatches(dataset, { batchSize: 4, suffle: true } as never)).toThrow(
      'Unknown key "suffle" in iterateBatches options. Did you mean "shuffle"?',
    );
    expect(() => iterateBatches(dataset, { batchSize: 4, epoch: -1 })).toThrow(
      "epoch must be an integer >= 0, received -1",
    );
    const missing = { ...dataset, columns: { score: dataset.columns.score! } };
    expect(() => iterateBatches(missing, { batchSize: 4 })).toThrow(
      'dataset.columns has no column for feature "user_id"',
    );
  });
});
