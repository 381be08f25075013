import {
  ConfigError,
  DataError,
  loadLayer,
  registerFastKernels,
  SeededRandom,
  ShapeError,
  saveLayer,
  unregisterFastKernels,
} from "@mdrec/core";
import { denseWeights, ExpertPool, mixExperts, type Routing } from "@mdrec/experts";
import {
  checkInputGradients,
  checkVariableGradients,
  expectClose,
  expectNoLeak,
  onBackend,
  temporaryDirectory,
} from "@mdrec/test-utils";
import * as tf from "@tensorflow/tfjs-core";
import { afterAll, describe, expect, it } from "vitest";

afterAll(async () => {
  await tf.setBackend("cpu");
});

/** Two experts with hand-set weights: layer 0 (relu) [2 -> 2], layer 1 (linear) [2 -> 1]. */
function handSetPool(): ExpertPool {
  const pool = new ExpertPool({ numExperts: 2, units: [2, 1], outputActivation: "linear", seed: 1 });
  pool.build([null as unknown as number, 2]);
  pool.setWeights([
    tf.tensor3d([
      [
        [1, 0],
        [0, 1],
      ],
      [
        [1, 1],
        [-1, 2],
      ],
    ]),
    tf.tensor2d([
      [0, 0],
      [1, -1],
    ]),
    tf.tensor3d([
      [[1], [1]],
      [[2], [-1]],
    ]),
    tf.tensor2d([[0], [0.5]]),
  ]);
  return pool;
}

/** A random top-k routing (distinct experts per row, positive weights summing to 1). */
function randomRouting(batch: number, numExperts: number, k: number, seed: number): Routing {
  const random = new SeededRandom(seed);
  const indices: number[] = [];
  const weights: number[] = [];
  for (let row = 0; row < batch; row++) {
    const experts = random.shuffle(Array.from({ length: numExperts }, (_, index) => index)).slice(0, k);
    const raw = experts.map(() => 0.1 + random.next());
    const total = raw.reduce((sum, value) => sum + value, 0);
    indices.push(...experts);
    weights.push(...raw.map((value) => value / total));
  }
  const weightTensor = tf.tensor2d(weights, [batch, k]);
  return { probs: weightTensor, indices: tf.tensor2d(indices, [batch, k], "int32"), weights: weightTensor };
}

/** The full dense routing: every row uses every expert with softmax-like weights. */
function fullRouting(batch: number, numExperts: number, seed: number): Routing {
  const probs = tf.softmax(tf.randomNormal([batch, numExperts], 0, 1, "float32", seed)) as tf.Tensor2D;
  const indices = tf.tile(tf.reshape(tf.range(0, numExperts, 1, "int32"), [1, numExperts]), [
    batch,
    1,
  ]) as tf.Tensor2D;
  return { probs, indices, weights: probs };
}

function input(batch: number, dim: number, seed: number): tf.Tensor2D {
  return tf.randomNormal([batch, dim], 0, 1, "float32", seed) as tf.Tensor2D;
}

describe("ExpertPool golden values", () => {
  it("dense runs every hand-set expert on every row", () => {
    const pool = handSetPool();
    const x = tf.tensor2d([
      [1, 2],
      [3, -1],
    ]);
    // expert 0: relu(x) = [[1, 2], [3, 0]] -> sum = [3, 3]
    // expert 1: relu(x K + b) = [[0, 4], [5, 0]] -> [0*2 - 4 + 0.5, 5*2 - 0 + 0.5] = [-3.5, 10.5]
    expectClose(pool.dense(x), [
      [[3], [-3.5]],
      [[3], [10.5]],
    ]);
    expect(pool.dense(x).shape).toEqual([2, 2, 1]);
  });

  it("sparse returns the routed weighted sum", () => {
    const pool = handSetPool();
    const x = tf.tensor2d([
      [1, 2],
      [3, -1],
    ]);
    const routing = {
      indices: tf.tensor2d(
        [
          [1, 0],
          [0, 1],
        ],
        [2, 2],
        "int32",
      ),
      weights: tf.tensor2d([
        [0.5, 2],
        [1, -1],
      ]),
    };
    // row 0: 0.5 * -3.5 + 2 * 3 = 4.25; row 1: 1 * 3 - 1 * 10.5 = -7.5
    expectClose(pool.sparse(x, routing), [[4.25], [-7.5]]);
    expectClose(mixExperts(pool.dense(x), routing), [[4.25], [-7.5]]);
  });

  it("denseWeights scatters [B, k] weights into [B, N]", () => {
    const routing = {
      indices: tf.tensor2d(
        [
          [2, 0],
          [1, 1],
        ],
        [2, 2],
        "int32",
      ),
      weights: tf.tensor2d([
        [0.7, 0.3],
        [0.5, 0.25],
      ]),
    };
    expectClose(denseWeights(routing, 3), [
      [0.3, 0, 0.7],
      [0, 0.75, 0],
    ]);
  });

  it("a dense routing (allExperts) mixes with its weights as they are, like the scatter", () => {
    const weights = tf.tensor2d([
      [0.2, 0.5, 0.3],
      [0.6, 0.1, 0.3],
    ]);
    const indices = tf.tensor2d(
      [
        [0, 1, 2],
        [0, 1, 2],
      ],
      [2, 3],
      "int32",
    );
    const outputs = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);
    const flagged = mixExperts(outputs, { indices, weights, allExperts: true });
    expectClose(flagged, mixExperts(outputs, { indices, weights }).arraySync() as number[][]);
    // row 0: 0.2 * [1, 2] + 0.5 * [3, 4] + 0.3 * [5, 6]
    expectClose(flagged, [
      [3.2, 4.2],
      [8.4, 9.4],
    ]);
    expectClose(denseWeights({ indices, weights, allExperts: true }, 3), weights.arraySync() as number[][]);
  });

  it("a one-layer pool returns [B, N, units[0]] without the batched path", () => {
    const pool = new ExpertPool({ numExperts: 2, units: [2], activation: "linear", seed: 1 });
    pool.build([null as unknown as number, 1]);
    pool.setWeights([
      tf.tensor3d([[[1, 2]], [[3, 4]]]),
      tf.tensor2d([
        [0, 1],
        [0, -1],
      ]),
    ]);
    expectClose(pool.dense(tf.tensor2d([[2]])), [
      [
        [2, 5],
        [6, 7],
      ],
    ]);
  });
});

for (const backend of ["cpu", "wasm"] as const) {
  describe(`ExpertPool dense vs sparse on ${backend}`, () => {
    const cases = [
      { label: "top-1", k: 1 },
      { label: "top-2", k: 2 },
      { label: "full dense routing", k: 0 },
    ];
    for (const { label, k } of cases) {
      it(`agrees in outputs and gradients (${label})`, async () => {
        await onBackend(backend, () => {
          const numExperts = 4;
          const batch = 9;
          const pool = new ExpertPool({ numExperts, units: [6, 3], activation: "tanh", seed: 11 });
          const x = input(batch, 5, 3);
          const routing =
            k === 0 ? fullRouting(batch, numExperts, 4) : randomRouting(batch, numExperts, k, 5);
          const denseOut = mixExperts(pool.dense(x), routing);
          const sparseOut = pool.sparse(x, routing);
          expectClose(sparseOut, denseOut, 1e-5);
          // Different per-row targets so every output element gets a distinct gradient.
          const target = input(batch, 3, 8);
          const lossOf = (out: tf.Tensor) => tf.sum(tf.mul(out, target)) as tf.Scalar;
          const inputGrads = (mode: "dense" | "sparse") =>
            tf.grads((xIn: tf.Tensor, weightsIn: tf.Tensor) => {
              const r = { indices: routing.indices, weights: weightsIn as tf.Tensor2D };
              return lossOf(
                mode === "dense"
                  ? mixExperts(pool.dense(xIn as tf.Tensor2D), r)
                  : pool.sparse(xIn as tf.Tensor2D, r),
              );
            })([x, routing.weights]);
          const [denseX, denseW] = inputGrads("dense");
          const [sparseX, sparseW] = inputGrads("sparse");
          expectClose(sparseX!, denseX!, 1e-5);
          expectClose(sparseW!, denseW!, 1e-5);
          const variables = pool.trainableWeights.map((weight) => weight.read() as tf.Variable);
          const denseVars = tf.variableGrads(() => lossOf(mixExperts(pool.dense(x), routing)), variables);
          const sparseVars = tf.variableGrads(() => lossOf(pool.sparse(x, routing)), variables);
          for (const variable of variables) {
            expectClose(sparseVars.grads[variable.name]!, denseVars.grads[variable.name]!, 1e-5);
          }
        });
      });
    }

    it("handles an expert that receives no rows and a batch of one", async () => {
      await onBackend(backend, () => {
        const pool = new ExpertPool({ numExperts: 4, units: [3], activation: "tanh", seed: 2 });
        const x = input(1, 2, 1);
        const routing = {
          indices: tf.tensor2d([[2, 0]], [1, 2], "int32"),
          weights: tf.tensor2d([[0.25, 0.75]]),
        };
        const dense = mixExperts(pool.dense(x), routing);
        expectClose(pool.sparse(x, routing), dense);
        expect(pool.expertInvocations.lastDispatch?.rowsPerExpert).toEqual([1, 0, 1, 0]);
        const kernel = pool.trainableWeights[0]!.read() as tf.Variable;
        const { grads, value } = tf.variableGrads(
          () => tf.sum(pool.sparse(x, routing)) as tf.Scalar,
          [kernel],
        );
        const perExpert = tf.sum(tf.abs(grads[kernel.name]!), [1, 2]).arraySync() as number[];
        expect(perExpert[1]).toBe(0);
        expect(perExpert[3]).toBe(0);
        expect(perExpert[0]).toBeGreaterThan(0);
        tf.dispose([value, grads[kernel.name]!]);
      });
    });
  });
}

describe("ExpertPool with a single expert", () => {
  it("dense, sparse and mixExperts agree in outputs and gradients", () => {
    const pool = new ExpertPool({ numExperts: 1, units: [3, 2], activation: "tanh", seed: 4 });
    const x = input(3, 2, 1);
    const routing = {
      indices: tf.zeros([3, 1], "int32") as tf.Tensor2D,
      weights: tf.tensor2d([[0.5], [1], [2]]),
    };
    expectClose(pool.sparse(x, routing), mixExperts(pool.dense(x), routing));
    const variables = pool.trainableWeights.map((weight) => weight.read() as tf.Variable);
    const dense = tf.variableGrads(() => tf.sum(mixExperts(pool.dense(x), routing)) as tf.Scalar, variables);
    const sparse = tf.variableGrads(() => tf.sum(pool.sparse(x, routing)) as tf.Scalar, variables);
    for (const variable of variables) expectClose(sparse.grads[variable.name]!, dense.grads[variable.name]!);
  });
});

describe("ExpertPool sparse dispatch computes routed rows only", () => {
  it("counts rows per expert and B * k evaluations", () => {
    const pool = new ExpertPool({ numExperts: 3, units: [2], seed: 3 });
    const x = input(4, 2, 2);
    const routing = {
      indices: tf.tensor2d(
        [
          [0, 2],
          [2, 1],
          [2, 0],
          [0, 1],
        ],
        [4, 2],
        "int32",
      ),
      weights: tf.ones([4, 2]) as tf.Tensor2D,
    };
    pool.sparse(x, routing);
    expect(pool.expertInvocations.lastDispatch).toEqual({
      mode: "sparse",
      batchSize: 4,
      rowsPerExpert: [3, 2, 3],
      totalRowEvaluations: 8,
    });
    pool.dense(x);
    expect(pool.expertInvocations.lastDispatch?.rowsPerExpert).toEqual([4, 4, 4]);
    expect(pool.expertInvocations.calls).toBe(2);
    expect(pool.expertInvocations.totalRowEvaluations).toBe(20);
    pool.expertInvocations.reset();
    expect(pool.expertInvocations.totalRowEvaluations).toBe(0);
    expect(pool.expertInvocations.lastDispatch).toBeNull();
  });

  it("an expert never sees a row that is not routed to it", () => {
    // Expert 0 overflows to Infinity on row 1 (its input is 1e30); rows not routed to expert 0
    // stay finite only if expert 0 did not run on them (dense mixing gives 0 * Inf = NaN).
    const pool = new ExpertPool({ numExperts: 3, units: [1], activation: "linear", seed: 3 });
    pool.build([null as unknown as number, 1]);
    pool.setWeights([tf.tensor3d([[[1e30]], [[1]], [[2]]]), tf.zeros([3, 1])]);
    const x = tf.tensor2d([[1], [1e30], [2]]);
    const routing = {
      indices: tf.tensor2d(
        [
          [0, 1],
          [1, 2],
          [0, 2],
        ],
        [3, 2],
        "int32",
      ),
      weights: tf.tensor2d([
        [1, 1],
        [1, 1],
        [1, 0],
      ]),
    };
    const sparse = pool.sparse(x, routing).arraySync() as number[][];
    expect(sparse[0]![0]).toBeCloseTo(1e30 + 1, -25);
    expect(sparse[1]![0]).toBeCloseTo(3e30, -25);
    expect(Number.isFinite(sparse[1]![0])).toBe(true);
    expect(sparse[2]![0]).toBeCloseTo(2e30, -25);
    const dense = mixExperts(pool.dense(x), routing).arraySync() as number[][];
    expect(Number.isNaN(dense[1]![0])).toBe(true);
  });
});

describe("ExpertPool gradients", () => {
  it("sparse autodiff matches finite differences for x, routing weights and expert weights", () => {
    const pool = new ExpertPool({ numExperts: 3, units: [4, 2], activation: "tanh", seed: 7 });
    const x = input(5, 3, 1);
    const routing = randomRouting(5, 3, 2, 2);
    const target = input(5, 2, 3);
    checkInputGradients(
      (xIn, weightsIn) =>
        tf.sum(
          tf.mul(
            pool.sparse(xIn as tf.Tensor2D, { indices: routing.indices, weights: weightsIn as tf.Tensor2D }),
            target,
          ),
        ) as tf.Scalar,
      [x, routing.weights],
    );
    checkVariableGradients(
      () => tf.sum(tf.mul(pool.sparse(x, routing), target)) as tf.Scalar,
      pool.trainableWeights.map((weight) => weight.read() as tf.Variable),
    );
  });

  it("dense autodiff matches finite differences for expert weights", () => {
    const pool = new ExpertPool({ numExperts: 2, units: [3, 2], activation: "tanh", seed: 8 });
    const x = input(4, 3, 1);
    const target = tf.randomNormal([4, 2, 2], 0, 1, "float32", 5);
    pool.dense(x);
    checkVariableGradients(
      () => tf.sum(tf.mul(pool.dense(x), target)) as tf.Scalar,
      pool.trainableWeights.map((weight) => weight.read() as tf.Variable),
    );
  });
});

describe("ExpertPool serialisation and determinism", () => {
  it("getConfig/fromConfig round trip gives the same outputs", () => {
    const pool = new ExpertPool({
      numExperts: 3,
      units: [4, 2],
      activation: "elu",
      dropout: 0.1,
      seed: 21,
      name: "pool_a",
    });
    const x = input(3, 5, 1);
    const config = pool.getConfig();
    expect(config).toMatchObject({
      numExperts: 3,
      units: [4, 2],
      activation: "elu",
      outputActivation: "elu",
      dropout: 0.1,
      seed: 21,
    });
    const copy = ExpertPool.fromConfig(ExpertPool, config) as ExpertPool;
    expectClose(copy.dense(x), pool.dense(x), 0);
  });

  it("saveLayer/loadLayer round trip gives the same outputs", async () => {
    const pool = new ExpertPool({ numExperts: 3, units: [4, 2], seed: 5 });
    const x = input(4, 3, 1);
    const routing = randomRouting(4, 3, 2, 9);
    const before = pool.sparse(x, routing);
    // Move off the initial values so the test proves the weights, not the seed, were restored.
    pool.trainableWeights.forEach((weight) => {
      weight.write(tf.add(weight.read(), 0.25));
    });
    const trained = pool.sparse(x, routing);
    expect(tf.max(tf.abs(tf.sub(trained, before))).dataSync()[0]).toBeGreaterThan(1e-3);
    const directory = await temporaryDirectory();
    try {
      await saveLayer(pool, directory.path);
      const loaded = await loadLayer<ExpertPool>(directory.path);
      expect(loaded).toBeInstanceOf(ExpertPool);
      expectClose(loaded.sparse(x, routing), trained, 0);
      expectClose(loaded.dense(x), pool.dense(x), 0);
    } finally {
      await directory.cleanup();
    }
  });

  it("same seed gives identical outputs, another seed different ones", () => {
    const x = input(3, 4, 1);
    const a = new ExpertPool({ numExperts: 2, units: [3], seed: 42 }).dense(x);
    const b = new ExpertPool({ numExperts: 2, units: [3], seed: 42 }).dense(x);
    const c = new ExpertPool({ numExperts: 2, units: [3], seed: 43 }).dense(x);
    expectClose(a, b, 0);
    expect(tf.max(tf.abs(tf.sub(a, c))).dataSync()[0]).toBeGreaterThan(1e-3);
  });

  it("dropout is active only in training", () => {
    const pool = new ExpertPool({ numExperts: 2, units: [16], dropout: 0.5, seed: 3 });
    const x = input(4, 3, 1);
    expectClose(pool.dense(x, false), pool.dense(x, false), 0);
    const trained = pool.dense(x, true).dataSync();
    expect(Array.from(trained).filter((value) => value === 0).length).toBeGreaterThan(
      Array.from(pool.dense(x, false).dataSync()).filter((value) => value === 0).length,
    );
  });
});

describe("ExpertPool leaks and backends", () => {
  it("dense, sparse and mixExperts leave no tensors behind", () => {
    const pool = new ExpertPool({ numExperts: 3, units: [4, 2], seed: 1 });
    const x = input(5, 3, 1);
    const routing = randomRouting(5, 3, 2, 1);
    pool.dense(x).dispose();
    expectNoLeak(() => {
      pool.dense(x, true);
      pool.sparse(x, routing, true);
      mixExperts(pool.dense(x), routing);
      const { value, grads } = tf.variableGrads(() => tf.sum(pool.sparse(x, routing)) as tf.Scalar);
      tf.dispose([value, ...Object.values(grads)]);
    });
  });

  it("wasm gives the cpu outputs and gradients", async () => {
    const numExperts = 3;
    const run = () => {
      const pool = new ExpertPool({ numExperts, units: [4, 2], activation: "tanh", seed: 13 });
      const x = input(6, 3, 2);
      const routing = randomRouting(6, numExperts, 2, 3);
      const sparse = pool.sparse(x, routing);
      const dense = pool.dense(x);
      const grads = tf.variableGrads(() => tf.sum(tf.square(pool.sparse(x, routing))) as tf.Scalar);
      return {
        sparse: Array.from(sparse.dataSync()),
        dense: Array.from(dense.dataSync()),
        grads: pool.trainableWeights.map((weight) =>
          Array.from(grads.grads[(weight.read() as tf.Variable).name]!.dataSync()),
        ),
      };
    };
    const cpu = run();
    const wasm = await onBackend("wasm", run);
    expectClose(wasm.sparse, cpu.sparse, 1e-5);
    expectClose(wasm.dense, cpu.dense, 1e-5);
    wasm.grads.forEach((gradient, index) => {
      expectClose(gradient, cpu.grads[index]!, 1e-5);
    });
  });
});

describe("ExpertPool and mixExperts reject bad arguments", () => {
  it("validates constructor arguments, naming the argument and the value", () => {
    expect(() => new ExpertPool({ numExperts: 0, units: [2] })).toThrow(ConfigError);
    expect(() => new ExpertPool({ numExperts: 0, units: [2] })).toThrow(
      "ExpertPool numExperts must be an integer >= 1, received 0",
    );
    expect(() => new ExpertPool({ numExperts: 2.5, units: [2] })).toThrow("received 2.5");
    expect(() => new ExpertPool({ numExperts: 2, units: [] })).toThrow(
      "ExpertPool units must be a non-empty array of positive integers, received []",
    );
    expect(() => new ExpertPool({ numExperts: 2, units: [4, 0] })).toThrow(
      "ExpertPool units[1] must be an integer >= 1, received 0",
    );
    expect(() => new ExpertPool({ numExperts: 2, units: [4], activation: "rulu" as never })).toThrow(
      'ExpertPool activation must be one of "relu"',
    );
    expect(() => new ExpertPool({ numExperts: 2, units: [4], dropout: Number.NaN })).toThrow(
      "ExpertPool dropout must be a finite number >= 0 and <= 0.999, received NaN",
    );
    expect(() => new ExpertPool({ numExpert: 2, units: [4] } as never)).toThrow(
      'Unknown key "numExpert" in ExpertPool args. Did you mean "numExperts"?',
    );
  });

  it("validates tensors passed to dense and sparse", () => {
    const pool = new ExpertPool({ numExperts: 2, units: [2], seed: 1, name: "pool_bad" });
    expect(() => pool.dense(tf.ones([3]) as never)).toThrow(ShapeError);
    expect(() => pool.dense(tf.ones([3]) as never)).toThrow("pool_bad input x must have rank 2");
    expect(() => pool.dense(tf.ones([3, 2], "int32") as never)).toThrow(
      "pool_bad input x must have dtype float32, received int32",
    );
    pool.dense(tf.ones([3, 2]) as tf.Tensor2D);
    expect(() => pool.dense(tf.ones([3, 5]) as tf.Tensor2D)).toThrow(
      "pool_bad input x must have shape [?, 2], received [3, 5]",
    );
    const x = tf.ones([2, 2]) as tf.Tensor2D;
    expect(() =>
      pool.sparse(x, { indices: tf.ones([2, 1]) as tf.Tensor2D, weights: tf.ones([2, 1]) as tf.Tensor2D }),
    ).toThrow("pool_bad.sparse routing.indices must have dtype int32, received float32");
    expect(() =>
      pool.sparse(x, {
        indices: tf.zeros([3, 1], "int32") as tf.Tensor2D,
        weights: tf.ones([3, 1]) as tf.Tensor2D,
      }),
    ).toThrow("pool_bad.sparse routing.indices must have shape [2, ?], received [3, 1]");
    expect(() =>
      pool.sparse(x, {
        indices: tf.zeros([2, 1], "int32") as tf.Tensor2D,
        weights: tf.ones([2, 2]) as tf.Tensor2D,
      }),
    ).toThrow("pool_bad.sparse routing.weights must have shape [2, 1], received [2, 2]");
    const outOfRange = {
      indices: tf.tensor2d([[0], [5]], [2, 1], "int32"),
      weights: tf.ones([2, 1]) as tf.Tensor2D,
    };
    expect(() => pool.sparse(x, outOfRange)).toThrow(DataError);
    expect(() => pool.sparse(x, outOfRange)).toThrow(
      "ExpertPool.sparse: routing.indices[1][0] must be in [0, numExperts=2), received 5",
    );
  });

  it("validates mixExperts arguments", () => {
    const outputs = tf.ones([2, 3, 4]) as tf.Tensor3D;
    const routing = {
      indices: tf.zeros([2, 1], "int32") as tf.Tensor2D,
      weights: tf.ones([2, 1]) as tf.Tensor2D,
    };
    expect(() => mixExperts(tf.ones([2, 3]) as never, routing)).toThrow(
      "mixExperts expertOutputs must have rank 3, received shape [2, 3]",
    );
    expect(() => mixExperts(outputs, { ...routing, weights: tf.ones([2, 2]) as tf.Tensor2D })).toThrow(
      "mixExperts routing.weights must have the shape of routing.indices [2, 1], received [2, 2]",
    );
    expect(() =>
      mixExperts(outputs, {
        indices: tf.zeros([3, 1], "int32") as tf.Tensor2D,
        weights: tf.ones([3, 1]) as tf.Tensor2D,
      }),
    ).toThrow(
      "mixExperts routing.indices must have 2 rows (the batch of expertOutputs), received shape [3, 1]",
    );
  });
});

describe("ExpertPool.sparseSum", () => {
  /** Outputs and gradients (x and every weight) of sum(sparseSum * probe) and of the pools added one by one. */
  function both(): { joint: number[][]; separate: number[][] } {
    const shared = new ExpertPool({ numExperts: 2, units: [5, 3], seed: 21, name: "shared_pool" });
    const specific = new ExpertPool({ numExperts: 4, units: [6, 3], seed: 22, name: "specific_pool" });
    const x = input(7, 4, 5);
    const routing = randomRouting(7, 4, 2, 6);
    const sharedRouting = {
      indices: tf.tensor2d(
        Array.from({ length: 14 }, (_, slot) => slot % 2),
        [7, 2],
        "int32",
      ),
      weights: tf.fill([7, 2], 0.5) as tf.Tensor2D,
    };
    const probe = input(7, 3, 7);
    const parts = [
      { pool: specific, routing },
      { pool: shared, routing: sharedRouting },
    ];
    const run = (joint: boolean) => {
      const mixture = (value: tf.Tensor) =>
        joint
          ? ExpertPool.sparseSum(value as tf.Tensor2D, parts, true)
          : (tf.add(
              specific.sparse(value as tf.Tensor2D, routing, true),
              shared.sparse(value as tf.Tensor2D, sharedRouting, true),
            ) as tf.Tensor2D);
      const out = mixture(x);
      const weights = [...specific.trainableWeights, ...shared.trainableWeights].map(
        (weight) => weight.read() as tf.Variable,
      );
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(mixture(x), probe)) as tf.Scalar, weights);
      const dx = tf.grad((value: tf.Tensor) => tf.sum(tf.mul(mixture(value), probe)))(x);
      return [out, dx, ...weights.map((weight) => grads[weight.name]!)].map((tensor) =>
        Array.from(tensor.dataSync()),
      );
    };
    run(true); // the first call builds both pools, one by one
    return { joint: run(true), separate: run(false) };
  }

  it("adds the pools' sparse mixtures with the same values and gradients on cpu and wasm (native when it loads)", async () => {
    const cpu = both();
    cpu.joint.forEach((values, index) => {
      expect(values, `output ${index}`).toEqual(cpu.separate[index]);
    });
    const wasm = await onBackend("wasm", () => {
      registerFastKernels("wasm");
      try {
        return both();
      } finally {
        unregisterFastKernels("wasm");
      }
    });
    wasm.joint.forEach((values, index) => {
      expect(values, `output ${index}`).toEqual(wasm.separate[index]);
      expectClose(values, cpu.joint[index]!, 1e-5);
    });
  });

  it("builds pools on their first call and records one sparse dispatch per pool", () => {
    const first = new ExpertPool({ numExperts: 3, units: [2], seed: 3 });
    const second = new ExpertPool({ numExperts: 2, units: [2], seed: 4 });
    const x = input(4, 2, 2);
    const routing = randomRouting(4, 3, 2, 5);
    const allTwo = {
      indices: tf.tensor2d([0, 1, 0, 1, 0, 1, 0, 1], [4, 2], "int32"),
      weights: tf.ones([4, 2]) as tf.Tensor2D,
    };
    for (let call = 1; call <= 2; call++) {
      ExpertPool.sparseSum(x, [
        { pool: first, routing },
        { pool: second, routing: allTwo },
      ]);
      expect(first.built && second.built).toBe(true);
      expect(first.expertInvocations.calls).toBe(call);
      expect(second.expertInvocations.lastDispatch).toEqual({
        mode: "sparse",
        batchSize: 4,
        rowsPerExpert: [4, 4],
        totalRowEvaluations: 8,
      });
    }
    expectNoLeak(() => {
      ExpertPool.sparseSum(x, [
        { pool: first, routing },
        { pool: second, routing: allTwo },
      ]);
    });
  });

  it("rejects an empty list, a part that is not a pool and pools of different widths, naming them", () => {
    const pool = new ExpertPool({ numExperts: 2, units: [3], seed: 1 });
    const wide = new ExpertPool({ numExperts: 2, units: [4], seed: 2 });
    const x = input(3, 2, 1);
    const routing = randomRouting(3, 2, 1, 1);
    expect(() => ExpertPool.sparseSum(x, [])).toThrow(
      "ExpertPool.sparseSum parts must be a non-empty array of { pool, routing }, received ",
    );
    expect(() => ExpertPool.sparseSum(x, [{ pool: {} as ExpertPool, routing }])).toThrow(
      "ExpertPool.sparseSum parts[0].pool must be an ExpertPool, received [object Object]",
    );
    expect(() =>
      ExpertPool.sparseSum(x, [
        { pool, routing },
        { pool: wide, routing },
      ]),
    ).toThrow("ExpertPool.sparseSum parts[1].pool must have outputDim 3 like parts[0], received 4");
    expect(() =>
      ExpertPool.sparseSum(x, [
        { pool, routing: { indices: routing.indices, weights: tf.ones([3, 2]) as tf.Tensor2D } },
      ]),
    ).toThrow(/\.sparse routing\.weights/);
  });
});
