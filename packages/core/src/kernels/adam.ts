import type * as tf from "@tensorflow/tfjs-core";
import {
  backend as activeBackend,
  getBackend as activeBackendName,
  getKernel,
  type KernelFunc,
  registerKernel,
  unregisterKernel,
  util,
} from "@tensorflow/tfjs-core";
import { ConfigError, ShapeError } from "../errors.js";
import { formatValue } from "../validate.js";
import type { AdamScalars, NativeGemm } from "./native-gemm.js";
import { fastKernelState } from "./state.js";
import { cachedWasmBackend, memoryOffset, sizeOf, type WasmBackend } from "./wasm-heap.js";

/** Name of mdrec's fused Adam kernel (`cpu` and `wasm` only). */
export const ADAM_UPDATE_KERNEL = "MdrecAdamUpdate";

/** Backends that have the fused Adam kernel. */
const FUSED_ADAM_BACKENDS = ["cpu", "wasm"] as const;

/**
 * Attributes of {@link ADAM_UPDATE_KERNEL}: the optimizer's hyperparameters as plain numbers and
 * `1 - beta^t` read from its float32 accumulators.
 */
export interface AdamUpdateAttributes {
  beta1: number;
  beta2: number;
  epsilon: number;
  learningRate: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
}

/** The scalars of one update as the float32 values tfjs's op sequence multiplies by. */
interface AdamConstants {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  negativeLearningRate: number;
}

// tfjs turns each number operand into a float32 scalar tensor; `1 - beta1` and `-learningRate`
// are computed in float64 first and rounded once, exactly as AdamOptimizer writes them.
function adamConstants(attributes: AdamUpdateAttributes): AdamConstants {
  const { beta1, beta2, epsilon, learningRate, oneMinusAccBeta1, oneMinusAccBeta2 } = attributes;
  return {
    beta1: Math.fround(beta1),
    oneMinusBeta1: Math.fround(1 - beta1),
    beta2: Math.fround(beta2),
    oneMinusBeta2: Math.fround(1 - beta2),
    oneMinusAccBeta1: Math.fround(oneMinusAccBeta1),
    oneMinusAccBeta2: Math.fround(oneMinusAccBeta2),
    epsilon: Math.fround(epsilon),
    negativeLearningRate: Math.fround(-learningRate),
  };
}

/** The constants in the add-on's argument order. */
function scalarList(constants: AdamConstants): AdamScalars {
  return [
    constants.beta1,
    constants.oneMinusBeta1,
    constants.beta2,
    constants.oneMinusBeta2,
    constants.oneMinusAccBeta1,
    constants.oneMinusAccBeta2,
    constants.epsilon,
    constants.negativeLearningRate,
  ];
}

/**
 * One Adam step over `value.length` floats, tfjs 4.22's `AdamOptimizer.applyGradients` op by op
 * with every intermediate rounded to float32 (each stock kernel writes a float32 tensor).
 */
function adamLoop(
  constants: AdamConstants,
  value: Float32Array,
  gradient: Float32Array,
  firstMoment: Float32Array,
  secondMoment: Float32Array,
  newValue: Float32Array,
  newFirstMoment: Float32Array,
  newSecondMoment: Float32Array,
): void {
  const round = Math.fround;
  const { beta1, oneMinusBeta1, beta2, oneMinusBeta2, oneMinusAccBeta1, oneMinusAccBeta2 } = constants;
  const { epsilon, negativeLearningRate } = constants;
  for (let index = 0; index < value.length; index++) {
    const g = gradient[index]!;
    const m = round(round(firstMoment[index]! * beta1) + round(g * oneMinusBeta1));
    const v = round(round(secondMoment[index]! * beta2) + round(round(g * g) * oneMinusBeta2));
    const correctedFirst = round(m / oneMinusAccBeta1);
    const correctedSecond = round(v / oneMinusAccBeta2);
    const denominator = round(round(Math.sqrt(correctedSecond)) + epsilon);
    const step = round(round(correctedFirst / denominator) * negativeLearningRate);
    newFirstMoment[index] = m;
    newSecondMoment[index] = v;
    // The store rounds the last add.
    newValue[index] = step + value[index]!;
  }
}

interface AdamInputs {
  value: tf.TensorInfo;
  gradient: tf.TensorInfo;
  firstMoment: tf.TensorInfo;
  secondMoment: tf.TensorInfo;
}

function checkInputs(inputs: tf.NamedTensorInfoMap): AdamInputs {
  const { value, gradient, firstMoment, secondMoment } = inputs as unknown as Partial<AdamInputs>;
  const named = { value, gradient, firstMoment, secondMoment };
  for (const [name, info] of Object.entries(named)) {
    if (info === undefined) throw new ShapeError(`${ADAM_UPDATE_KERNEL}: input ${name} is missing`);
    if (info.dtype !== "float32" || !util.arraysEqual(info.shape, value!.shape)) {
      throw new ShapeError(
        `${ADAM_UPDATE_KERNEL}: input ${name} must be float32 of the value's shape [${value!.shape}], received ${info.dtype} [${info.shape}]`,
      );
    }
  }
  return named as AdamInputs;
}

/** What the cpu kernel uses of tfjs-backend-cpu's `MathBackendCPU`. */
interface CpuBackend {
  data: { get(dataId: tf.DataId): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
}

const cpuAdamUpdate: KernelFunc = ({ inputs, backend, attrs }) => {
  const { value, gradient, firstMoment, secondMoment } = checkInputs(inputs);
  const cpu = backend as unknown as CpuBackend;
  const read = (info: tf.TensorInfo) => cpu.data.get(info.dataId).values as Float32Array;
  const size = sizeOf(value.shape);
  const outputs = [new Float32Array(size), new Float32Array(size), new Float32Array(size)] as const;
  adamLoop(
    adamConstants(attrs as unknown as AdamUpdateAttributes),
    read(value),
    read(gradient),
    read(firstMoment),
    read(secondMoment),
    ...outputs,
  );
  return outputs.map((values) => cpu.makeTensorInfo([...value.shape], "float32", values));
};

/** The generic path through tfjs's public backend API (a wasm build whose internals differ). */
function portableAdamUpdate(args: Parameters<KernelFunc>[0], inputs: AdamInputs): tf.TensorInfo[] {
  const backend = args.backend as unknown as {
    readSync(dataId: tf.DataId): unknown;
    makeTensorInfo(shape: number[], dtype: tf.DataType, values: Float32Array): tf.TensorInfo;
  };
  const read = (info: tf.TensorInfo) => backend.readSync(info.dataId) as Float32Array;
  const size = sizeOf(inputs.value.shape);
  const outputs = [new Float32Array(size), new Float32Array(size), new Float32Array(size)] as const;
  adamLoop(
    adamConstants(args.attrs as unknown as AdamUpdateAttributes),
    read(inputs.value),
    read(inputs.gradient),
    read(inputs.firstMoment),
    read(inputs.secondMoment),
    ...outputs,
  );
  return outputs.map((values) => backend.makeTensorInfo([...inputs.value.shape], "float32", values));
}

type NativeAdamUpdate = NonNullable<NativeGemm["adamUpdate"]>;

type AdamOutputs = readonly [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo];

/** The seven tensors of one update in the order the loops take them: inputs, then outputs. */
function adamOperands(inputs: AdamInputs, outputs: AdamOutputs): tf.TensorInfo[] {
  return [inputs.value, inputs.gradient, inputs.firstMoment, inputs.secondMoment, ...outputs];
}

// One call of the add-on's adamUpdate: new value and moments into `outputs` (the inputs
// themselves for an update in place).
function runNativeAdam(
  adamUpdate: NativeAdamUpdate,
  backend: WasmBackend,
  size: number,
  inputs: AdamInputs,
  outputs: AdamOutputs,
  constants: AdamConstants,
): void {
  const [value, gradient, first, second, newValue, newFirst, newSecond] = adamOperands(inputs, outputs).map(
    (info) => memoryOffset(backend, info),
  ) as [number, number, number, number, number, number, number];
  adamUpdate(
    backend.wasm.HEAPU8.buffer,
    size,
    value,
    gradient,
    first,
    second,
    newValue,
    newFirst,
    newSecond,
    ...scalarList(constants),
  );
}

/** The four tensors of one variable's Adam update. */
export interface AdamTensors {
  value: tf.Tensor;
  gradient: tf.Tensor;
  firstMoment: tf.Tensor;
  secondMoment: tf.Tensor;
}

/**
 * The fused Adam step written over each variable and its two moments where they are (no new
 * buffers, no kernel launch), the same bits as {@link ADAM_UPDATE_KERNEL}, for all of `updates`
 * in one add-on call whose pool threads share the work of every variable. Only on `wasm` with
 * the native add-on, and for an update only when nothing else holds its memory: value and
 * moments each have backend reference count 1 (no clone, reshape or saved copy shares it, so no
 * other tensor sees the values change), the gradient is none of them, and no earlier update of
 * `updates` (done here or not) writes any of its four tensors or reads its value or moments. So
 * this call, then the kernel for the others in their order, computes what the updates one after
 * another would. The caller has checked what the kernel checks: all four are float32 of the
 * value's shape.
 * @returns per update whether it was done; the others are unchanged (run the kernel for them).
 */
export function adamUpdatesInPlace(
  updates: readonly AdamTensors[],
  attributes: AdamUpdateAttributes,
): boolean[] {
  const done = updates.map(() => false);
  const native = fastKernelState().nativeGemm;
  if (native?.adamUpdateMany === undefined || activeBackendName() !== "wasm") return done;
  const backend = cachedWasmBackend(activeBackend());
  if (backend === null) return done;
  const touched = new Set<tf.DataId>(); // every tensor of the updates so far
  const written = new Set<tf.DataId>(); // their values and moments
  const chosen: number[] = [];
  updates.forEach((update, index) => {
    const { value, gradient, firstMoment, secondMoment } = update;
    const targets = [value, firstMoment, secondMoment];
    const alone = targets.every((tensor) => backend.dataIdMap.get(tensor.dataId)?.refCount === 1);
    const distinct = new Set([...targets, gradient].map((tensor) => tensor.dataId)).size === 4;
    const independent =
      !written.has(gradient.dataId) && targets.every((tensor) => !touched.has(tensor.dataId));
    if (value.size > 0 && alone && distinct && independent) chosen.push(index);
    for (const tensor of targets) written.add(tensor.dataId);
    for (const tensor of [...targets, gradient]) touched.add(tensor.dataId);
  });
  if (chosen.length === 0) return done;
  const plan = new Float64Array(5 * chosen.length);
  chosen.forEach((index, position) => {
    const { value, gradient, firstMoment, secondMoment } = updates[index]!;
    plan.set(
      [
        value.size,
        ...[value, gradient, firstMoment, secondMoment].map((tensor) => memoryOffset(backend, tensor)),
      ],
      5 * position,
    );
  });
  const constants = adamConstants(attributes);
  native.adamUpdateMany(backend.wasm.HEAPU8.buffer, plan, ...scalarList(constants));
  for (const index of chosen) done[index] = true;
  return done;
}

const wasmAdamUpdate: KernelFunc = (args) => {
  const inputs = checkInputs(args.inputs);
  const backend = cachedWasmBackend(args.backend);
  if (backend === null) return portableAdamUpdate(args, inputs);
  const constants = adamConstants(args.attrs as unknown as AdamUpdateAttributes);
  const shape = [...inputs.value.shape];
  const size = sizeOf(shape);
  // Fresh outputs, never the inputs: the Identity override shares buffers, so a tensor saved for
  // a backward pass may be the variable's own memory.
  const outputs = [
    backend.makeOutput(shape, "float32"),
    backend.makeOutput(shape, "float32"),
    backend.makeOutput(shape, "float32"),
  ] as const;
  if (size === 0) return [...outputs];
  const native = fastKernelState().nativeGemm;
  if (native?.adamUpdate !== undefined) {
    runNativeAdam(native.adamUpdate.bind(native), backend, size, inputs, outputs, constants);
    return [...outputs];
  }
  // Views after the last allocation: growing the wasm memory detaches earlier ones.
  const heap = backend.wasm.HEAPU8.buffer;
  const [value, gradient, first, second, newValue, newFirst, newSecond] = adamOperands(inputs, outputs).map(
    (info) => new Float32Array(heap, memoryOffset(backend, info), size),
  ) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
  adamLoop(constants, value, gradient, first, second, newValue, newFirst, newSecond);
  return [...outputs];
};

const KERNEL_FUNCTIONS: Record<(typeof FUSED_ADAM_BACKENDS)[number], KernelFunc> = {
  cpu: cpuAdamUpdate,
  wasm: wasmAdamUpdate,
};

/** Per backend, whether fused Adam was switched on (kept on globalThis like the fast-kernel state). */
function configuredBackends(): Map<string, boolean> {
  const key = Symbol.for("@mdrec/core/fused-adam");
  const holder = globalThis as { [key]?: Map<string, boolean> };
  holder[key] ??= new Map();
  return holder[key];
}

/**
 * Reads `MDREC_FUSED_ADAM` the way `MDREC_FAST_KERNELS` is read: unset, empty, `1` or `true`
 * enable, `0` or `false` disable, anything else is a {@link ConfigError}.
 */
export function fusedAdamWanted(env: Record<string, string | undefined>): boolean {
  const fromEnv = env.MDREC_FUSED_ADAM?.trim().toLowerCase();
  if (fromEnv === undefined || fromEnv === "" || fromEnv === "1" || fromEnv === "true") return true;
  if (fromEnv === "0" || fromEnv === "false") return false;
  throw new ConfigError(
    `environment variable MDREC_FUSED_ADAM must be 0, 1, true or false, received ${formatValue(env.MDREC_FUSED_ADAM)}`,
  );
}

/**
 * Registers (or, with `MDREC_FUSED_ADAM=0`, removes) the fused Adam kernel of a backend;
 * `registerFastKernels` calls it, so setting the variable and registering again switches it.
 * Backends other than `cpu` and `wasm` get no kernel.
 * @returns whether the backend now has the kernel.
 */
export function configureFusedAdam(
  backendName: string,
  env: Record<string, string | undefined> = typeof process === "undefined" ? {} : process.env,
): boolean {
  const kernelFunc = KERNEL_FUNCTIONS[backendName as keyof typeof KERNEL_FUNCTIONS] as KernelFunc | undefined;
  const enabled = fusedAdamWanted(env) && kernelFunc !== undefined;
  const registered = getKernel(ADAM_UPDATE_KERNEL, backendName) !== undefined;
  if (enabled && !registered) registerKernel({ kernelName: ADAM_UPDATE_KERNEL, backendName, kernelFunc });
  if (!enabled && registered) unregisterKernel(ADAM_UPDATE_KERNEL, backendName);
  configuredBackends().set(backendName, enabled);
  return enabled;
}

/**
 * Whether `FusedAdamOptimizer` runs the fused kernel on a backend: on `cpu` unless
 * `MDREC_FUSED_ADAM=0`; on `wasm` only while mdrec's fast kernels run with the native add-on
 * (so "stock kernels" stays tfjs as shipped). The TypeScript loop is not used there: measured on
 * 8 tables of [10000, 16] it takes ~30 ms where tfjs's 14 SIMD kernels take ~12 ms and the add-on
 * ~2-5 ms (on `cpu` it takes ~17 ms against ~250 ms). Configures the backend from the environment
 * on first use.
 */
export function fusedAdamActive(backendName: string): boolean {
  if (!(FUSED_ADAM_BACKENDS as readonly string[]).includes(backendName)) return false;
  if (backendName === "wasm") {
    const state = fastKernelState();
    if ((state.replaced.get("wasm")?.size ?? 0) === 0 || state.nativeGemm?.adamUpdate === undefined)
      return false;
  }
  const enabled = configuredBackends().get(backendName) ?? configureFusedAdam(backendName);
  return enabled && getKernel(ADAM_UPDATE_KERNEL, backendName) !== undefined;
}

/**
 * The backend phrase's note on fused Adam: empty when it runs (the default), else why not, so
 * an A/B run's log line tells the two apart.
 */
export function describeFusedAdam(backendName: string): string {
  if (!(FUSED_ADAM_BACKENDS as readonly string[]).includes(backendName)) return "";
  const enabled = configuredBackends().get(backendName);
  return enabled === false ? ", fused Adam off (MDREC_FUSED_ADAM=0)" : "";
}
