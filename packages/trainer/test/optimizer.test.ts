import { CheckpointError } from "@mdrec/core";
import { OPTIMIZER_NAMES } from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import {
  createOptimizer,
  encodeOptimizerState,
  restoreOptimizerState,
  setOptimizerLearningRate,
} from "../src/optimizer.js";

/** Two variables and a deterministic gradient sequence (gradient of step s depends on s). */
function makeVariables(values = [[0.5, -0.25, 1], [2]]): tf.Variable[] {
  return values.map((value) => tf.variable(tf.tensor1d(value)));
}

function applySteps(optimizer: tf.Optimizer, variables: tf.Variable[], from: number, to: number): void {
  for (let step = from; step < to; step++) {
    tf.tidy(() => {
      optimizer.applyGradients(
        variables.map((variable, index) => ({
          name: variable.name,
          tensor: tf.add(tf.mul(variable, 0.3 * (index + 1)), Math.sin(step + index)),
        })),
      );
    });
  }
}

describe("optimizer state", () => {
  it.each(OPTIMIZER_NAMES)(
    "%s: encoded and restored into a fresh optimizer, continues bit for bit",
    async (name) => {
      // 18 steps: Adam's running beta2 power then differs from tfjs's pow(beta2, 19).
      const original = makeVariables();
      const optimizer = createOptimizer(name, 0.05);
      applySteps(optimizer, original, 0, 18);
      const state = await encodeOptimizerState(optimizer);
      const snapshot = original.map((variable) => Array.from(variable.dataSync()));
      applySteps(optimizer, original, 18, 21);

      const copy = makeVariables(snapshot);
      const restored = createOptimizer(name, 0.05);
      await restoreOptimizerState(restored, state, copy.length, "test");
      applySteps(restored, copy, 18, 21);
      expect(copy.map((variable) => Array.from(variable.dataSync()))).toEqual(
        original.map((variable) => Array.from(variable.dataSync())),
      );
      expect(restored.iterations).toBe(21);
      if (name === "adam") expect(Object.keys(state.internals)).toEqual(["accBeta1", "accBeta2"]);
      optimizer.dispose();
      restored.dispose();
      tf.dispose([...original, ...copy]);
    },
  );

  it("refuses a state whose slot count does not match the model", async () => {
    const variables = makeVariables();
    const optimizer = createOptimizer("adam", 0.1);
    applySteps(optimizer, variables, 0, 1);
    const state = await encodeOptimizerState(optimizer);
    const restored = createOptimizer("adam", 0.1);
    await expect(restoreOptimizerState(restored, state, 3, "ckpt")).rejects.toThrow(CheckpointError);
    await expect(restoreOptimizerState(restored, state, 3, "ckpt")).rejects.toThrow(
      "ckpt: optimizer state holds 5 tensors but 2 slots x 3 trainable weights + 1 iteration counter = 7 were expected",
    );
    optimizer.dispose();
    restored.dispose();
    tf.dispose(variables);
  });

  it.each(OPTIMIZER_NAMES)("%s: setOptimizerLearningRate takes effect on the next update", (name) => {
    const variables = makeVariables();
    const optimizer = createOptimizer(name, 0.1);
    applySteps(optimizer, variables, 0, 2);
    const before = variables.map((variable) => Array.from(variable.dataSync()));
    setOptimizerLearningRate(optimizer, 0);
    applySteps(optimizer, variables, 2, 3);
    expect(variables.map((variable) => Array.from(variable.dataSync()))).toEqual(before);
    setOptimizerLearningRate(optimizer, 0.1);
    applySteps(optimizer, variables, 3, 4);
    expect(variables.map((variable) => Array.from(variable.dataSync()))).not.toEqual(before);
    optimizer.dispose();
    tf.dispose(variables);
  });

  it("leaks no tensors when encoding and restoring", async () => {
    const variables = makeVariables();
    const optimizer = createOptimizer("adam", 0.1);
    applySteps(optimizer, variables, 0, 2);
    const state = await encodeOptimizerState(optimizer);
    const before = tf.memory().numTensors;
    await encodeOptimizerState(optimizer);
    expect(tf.memory().numTensors).toBe(before);
    const restored = createOptimizer("adam", 0.1);
    const afterCreate = tf.memory().numTensors;
    await restoreOptimizerState(restored, state, 2, "test");
    // The restored optimizer owns exactly its slot variables: 2 moments x 2 weights.
    expect(tf.memory().numTensors - afterCreate).toBe(4);
    optimizer.dispose();
    restored.dispose();
    tf.dispose(variables);
  });
});
