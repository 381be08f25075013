import type * as tf from "@tensorflow/tfjs-core";

/** What the `wasm` backend keeps per tensor (`BackendWasm.dataIdMap` entries). */
interface WasmTensorData {
  id: number;
  memoryOffset: number;
  shape: number[];
  dtype: tf.DataType;
  refCount: number;
}

/** The parts of tfjs-backend-wasm's emscripten module the overrides use. */
interface WasmModule {
  HEAPU8: Uint8Array;
  cwrap(name: string, returnType: null, argTypes: string[]): (...args: unknown[]) => void;
  tfjs: { disposeData(id: number): void };
}

/**
 * The internals of tfjs-backend-wasm 4.22's `BackendWasm` that the overrides rely on. They are
 * not public API, so {@link asWasmBackend} checks each one before an override is installed.
 */
export interface WasmBackend {
  wasm: WasmModule;
  dataIdMap: {
    get(dataId: tf.DataId): WasmTensorData | undefined;
    delete(dataId: tf.DataId): boolean;
  };
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/** Returns the backend as {@link WasmBackend}, or null when a needed internal is missing. */
export function asWasmBackend(backend: unknown): WasmBackend | null {
  const candidate = backend as Partial<WasmBackend> | null;
  const ok =
    candidate != null &&
    typeof candidate.makeOutput === "function" &&
    typeof candidate.disposeData === "function" &&
    typeof candidate.incRef === "function" &&
    typeof candidate.typedArrayFromHeap === "function" &&
    typeof candidate.dataIdMap?.get === "function" &&
    typeof candidate.dataIdMap?.delete === "function" &&
    candidate.wasm?.HEAPU8 instanceof Uint8Array &&
    typeof candidate.wasm?.cwrap === "function" &&
    typeof candidate.wasm?.tfjs?.disposeData === "function";
  return ok ? (candidate as WasmBackend) : null;
}

// The internals check runs once per backend instance, not on every kernel call.
const checkedBackends = new WeakMap<object, WasmBackend | null>();

/** {@link asWasmBackend}, memoised per backend instance (kernels call it on every run). */
export function cachedWasmBackend(backend: unknown): WasmBackend | null {
  if (backend === null || typeof backend !== "object") return null;
  let checked = checkedBackends.get(backend);
  if (checked === undefined) {
    checked = asWasmBackend(backend);
    checkedBackends.set(backend, checked);
  }
  return checked;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function memoryOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data === undefined) throw new Error(`wasm tensor data ${String(info.dataId)} is not on this backend`);
  return data.memoryOffset;
}

/** The tensor id the C++ side knows a tensor by. */
export function wasmTensorId(backend: WasmBackend, info: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data === undefined) throw new Error(`wasm tensor data ${String(info.dataId)} is not on this backend`);
  return data.id;
}

/**
 * A float32 view of `info`'s data. Fetch it after the last allocation of a kernel: growing
 * the wasm memory detaches earlier views.
 */
export function heapFloat32(backend: WasmBackend, info: tf.TensorInfo, size: number): Float32Array {
  return new Float32Array(backend.wasm.HEAPU8.buffer, memoryOffset(backend, info), size);
}

/**
 * Registers `shape` elements starting `elementOffset` floats into `parent` as a tensor of its
 * own without copying. Release it with {@link disposeView}, never with `disposeData` (which
 * would free memory the parent owns).
 */
export function makeView(
  backend: WasmBackend,
  parent: tf.TensorInfo,
  elementOffset: number,
  shape: number[],
): tf.TensorInfo {
  return backend.makeOutput(shape, "float32", memoryOffset(backend, parent) + 4 * elementOffset);
}

/** Unregisters a view made by {@link makeView} (runs the C++ disposal callbacks, frees nothing). */
export function disposeView(backend: WasmBackend, view: tf.TensorInfo): void {
  const data = backend.dataIdMap.get(view.dataId);
  if (data === undefined) return;
  backend.wasm.tfjs.disposeData(data.id);
  backend.dataIdMap.delete(view.dataId);
}

/** The same data under another shape of equal size (shares the buffer, like `Reshape`). */
export function reshapeShared(backend: WasmBackend, info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  backend.incRef(info.dataId);
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Product of a shape's dimensions. */
export function sizeOf(shape: readonly number[]): number {
  let size = 1;
  for (const dimension of shape) size *= dimension;
  return size;
}
