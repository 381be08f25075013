import "@tensorflow/tfjs-backend-wasm";
import {
  type Activation,
  type ExpertLayerWeights,
  nativeRoutedExpertsAvailable,
  type RoutedEntries,
  registerFastKernels,
  routedExpertMixture,
  routedExpertPools,
  ShapeError,
} from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { expectAllClose, onBackend, seededValues, useFastWasmKernels } from "./helpers.js";

const native = useFastWasmKernels();

/** Routing slots grouped by expert (a counting sort, row order kept inside each expert). */
function group(indices: number[][], numExperts: number): RoutedEntries {
  const slotsPerRow = indices[0]?.length ?? 0;
  const flat = indices.flat();
  const order = flat
    .map((expert, slot) => [expert, slot] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const counts = new Array<number>(numExperts).fill(0);
  for (const expert of flat) counts[expert]! += 1;
  return {
    counts,
    rows: Int32Array.from(order.map(([, slot]) => Math.floor(slot / slotsPerRow))),
    slots: Int32Array.from(order.map(([, slot]) => slot)),
  };
}

interface Case {
  batch: number;
  slotsPerRow: number;
  numExperts: number;
  widths: number[];
  activations: Activation[];
}

// Expert 1 never chosen (an empty expert), rows pick distinct experts.
function routingOf({ batch, slotsPerRow, numExperts }: Case): number[][] {
  const usable = numExperts === 1 ? [0] : [...Array(numExperts).keys()].filter((expert) => expert !== 1);
  return Array.from({ length: batch }, (_, row) =>
    Array.from({ length: slotsPerRow }, (_, slot) => usable[(row * 3 + slot) % usable.length]!),
  );
}

/** Value and gradients (x, weights, kernel and bias per layer) of sum(mixture * probe). */
function run(spec: Case, composed: boolean): Float32Array[] {
  return tf.tidy(() => {
    const { batch, slotsPerRow, numExperts, widths, activations } = spec;
    const x = tf.tensor2d(seededValues(batch * widths[0]!, 1), [batch, widths[0]!]);
    const weights = tf.tensor2d(seededValues(batch * slotsPerRow, 2), [batch, slotsPerRow]);
    const parameters = activations.flatMap((_, layer) => [
      tf.tensor3d(seededValues(numExperts * widths[layer]! * widths[layer + 1]!, 10 + layer), [
        numExperts,
        widths[layer]!,
        widths[layer + 1]!,
      ]),
      tf.tensor2d(seededValues(numExperts * widths[layer + 1]!, 20 + layer), [
        numExperts,
        widths[layer + 1]!,
      ]),
    ]);
    const entries = group(routingOf(spec), numExperts);
    const mixture = (input: tf.Tensor, slotWeights: tf.Tensor, ...tensors: tf.Tensor[]) =>
      routedExpertMixture(
        input as tf.Tensor2D,
        activations.map((activation, layer) => ({
          kernel: tensors[2 * layer] as tf.Tensor3D,
          bias: tensors[2 * layer + 1] as tf.Tensor2D,
          activation,
        })),
        entries,
        slotWeights as tf.Tensor2D,
        composed ? (hidden) => hidden : undefined,
      );
    const value = mixture(x, weights, ...parameters);
    const probe = tf.tensor(seededValues(value.size, 3), value.shape);
    const grads = tf.grads((...inputs: tf.Tensor[]) =>
      tf.sum(tf.mul(mixture(...(inputs as [tf.Tensor, tf.Tensor])), probe)),
    )([x, weights, ...parameters]);
    return [value, ...grads].map((tensor) => tensor.dataSync() as Float32Array);
  });
}

const CASES: Case[] = [
  { batch: 9, slotsPerRow: 2, numExperts: 4, widths: [5, 6, 3], activations: ["relu", "linear"] },
  { batch: 7, slotsPerRow: 3, numExperts: 5, widths: [4, 8, 6, 2], activations: ["relu", "relu", "relu"] },
  { batch: 6, slotsPerRow: 1, numExperts: 1, widths: [3, 4], activations: ["linear"] },
];

// x rows [1, 2] and [3, 4]; expert 0 sums its inputs, bias -1; expert 1 doubles the first, bias 1.
function handChecked(activation: Activation): tf.Tensor2D {
  const layers: ExpertLayerWeights[] = [
    {
      kernel: tf.tensor3d([1, 1, 2, 0], [2, 2, 1]),
      bias: tf.tensor2d([-1, 1], [2, 1]),
      activation,
    },
  ];
  // Row 0 routes to experts (1, 0) with weights (0.25, 0.75), row 1 to (0, 1) with (0.5, 0.5).
  const entries: RoutedEntries = {
    counts: [2, 2],
    rows: Int32Array.from([0, 1, 0, 1]),
    slots: Int32Array.from([1, 2, 0, 3]),
  };
  const x = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  const weights = tf.tensor2d([0.25, 0.75, 0.5, 0.5], [2, 2]);
  return routedExpertMixture(x, layers, entries, weights);
}

describe("routedExpertMixture", () => {
  it("computes a hand-checked mixture on cpu and on the native path", async () => {
    // E0(x0) = 1 + 2 - 1 = 2, E1(x0) = 2 + 1 = 3: 0.25 * 3 + 0.75 * 2 = 2.25.
    // E0(x1) = 3 + 4 - 1 = 6, E1(x1) = 6 + 1 = 7: 0.5 * 6 + 0.5 * 7 = 6.5.
    const backends = native ? ["cpu", "wasm"] : ["cpu"];
    for (const backend of backends) {
      await onBackend(backend, () => {
        if (backend === "wasm") registerFastKernels("wasm");
        expect(Array.from(tf.tidy(() => handChecked("linear")).dataSync())).toEqual([2.25, 6.5]);
      });
    }
  });

  it("says when it runs natively: wasm with the add-on, relu and linear layers only", async () => {
    await onBackend("cpu", () => {
      expect(nativeRoutedExpertsAvailable(["relu", "linear"])).toBe(false);
    });
    await onBackend("wasm", () => {
      registerFastKernels("wasm");
      expect(nativeRoutedExpertsAvailable(["relu", "linear"])).toBe(native);
      expect(nativeRoutedExpertsAvailable()).toBe(native);
      expect(nativeRoutedExpertsAvailable(["relu", "tanh"])).toBe(false);
    });
  });

  it("has gradients that match finite differences on every path", async () => {
    const spec = CASES[0]!;
    const paths: [string, boolean][] = [
      ["cpu", true],
      ["cpu", false],
    ];
    if (native) paths.push(["wasm", false], ["wasm", true]);
    for (const [backend, composed] of paths) {
      await onBackend(backend, () => {
        if (backend === "wasm") registerFastKernels("wasm");
        const analytic = run(spec, composed);
        // Shift a few entries of x, weights, the first kernel and the last bias.
        const loss = (inputIndex: number, position: number, delta: number): number =>
          tf.tidy(() => {
            const { batch, slotsPerRow, numExperts, widths, activations } = spec;
            const tensors = [
              seededValues(batch * widths[0]!, 1),
              seededValues(batch * slotsPerRow, 2),
              ...activations.flatMap((_, layer) => [
                seededValues(numExperts * widths[layer]! * widths[layer + 1]!, 10 + layer),
                seededValues(numExperts * widths[layer + 1]!, 20 + layer),
              ]),
            ];
            tensors[inputIndex]![position]! += delta;
            const layers = activations.map((activation, layer) => ({
              kernel: tf.tensor3d(tensors[2 + 2 * layer]!, [numExperts, widths[layer]!, widths[layer + 1]!]),
              bias: tf.tensor2d(tensors[3 + 2 * layer]!, [numExperts, widths[layer + 1]!]),
              activation,
            }));
            const value = routedExpertMixture(
              tf.tensor2d(tensors[0]!, [batch, widths[0]!]),
              layers,
              group(routingOf(spec), numExperts),
              tf.tensor2d(tensors[1]!, [batch, slotsPerRow]),
              composed ? (hidden) => hidden : undefined,
            );
            return tf.sum(tf.mul(value, tf.tensor(seededValues(value.size, 3), value.shape))).dataSync()[0]!;
          });
        for (const [inputIndex, position] of [
          [0, 3],
          [1, 5],
          [2, 7],
          [5, 1],
        ] as const) {
          const numeric = (loss(inputIndex, position, 1e-2) - loss(inputIndex, position, -1e-2)) / 2e-2;
          const autodiff = analytic[1 + inputIndex]![position]!;
          expect(Math.abs(numeric - autodiff)).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
        }
      });
    }
  });

  it.runIf(native)("gives the composed path's values and gradients on the native path", async () => {
    const cpu = new Map<number, Float32Array[]>();
    await onBackend("cpu", () => {
      CASES.forEach((spec, index) => {
        cpu.set(index, run(spec, true));
      });
    });
    await onBackend("wasm", () => registerFastKernels("wasm"));
    CASES.forEach((spec, index) => {
      const fused = run(spec, false);
      const composed = run(spec, true);
      fused.forEach((array, output) => {
        expectAllClose(array, composed[output]!, 1e-5);
        expectAllClose(array, cpu.get(index)![output]!, 1e-5);
      });
    });
  });

  // Large enough that the experts, the output rows and dx's rows are all split over the pool.
  it.runIf(native)("gives the same bits on one and on two pool threads", async () => {
    await onBackend("wasm", () => undefined);
    const spec: Case = {
      batch: 600,
      slotsPerRow: 2,
      numExperts: 6,
      widths: [64, 96, 64],
      activations: ["relu", "relu"],
    };
    const outputs = [1, 2, 1].map((blasThreads) => {
      registerFastKernels("wasm", { blasThreads });
      return run(spec, false);
    });
    registerFastKernels("wasm");
    for (const other of outputs.slice(1)) {
      other.forEach((array, index) => {
        expect(array).toEqual(outputs[0]![index]!);
      });
    }
  });

  it("leaves no tensor behind", async () => {
    const backends = native ? ["cpu", "wasm"] : ["cpu"];
    for (const backend of backends) {
      await onBackend(backend, () => {
        if (backend === "wasm") registerFastKernels("wasm");
        run(CASES[0]!, false);
        const before = tf.memory().numTensors;
        tf.tidy(() => {
          handChecked("relu");
        });
        run(CASES[1]!, false);
        run(CASES[0]!, true);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  });

  it("rejects inconsistent layers, counts, rows and slots, naming them", async () => {
    await onBackend("cpu", () => {
      tf.tidy(() => {
        const x = tf.zeros([2, 3]) as tf.Tensor2D;
        const weights = tf.ones([2, 2]) as tf.Tensor2D;
        const layer = {
          kernel: tf.zeros([2, 3, 4]) as tf.Tensor3D,
          bias: tf.zeros([2, 4]) as tf.Tensor2D,
          activation: "relu" as const,
        };
        const entries: RoutedEntries = {
          counts: [2, 2],
          rows: Int32Array.from([0, 1, 0, 1]),
          slots: Int32Array.from([0, 2, 1, 3]),
        };
        expect(() => routedExpertMixture(x, [layer], entries, weights)).not.toThrow();
        expect(() => routedExpertMixture(x, [], entries, weights)).toThrow(ShapeError);
        expect(() =>
          routedExpertMixture(
            x,
            [{ ...layer, kernel: tf.zeros([2, 5, 4]) as tf.Tensor3D }],
            entries,
            weights,
          ),
        ).toThrow("routedExpertMixture layers[0].kernel must have shape [2, 3, out], received [2, 5, 4]");
        expect(() =>
          routedExpertMixture(
            x,
            [layer, { ...layer, kernel: tf.zeros([3, 4, 4]) as tf.Tensor3D }],
            entries,
            weights,
          ),
        ).toThrow("routedExpertMixture layers[1].kernel must have shape [2, 4, out], received [3, 4, 4]");
        expect(() =>
          routedExpertMixture(x, [{ ...layer, activation: "bogus" as never }], entries, weights),
        ).toThrow(/routedExpertMixture layers\[0\]\.activation/);
        expect(() => routedExpertMixture(x, [layer], { ...entries, counts: [3, 2] }, weights)).toThrow(
          "routedExpertMixture entries.counts must sum to 4 (B=2 x k=2), received [3,2] (sum 5)",
        );
        expect(() => routedExpertMixture(x, [layer], { ...entries, counts: [4] }, weights)).toThrow(
          "routedExpertMixture entries.counts must list 2 counts (one per expert), received [4]",
        );
        expect(() =>
          routedExpertMixture(x, [layer], { ...entries, rows: Int32Array.from([0, 1, 2, 1]) }, weights),
        ).toThrow("routedExpertMixture entries.rows[2] must be in [0, 2), received 2");
        expect(() =>
          routedExpertMixture(x, [layer], { ...entries, slots: Int32Array.from([0, 2, 2, 3]) }, weights),
        ).toThrow(
          "routedExpertMixture entries.slots[2] must be a slot in [0, 4) not listed before, received 2",
        );
        expect(() =>
          routedExpertMixture(
            x,
            [layer],
            { ...entries, rows: [0, 1, 0, 1] as unknown as Int32Array },
            weights,
          ),
        ).toThrow(
          "routedExpertMixture entries.rows must be an Int32Array of 4 entries (B=2 x k=2), received 0,1,0,1",
        );
        expect(() => routedExpertMixture(x, [layer], entries, tf.ones([3, 2]) as tf.Tensor2D)).toThrow(
          /routedExpertMixture weights/,
        );
      });
    });
  });
});

// Two pools on the same rows: CASES[0]'s top-2 of 4 experts, and 2 experts that every row uses.
const SHARED: Case = {
  batch: 9,
  slotsPerRow: 2,
  numExperts: 2,
  widths: [5, 7, 3],
  activations: ["relu", "relu"],
};

// The same two kinds of pool, large enough that their experts are spread over the pool threads.
const LARGE: [Case, Case] = [
  { batch: 600, slotsPerRow: 2, numExperts: 6, widths: [64, 96, 64], activations: ["relu", "relu"] },
  { batch: 600, slotsPerRow: 2, numExperts: 2, widths: [64, 80, 64], activations: ["relu", "relu"] },
];

/** Value and gradients (x, then each pool's weights, kernels and biases) of sum(pools * probe). */
function runPools(
  separately: boolean,
  blasThreads?: number,
  specs: [Case, Case] = [CASES[0]!, SHARED],
): Float32Array[] {
  if (blasThreads !== undefined) registerFastKernels("wasm", { blasThreads });
  return tf.tidy(() => {
    const [batch, width] = [specs[0].batch, specs[0].widths[0]!];
    const x = tf.tensor2d(seededValues(batch * width, 1), [batch, width]);
    const pools = specs.map((spec, p) => {
      const { batch, slotsPerRow, numExperts, widths, activations } = spec;
      const tensors = [
        tf.tensor2d(seededValues(batch * slotsPerRow, 30 + p), [batch, slotsPerRow]),
        ...activations.flatMap((_, layer) => [
          tf.tensor3d(seededValues(numExperts * widths[layer]! * widths[layer + 1]!, 40 + 10 * p + layer), [
            numExperts,
            widths[layer]!,
            widths[layer + 1]!,
          ]),
          tf.tensor2d(seededValues(numExperts * widths[layer + 1]!, 45 + 10 * p + layer), [
            numExperts,
            widths[layer + 1]!,
          ]),
        ]),
      ];
      // Pool 1 routes every row to both of its experts.
      const entries =
        p === 1
          ? group(
              Array.from({ length: batch }, () => [0, 1]),
              2,
            )
          : group(routingOf(spec), numExperts);
      return { spec, tensors, entries };
    });
    const sum = (input: tf.Tensor, ...tensors: tf.Tensor[]) => {
      let position = 0;
      const routed = pools.map(({ spec, entries }) => {
        const [weights, ...parameters] = tensors.slice(position, position + 1 + 2 * spec.activations.length);
        position += 1 + 2 * spec.activations.length;
        return {
          layers: spec.activations.map((activation, layer) => ({
            kernel: parameters[2 * layer] as tf.Tensor3D,
            bias: parameters[2 * layer + 1] as tf.Tensor2D,
            activation,
          })),
          entries,
          weights: weights as tf.Tensor2D,
        };
      });
      if (!separately) return routedExpertPools(input as tf.Tensor2D, routed);
      return routed
        .map((pool) => routedExpertMixture(input as tf.Tensor2D, pool.layers, pool.entries, pool.weights))
        .reduce((total, mixture) => tf.add(total, mixture) as tf.Tensor2D);
    };
    const all = [x, ...pools.flatMap((pool) => pool.tensors)];
    const value = sum(x, ...all.slice(1));
    const probe = tf.tensor(seededValues(value.size, 3), value.shape);
    const grads = tf.grads((...inputs: tf.Tensor[]) =>
      tf.sum(tf.mul(sum(inputs[0]!, ...inputs.slice(1)), probe)),
    )(all);
    return [value, ...grads].map((tensor) => tensor.dataSync() as Float32Array);
  });
}

describe("routedExpertPools", () => {
  it("adds up the pools' mixtures with their gradients, on cpu and on the native path", async () => {
    const cpu = await onBackend("cpu", () => {
      const joint = runPools(false);
      const separate = runPools(true);
      joint.forEach((array, output) => {
        expect(array, `output ${output}`).toEqual(separate[output]!);
      });
      return joint;
    });
    if (!native) return;
    await onBackend("wasm", () => {
      registerFastKernels("wasm");
      const joint = runPools(false);
      const separate = runPools(true);
      joint.forEach((array, output) => {
        // The same experts and the same sums in the same order: the same bits as pool by pool.
        expect(array, `output ${output}`).toEqual(separate[output]!);
        expectAllClose(array, cpu[output]!, 1e-5);
      });
    });
  });

  it.runIf(native)("gives the same bits on one and on two pool threads", async () => {
    await onBackend("wasm", () => {
      const outputs = [1, 2, 1].map((threads) => runPools(false, threads, LARGE));
      registerFastKernels("wasm");
      for (const other of outputs.slice(1)) {
        other.forEach((array, index) => {
          expect(array).toEqual(outputs[0]![index]!);
        });
      }
    });
  });

  it("leaves no tensor behind", async () => {
    for (const backend of native ? ["cpu", "wasm"] : ["cpu"]) {
      await onBackend(backend, () => {
        if (backend === "wasm") registerFastKernels("wasm");
        runPools(false);
        const before = tf.memory().numTensors;
        runPools(false);
        runPools(true);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  });

  it("rejects an empty list, a bad pool and pools of different output widths, naming them", async () => {
    await onBackend("cpu", () => {
      tf.tidy(() => {
        const x = tf.zeros([2, 3]) as tf.Tensor2D;
        const pool = {
          layers: [
            {
              kernel: tf.zeros([2, 3, 4]) as tf.Tensor3D,
              bias: tf.zeros([2, 4]) as tf.Tensor2D,
              activation: "relu" as const,
            },
          ],
          entries: {
            counts: [2, 2],
            rows: Int32Array.from([0, 1, 0, 1]),
            slots: Int32Array.from([0, 2, 1, 3]),
          },
          weights: tf.ones([2, 2]) as tf.Tensor2D,
        };
        expect(Array.from(routedExpertPools(x, [pool, pool]).shape)).toEqual([2, 4]);
        expect(() => routedExpertPools(x, [])).toThrow(
          "routedExpertPools pools must be a non-empty array of { layers, entries, weights }, received ",
        );
        expect(() => routedExpertPools(x, [pool, null as never])).toThrow(
          "routedExpertPools pools[1] must be { layers, entries, weights }, received null",
        );
        expect(() =>
          routedExpertPools(x, [pool, { ...pool, entries: { ...pool.entries, counts: [4] } }]),
        ).toThrow(
          "routedExpertPools pools[1] entries.counts must list 2 counts (one per expert), received [4]",
        );
        const narrow = {
          ...pool,
          layers: [
            {
              ...pool.layers[0]!,
              kernel: tf.zeros([2, 3, 5]) as tf.Tensor3D,
              bias: tf.zeros([2, 5]) as tf.Tensor2D,
            },
          ],
        };
        expect(() => routedExpertPools(x, [pool, narrow])).toThrow(
          "routedExpertPools pools[1] must end in 4 units like pools[0], received a last layer of 5",
        );
        expect(() => routedExpertPools(tf.zeros([2]) as never, [pool])).toThrow(/routedExpertPools x/);
      });
    });
  });
});
