import { CheckpointError, createAdamOptimizer } from "@mdrec/core";
import * as tf from "@tensorflow/tfjs-core";
import type { OptimizerName } from "./options.js";

// Fixed rather than tfjs's backend epsilon (1e-7 on cpu/wasm, 1e-4 on webgl) so every backend
// runs the same update; 1e-8 is torch's default.
const EPSILON = 1e-8;

/** Creates the tfjs optimizer behind an {@link OptimizerName}. */
export function createOptimizer(name: OptimizerName, learningRate: number): tf.Optimizer {
  switch (name) {
    case "adam":
      // tfjs's Adam with one fused kernel per variable where the backend has it (same results).
      return createAdamOptimizer(learningRate, 0.9, 0.999, EPSILON);
    case "adagrad":
      return tf.train.adagrad(learningRate, 0.1);
    case "sgd":
      return tf.train.sgd(learningRate);
    case "rmsprop":
      return tf.train.rmsprop(learningRate, 0.9, 0, EPSILON, false);
  }
}

/**
 * Sets the learning rate of a tfjs optimizer for the next update. SGD caches `-learningRate` in a
 * tensor (`setLearningRate`); Adam, Adagrad and RMSProp read the `learningRate` field each update.
 */
export function setOptimizerLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  const target = optimizer as unknown as { learningRate: number; setLearningRate?: (value: number) => void };
  if (target.learningRate === learningRate) return;
  if (typeof target.setLearningRate === "function") target.setLearningRate(learningRate);
  else target.learningRate = learningRate;
}

/** Adam's running powers of beta1 and beta2 (private tfjs fields). */
interface AdamInternals {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

function adamInternals(optimizer: tf.Optimizer): AdamInternals | undefined {
  const candidate = optimizer as unknown as Partial<AdamInternals>;
  return candidate.accBeta1 instanceof tf.Variable && candidate.accBeta2 instanceof tf.Variable
    ? (candidate as AdamInternals)
    : undefined;
}

/** An optimizer's full state, encoded for a checkpoint. */
export interface EncodedOptimizerState {
  data: ArrayBuffer;
  specs: tf.io.WeightsManifestEntry[];
  /** Scalars outside `getWeights()` that an exact resume needs (Adam's beta powers). */
  internals: Record<string, number>;
}

/**
 * Encodes an optimizer's state: `getWeights()` (iteration count and slot variables) plus Adam's
 * beta powers. tfjs's `setWeights` recomputes those as `pow(beta, iterations + 1)`, which differs
 * in the last bits from the running product the optimizer keeps, so they are stored exactly.
 */
export async function encodeOptimizerState(optimizer: tf.Optimizer): Promise<EncodedOptimizerState> {
  const weights = await optimizer.getWeights();
  try {
    const { data, specs } = await tf.io.encodeWeights(weights);
    const internals: Record<string, number> = {};
    const adam = adamInternals(optimizer);
    if (adam) {
      internals.accBeta1 = (await adam.accBeta1.data())[0]!;
      internals.accBeta2 = (await adam.accBeta2.data())[0]!;
    }
    return { data, specs, internals };
  } finally {
    // The iteration count is a fresh scalar; the slot variables belong to the optimizer.
    weights[0]?.tensor.dispose();
  }
}

/**
 * Restores a state written by {@link encodeOptimizerState} into a fresh optimizer of the same kind.
 * @param slotsPerVariable slot variables the optimizer keeps per trainable weight (checked against the count).
 * @param where names the checkpoint in error messages.
 */
export async function restoreOptimizerState(
  optimizer: tf.Optimizer,
  state: EncodedOptimizerState,
  variableCount: number,
  where: string,
): Promise<void> {
  const slotsPerVariable = optimizerSlotsPerVariable(optimizer);
  const expected = 1 + slotsPerVariable * variableCount;
  if (state.specs.length !== expected) {
    throw new CheckpointError(
      `${where}: optimizer state holds ${state.specs.length} tensors but ${slotsPerVariable} slots x ${variableCount} trainable weights + 1 iteration counter = ${expected} were expected`,
    );
  }
  const values = tf.io.decodeWeights(state.data, state.specs);
  const named = state.specs.map((spec) => ({ name: spec.name, tensor: values[spec.name]! }));
  await optimizer.setWeights(named);
  // setWeights copies each tensor into a new variable, so the decoded tensors are freed here.
  for (const entry of named) entry.tensor.dispose();
  const adam = adamInternals(optimizer);
  if (adam) {
    const { accBeta1, accBeta2 } = state.internals;
    if (typeof accBeta1 !== "number" || typeof accBeta2 !== "number") {
      throw new CheckpointError(`${where}: Adam state lacks accBeta1/accBeta2`);
    }
    tf.tidy(() => {
      adam.accBeta1.assign(tf.scalar(accBeta1));
      adam.accBeta2.assign(tf.scalar(accBeta2));
    });
  }
}

/** Slot variables per trainable weight of the optimizers {@link createOptimizer} makes. */
function optimizerSlotsPerVariable(optimizer: tf.Optimizer): number {
  const className = optimizer.getClassName();
  switch (className) {
    case "Adam":
    case "RMSProp":
      return 2;
    case "Adagrad":
      return 1;
    case "SGD":
      return 0;
    default:
      throw new CheckpointError(`Cannot restore the state of optimizer class ${className}`);
  }
}
