import * as tf from "@tensorflow/tfjs-core";
import { ConfigError } from "../errors.js";
import {
  ADAM_UPDATE_KERNEL,
  type AdamTensors,
  type AdamUpdateAttributes,
  adamUpdatesInPlace,
  fusedAdamActive,
} from "../kernels/adam.js";
import { assertNumber, formatValue } from "../validate.js";

/** The private fields of tfjs's `AdamOptimizer` that the fused update reads and writes. */
interface AdamSlots {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/** One variable's fused update: the tensors of the kernel, the variables it assigns. */
interface VariableUpdate extends AdamTensors {
  value: tf.Variable;
  firstMoment: tf.Variable;
  secondMoment: tf.Variable;
}

/** A map from variable name to gradient, or a list of `{ name, tensor }` (tfjs's two forms). */
type VariableGradients = Parameters<tf.AdamOptimizer["applyGradients"]>[0];

function assertAdamArguments(learningRate: number, beta1: number, beta2: number, epsilon: unknown): void {
  assertNumber("FusedAdamOptimizer learningRate", learningRate, { min: 0, exclusiveMin: true });
  assertNumber("FusedAdamOptimizer beta1", beta1, { min: 0, max: 1, exclusiveMax: true });
  assertNumber("FusedAdamOptimizer beta2", beta2, { min: 0, max: 1, exclusiveMax: true });
  if (epsilon != null && (typeof epsilon !== "number" || !Number.isFinite(epsilon) || epsilon < 0)) {
    throw new ConfigError(
      `FusedAdamOptimizer epsilon must be a finite number >= 0 or null (the backend's epsilon), received ${formatValue(epsilon)}`,
    );
  }
}

/**
 * tfjs's Adam with one fused pass per variable instead of ~14 elementwise kernels: each
 * variable's value and moments are updated by the `MdrecAdamUpdate` kernel, which reproduces
 * `tf.train.adam`'s op sequence in float32 bit for bit. It runs on `cpu` (a TypeScript loop,
 * ~14x faster than tfjs's ops) and on `wasm` when mdrec's fast kernels run with the native add-on
 * (a C loop on the wasm heap, ~3-6x faster). On `wasm` the loop writes over the variable and its
 * moments where they are whenever no other tensor shares their memory (no clone or reshape of
 * the variable is alive), all such variables in one add-on call whose threads share their work,
 * saving three new buffers and a kernel launch per variable; otherwise the kernel writes fresh
 * buffers and the old values stay with whoever holds them. Other
 * backends, `wasm` without the add-on (where tfjs's SIMD kernels beat a JavaScript loop) and
 * `MDREC_FUSED_ADAM=0` run tfjs's own update.
 *
 * Everything else is `tf.AdamOptimizer`'s: slot variables `<name>/m` and `<name>/v`, `getWeights`
 * / `setWeights`, `getConfig` and the class name `Adam`, so states and configs move freely
 * between this optimizer and `tf.train.adam`. It is not registered for deserialisation (that
 * would replace tfjs's `Adam` entry): a serialised config loads as the stock optimizer.
 *
 * @example
 * const optimizer = new FusedAdamOptimizer(1e-3, 0.9, 0.999, 1e-8);
 * optimizer.minimize(() => loss());
 */
export class FusedAdamOptimizer extends tf.AdamOptimizer {
  /**
   * @param learningRate step size, > 0.
   * @param beta1 decay of the first moment, in [0, 1).
   * @param beta2 decay of the second moment, in [0, 1).
   * @param epsilon added to the root of the second moment. Defaults to the backend's epsilon
   *   (1e-7 on `cpu` and `wasm`), as in tfjs.
   */
  constructor(learningRate: number, beta1: number, beta2: number, epsilon?: number | null) {
    // Checked before the super call, which allocates the beta accumulators.
    assertAdamArguments(learningRate, beta1, beta2, epsilon);
    super(learningRate, beta1, beta2, epsilon ?? undefined);
  }

  /**
   * Updates the variables named in `variableGradients` (a map or a list of `{ name, tensor }`);
   * a null gradient leaves its variable untouched. Same semantics as `tf.AdamOptimizer`.
   */
  override applyGradients(variableGradients: VariableGradients): void {
    if (!fusedAdamActive(tf.getBackend())) {
      super.applyGradients(variableGradients);
      return;
    }
    const names = Array.isArray(variableGradients)
      ? variableGradients.map((entry) => entry.name)
      : Object.keys(variableGradients);
    const registered = tf.engine().registeredVariables;
    // Checked up front so a bad name leaves every variable as it was.
    for (const name of names) {
      if (registered[name] === undefined) {
        throw new ConfigError(
          `FusedAdamOptimizer.applyGradients: no variable named ${formatValue(name)} is registered`,
        );
      }
    }
    const slots = this as unknown as AdamSlots;
    tf.tidy(() => {
      const oneMinusAccBeta1 = tf.sub(1, slots.accBeta1);
      const oneMinusAccBeta2 = tf.sub(1, slots.accBeta2);
      const attributes: AdamUpdateAttributes = {
        beta1: this.beta1,
        beta2: this.beta2,
        epsilon: this.epsilon,
        learningRate: this.learningRate,
        oneMinusAccBeta1: oneMinusAccBeta1.dataSync()[0]!,
        oneMinusAccBeta2: oneMinusAccBeta2.dataSync()[0]!,
      };
      // Fusable updates are gathered and, where nothing else holds their memory, done in place in
      // one add-on call; the rest run the kernel, in their order (see adamUpdatesInPlace). Those
      // gathered are run before any stock update, so the updates keep the list's order.
      const pending: VariableUpdate[] = [];
      const runPending = () => {
        const done = adamUpdatesInPlace(pending, attributes);
        pending.forEach((update, position) => {
          if (done[position]) return;
          const [newValue, newFirstMoment, newSecondMoment] = tf
            .engine()
            .runKernel<tf.Tensor[]>(
              ADAM_UPDATE_KERNEL,
              { ...update },
              attributes as unknown as tf.NamedAttrMap,
            );
          update.firstMoment.assign(newFirstMoment!);
          update.secondMoment.assign(newSecondMoment!);
          update.value.assign(newValue!);
        });
        pending.length = 0;
      };
      names.forEach((name, index) => {
        const value = registered[name]!;
        slots.accumulatedFirstMoment[index] ??= {
          originalName: `${name}/m`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        slots.accumulatedSecondMoment[index] ??= {
          originalName: `${name}/v`,
          variable: tf.tidy(() => tf.zerosLike(value).variable(false)),
        };
        const gradient = Array.isArray(variableGradients)
          ? variableGradients[index]!.tensor
          : variableGradients[name];
        if (gradient == null) return;
        const firstMoment = slots.accumulatedFirstMoment[index]!.variable;
        const secondMoment = slots.accumulatedSecondMoment[index]!.variable;
        const fusable = [value, gradient, firstMoment, secondMoment].every(
          (tensor) => tensor.dtype === "float32" && tf.util.arraysEqual(tensor.shape, value.shape),
        );
        if (!fusable) {
          // A broadcast gradient or restored moments of another shape: tfjs's own ops decide.
          runPending();
          this.stockUpdate(value, gradient, firstMoment, secondMoment, oneMinusAccBeta1, oneMinusAccBeta2);
          return;
        }
        pending.push({ value, gradient, firstMoment, secondMoment });
      });
      runPending();
      slots.accBeta1.assign(tf.mul(slots.accBeta1, this.beta1));
      slots.accBeta2.assign(tf.mul(slots.accBeta2, this.beta2));
    });
    this.incrementIterations();
  }

  /** tfjs's per-variable update, op for op (`adam_optimizer.js`). */
  private stockUpdate(
    value: tf.Variable,
    gradient: tf.Tensor,
    firstMoment: tf.Variable,
    secondMoment: tf.Variable,
    oneMinusAccBeta1: tf.Tensor,
    oneMinusAccBeta2: tf.Tensor,
  ): void {
    const newFirstMoment = tf.add(tf.mul(firstMoment, this.beta1), tf.mul(gradient, 1 - this.beta1));
    const newSecondMoment = tf.add(
      tf.mul(secondMoment, this.beta2),
      tf.mul(tf.square(gradient), 1 - this.beta2),
    );
    const correctedFirstMoment = tf.div(newFirstMoment, oneMinusAccBeta1);
    const correctedSecondMoment = tf.div(newSecondMoment, oneMinusAccBeta2);
    firstMoment.assign(newFirstMoment);
    secondMoment.assign(newSecondMoment);
    const step = tf.mul(
      tf.div(correctedFirstMoment, tf.add(tf.sqrt(correctedSecondMoment), this.epsilon)),
      -this.learningRate,
    );
    value.assign(tf.add(step, value));
  }
}

/**
 * A {@link FusedAdamOptimizer} with `tf.train.adam`'s defaults, a drop-in replacement for it.
 * @param learningRate step size, > 0.
 * @param beta1 Defaults to 0.9.
 * @param beta2 Defaults to 0.999.
 * @param epsilon Defaults to the backend's epsilon (1e-7 on `cpu` and `wasm`).
 * @example
 * const optimizer = createAdamOptimizer(1e-3); // same results as tf.train.adam(1e-3), faster
 */
export function createAdamOptimizer(
  learningRate: number,
  beta1 = 0.9,
  beta2 = 0.999,
  epsilon?: number | null,
): FusedAdamOptimizer {
  return new FusedAdamOptimizer(learningRate, beta1, beta2, epsilon);
}
