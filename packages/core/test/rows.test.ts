import "@tensorflow/tfjs-backend-wasm";
import {
  ConfigError,
  gatherConcatRows,
  gatherRows,
  registerFastKernels,
  SeededRandom,
  ShapeError,
  scatterAddRows,
  unregisterFastKernels,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { expectNoLeak, maxAbsDifference } from "./helpers.js";

const ids = () => tf.tensor1d([2, 0, 2, 2, 4], "int32");

describe("gatherRows", () => {
  it("selects rows like tf.gather, for rank 2 and rank 3 tables", () => {
    const table = tf.tensor2d([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
      [8, 9],
    ]);
    expect(Array.from(gatherRows(table, ids()).dataSync())).toEqual([4, 5, 0, 1, 4, 5, 4, 5, 8, 9]);
    const cube = tf.reshape(tf.range(0, 30), [5, 3, 2]);
    expect(gatherRows(cube, ids()).shape).toEqual([5, 3, 2]);
    expect(maxAbsDifference(gatherRows(cube, ids()).dataSync(), tf.gather(cube, ids()).dataSync())).toBe(0);
  });

  it("has the gradient of the stock tf.gather, accumulating repeated ids", () => {
    for (const shape of [
      [5, 3],
      [5, 2, 2],
    ]) {
      const table = tf.randomNormal(shape, 0, 1, "float32", 1);
      const upstream = tf.randomNormal([5, ...shape.slice(1)], 0, 1, "float32", 2);
      const ours = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, ids()), upstream)))(table);
      const stock = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids()), upstream)))(table);
      expect(maxAbsDifference(ours.dataSync(), stock.dataSync())).toBeLessThan(1e-6);
      // Row 2 is gathered three times: its gradient is the sum of three upstream rows.
      const width = shape.slice(1).reduce((a, b) => a * b, 1);
      const upstreamRows = tf.reshape(upstream, [5, width]).arraySync() as number[][];
      const row2 = (tf.reshape(ours, [5, width]).arraySync() as number[][])[2]!;
      row2.forEach((value, column) => {
        expect(value).toBeCloseTo(
          upstreamRows[0]![column]! + upstreamRows[2]![column]! + upstreamRows[3]![column]!,
          5,
        );
      });
      expect((tf.reshape(ours, [5, width]).arraySync() as number[][])[1]).toEqual(new Array(width).fill(0));
    }
  });

  it("leaks no tensors, with or without a gradient tape", () => {
    const table = tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", 3));
    const other = tf.variable(tf.ones([1]));
    const indices = ids();
    expectNoLeak(() => tf.tidy(() => gatherRows(table, indices)));
    expectNoLeak(() => tf.grad((t: tf.Tensor) => tf.sum(gatherRows(t, indices)))(table));
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(gatherRows(table, indices))) as tf.Scalar,
        [table],
      );
      return [value, ...Object.values(grads)];
    });
    // Recorded on the tape but not differentiated: its saved tensors are still released.
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.add(tf.sum(other), tf.mul(tf.sum(gatherRows(table, indices)), 0)) as tf.Scalar,
        [other],
      );
      return [value, ...Object.values(grads)];
    });
    table.dispose();
    other.dispose();
  });

  it("rejects non-int32 or non-vector ids and scalar tables with a ShapeError", () => {
    const table = tf.ones([3, 2]);
    expect(() => gatherRows(table, tf.tensor1d([0, 1]))).toThrow(ShapeError);
    expect(() => gatherRows(table, tf.tensor1d([0, 1]))).toThrow(
      "gatherRows indices must have dtype int32, received float32",
    );
    expect(() => gatherRows(table, tf.tensor2d([[0]], [1, 1], "int32") as unknown as tf.Tensor1D)).toThrow(
      "gatherRows indices must have rank 1, received shape [1, 1]",
    );
    expect(() => gatherRows(tf.scalar(1), tf.tensor1d([0], "int32"))).toThrow(
      "gatherRows table must have rank >= 1, received a scalar",
    );
    expect(() => gatherRows(undefined as unknown as tf.Tensor, tf.tensor1d([0], "int32"))).toThrow(
      "gatherRows table must be a tf.Tensor, received undefined",
    );
  });
});

describe("scatterAddRows", () => {
  it("sums rows into their destinations like tf.unsortedSegmentSum", () => {
    const values = tf.tensor2d([
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
      [9, 10],
    ]);
    const summed = scatterAddRows(values, ids(), 6);
    expect(summed.arraySync()).toEqual([
      [3, 4],
      [0, 0],
      [1 + 5 + 7, 2 + 6 + 8],
      [0, 0],
      [9, 10],
      [0, 0],
    ]);
    expect(maxAbsDifference(summed.dataSync(), tf.unsortedSegmentSum(values, ids(), 6).dataSync())).toBe(0);
  });

  it("has the gradient of the stock tf.unsortedSegmentSum (a gather of the upstream rows)", () => {
    const values = tf.randomNormal([5, 2, 3], 0, 1, "float32", 4);
    const upstream = tf.randomNormal([6, 2, 3], 0, 1, "float32", 5);
    const ours = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(scatterAddRows(v, ids(), 6), upstream)))(values);
    const stock = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.unsortedSegmentSum(v, ids(), 6), upstream)))(
      values,
    );
    expect(maxAbsDifference(ours.dataSync(), stock.dataSync())).toBeLessThan(1e-6);
  });

  it("leaks no tensors, with or without a gradient tape", () => {
    const values = tf.variable(tf.randomNormal([5, 3], 0, 1, "float32", 6));
    const indices = ids();
    expectNoLeak(() => tf.tidy(() => scatterAddRows(values, indices, 5)));
    expectNoLeak(() => {
      const { value, grads } = tf.variableGrads(
        () => tf.sum(tf.square(scatterAddRows(values, indices, 5))) as tf.Scalar,
        [values],
      );
      return [value, ...Object.values(grads)];
    });
    // Ids created inside the tidy are released with it, although the tape kept a copy.
    expectNoLeak(() =>
      tf.tidy(() => {
        const local = tf.tensor1d([1, 1, 0, 3, 4], "int32");
        const { value, grads } = tf.variableGrads(
          () => tf.sum(scatterAddRows(values, local, 5)) as tf.Scalar,
          [values],
        );
        return [value, ...Object.values(grads)];
      }),
    );
    values.dispose();
  });

  it("rejects mismatched lengths, wrong ids and a bad row count", () => {
    const values = tf.ones([5, 2]);
    expect(() => scatterAddRows(values, tf.tensor1d([0, 1], "int32"), 3)).toThrow(ShapeError);
    expect(() => scatterAddRows(values, tf.tensor1d([0, 1], "int32"), 3)).toThrow(
      "scatterAddRows indices must have shape [5], received [2]",
    );
    expect(() => scatterAddRows(values, tf.ones([5]) as tf.Tensor1D, 3)).toThrow(
      "scatterAddRows indices must have dtype int32, received float32",
    );
    expect(() => scatterAddRows(values, ids(), 0)).toThrow(ConfigError);
    expect(() => scatterAddRows(values, ids(), 0)).toThrow(
      "scatterAddRows numRows must be an integer >= 1, received 0",
    );
    expect(() => scatterAddRows(tf.scalar(1), ids(), 2)).toThrow(
      "scatterAddRows values must have rank >= 1, received a scalar",
    );
  });
});

describe("gatherConcatRows", () => {
  const run = () =>
    tf.tidy(() => {
      const first = tf.tensor2d([0, 1, 2, 3, 4, 5], [3, 2]);
      const second = tf.tensor2d([10, 20, 30], [3, 1]);
      const firstIds = tf.tensor1d([2, 0, 2], "int32");
      const secondIds = tf.tensor1d([1, 1, 0], "int32");
      const probe = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9], [3, 3]);
      const value = gatherConcatRows([first, second], [firstIds, secondIds]);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(gatherConcatRows([a as tf.Tensor2D, b as tf.Tensor2D], [firstIds, secondIds]), probe)),
      )([first, second]);
      return [value, ...grads].map((tensor) => Array.from(tensor.dataSync()));
    });

  it("joins the lookups side by side and scatters the gradient back to each table", () => {
    const [value, firstGrad, secondGrad] = run();
    // rows: [first[2], second[1]], [first[0], second[1]], [first[2], second[0]]
    expect(value).toEqual([4, 5, 20, 0, 1, 20, 4, 5, 10]);
    // first[2] receives probe columns 0-1 of rows 0 and 2, first[0] those of row 1
    expect(firstGrad).toEqual([4, 5, 0, 0, 1 + 7, 2 + 8]);
    // second[1] receives probe column 2 of rows 0 and 1, second[0] that of row 2
    expect(secondGrad).toEqual([9, 3 + 6, 0]);
  });

  // 200 rows over small tables: many repeated ids, so the order of the sums shows in the bits.
  const runLarge = () =>
    tf.tidy(() => {
      const random = new SeededRandom(3);
      const tables = [
        tf.randomNormal([50, 7], 0, 1, "float32", 1),
        tf.randomNormal([30, 16], 0, 1, "float32", 2),
      ] as tf.Tensor2D[];
      const ids = tables.map((table) =>
        tf.tensor1d(
          Array.from({ length: 200 }, () => random.nextInt(table.shape[0])),
          "int32",
        ),
      );
      const probe = tf.randomNormal([200, 23], 0, 1, "float32", 4);
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(gatherConcatRows([a as tf.Tensor2D, b as tf.Tensor2D], ids), probe)),
      )(tables);
      return grads.map((tensor) => Array.from(tensor.dataSync()));
    });

  it("gives the same values and gradients on wasm with the fast kernels (native copy or TypeScript loop), without leaking", async () => {
    const cpu = run();
    const largeOnCpu = runLarge();
    await tf.setBackend("wasm");
    await tf.ready();
    try {
      for (const nativeGemm of [true, false]) {
        registerFastKernels("wasm", { nativeGemm });
        expect(run()).toEqual(cpu);
        expect(runLarge()).toEqual(largeOnCpu);
        const before = tf.memory().numTensors;
        run();
        expect(tf.memory().numTensors).toBe(before);
        const table = tf.zeros([3, 2]) as tf.Tensor2D;
        const badIds = tf.tensor1d([0, 3], "int32");
        const goodIds = tf.tensor1d([1, 1], "int32");
        const negativeIds = tf.tensor1d([-1, 0], "int32");
        expect(() => gatherConcatRows([table], [badIds])).toThrow(/field 0 row 1 has id 3, not in \[0, 2\]/);
        expect(() => gatherConcatRows([table, table], [goodIds, negativeIds])).toThrow(
          /field 1 row 0 has id -1, not in \[0, 2\]/,
        );
        // The failed calls left no output behind.
        expect(tf.memory().numTensors).toBe(before + 4);
        tf.dispose([table, badIds, goodIds, negativeIds]);
      }
    } finally {
      unregisterFastKernels("wasm");
      await tf.setBackend("cpu");
    }
  });

  it("rejects mismatched lists and shapes, naming them", () => {
    const table = tf.zeros([3, 2]) as tf.Tensor2D;
    const column = tf.tensor1d([0, 1], "int32");
    expect(() => gatherConcatRows([table], [])).toThrow(
      new ShapeError(
        "gatherConcatRows needs one id tensor per table and at least one table, received 1 tables and 0 id tensors",
      ),
    );
    expect(() => gatherConcatRows([table, table], [column, tf.tensor1d([0], "int32")])).toThrow(
      /gatherConcatRows ids\[1\]/,
    );
    expect(() => gatherConcatRows([tf.zeros([3]) as unknown as tf.Tensor2D], [column])).toThrow(
      /gatherConcatRows tables\[0\]/,
    );
    tf.dispose([table, column]);
  });
});
