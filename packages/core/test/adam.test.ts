import "@tensorflow/tfjs-backend-wasm";
import {
  ConfigError,
  createAdamOptimizer,
  describeFastKernels,
  FusedAdamOptimizer,
  nativeGemmStatus,
  registerFastKernels,
  SeededRandom,
  ShapeError,
  unregisterFastKernels,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ADAM_UPDATE_KERNEL, configureFusedAdam, fusedAdamActive } from "../src/kernels/adam.js";
import { defaultBlasThreads, loadNativeGemm } from "../src/kernels/native-gemm.js";

// The shapes of a small model: a scalar, a bias, a kernel and a 10k x 16 embedding table.
const SHAPES = [[], [3], [4, 5], [10000, 16]];

/** Hyperparameters as the trainer and the benchmarks use them, plus tfjs's defaults. */
const SETTINGS = [
  { learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  { learningRate: 0.05, beta1: 0.8, beta2: 0.95, epsilon: undefined },
];

let nameCounter = 0;

/** Variables of `shapes` with seeded values, under fresh unique names. */
function makeVariables(shapes: number[][], seed: number): tf.Variable[] {
  const random = new SeededRandom(seed);
  return shapes.map((shape) => {
    const values = Float32Array.from({ length: sizeOf(shape) }, () => random.nextNormal());
    return tf.variable(tf.tensor(values, shape, "float32"), true, `adam-test-${nameCounter++}`);
  });
}

function sizeOf(shape: number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

/**
 * Gradients with every magnitude Adam meets: zeros, tiny values whose squares are float32
 * denormals, ordinary values and large ones.
 */
function gradientValues(size: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  const scales = [0, 1e-20, 1e-3, 1, 100];
  return Float32Array.from({ length: size }, () => random.nextNormal() * scales[random.nextInt(5)]!);
}

/** Runs `steps` updates; the gradient of `nullIndex` (if any) is null. */
function train(
  optimizer: tf.Optimizer,
  variables: tf.Variable[],
  steps: number,
  options: { nullIndex?: number; asMap?: boolean; learningRates?: number[]; firstStep?: number } = {},
): void {
  const firstStep = options.firstStep ?? 0;
  for (let step = firstStep; step < firstStep + steps; step++) {
    const learningRate = options.learningRates?.[step];
    if (learningRate !== undefined)
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
    tf.tidy(() => {
      const gradients = variables.map((variable, index) =>
        index === options.nullIndex
          ? null
          : tf.tensor(gradientValues(variable.size, 1000 * step + index), variable.shape, "float32"),
      );
      if (options.asMap) {
        const map: Record<string, tf.Tensor | null> = {};
        variables.forEach((variable, index) => {
          map[variable.name] = gradients[index]!;
        });
        optimizer.applyGradients(map as tf.NamedTensorMap);
      } else {
        optimizer.applyGradients(
          variables.map((variable, index) => ({ name: variable.name, tensor: gradients[index]! })),
        );
      }
    });
  }
}

/** The variables, then the optimizer's weights (iterations, first moments, second moments). */
async function snapshot(optimizer: tf.Optimizer, variables: tf.Variable[]): Promise<Float32Array[]> {
  const weights = await optimizer.getWeights();
  const values = [
    ...variables.map((variable) => variable.dataSync().slice() as Float32Array),
    Float32Array.from(weights[0]!.tensor.dataSync()),
    ...weights.slice(1).map((weight) => weight.tensor.dataSync().slice() as Float32Array),
  ];
  weights[0]!.tensor.dispose();
  const internals = optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
  values.push(internals.accBeta1.dataSync().slice() as Float32Array);
  values.push(internals.accBeta2.dataSync().slice() as Float32Array);
  return values;
}

/** Positions whose float32 bit patterns differ (so -0 vs 0 and NaN payloads count). */
function bitDifferences(actual: Float32Array[], expected: Float32Array[]): number {
  expect(actual.map((array) => array.length)).toEqual(expected.map((array) => array.length));
  let count = 0;
  actual.forEach((array, which) => {
    const left = new Uint32Array(array.buffer, array.byteOffset, array.length);
    const right = new Uint32Array(expected[which]!.buffer, expected[which]!.byteOffset, array.length);
    for (let index = 0; index < left.length; index++) if (left[index] !== right[index]) count++;
  });
  return count;
}

/** Largest |actual - expected| / max(1e-30, |expected|) over every array. */
function maxRelativeDifference(actual: Float32Array[], expected: Float32Array[]): number {
  let worst = 0;
  actual.forEach((array, which) => {
    const reference = expected[which]!;
    for (let index = 0; index < array.length; index++) {
      const difference = Math.abs(array[index]! - reference[index]!);
      worst = Math.max(worst, difference / Math.max(1e-30, Math.abs(reference[index]!)));
    }
  });
  return worst;
}

/** Trains fresh copies of the same variables with the stock and the fused optimizer. */
async function stockAndFused(
  setting: (typeof SETTINGS)[number],
  options: Parameters<typeof train>[3] = {},
  steps = 5,
): Promise<{ stock: Float32Array[]; fused: Float32Array[] }> {
  const run = async (fused: boolean) => {
    const { learningRate, beta1, beta2, epsilon } = setting;
    const optimizer = fused
      ? createAdamOptimizer(learningRate, beta1, beta2, epsilon)
      : tf.train.adam(learningRate, beta1, beta2, epsilon);
    const variables = makeVariables(SHAPES, 7);
    train(optimizer, variables, steps, options);
    const values = await snapshot(optimizer, variables);
    optimizer.dispose();
    tf.dispose(variables);
    return values;
  };
  return { stock: await run(false), fused: await run(true) };
}

async function kernelNamesOf(run: () => void): Promise<string[]> {
  const profile = await tf.profile(run);
  return profile.kernels.map((kernel) => kernel.name);
}

describe("FusedAdamOptimizer on cpu", () => {
  afterEach(() => {
    configureFusedAdam("cpu", {});
  });

  it("takes a hand-computable first step", () => {
    // Step 1 from zero moments: m = 0.1 g, v = 0.001 g^2, so m / (1 - 0.9) = g and
    // v / (1 - 0.999) = g^2, and each value moves by -lr * g / (|g| + eps) (up to the float32
    // rounding of 0.9 and 0.999 in the bias corrections, ~2e-6 here).
    const [variable] = makeVariables([[3]], 1);
    variable!.assign(tf.tensor1d([1, -1, 0.5]));
    const optimizer = createAdamOptimizer(0.1, 0.9, 0.999, 0);
    tf.tidy(() => optimizer.applyGradients([{ name: variable!.name, tensor: tf.tensor1d([2, -4, 0]) }]));
    const values = Array.from(variable!.dataSync());
    expect(values[0]).toBeCloseTo(0.9, 5);
    expect(values[1]).toBeCloseTo(-0.9, 5);
    // 0 / (0 + 0) is NaN in tfjs too: the update is tfjs's, edge cases included.
    expect(values[2]).toBeNaN();
    optimizer.dispose();
    variable!.dispose();
  });

  it("runs one fused kernel per variable instead of tfjs's elementwise sequence", async () => {
    const variables = makeVariables([[3], [2, 2]], 2);
    const optimizer = createAdamOptimizer(0.01);
    const names = await kernelNamesOf(() => train(optimizer, variables, 1));
    expect(names.filter((name) => name === ADAM_UPDATE_KERNEL)).toHaveLength(2);
    expect(names).not.toContain("Sqrt");
    optimizer.dispose();
    tf.dispose(variables);
  });

  it.each(SETTINGS)("matches tf.train.adam bit for bit over 5 steps (%o)", async (setting) => {
    const { stock, fused } = await stockAndFused(setting);
    expect(bitDifferences(fused, stock)).toBe(0);
  });

  it("matches with a null gradient, the map form and a learning rate changed between steps", async () => {
    const options = { nullIndex: 2, asMap: true, learningRates: [0.1, 0.05, 0.02, 0.01, 0.001] };
    const { stock, fused } = await stockAndFused(SETTINGS[0]!, options);
    expect(bitDifferences(fused, stock)).toBe(0);
    // The variable with the null gradient kept its value and got zero moments, as in tfjs.
    const initial = makeVariables(SHAPES, 7);
    expect(bitDifferences([fused[2]!], [initial[2]!.dataSync() as Float32Array])).toBe(0);
    tf.dispose(initial);
    for (const moment of [fused[SHAPES.length + 1 + 2]!, fused[2 * SHAPES.length + 1 + 2]!]) {
      expect(moment.every((value) => value === 0)).toBe(true);
    }
  });

  it("has tfjs's class name, config and slot names", async () => {
    const fused = createAdamOptimizer(0.01, 0.9, 0.999, 1e-8);
    const stock = tf.train.adam(0.01, 0.9, 0.999, 1e-8);
    expect(fused.getClassName()).toBe("Adam");
    expect(fused).toBeInstanceOf(tf.AdamOptimizer);
    expect(fused.getConfig()).toEqual(stock.getConfig());
    // The default epsilon is the backend's, as in tfjs.
    const defaults = createAdamOptimizer(0.01);
    expect(defaults.getConfig()).toEqual(tf.train.adam(0.01).getConfig());
    const variables = makeVariables([[2]], 3);
    train(fused, variables, 1);
    const weights = await fused.getWeights();
    expect(weights.map((weight) => weight.name)).toEqual([
      "iter",
      `${variables[0]!.name}/m`,
      `${variables[0]!.name}/v`,
    ]);
    weights[0]!.tensor.dispose();
    for (const optimizer of [fused, stock, defaults]) optimizer.dispose();
    tf.dispose(variables);
  });

  it.each([
    ["stock", "fused"],
    ["fused", "stock"],
  ] as const)("resumes a %s state in the %s optimizer and continues identically", async (from, to) => {
    const create = (kind: "stock" | "fused") =>
      kind === "fused" ? createAdamOptimizer(0.01, 0.9, 0.999, 1e-8) : tf.train.adam(0.01, 0.9, 0.999, 1e-8);
    const shapes = [[3], [4, 5]];
    const original = create(from);
    const variables = makeVariables(shapes, 4);
    train(original, variables, 3);
    // A second set of variables at the same values, driven by the other optimizer.
    const copies = makeVariables(shapes, 4);
    copies.forEach((copy, index) => {
      copy.assign(variables[index]!);
    });
    const resumed = create(to);
    const weights = await original.getWeights();
    await resumed.setWeights(weights);
    weights[0]!.tensor.dispose();
    // setWeights recomputes the beta powers as pow(beta, t + 1); the trainer stores them exactly.
    const internals = (optimizer: tf.Optimizer) =>
      optimizer as unknown as { accBeta1: tf.Variable; accBeta2: tf.Variable };
    internals(resumed).accBeta1.assign(internals(original).accBeta1);
    internals(resumed).accBeta2.assign(internals(original).accBeta2);
    train(original, variables, 2);
    train(resumed, copies, 2);
    const expected = await snapshot(original, variables);
    const actual = await snapshot(resumed, copies);
    expect(bitDifferences(actual, expected)).toBe(0);
    original.dispose();
    resumed.dispose();
    tf.dispose([...variables, ...copies]);
  });

  it("leaves no tensor behind after the first step", () => {
    const variables = makeVariables([[3], [4, 5]], 5);
    const optimizer = createAdamOptimizer(0.01);
    // The first step creates the two moments of each variable.
    train(optimizer, variables, 1);
    const before = tf.memory().numTensors;
    train(optimizer, variables, 3, { nullIndex: 0 });
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose(variables);
    // Everything the optimizer owned (beta powers, moments) went with dispose.
    expect(tf.memory().numTensors).toBe(before - 2 - 4 - 2);
  });

  it("falls back to tfjs's update with MDREC_FUSED_ADAM=0, with the same results", async () => {
    expect(configureFusedAdam("cpu", { MDREC_FUSED_ADAM: "0" })).toBe(false);
    expect(fusedAdamActive("cpu")).toBe(false);
    const variables = makeVariables([[3]], 6);
    const optimizer = createAdamOptimizer(0.01);
    const names = await kernelNamesOf(() => train(optimizer, variables, 1));
    expect(names).not.toContain(ADAM_UPDATE_KERNEL);
    expect(names).toContain("Sqrt");
    const { stock, fused } = await stockAndFused(SETTINGS[0]!, {}, 2);
    expect(bitDifferences(fused, stock)).toBe(0);
    expect(configureFusedAdam("cpu", { MDREC_FUSED_ADAM: "true" })).toBe(true);
    expect(fusedAdamActive("cpu")).toBe(true);
    // initBackend passes its environment through registerFastKernels.
    registerFastKernels("cpu", { env: { MDREC_FUSED_ADAM: "false" } });
    expect(fusedAdamActive("cpu")).toBe(false);
    registerFastKernels("cpu", { env: {} });
    expect(fusedAdamActive("cpu")).toBe(true);
    optimizer.dispose();
    tf.dispose(variables);
  });

  it("rejects bad arguments, naming the argument and the value received", () => {
    const before = tf.memory().numTensors;
    expect(() => createAdamOptimizer(0)).toThrow(ConfigError);
    expect(() => createAdamOptimizer(0)).toThrow(
      "FusedAdamOptimizer learningRate must be a finite number > 0, received 0",
    );
    expect(() => createAdamOptimizer(Number.NaN)).toThrow(
      "learningRate must be a finite number > 0, received NaN",
    );
    expect(() => createAdamOptimizer(0.01, 1)).toThrow(
      "FusedAdamOptimizer beta1 must be a finite number >= 0 and < 1, received 1",
    );
    expect(() => createAdamOptimizer(0.01, 0.9, -0.5)).toThrow(
      "FusedAdamOptimizer beta2 must be a finite number >= 0 and < 1, received -0.5",
    );
    expect(() => new FusedAdamOptimizer(0.01, 0.9, 0.999, -1)).toThrow(
      "FusedAdamOptimizer epsilon must be a finite number >= 0 or null (the backend's epsilon), received -1",
    );
    // Nothing was allocated by the rejected constructors.
    expect(tf.memory().numTensors).toBe(before);
    expect(() => configureFusedAdam("cpu", { MDREC_FUSED_ADAM: "maybe" })).toThrow(
      'environment variable MDREC_FUSED_ADAM must be 0, 1, true or false, received "maybe"',
    );
  });

  it("refuses an unknown variable before touching any other", () => {
    const variables = makeVariables([[2]], 8);
    const optimizer = createAdamOptimizer(0.01);
    const initial = variables[0]!.dataSync().slice();
    expect(() =>
      tf.tidy(() =>
        optimizer.applyGradients([
          { name: variables[0]!.name, tensor: tf.ones([2]) },
          { name: "no-such-variable", tensor: tf.ones([2]) },
        ]),
      ),
    ).toThrow('FusedAdamOptimizer.applyGradients: no variable named "no-such-variable" is registered');
    expect(Array.from(variables[0]!.dataSync())).toEqual(Array.from(initial));
    expect(optimizer.iterations).toBe(0);
    optimizer.dispose();
    tf.dispose(variables);
  });

  it("checks the kernel's inputs", () => {
    configureFusedAdam("cpu", {});
    const attributes = {
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      learningRate: 0.01,
      oneMinusAccBeta1: 0.1,
      oneMinusAccBeta2: 0.001,
    };
    tf.tidy(() => {
      const value = tf.zeros([2, 3]);
      const run = (gradient: tf.Tensor) =>
        tf
          .engine()
          .runKernel(
            ADAM_UPDATE_KERNEL,
            { value, gradient, firstMoment: value, secondMoment: value },
            attributes,
          );
      expect(() => run(tf.zeros([3, 2]))).toThrow(ShapeError);
      expect(() => run(tf.zeros([3, 2]))).toThrow(
        "MdrecAdamUpdate: input gradient must be float32 of the value's shape [2,3], received float32 [3,2]",
      );
      expect(() => run(tf.zeros([2, 3], "int32"))).toThrow("received int32 [2,3]");
    });
  });

  it("runs tfjs's own ops for a gradient that broadcasts, as tf.train.adam does", async () => {
    const run = async (optimizer: tf.Optimizer) => {
      const [variable] = makeVariables([[2, 3]], 9);
      tf.tidy(() => optimizer.applyGradients([{ name: variable!.name, tensor: tf.tensor2d([[1, -2, 3]]) }]));
      const values = await snapshot(optimizer, [variable!]);
      optimizer.dispose();
      variable!.dispose();
      return values;
    };
    const stock = await run(tf.train.adam(0.01));
    const fused = await run(createAdamOptimizer(0.01));
    expect(bitDifferences(fused, stock)).toBe(0);
  });
});

/** The eight float32 scalars of the add-on's adamUpdate, from beta1 to the negative learning rate. */
type AdamScalars = [number, number, number, number, number, number, number, number];
function adamScalars(values: AdamScalars): AdamScalars {
  return values.map(Math.fround) as AdamScalars;
}

describe("FusedAdamOptimizer on wasm", () => {
  const native = loadNativeGemm();
  const nativeAdam = native.available && native.gemm.adamUpdate !== undefined;

  beforeAll(async () => {
    await tf.setBackend("wasm");
    await tf.ready();
  });

  afterAll(async () => {
    unregisterFastKernels("wasm");
    await tf.setBackend("cpu");
  });

  /**
   * 5 steps of the fused optimizer on wasm with the add-on (the only wasm path it takes): the
   * first creates the moments and runs the kernel, the others update in place (no kernel).
   */
  async function fusedOnWasm(setting: (typeof SETTINGS)[number]): Promise<Float32Array[]> {
    registerFastKernels("wasm", { nativeGemm: true });
    const { learningRate, beta1, beta2, epsilon } = setting;
    const optimizer = createAdamOptimizer(learningRate, beta1, beta2, epsilon);
    const variables = makeVariables(SHAPES, 7);
    const names = await kernelNamesOf(() => train(optimizer, variables, 1));
    expect(names.includes(ADAM_UPDATE_KERNEL)).toBe(nativeAdam);
    const dataIds = variables.map((variable) => variable.dataId);
    const later = await kernelNamesOf(() => train(optimizer, variables, 1, { firstStep: 1 }));
    expect(later.includes(ADAM_UPDATE_KERNEL)).toBe(false);
    expect(variables.map((variable, index) => variable.dataId === dataIds[index])).toEqual(
      variables.map(() => nativeAdam),
    );
    train(optimizer, variables, 3, { firstStep: 2 });
    const values = await snapshot(optimizer, variables);
    optimizer.dispose();
    tf.dispose(variables);
    return values;
  }

  /** One call of the kernel on the active backend, on inputs of every magnitude. */
  function runKernelOnce(): Float32Array[] {
    const size = 10000 * 16;
    const random = new SeededRandom(11);
    const value = Float32Array.from({ length: size }, () => random.nextNormal());
    // Second moments are non-negative, as Adam keeps them.
    const secondMoment = gradientValues(size, 3).map((entry) => entry * entry);
    return tf.tidy(() => {
      const tensor = (values: Float32Array) => tf.tensor(values, [10000, 16], "float32");
      const outputs = tf.engine().runKernel<tf.Tensor[]>(
        ADAM_UPDATE_KERNEL,
        {
          value: tensor(value),
          gradient: tensor(gradientValues(size, 1)),
          firstMoment: tensor(gradientValues(size, 2)),
          secondMoment: tensor(secondMoment),
        },
        {
          beta1: 0.9,
          beta2: 0.999,
          epsilon: 1e-8,
          learningRate: 1e-3,
          oneMinusAccBeta1: Math.fround(1 - Math.fround(0.9 ** 3)),
          oneMinusAccBeta2: Math.fround(1 - Math.fround(0.999 ** 3)),
        },
      );
      return outputs.map((output) => output.dataSync().slice() as Float32Array);
    });
  }

  it.each(SETTINGS)("matches tf.train.adam on wasm bit for bit (%o)", async (setting) => {
    registerFastKernels("wasm", { nativeGemm: true });
    const { stock } = await stockAndFused(setting);
    const fused = await fusedOnWasm(setting);
    // Measured: no bit differs (the stock wasm kernels round each op to float32 as the add-on does).
    expect(maxRelativeDifference(fused, stock)).toBeLessThanOrEqual(1e-6);
    expect(bitDifferences(fused, stock)).toBe(0);
  });

  it("computes the same bits in the TypeScript loop, the add-on and on cpu", async () => {
    registerFastKernels("wasm", { nativeGemm: false });
    expect(nativeGemmStatus().enabled).toBe(false);
    const typescript = runKernelOnce();
    if (nativeAdam) {
      registerFastKernels("wasm", { nativeGemm: true });
      expect(bitDifferences(runKernelOnce(), typescript)).toBe(0);
    }
    await tf.setBackend("cpu");
    configureFusedAdam("cpu", {});
    const onCpu = runKernelOnce();
    await tf.setBackend("wasm");
    expect(bitDifferences(typescript, onCpu)).toBe(0);
  });

  it("gives the cpu results on wasm", async () => {
    const onWasm = await fusedOnWasm(SETTINGS[0]!);
    await tf.setBackend("cpu");
    const { fused: onCpu } = await stockAndFused(SETTINGS[0]!);
    await tf.setBackend("wasm");
    expect(bitDifferences(onWasm, onCpu)).toBe(0);
  });

  it.runIf(nativeAdam)(
    "runs the kernel instead of updating in place while a clone shares a variable's memory",
    async () => {
      registerFastKernels("wasm", { nativeGemm: true });
      const run = async (keepClone: boolean) => {
        const variables = makeVariables([[4, 5], [3]], 9);
        const optimizer = createAdamOptimizer(0.05);
        train(optimizer, variables, 2);
        // With mdrec's Identity kernel a clone shares the variable's buffer (reference count 2).
        const clone = keepClone ? tf.clone(variables[0]!) : null;
        const before = variables[0]!.dataSync().slice();
        const dataIds = variables.map((variable) => variable.dataId);
        const names = await kernelNamesOf(() => train(optimizer, variables, 1, { firstStep: 2 }));
        const after = await snapshot(optimizer, variables);
        const movedIds = variables.map((variable, index) => variable.dataId !== dataIds[index]);
        const cloneValues = clone?.dataSync().slice();
        clone?.dispose();
        optimizer.dispose();
        tf.dispose(variables);
        return { before, after, names, movedIds, cloneValues };
      };
      const shared = await run(true);
      const alone = await run(false);
      expect(shared.cloneValues).toEqual(shared.before);
      expect(shared.movedIds).toEqual([true, false]);
      expect(shared.names).toContain(ADAM_UPDATE_KERNEL);
      expect(alone.movedIds).toEqual([false, false]);
      expect(alone.names).not.toContain(ADAM_UPDATE_KERNEL);
      expect(bitDifferences(shared.after, alone.after)).toBe(0);
    },
  );

  it.runIf(nativeAdam)("updates a variable listed twice in order, as tf.train.adam does", async () => {
    const run = async (optimizer: tf.Optimizer) => {
      const [first, second] = makeVariables([[6, 3], [4]], 13);
      for (let step = 0; step < 3; step++) {
        tf.tidy(() => {
          const gradient = (variable: tf.Variable, seed: number) =>
            tf.tensor(gradientValues(variable.size, 100 * step + seed), variable.shape, "float32");
          // The same name twice: tfjs gives each entry its own moment slots and applies them in order.
          optimizer.applyGradients([
            { name: first!.name, tensor: gradient(first!, 1) },
            { name: second!.name, tensor: gradient(second!, 2) },
            { name: first!.name, tensor: gradient(first!, 3) },
          ]);
        });
      }
      const values = await snapshot(optimizer, [first!, second!]);
      optimizer.dispose();
      tf.dispose([first!, second!]);
      return values;
    };
    unregisterFastKernels("wasm");
    const stock = await run(tf.train.adam(0.05));
    registerFastKernels("wasm", { nativeGemm: true });
    const fused = await run(createAdamOptimizer(0.05));
    expect(bitDifferences(fused, stock)).toBe(0);
  });

  it.runIf(nativeAdam)("keeps the list's order when one update reads another's variable", async () => {
    // The gradient of one entry is the other entry's variable: in one order it reads the old
    // values, in the other the updated ones, as tf.train.adam's updates one after another do.
    const run = async (optimizer: tf.Optimizer, readerFirst: boolean) => {
      const [source, reader] = makeVariables(
        [
          [5, 4],
          [5, 4],
        ],
        17,
      );
      for (let step = 0; step < 3; step++) {
        tf.tidy(() => {
          const sourceGradient = tf.tensor(gradientValues(20, 10 * step), [5, 4], "float32");
          const entries = [
            { name: source!.name, tensor: sourceGradient },
            { name: reader!.name, tensor: source as tf.Tensor },
          ];
          optimizer.applyGradients(readerFirst ? entries.reverse() : entries);
        });
      }
      const values = await snapshot(optimizer, [source!, reader!]);
      optimizer.dispose();
      tf.dispose([source!, reader!]);
      return values;
    };
    for (const readerFirst of [true, false]) {
      unregisterFastKernels("wasm");
      const stock = await run(tf.train.adam(0.05), readerFirst);
      registerFastKernels("wasm", { nativeGemm: true });
      const fused = await run(createAdamOptimizer(0.05), readerFirst);
      expect(bitDifferences(fused, stock)).toBe(0);
    }
  });

  it("leaves no tensor behind on wasm", () => {
    registerFastKernels("wasm", { nativeGemm: true });
    const variables = makeVariables([[3], [40, 5]], 5);
    const optimizer = createAdamOptimizer(0.01);
    train(optimizer, variables, 1);
    const before = tf.memory().numTensors;
    train(optimizer, variables, 2);
    expect(tf.memory().numTensors).toBe(before);
    optimizer.dispose();
    tf.dispose(variables);
  });

  it("runs tfjs's update without the fast kernels, the add-on or with MDREC_FUSED_ADAM=0", async () => {
    unregisterFastKernels("wasm");
    expect(fusedAdamActive("wasm")).toBe(false);
    // The TypeScript loop is slower than tfjs's SIMD kernels on wasm, so it is not used there.
    registerFastKernels("wasm", { nativeGemm: false });
    expect(fusedAdamActive("wasm")).toBe(false);
    const previous = process.env.MDREC_FUSED_ADAM;
    process.env.MDREC_FUSED_ADAM = "0";
    try {
      registerFastKernels("wasm", { nativeGemm: true });
      expect(fusedAdamActive("wasm")).toBe(false);
      expect(describeFastKernels("wasm")).toMatch(/, fused Adam off \(MDREC_FUSED_ADAM=0\)$/);
      const variables = makeVariables([[3]], 6);
      const optimizer = createAdamOptimizer(0.01);
      expect(await kernelNamesOf(() => train(optimizer, variables, 1))).not.toContain(ADAM_UPDATE_KERNEL);
      optimizer.dispose();
      tf.dispose(variables);
    } finally {
      if (previous === undefined) delete process.env.MDREC_FUSED_ADAM;
      else process.env.MDREC_FUSED_ADAM = previous;
    }
    registerFastKernels("wasm", { nativeGemm: true });
    expect(fusedAdamActive("wasm")).toBe(nativeAdam);
    expect(describeFastKernels("wasm").endsWith(", fused Adam")).toBe(nativeAdam);
  });

  it.runIf(nativeAdam)("splits large updates over the add-on's threads with the same bits", () => {
    if (!native.available || native.gemm.adamUpdate === undefined) return;
    const gemm = native.gemm;
    const size = 100_003; // above the split threshold (65536), not a multiple of the 16384-float chunks
    const scalars = adamScalars([0.9, 0.1, 0.999, 0.001, 0.271, 0.003, 1e-7, -0.01]);
    const run = (threads: number, inPlace: boolean): Float32Array => {
      const buffer = new ArrayBuffer(4 * size * 7);
      const floats = new Float32Array(buffer);
      const random = new SeededRandom(5);
      for (let index = 0; index < 4 * size; index++) floats[index] = random.nextNormal();
      for (let index = 3 * size; index < 4 * size; index++) floats[index]! *= floats[index]!; // v >= 0
      gemm.setThreads(threads);
      const [value, gradient, first, second] = [0, 1, 2, 3].map((slot) => 4 * slot * size) as [
        number,
        number,
        number,
        number,
      ];
      const outputs = inPlace ? [value, first, second] : [4, 5, 6].map((slot) => 4 * slot * size);
      gemm.adamUpdate!(
        buffer,
        size,
        value,
        gradient,
        first,
        second,
        outputs[0]!,
        outputs[1]!,
        outputs[2]!,
        ...scalars,
      );
      return floats;
    };
    for (const inPlace of [false, true]) {
      const single = run(1, inPlace);
      const split = run(2, inPlace);
      expect(bitDifferences([split], [single])).toBe(0);
    }
    gemm.setThreads(defaultBlasThreads(process.env));
  });

  it.runIf(nativeAdam)("bounds-checks every range of the add-on's adamUpdate", () => {
    if (!native.available || native.gemm.adamUpdate === undefined) return;
    const update = native.gemm.adamUpdate.bind(native.gemm);
    const buffer = new ArrayBuffer(4 * 14);
    const floats = new Float32Array(buffer);
    floats.set([1, -1], 0); // value
    floats.set([2, -4], 2); // gradient; moments at 4 and 6 are zero
    const scalars = adamScalars([0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 0, -0.1]);
    update(buffer, 2, 0, 8, 16, 24, 32, 40, 48, ...scalars);
    expect(Array.from(floats.subarray(8, 10))).toEqual([Math.fround(0.9), Math.fround(-0.9)]);
    expect(() => update(buffer, 2, 0, 8, 16, 24, 32, 40, 52, ...scalars)).toThrow(
      "adamUpdate: a tensor lies outside the buffer or is not 4-byte aligned",
    );
    expect(() => update(buffer, 2, 0, 8, 16, 24, 32, 40, 2, ...scalars)).toThrow(
      "adamUpdate: a tensor lies outside the buffer or is not 4-byte aligned",
    );
    expect(() => update(buffer, 2, 0, 8, 16, 24, 32, 36, 48, ...scalars)).toThrow(
      "adamUpdate: an output overlaps an input or another output",
    );
    expect(() => update(buffer, 2, 0, 8, 16, 24, 4, 40, 48, ...scalars)).toThrow(
      "adamUpdate: an output overlaps an input or another output",
    );
    // In place (outputs at the value and moments): the numbers the call above wrote to fresh outputs.
    const fresh = Array.from(floats.subarray(8, 14)); // new value, first moment, second moment
    floats.set([1, -1, 2, -4, 0, 0, 0, 0], 0);
    update(buffer, 2, 0, 8, 16, 24, 0, 16, 24, ...scalars);
    expect([...floats.subarray(0, 2), ...floats.subarray(4, 8)]).toEqual(fresh);
    expect(Array.from(floats.subarray(2, 4))).toEqual([2, -4]);
    expect(() => update(buffer, 2, 0, 4, 16, 24, 0, 16, 24, ...scalars)).toThrow(
      "adamUpdate: in place, the value, gradient and moments may not overlap",
    );
    expect(() => update(buffer, -1, 0, 8, 16, 24, 32, 40, 48, ...scalars)).toThrow(
      "adamUpdate: size and offsets must be integers in [0, buffer length]",
    );
    expect(() =>
      update(new Float32Array(4) as unknown as ArrayBuffer, 0, 0, 0, 0, 0, 0, 0, 0, ...scalars),
    ).toThrow("adamUpdate: argument 0 must be an ArrayBuffer");
  });

  it.runIf(nativeAdam)("updates several variables in one adamUpdateMany call, with adamUpdate's bits", () => {
    if (!native.available || native.gemm.adamUpdateMany === undefined) return;
    const gemm = native.gemm;
    // Three variables: 5 floats, 70_001 (over the pool threshold, several 16384-float pieces), 0.
    const sizes = [5, 70_001, 0];
    const total = sizes.reduce((sum, size) => sum + size, 0);
    const scalars = adamScalars([0.9, 0.1, 0.999, 0.001, 0.271, 0.003, 1e-7, -0.01]);
    const fill = (floats: Float32Array) => {
      const random = new SeededRandom(11);
      for (let index = 0; index < floats.length; index++) floats[index] = random.nextNormal();
      for (let index = 3 * total; index < 4 * total; index++) floats[index]! *= floats[index]!; // v >= 0
    };
    // Layout: all values, then all gradients, first moments, second moments.
    const offsets = (variable: number) => {
      const start = sizes.slice(0, variable).reduce((sum, size) => sum + size, 0);
      return [0, 1, 2, 3].map((slot) => 4 * (slot * total + start)) as [number, number, number, number];
    };
    const plan = Float64Array.from(sizes.flatMap((size, variable) => [size, ...offsets(variable)]));
    const expected = new Float32Array(new ArrayBuffer(16 * total));
    fill(expected);
    for (const [variable, size] of sizes.entries()) {
      const [value, gradient, first, second] = offsets(variable);
      gemm.adamUpdate!(
        expected.buffer,
        size,
        value,
        gradient,
        first,
        second,
        value,
        first,
        second,
        ...scalars,
      );
    }
    for (const threads of [1, 2]) {
      gemm.setThreads(threads);
      const floats = new Float32Array(new ArrayBuffer(16 * total));
      fill(floats);
      gemm.adamUpdateMany!(floats.buffer, plan, ...scalars);
      expect(bitDifferences([floats], [expected])).toBe(0);
    }
    gemm.setThreads(defaultBlasThreads(process.env));
    // A bad plan changes nothing.
    const floats = new Float32Array(new ArrayBuffer(16 * total));
    fill(floats);
    const before = floats.slice();
    const bad = (entries: number[], message: string) => {
      expect(() => gemm.adamUpdateMany!(floats.buffer, Float64Array.from(entries), ...scalars)).toThrow(
        message,
      );
      expect(bitDifferences([floats], [before])).toBe(0);
    };
    const [value, gradient, first, second] = offsets(1);
    // The second variable's value is the first one's first moment.
    bad(
      [5, ...offsets(0), 5, offsets(0)[2], gradient, first, second],
      "adamUpdateMany: a value or moment overlaps another tensor of the call",
    );
    // A value overlapping another variable's gradient; two variables sharing a gradient is fine.
    bad(
      [5, ...offsets(0), 5, offsets(0)[1] + 4, gradient, first, second],
      "adamUpdateMany: a value or moment overlaps",
    );
    gemm.adamUpdateMany!(
      floats.buffer,
      Float64Array.from([5, ...offsets(0), 5, value, offsets(0)[1], first, second]),
      ...scalars,
    );
    floats.set(before);
    bad(
      [5, 16 * total, gradient, first, second],
      "adamUpdateMany: tensor 0 of variable 0 lies outside the buffer",
    );
    bad(
      [5, 2, gradient, first, second],
      "adamUpdateMany: plan entry 1 (variable 0) is 2; sizes and offsets must be integers",
    );
    bad([5, -4, gradient, first, second], "adamUpdateMany: plan entry 1 (variable 0) is -4");
    bad([5, 0, 4, 8], "adamUpdateMany: plan must be a Float64Array of 5 numbers per variable");
  });
});
