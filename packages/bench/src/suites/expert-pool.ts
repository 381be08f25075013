import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { SeededRandom } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import * as tf from "@tensorflow/tfjs-core";
import type { BenchRecord, BenchSuite } from "../record.js";

const NUM_EXPERTS = 16;
const TOP_K = 2;
const INPUT_DIM = 128;
const UNITS = [256, 128];

/** A top-k routing with distinct experts per row and weights summing to 1. */
function randomRouting(batch: number, seed: number): { indices: tf.Tensor2D; weights: tf.Tensor2D } {
  const random = new SeededRandom(seed);
  const indices: number[] = [];
  for (let row = 0; row < batch; row++) {
    const experts = random.shuffle(Array.from({ length: NUM_EXPERTS }, (_, index) => index));
    indices.push(...experts.slice(0, TOP_K));
  }
  return {
    indices: tf.tensor2d(indices, [batch, TOP_K], "int32"),
    weights: tf.fill([batch, TOP_K], 1 / TOP_K) as tf.Tensor2D,
  };
}

/** Mean wall time (ms) of `step` after `warmUp` untimed calls. */
function timeSteps(step: () => void, warmUp: number, timed: number): number {
  for (let index = 0; index < warmUp; index++) step();
  const start = performance.now();
  for (let index = 0; index < timed; index++) step();
  return (performance.now() - start) / timed;
}

async function measure(backend: "cpu" | "wasm", quick: boolean): Promise<BenchRecord[]> {
  await tf.setBackend(backend);
  await tf.ready();
  const batch = quick ? 256 : 1024;
  const warmUp = quick ? 1 : 2;
  const timed = quick ? 2 : 5;
  const pool = new ExpertPool({ numExperts: NUM_EXPERTS, units: UNITS, seed: 1 });
  const x = tf.randomNormal([batch, INPUT_DIM], 0, 1, "float32", 2) as tf.Tensor2D;
  const routing = randomRouting(batch, 3);
  pool.dense(x).dispose();
  // Forward + backward w.r.t. every expert weight, as one training step would do.
  const step = (forward: () => tf.Tensor) => () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(forward()) as tf.Scalar);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const denseMs = timeSteps(
    step(() => mixExperts(pool.dense(x, true), routing)),
    warmUp,
    timed,
  );
  const sparseMs = timeSteps(
    step(() => pool.sparse(x, routing, true)),
    warmUp,
    timed,
  );
  pool.dispose();
  tf.dispose([x, routing.indices, routing.weights]);
  const ideal = NUM_EXPERTS / TOP_K;
  const notes = `backend ${backend}, N=${NUM_EXPERTS}, k=${TOP_K}, batch ${batch}, input ${INPUT_DIM}, units [${UNITS.join(", ")}], ${warmUp} warm-up + ${timed} timed steps, forward+backward (tf.variableGrads of the summed output); dense = mixExperts(pool.dense(x), routing)`;
  const suite = "expert-pool";
  return [
    { suite, name: `dense dispatch step (${backend})`, value: denseMs, unit: "ms", notes },
    { suite, name: `sparse dispatch step (${backend})`, value: sparseMs, unit: "ms", notes },
    {
      suite,
      name: `dense/sparse wall-time ratio (${backend})`,
      value: denseMs / sparseMs,
      unit: "ratio",
      notes: `${notes}; ideal N/k = ${ideal}`,
    },
    {
      suite,
      name: `ratio / ideal N/k (${backend})`,
      value: denseMs / sparseMs / ideal,
      unit: "ratio",
      notes,
    },
  ];
}

/** Wall-time ratio dense/sparse of ExpertPool forward+backward on cpu and wasm vs the ideal N/k. */
export const suite: BenchSuite = {
  name: "expert-pool",
  async run({ quick }) {
    const previous = tf.getBackend();
    try {
      return [...(await measure("cpu", quick)), ...(await measure("wasm", quick))];
    } finally {
      if (previous) await tf.setBackend(previous);
    }
  },
};
