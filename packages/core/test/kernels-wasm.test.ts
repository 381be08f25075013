import "@tensorflow/tfjs-backend-wasm";
import {
  denseActivation,
  gatherRows,
  registerFastKernels,
  SeededRandom,
  unregisterFastKernels,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadNativeGemm } from "../src/kernels/native-gemm.js";

// Every case runs the same inputs through the stock wasm kernels, mdrec's overrides and `cpu`.

// `fast`: the TypeScript overrides (XNNPACK matmuls); `native`: the same with the BLAS add-on.
type Mode = "stock" | "fast" | "native" | "cpu";

async function use(mode: Mode): Promise<void> {
  if (mode === "cpu") {
    await tf.setBackend("cpu");
  } else {
    await tf.setBackend("wasm");
    if (mode === "stock") unregisterFastKernels("wasm");
    else registerFastKernels("wasm", { nativeGemm: mode === "native" });
  }
  await tf.ready();
}

// The add-on needs a C compiler and a BLAS library; where they are missing only `fast` runs.
const native = loadNativeGemm();
const MATMUL_MODES: Mode[] = native.available ? ["stock", "fast", "native", "cpu"] : ["stock", "fast", "cpu"];
const MODES_WITHOUT_STOCK = MATMUL_MODES.filter((mode) => mode !== "stock");

type Output = { values: Float32Array; shape: number[] };
/** Every mode asked for is present; `native` only where the add-on loads. */
type Results = Record<"stock" | "fast" | "cpu", Output[]> & { native?: Output[] };

/** Runs `compute` in each mode on fresh copies of `inputs`, returning plain values. */
async function across(
  modes: Mode[],
  inputs: { values: Float32Array; shape: number[] }[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<Results> {
  const results = {} as Results;
  for (const mode of modes) {
    await use(mode);
    results[mode] = tf.tidy(() => {
      const tensors = inputs.map((input) => tf.tensor(input.values, input.shape, "float32"));
      const output = compute(...tensors);
      return (Array.isArray(output) ? output : [output]).map((tensor) => ({
        values: tensor.dataSync() as Float32Array,
        shape: tensor.shape,
      }));
    });
  }
  return results;
}

function randomInput(random: SeededRandom, shape: number[]): { values: Float32Array; shape: number[] } {
  const values = new Float32Array(shape.reduce((product, size) => product * size, 1));
  for (let index = 0; index < values.length; index++) values[index] = random.next() * 2 - 1;
  return { values, shape };
}

/** Largest |actual - expected| / max(1, |expected|). */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let index = 0; index < actual.length; index++) {
    const scale = Math.max(1, Math.abs(expected[index]!));
    worst = Math.max(worst, Math.abs(actual[index]! - expected[index]!) / scale);
  }
  return worst;
}

function wasmDataIds(): number {
  return (tf.engine().findBackend("wasm") as unknown as { numDataIds(): number }).numDataIds();
}

beforeAll(async () => {
  await use("stock");
});

afterAll(async () => {
  unregisterFastKernels("wasm");
  await tf.setBackend("cpu");
});

describe("wasm BatchMatMul override", () => {
  it("matches the stock kernel and cpu on random shapes, every transpose combination and batch layout", async () => {
    const random = new SeededRandom(11);
    const layouts: { outerA: number[]; outerB: number[] }[] = [
      { outerA: [], outerB: [] },
      { outerA: [3], outerB: [3] },
      { outerA: [2, 2], outerB: [2, 2] },
      { outerA: [3], outerB: [] },
      { outerA: [], outerB: [3] },
      { outerA: [1], outerB: [4] },
      { outerA: [5], outerB: [1] },
    ];
    let cases = 0;
    for (const { outerA, outerB } of layouts) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          // Sizes cross the per-entry XNNPACK threshold in both directions, and include 1.
          const m = [1, 3, 37][random.nextInt(3)]!;
          const k = [1, 5, 40][random.nextInt(3)]!;
          const n = [1, 7, 33][random.nextInt(3)]!;
          const a = randomInput(random, [...outerA, ...(transposeA ? [k, m] : [m, k])]);
          const b = randomInput(random, [...outerB, ...(transposeB ? [n, k] : [k, n])]);
          const results = await across(MATMUL_MODES, [a, b], (x, y) =>
            tf.matMul(x!, y!, transposeA, transposeB),
          );
          for (const mode of ["fast", "native"] as const) {
            if (results[mode] === undefined) continue;
            const where = `${mode}: a ${a.shape} b ${b.shape} transposeA=${transposeA} transposeB=${transposeB}`;
            expect(results[mode][0]!.shape, where).toEqual(results.stock[0]!.shape);
            expect(relativeError(results[mode][0]!.values, results.stock[0]!.values), where).toBeLessThan(
              1e-5,
            );
            expect(relativeError(results[mode][0]!.values, results.cpu[0]!.values), where).toBeLessThan(1e-5);
          }
          cases++;
        }
      }
    }
    expect(cases).toBe(28);
  });

  it("gives the exact product on hand-computable inputs, transposed both ways", async () => {
    // a = [[1, 2], [3, 4]], b = [[5, 6], [7, 8]]: a^T b^T = [[23, 31], [34, 46]].
    await use("fast");
    const product = tf.tidy(() =>
      tf
        .matMul(
          tf.tensor2d([
            [1, 2],
            [3, 4],
          ]),
          tf.tensor2d([
            [5, 6],
            [7, 8],
          ]),
          true,
          true,
        )
        .arraySync(),
    );
    expect(product).toEqual([
      [23, 31],
      [34, 46],
    ]);
  });

  it("gives the same weight gradients as the stock kernels and cpu for a two-layer network", async () => {
    const random = new SeededRandom(5);
    const table = randomInput(random, [50, 6]);
    const kernel1 = randomInput(random, [12, 40]);
    const bias1 = randomInput(random, [40]);
    const kernel2 = randomInput(random, [3, 40, 9]);
    const target = randomInput(random, [3, 16, 9]);
    const ids = Int32Array.from({ length: 32 }, () => random.nextInt(50));
    const results = await across(MATMUL_MODES, [table, kernel1, bias1, kernel2, target], (...tensors) => {
      const [embeddings, w1, b1, w2, y] = tensors as [
        tf.Tensor2D,
        tf.Tensor2D,
        tf.Tensor1D,
        tf.Tensor3D,
        tf.Tensor3D,
      ];
      const loss = (...variables: tf.Tensor[]) => {
        const [e, first, firstBias, second] = variables as [
          tf.Tensor2D,
          tf.Tensor2D,
          tf.Tensor1D,
          tf.Tensor3D,
        ];
        const x = tf.reshape(gatherRows(e, tf.tensor1d(ids, "int32")), [16, 12]) as tf.Tensor2D; // [16, 12]
        const hidden = tf.relu(tf.add(tf.matMul(x, first), firstBias)); // [16, 40]
        const perHead = tf.matMul(tf.broadcastTo(hidden, [3, 16, 40]) as tf.Tensor3D, second); // [3, 16, 9]
        return tf.mean(tf.square(tf.sub(perHead, y))) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(loss)([embeddings, w1, b1, w2]);
      return [value, ...grads];
    });
    for (const mode of ["fast", "native"] as const) {
      results[mode]?.forEach((result, index) => {
        const where = `${mode} output ${index}`;
        expect(relativeError(result.values, results.stock[index]!.values), where).toBeLessThan(1e-5);
        expect(relativeError(result.values, results.cpu[index]!.values), where).toBeLessThan(1e-5);
      });
    }
  });

  it.each(MATMUL_MODES.filter((mode) => mode === "fast" || mode === "native"))(
    "leaves no tensors and no wasm buffers behind (%s)",
    async (mode) => {
      await use(mode);
      const a = tf.randomUniform([4, 30, 20], -1, 1, "float32", 1);
      const b = tf.randomUniform([4, 30, 50], -1, 1, "float32", 2);
      tf.tidy(() => tf.matMul(a, b, true, false)); // warm-up
      const tensors = tf.memory().numTensors;
      const buffers = wasmDataIds();
      tf.tidy(() => {
        tf.matMul(a, b, true, false);
        tf.matMul(b, a, true, false);
        tf.matMul(a, tf.randomUniform([4, 50, 20], -1, 1, "float32", 3), false, true);
        tf.sum(b, 1);
      });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(wasmDataIds()).toBe(buffers);
      tf.dispose([a, b]);
    },
  );
});

describe("wasm _FusedMatMul override", () => {
  it("regression: the stock kernel adds the bias wrongly with a transpose; ours gives the cpu result", async () => {
    const random = new SeededRandom(3);
    const a = randomInput(random, [2, 3]);
    const b = randomInput(random, [4, 3]);
    const bias = randomInput(random, [4]);
    const results = await across(MATMUL_MODES, [a, b, bias], (x, y, z) =>
      tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeB: true, bias: z }),
    );
    // The fault this override exists for: if tfjs ever fixes it, this line says so.
    expect(relativeError(results.stock[0]!.values, results.cpu[0]!.values)).toBeGreaterThan(0.1);
    expect(relativeError(results.fast[0]!.values, results.cpu[0]!.values)).toBeLessThan(1e-6);
    if (results.native)
      expect(relativeError(results.native[0]!.values, results.cpu[0]!.values)).toBeLessThan(1e-6);
  });

  it("matches cpu for every transpose combination, batch layout and activation, with and without bias", async () => {
    const random = new SeededRandom(8);
    const activations = ["linear", "relu", "relu6", "elu", "sigmoid", "leakyrelu", "prelu"] as const;
    let cases = 0;
    for (const outer of [[], [3]]) {
      for (const transposeA of [false, true]) {
        for (const transposeB of [false, true]) {
          for (const withBias of [false, true]) {
            const activation = activations[random.nextInt(activations.length)]!;
            const [m, k, n] = [9, 20, 11];
            const a = randomInput(random, [...outer, ...(transposeA ? [k, m] : [m, k])]);
            const b = randomInput(random, [...outer, ...(transposeB ? [n, k] : [k, n])]);
            const bias = randomInput(random, [n]);
            const alpha = randomInput(random, [n]);
            const results = await across(MODES_WITHOUT_STOCK, [a, b, bias, alpha], (x, y, z, w) =>
              tf.fused.matMul({
                a: x as tf.Tensor2D,
                b: y as tf.Tensor2D,
                transposeA,
                transposeB,
                bias: withBias ? z : undefined,
                activation,
                preluActivationWeights: activation === "prelu" ? w : undefined,
                leakyreluAlpha: 0.3,
              }),
            );
            for (const mode of ["fast", "native"] as const) {
              if (results[mode] === undefined) continue;
              const where = `${mode}: outer [${outer}] transposeA=${transposeA} transposeB=${transposeB} bias=${withBias} ${activation}`;
              expect(relativeError(results[mode][0]!.values, results.cpu[0]!.values), where).toBeLessThan(
                1e-5,
              );
            }
            cases++;
          }
        }
      }
    }
    expect(cases).toBe(16);
  });

  it("adds the bias and relu in one native pass, also for a reshaped bias and NaN inputs", async () => {
    const random = new SeededRandom(12);
    const a = randomInput(random, [2, 7, 6]);
    a.values[3] = Number.NaN;
    const b = randomInput(random, [6, 8]);
    const bias = randomInput(random, [2, 4]); // reshaped to [8] below: shares a buffer of rank 2
    for (const activation of ["relu", "linear"] as const) {
      const results = await across(MODES_WITHOUT_STOCK, [a, b, bias], (x, y, z) =>
        tf.fused.matMul({ a: x as tf.Tensor3D, b: y as tf.Tensor2D, bias: tf.reshape(z!, [8]), activation }),
      );
      for (const mode of ["fast", "native"] as const) {
        const output = results[mode]?.[0];
        if (output === undefined) continue;
        const expected = results.cpu[0]!.values;
        output.values.forEach((value, index) => {
          if (Number.isNaN(expected[index]!)) expect(value, `${mode} ${activation} [${index}]`).toBeNaN();
          else
            expect(Math.abs(value - expected[index]!), `${mode} ${activation} [${index}]`).toBeLessThan(1e-5);
        });
      }
    }
  });

  it("denseActivation is the same layer on cpu, wasm and wasm with the native pass", async () => {
    const random = new SeededRandom(13);
    const inputs = [randomInput(random, [5, 4]), randomInput(random, [4, 3]), randomInput(random, [3])];
    for (const activation of ["relu", "linear", "tanh"] as const) {
      const results = await across(MODES_WITHOUT_STOCK, inputs, (x, w, b) => {
        const loss = (input: tf.Tensor, weights: tf.Tensor, bias: tf.Tensor) =>
          tf.sum(
            tf.square(denseActivation(input as tf.Tensor2D, weights as tf.Tensor2D, bias, activation)),
          ) as tf.Scalar;
        // Gradients for the input, the kernel and the bias.
        return [
          denseActivation(x as tf.Tensor2D, w as tf.Tensor2D, b!, activation),
          ...tf.grads(loss)([x!, w!, b!]),
        ];
      });
      for (const mode of ["fast", "native"] as const) {
        results[mode]?.forEach((output, index) => {
          expect(
            relativeError(output.values, results.cpu[index]!.values),
            `${mode} ${activation}`,
          ).toBeLessThan(1e-5);
        });
      }
    }
    // Golden: relu([[1, -2]] @ [[1], [1]] + [0.5]) = relu(-0.5) = 0; linear keeps -0.5.
    await use("cpu");
    const x = tf.tensor2d([[1, -2]]);
    const w = tf.tensor2d([[1], [1]]);
    const b = tf.tensor1d([0.5]);
    expect(Array.from(denseActivation(x, w, b, "relu").dataSync())).toEqual([0]);
    expect(Array.from(denseActivation(x, w, b, "linear").dataSync())).toEqual([-0.5]);
    tf.dispose([x, w, b]);
  });

  it("backpropagates like cpu through a fused layer with transposed weights", async () => {
    const random = new SeededRandom(4);
    const inputs = [randomInput(random, [8, 5]), randomInput(random, [6, 5]), randomInput(random, [6])];
    const results = await across(MODES_WITHOUT_STOCK, inputs, (x, w, b) => {
      const loss = (weights: tf.Tensor, bias: tf.Tensor) =>
        tf.sum(
          tf.square(
            tf.fused.matMul({
              a: x as tf.Tensor2D,
              b: weights as tf.Tensor2D,
              transposeB: true,
              bias,
              activation: "relu",
            }),
          ),
        ) as tf.Scalar;
      return tf.grads(loss)([w!, b!]);
    });
    results.cpu.forEach((expected, index) => {
      expect(relativeError(results.fast[index]!.values, expected.values)).toBeLessThan(1e-5);
      if (results.native)
        expect(relativeError(results.native[index]!.values, expected.values)).toBeLessThan(1e-5);
    });
  });
});

describe("wasm Sum override", () => {
  it("matches a float64 sum at least as well as the stock kernel, over leading and middle axes", async () => {
    const random = new SeededRandom(21);
    const cases: { shape: number[]; axis: number[]; keepDims: boolean }[] = [
      { shape: [513, 40], axis: [0], keepDims: false },
      { shape: [3, 300, 17], axis: [1], keepDims: true },
      { shape: [4, 50, 24], axis: [0, 1], keepDims: false },
      { shape: [2, 3, 4, 5], axis: [1, 2], keepDims: true },
      { shape: [6, 7], axis: [1], keepDims: false }, // innermost: stock path
      { shape: [4, 5, 6], axis: [0, 2], keepDims: false }, // not consecutive: stock path
    ];
    for (const { shape, axis, keepDims } of cases) {
      const input = randomInput(random, shape);
      // `native`: 64 or more summed rows go to BLAS as a product with a row of ones.
      const results = await across(MATMUL_MODES, [input], (x) => tf.sum(x!, axis, keepDims));
      const where = `shape [${shape}] axis [${axis}] keepDims=${keepDims}`;
      for (const mode of ["fast", "native"] as const) {
        const output = results[mode]?.[0];
        if (output === undefined) continue;
        expect(output.shape, `${mode} ${where}`).toEqual(results.cpu[0]!.shape);
        expect(relativeError(output.values, results.stock[0]!.values), `${mode} ${where}`).toBeLessThan(1e-5);
        expect(relativeError(output.values, results.cpu[0]!.values), `${mode} ${where}`).toBeLessThan(1e-5);
      }
    }
  });

  it("sums a hand-computable tensor exactly", async () => {
    await use("fast");
    const [rows, middle] = tf.tidy(() => {
      const x = tf.tensor3d([
        [
          [1, 2],
          [3, 4],
        ],
        [
          [5, 6],
          [7, 8],
        ],
      ]);
      return [tf.sum(x, 0).arraySync(), tf.sum(x, 1, true).arraySync()];
    });
    expect(rows).toEqual([
      [6, 8],
      [10, 12],
    ]);
    expect(middle).toEqual([[[4, 6]], [[12, 14]]]);
  });
});

describe("wasm Identity override", () => {
  it("shares the buffer (no copy) and keeps the clone valid after the source is disposed", async () => {
    await use("fast");
    const source = tf.tensor1d([1, 2, 3]);
    const buffers = wasmDataIds();
    const copy = tf.clone(source);
    expect(wasmDataIds()).toBe(buffers);
    source.dispose();
    expect(Array.from(copy.dataSync())).toEqual([1, 2, 3]);
    copy.dispose();
    expect(wasmDataIds()).toBe(buffers - 1);
  });

  it("keeps saved activations intact across an optimizer step that replaces the variable", async () => {
    const results = await across(
      ["fast", "cpu"],
      [{ values: Float32Array.from([0.5, -1, 2]), shape: [3] }],
      (x) => {
        const weight = tf.variable(tf.tensor1d([1, 2, 3]));
        const optimizer = tf.train.adam(0.1);
        for (let step = 0; step < 3; step++) {
          optimizer.minimize(() => tf.sum(tf.square(tf.mul(weight, x!))) as tf.Scalar);
        }
        const value = tf.clone(weight);
        weight.dispose();
        optimizer.dispose();
        return value;
      },
    );
    expect(relativeError(results.fast[0]!.values, results.cpu[0]!.values)).toBeLessThan(1e-6);
  });
});

describe("wasm Slice, SplitV, Unpack, GatherV2 and Transpose overrides", () => {
  it("slice, split and unstack match the stock kernels and cpu on every axis", async () => {
    const random = new SeededRandom(31);
    const input = randomInput(random, [5, 70, 9]);
    const results = await across(MATMUL_MODES, [input], (x) => [
      tf.slice(x!, [1, 0, 0], [3, 70, 9]), // contiguous
      tf.slice(x!, [0, 5, 2], [5, 64, 6]), // strided, long runs
      tf.slice(x!, [2, 3, 1], [2, 4, 3]), // strided, short runs
      ...tf.split(x!, [20, 50], 1),
      ...tf.split(x!, 3, 2),
      ...tf.unstack(x!, 0),
      ...tf.unstack(x!, 2),
    ]);
    expect(results.fast).toHaveLength(3 + 2 + 3 + 5 + 9);
    for (const outputs of [results.fast, results.native ?? []]) {
      outputs.forEach((output, index) => {
        expect(output.shape, `output ${index}`).toEqual(results.cpu[index]!.shape);
        expect(Array.from(output.values), `output ${index}`).toEqual(
          Array.from(results.stock[index]!.values),
        );
        expect(Array.from(output.values), `output ${index}`).toEqual(Array.from(results.cpu[index]!.values));
      });
    }
  });

  it("transposes like the stock kernel and cpu (last-two swaps by the override, others by stock)", async () => {
    const random = new SeededRandom(61);
    const input = randomInput(random, [3, 37, 20]);
    const results = await across(["stock", "fast", "cpu"], [input], (x) => [
      tf.transpose(x!, [0, 2, 1]),
      tf.transpose(tf.reshape(x!, [111, 20])),
      tf.transpose(x!, [1, 0, 2]),
      tf.transpose(x!, [2, 1, 0]),
      tf.transpose(tf.reshape(x!, [3, 740, 1]), [0, 2, 1]), // a side of 1: shared buffer
    ]);
    results.fast.forEach((fast, index) => {
      expect(fast.shape, `output ${index}`).toEqual(results.cpu[index]!.shape);
      expect(Array.from(fast.values), `output ${index}`).toEqual(Array.from(results.stock[index]!.values));
      expect(Array.from(fast.values), `output ${index}`).toEqual(Array.from(results.cpu[index]!.values));
    });
  });

  it("slices a hand-computable tensor", async () => {
    await use("fast");
    const pieces = tf.tidy(() => {
      const x = tf.tensor2d([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      return [tf.slice(x, [0, 1], [2, 2]).arraySync(), tf.unstack(x, 1).map((column) => column.arraySync())];
    });
    expect(pieces).toEqual([
      [
        [2, 3],
        [5, 6],
      ],
      [
        [1, 4],
        [2, 5],
        [3, 6],
      ],
    ]);
  });

  it("gathers rows and inner axes like the stock kernel and cpu, duplicates included", async () => {
    const random = new SeededRandom(41);
    const table = randomInput(random, [40, 70]);
    const narrow = randomInput(random, [40, 3]);
    const ids = Int32Array.from([0, 39, 5, 5, 17, 0]);
    const results = await across(MATMUL_MODES, [table, narrow], (wide, small) => {
      const indices = tf.tensor1d(ids, "int32");
      const matrix = tf.tensor2d(ids, [2, 3], "int32");
      return [
        tf.gather(wide!, indices), // rows of 70: memcpy path (the add-on's row copies with it)
        tf.gather(small!, indices), // rows of 3: loop path
        tf.gather(small!, matrix), // 2-D indices
        tf.gather(wide!, tf.tensor1d([69, 1, 1], "int32"), 1), // inner axis
        tf.gather(tf.cast(wide!, "int32"), indices), // int32 rows
      ];
    });
    for (const mode of MODES_WITHOUT_STOCK) {
      results[mode as "fast"]!.forEach((output, index) => {
        expect(output.shape, `${mode} output ${index}`).toEqual(results.stock[index]!.shape);
        expect(Array.from(output.values), `${mode} output ${index}`).toEqual(
          Array.from(results.stock[index]!.values),
        );
      });
    }
  });

  it.each(MODES_WITHOUT_STOCK.filter((mode) => mode !== "cpu"))(
    "rejects an out-of-range index with the stock message and leaks nothing (%s)",
    async (mode) => {
      await use(mode);
      const table = tf.tensor2d([
        [1, 2],
        [3, 4],
      ]);
      const bad = tf.tensor1d([1, 2], "int32");
      const buffers = wasmDataIds();
      const tensors = tf.memory().numTensors;
      expect(() => tf.gather(table, bad)).toThrow("GatherV2: the index value 2 is not in [0, 1]");
      expect(wasmDataIds()).toBe(buffers);
      expect(tf.memory().numTensors).toBe(tensors);
      tf.dispose([table, bad]);
    },
  );
});

describe("XNNPACK operator cache", () => {
  it("regression: one buffer used as the weights of two matmuls under different shapes gives the cpu results", async () => {
    // tfjs-backend-wasm caches a packed-weights operator per weights tensor id; Reshape (and our
    // Identity) give one id to several shapes, and stock wasm reuses the stale operator.
    const random = new SeededRandom(51);
    const inputs = [randomInput(random, [3, 4]), randomInput(random, [4, 64]), randomInput(random, [5, 16])];
    const compute = (a?: tf.Tensor, weights?: tf.Tensor, c?: tf.Tensor) => {
      const first = tf.matMul(a as tf.Tensor2D, weights as tf.Tensor2D); // [3, 64], caches by weights' id
      const reshaped = tf.reshape(weights!, [16, 16]) as tf.Tensor2D; // same buffer, same id
      const second = tf.matMul(c as tf.Tensor2D, reshaped); // [5, 16]
      const fused = tf.fused.matMul({
        a: c as tf.Tensor2D,
        b: reshaped,
        bias: tf.ones([16]),
        activation: "relu",
      });
      return [first, second, fused];
    };
    // Not run on the stock kernels: there it reads out of bounds and aborts the wasm module.
    const results = await across(["fast", "cpu"], inputs, compute);
    results.cpu.forEach((expected, index) => {
      expect(relativeError(results.fast[index]!.values, expected.values), `output ${index}`).toBeLessThan(
        1e-5,
      );
    });
  });
});

describe("wasm Concat override", () => {
  it("joins along every axis exactly like the stock kernel and cpu, empty inputs included", async () => {
    const random = new SeededRandom(33);
    const cases: { shapes: number[][]; axis: number }[] = [
      {
        shapes: [
          [5, 16],
          [5, 16],
          [5, 3],
        ],
        axis: 1,
      },
      {
        shapes: [
          [2, 70],
          [2, 80],
        ],
        axis: -1,
      }, // blocks >= 64 go through subarray copies
      {
        shapes: [
          [3, 4],
          [0, 4],
          [2, 4],
        ],
        axis: 0,
      },
      {
        shapes: [
          [2, 3, 4],
          [2, 1, 4],
        ],
        axis: 1,
      },
      {
        shapes: [
          [2, 0],
          [2, 5],
        ],
        axis: 1,
      },
    ];
    for (const { shapes, axis } of cases) {
      const inputs = shapes.map((shape) => randomInput(random, shape));
      const results = await across(MATMUL_MODES, inputs, (...tensors) => tf.concat(tensors, axis));
      const where = `shapes ${JSON.stringify(shapes)} axis ${axis}`;
      for (const outputs of [results.fast, results.native ?? []]) {
        expect(outputs[0]!.shape, where).toEqual(results.stock[0]!.shape);
        expect(Array.from(outputs[0]!.values), where).toEqual(Array.from(results.stock[0]!.values));
        expect(Array.from(outputs[0]!.values), where).toEqual(Array.from(results.cpu[0]!.values));
      }
    }
  });

  it.each(MODES_WITHOUT_STOCK.filter((mode) => mode !== "cpu"))(
    "joins and splits int32 tensors and leaves no tensor behind (%s)",
    async (mode) => {
      await use(mode);
      expect(
        tf.tidy(() =>
          tf
            .split(tf.tensor2d([1, 2, 5, 3, 4, 6], [2, 3], "int32"), [2, 1], 1)
            .map((part) => part.arraySync()),
        ),
      ).toEqual([
        [
          [1, 2],
          [3, 4],
        ],
        [[5], [6]],
      ]);
      const joined = tf.tidy(() =>
        tf
          .concat([tf.tensor2d([1, 2, 3, 4], [2, 2], "int32"), tf.tensor2d([5, 6], [2, 1], "int32")], 1)
          .arraySync(),
      );
      expect(joined).toEqual([
        [1, 2, 5],
        [3, 4, 6],
      ]);
      const a = tf.ones([4, 3]);
      const before = tf.memory().numTensors;
      tf.tidy(() => tf.concat([a, a], 1).dataSync());
      expect(tf.memory().numTensors).toBe(before);
      a.dispose();
    },
  );
});
