import type * as tf from "@tensorflow/tfjs-core";
import {
  backend_util,
  getKernel,
  type KernelFunc,
  registerKernel,
  slice_util,
  util,
} from "@tensorflow/tfjs-core";
import { fastKernelState } from "./state.js";
import { transposeLastTwo } from "./transpose.js";
import { cachedWasmBackend, memoryOffset, sizeOf, type WasmBackend } from "./wasm-heap.js";

type HeapArray = Float32Array | Int32Array | Uint8Array;

/** A view of a tensor's data on the wasm heap (no copy). Refetch after any allocation. */
function heapView(backend: WasmBackend, info: tf.TensorInfo): HeapArray {
  return backend.typedArrayFromHeap(info);
}

/**
 * Copies `length` elements from `source[from...]` to `target[to...]`: long runs through memcpy
 * (`set`), short ones in a loop (a subarray per run costs more than a short loop).
 */
function copyRun(target: HeapArray, to: number, source: HeapArray, from: number, length: number): void {
  if (length >= 64) {
    target.set(source.subarray(from, from + length), to);
  } else {
    for (let element = 0; element < length; element++) target[to + element] = source[from + element]!;
  }
}

/**
 * Copies the box `begin .. begin + size` of `source` (shape `shape`) into `target` at
 * `targetOffset`, one contiguous innermost run at a time.
 */
function copyBox(
  source: HeapArray,
  shape: readonly number[],
  begin: readonly number[],
  size: readonly number[],
  target: HeapArray,
  targetOffset: number,
): void {
  const rank = shape.length;
  if (rank === 0) {
    target[targetOffset] = source[0]!;
    return;
  }
  const strides = util.computeStrides(shape as number[]);
  const run = size[rank - 1]!;
  const outer = sizeOf(size.slice(0, -1));
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let written = targetOffset;
  for (let count = 0; count < outer; count++) {
    let offset = begin[rank - 1]!;
    for (let axis = 0; axis < rank - 1; axis++) offset += (begin[axis]! + index[axis]!) * strides[axis]!;
    copyRun(target, written, source, offset, run);
    written += run;
    for (let axis = rank - 2; axis >= 0; axis--) {
      index[axis]! += 1;
      if (index[axis]! < size[axis]!) break;
      index[axis] = 0;
    }
  }
}

/** One strided copy of {@link copyBlocks}, in elements of the tensors' dtype. */
interface Block {
  source: tf.TensorInfo;
  /** First element read, and elements between the starts of consecutive source rows. */
  sourceStart: number;
  sourceStride: number;
  target: tf.TensorInfo;
  targetStart: number;
  targetStride: number;
  rows: number;
  /** Elements per row. */
  run: number;
}

/**
 * Copies every block that is not empty, element type float32 or int32 (4 bytes): in one call of
 * the native add-on when it is loaded (a memcpy per row), else row by row through typed-array
 * views. Call after every output is allocated (allocating can move the heap).
 */
function copyBlocks(backend: WasmBackend, allBlocks: readonly Block[]): void {
  // An empty tensor may have no memory on the heap to take an offset of.
  const blocks = allBlocks.filter((block) => block.rows > 0 && block.run > 0);
  const native = fastKernelState().nativeGemm;
  if (native !== null) {
    const plan = new Float64Array(6 * blocks.length);
    blocks.forEach((block, index) => {
      plan.set(
        [
          memoryOffset(backend, block.source) + 4 * block.sourceStart,
          4 * block.sourceStride,
          memoryOffset(backend, block.target) + 4 * block.targetStart,
          4 * block.targetStride,
          block.rows,
          4 * block.run,
        ],
        6 * index,
      );
    });
    native.copyBlocks(backend.wasm.HEAPU8.buffer, plan);
    return;
  }
  for (const block of blocks) {
    const source = heapView(backend, block.source);
    const target = heapView(backend, block.target);
    for (let row = 0; row < block.rows; row++) {
      copyRun(
        target,
        block.targetStart + row * block.targetStride,
        source,
        block.sourceStart + row * block.sourceStride,
        block.run,
      );
    }
  }
}

/**
 * The blocks between a joined tensor, whose rows hold the pieces' rows side by side, and the
 * pieces (`outer` rows each; a piece's rows are `sizeOf(shape.slice(axis))` elements): into the
 * joined tensor for Concat, out of it for SplitV.
 */
function pieceBlocks(
  joined: tf.TensorInfo,
  pieces: readonly tf.TensorInfo[],
  axis: number,
  direction: "join" | "split",
): Block[] {
  const outer = sizeOf(joined.shape.slice(0, axis));
  const rowLength = sizeOf(joined.shape.slice(axis));
  let column = 0;
  return pieces.map((piece) => {
    const run = sizeOf(piece.shape.slice(axis));
    const joinedSide = { tensor: joined, start: column, stride: rowLength };
    const pieceSide = { tensor: piece, start: 0, stride: run };
    const [from, to] = direction === "join" ? [pieceSide, joinedSide] : [joinedSide, pieceSide];
    column += run;
    return {
      source: from.tensor,
      sourceStart: from.start,
      sourceStride: from.stride,
      target: to.tensor,
      targetStart: to.start,
      targetStride: to.stride,
      rows: outer,
      run,
    };
  });
}

/** The slice `begin .. begin + size` of `x` as a new tensor, read straight from the heap. */
function sliceFromHeap(
  backend: WasmBackend,
  x: tf.TensorInfo,
  begin: readonly number[],
  size: readonly number[],
): tf.TensorInfo {
  const out = backend.makeOutput([...size], x.dtype);
  if (sizeOf(size) === 0) return out;
  const source = heapView(backend, x);
  const target = heapView(backend, out);
  if (slice_util.isSliceContinous(x.shape, begin as number[], size as number[])) {
    const start = slice_util.computeFlatOffset(begin as number[], util.computeStrides(x.shape));
    target.set(source.subarray(start, start + sizeOf(size)));
  } else {
    copyBox(source, x.shape, begin, size, target, 0);
  }
  return out;
}

/**
 * Override of the wasm `Slice` kernel. The stock kernel starts with `backend.readSync(x)`,
 * which copies the whole input out of the wasm heap on every call; slicing row blocks of a
 * `[4096, 128]` activation cost more than the matmuls around it. Same result, read in place.
 */
export function createSlice(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (backend === null || x.dtype === "string") return stock(args);
    const { begin, size } = args.attrs as { begin: number | number[]; size: number | number[] };
    const [beginIndex, sizeOfSlice] = slice_util.parseSliceParams(x, begin, size) as [number[], number[]];
    slice_util.assertParamsValid(x, beginIndex, sizeOfSlice);
    return sliceFromHeap(backend, x, beginIndex, sizeOfSlice);
  };
}

/**
 * Override of the wasm `SplitV` kernel (the gradient of every `concat`, e.g. of the embedding
 * fields): the stock kernel runs its copying `Slice` once per piece, copying the whole input
 * each time.
 */
export function createSplitV(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (backend === null || x.dtype === "string") return stock(args);
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const splitAxis = util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = backend_util.prepareSplitSize(x as unknown as tf.Tensor, numOrSizeSplits, splitAxis);
    if (x.dtype === "float32" || x.dtype === "int32") {
      const outputs = sizes.map((piece) => {
        const size = [...x.shape];
        size[splitAxis] = piece;
        return backend.makeOutput(size, x.dtype);
      });
      copyBlocks(backend, pieceBlocks(x, outputs, splitAxis, "split"));
      return outputs;
    }
    const begin = new Array<number>(x.shape.length).fill(0);
    return sizes.map((piece) => {
      const size = [...x.shape];
      size[splitAxis] = piece;
      const out = sliceFromHeap(backend, x, begin, size);
      begin[splitAxis]! += piece;
      return out;
    });
  };
}

/**
 * Override of the wasm `Unpack` kernel (`tf.unstack`, e.g. one weight matrix per expert): the
 * stock kernel slices once per output through the copying `Slice`, so unstacking 16 expert
 * kernels copied the whole `[16, 256, 128]` tensor 16 times.
 */
export function createUnpack(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { value } = args.inputs as { value: tf.TensorInfo };
    if (backend === null || value.dtype === "string") return stock(args);
    let { axis } = args.attrs as { axis: number };
    if (axis < 0) axis += value.shape.length;
    const count = value.shape[axis]!;
    const outShape = value.shape.filter((_, index) => index !== axis);
    const begin = new Array<number>(value.shape.length).fill(0);
    const size = [...value.shape];
    size[axis] = 1;
    return Array.from({ length: count }, (_, position) => {
      begin[axis] = position;
      const out = sliceFromHeap(backend, value, begin, size);
      return { dataId: out.dataId, shape: outShape, dtype: out.dtype };
    });
  };
}

/**
 * Override of the wasm `GatherV2` kernel for `batchDims = 0` (embedding lookups, routed rows):
 * the stock kernel's generic strided C++ loop took ~100 ms to gather 8192 rows of 128 floats;
 * copying whole rows from the heap takes ~3 ms. Out-of-range indices throw the stock message.
 * With the native add-on, gathers along axis 0 of float32 / int32 tensors copy rows in C.
 */
export function createGatherV2(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    if (backend === null || x.dtype === "string" || indices.dtype !== "int32" || (batchDims ?? 0) !== 0) {
      return stock(args);
    }
    const gatherAxis = util.parseAxisParam(axis, x.shape)[0]!;
    const outer = sizeOf(x.shape.slice(0, gatherAxis));
    const axisSize = x.shape[gatherAxis]!;
    const inner = sizeOf(x.shape.slice(gatherAxis + 1));
    const count = sizeOf(indices.shape);
    const outShape = [...x.shape.slice(0, gatherAxis), ...indices.shape, ...x.shape.slice(gatherAxis + 1)];
    const out = backend.makeOutput(outShape, x.dtype);
    const ids = backend.typedArrayFromHeap(indices) as Int32Array;
    for (let position = 0; position < count; position++) {
      const id = ids[position]!;
      if (!(id >= 0 && id < axisSize)) {
        backend.disposeData(out.dataId);
        throw new Error(`GatherV2: the index value ${id} is not in [0, ${axisSize - 1}]`);
      }
    }
    if (sizeOf(outShape) === 0) return out;
    const native = fastKernelState().nativeGemm;
    if (native !== null && outer === 1 && (x.dtype === "float32" || x.dtype === "int32")) {
      // Rows of 4-byte elements: the add-on's gather (memcpy per row, ids checked above).
      const plan = Int32Array.from([
        memoryOffset(backend, x),
        axisSize,
        inner,
        memoryOffset(backend, indices),
      ]);
      native.gatherConcat(backend.wasm.HEAPU8.buffer, memoryOffset(backend, out), count, plan);
      return out;
    }
    const source = heapView(backend, x);
    const target = heapView(backend, out);
    let written = 0;
    for (let block = 0; block < outer; block++) {
      const base = block * axisSize * inner;
      for (let position = 0; position < count; position++) {
        copyRun(target, written, source, base + ids[position]! * inner, inner);
        written += inner;
      }
    }
    return out;
  };
}

/**
 * Override of the wasm `Transpose` kernel for swaps of the last two axes (matrix transposes,
 * e.g. of weight gradients), done by the cache-blocked copy of the matmul overrides: ~4x the
 * stock kernel on `[1024, 1024]`. Other permutations run the stock kernel, which measured
 * faster than row copies in JavaScript when the last axis stays in place.
 */
export function createTranspose(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    const rank = x.shape.length;
    const swapsLastTwo =
      rank >= 2 &&
      perm[rank - 1] === rank - 2 &&
      perm[rank - 2] === rank - 1 &&
      perm.slice(0, -2).every((axis, index) => axis === index);
    if (backend === null || x.dtype !== "float32" || !swapsLastTwo || sizeOf(x.shape) === 0)
      return stock(args);
    const rows = x.shape[rank - 2]!;
    const cols = x.shape[rank - 1]!;
    const batched = {
      dataId: x.dataId,
      shape: [sizeOf(x.shape) / (rows * cols), rows, cols],
      dtype: x.dtype,
    };
    const swapped = transposeLastTwo(backend, batched);
    return { dataId: swapped.dataId, shape: perm.map((axis) => x.shape[axis]!), dtype: x.dtype };
  };
}

/**
 * Override of the wasm `Concat` kernel for float32 / int32 inputs: for each index of the axes
 * before `axis`, each input's contiguous block is copied once into the output (the stock kernel
 * took 1.35 ms to join the 8 `[4096, 16]` embedding lookups of a batch; this takes ~0.4 ms).
 * Other dtypes run the stock kernel.
 */
export function createConcat(
  stock: KernelFunc,
  backendOf: (backend: unknown) => WasmBackend | null,
): KernelFunc {
  return (args) => {
    const backend = backendOf(args.backend);
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const { axis } = args.attrs as { axis: number | number[] };
    const first = inputs[0];
    if (
      backend === null ||
      first === undefined ||
      (first.dtype !== "float32" && first.dtype !== "int32") ||
      inputs.some((input) => input.dtype !== first.dtype)
    ) {
      return stock(args);
    }
    const concatAxis = util.parseAxisParam(axis, first.shape)[0]!;
    backend_util.assertParamsConsistent(
      inputs.map((input) => input.shape),
      concatAxis,
    );
    const outShape = backend_util.computeOutShape(
      inputs.map((input) => input.shape),
      concatAxis,
    );
    const out = backend.makeOutput(outShape, first.dtype);
    if (sizeOf(outShape) === 0) return out;
    copyBlocks(backend, pieceBlocks(out, inputs, concatAxis, "join"));
    return out;
  };
}

/** Kernel: rows of several tables gathered side by side into one `[B, sum of widths]` output. */
export const GATHER_CONCAT = "MdrecGatherConcat";

// The error of an id outside its table, the same from the native and the TypeScript copy.
function badIdError(field: number, row: number, id: number, tableRows: number): Error {
  return new Error(`${GATHER_CONCAT}: field ${field} row ${row} has id ${id}, not in [0, ${tableRows - 1}]`);
}

/**
 * `GATHER_CONCAT` on `wasm`: inputs `t0..t{n-1}` (tables `[rows_i, width_i]`, float32) and
 * `i0..i{n-1}` (int32 `[B]` ids); writes row `ids_i[b]` of table i into columns
 * `[offset_i, offset_i + width_i)` of output row b, so the per-field gathers and their concat
 * are one pass (the separate concat cost ~1.6 ms per 4096-row batch of 8 fields). With the
 * native add-on the copies run in C (one output row at a time, so its random table reads
 * overlap); otherwise in a TypeScript loop over the heap.
 */
const gatherConcat: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = cachedWasmBackend(anyBackend);
  if (backend === null) throw new Error(`${GATHER_CONCAT} runs on the wasm backend only`);
  const { count } = attrs as { count: number };
  const named = inputs as unknown as Record<string, tf.TensorInfo>;
  const tables = Array.from({ length: count }, (_, index) => named[`t${index}`]!);
  const ids = Array.from({ length: count }, (_, index) => named[`i${index}`]!);
  const rows = ids[0]!.shape[0]!;
  const widths = tables.map((table) => table.shape[1]!);
  const rowLength = widths.reduce((sum, width) => sum + width, 0);
  const out = backend.makeOutput([rows, rowLength], "float32");
  const native = fastKernelState().nativeGemm;
  if (native !== null) {
    // Offsets after makeOutput: allocating can grow (and move) the heap.
    const plan = new Int32Array(4 * count);
    tables.forEach((table, field) => {
      plan.set(
        [memoryOffset(backend, table), table.shape[0]!, widths[field]!, memoryOffset(backend, ids[field]!)],
        4 * field,
      );
    });
    const bad = native.gatherConcat(backend.wasm.HEAPU8.buffer, memoryOffset(backend, out), rows, plan);
    if (bad !== null) {
      backend.disposeData(out.dataId);
      const [field, row, id] = bad;
      throw badIdError(field, row, id, tables[field]!.shape[0]!);
    }
    return out;
  }
  // One Int32 view of the whole heap after the last allocation: bit copies, one element type.
  const heap = new Int32Array(backend.wasm.HEAPU8.buffer);
  const target = memoryOffset(backend, out) / 4;
  let column = 0;
  tables.forEach((table, field) => {
    const width = widths[field]!;
    const tableRows = table.shape[0]!;
    const source = memoryOffset(backend, table) / 4;
    const idStart = memoryOffset(backend, ids[field]!) / 4;
    for (let row = 0; row < rows; row++) {
      const id = heap[idStart + row]!;
      if (!(id >= 0 && id < tableRows)) {
        backend.disposeData(out.dataId);
        throw badIdError(field, row, id, tableRows);
      }
      const from = source + id * width;
      const to = target + row * rowLength + column;
      for (let element = 0; element < width; element++) heap[to + element] = heap[from + element]!;
    }
    column += width;
  });
  return out;
};

/** Kernel: the gradients of {@link GATHER_CONCAT}'s tables (wasm with the native add-on only). */
export const SCATTER_CONCAT = "MdrecScatterConcat";

/**
 * `SCATTER_CONCAT` on `wasm`: input `dy` `[B, sum of widths]` and `i0..i{n-1}` (int32 ids, `B`
 * elements each), attribute `tableShapes` (`[rows_i, width_i]`); outputs the `n` table gradients,
 * each the scatter-add of its columns of dy into the rows its ids name: one pass in the add-on
 * instead of a Slice and a ScatterNd per table.
 */
const scatterConcat: KernelFunc = ({ inputs, backend: anyBackend, attrs }) => {
  const backend = cachedWasmBackend(anyBackend);
  const native = fastKernelState().nativeGemm;
  if (backend === null || native === null) {
    throw new Error(`${SCATTER_CONCAT} needs the wasm backend with mdrec's native add-on`);
  }
  const { tableShapes } = attrs as unknown as { tableShapes: [number, number][] };
  const named = inputs as unknown as Record<string, tf.TensorInfo>;
  const dy = named.dy!;
  const gradients = tableShapes.map((shape) => backend.makeOutput([...shape], "float32"));
  // Offsets after every makeOutput: allocating can grow (and move) the heap.
  const plan = new Int32Array(4 * tableShapes.length);
  tableShapes.forEach(([rows, width], field) => {
    plan.set(
      [memoryOffset(backend, gradients[field]!), rows, width, memoryOffset(backend, named[`i${field}`]!)],
      4 * field,
    );
  });
  native.scatterConcat(backend.wasm.HEAPU8.buffer, memoryOffset(backend, dy), dy.shape[0]!, plan);
  return gradients;
};

/** Registers {@link GATHER_CONCAT} and {@link SCATTER_CONCAT} on `wasm` (idempotent). */
export function registerGatherConcat(): void {
  if (getKernel(GATHER_CONCAT, "wasm") === undefined) {
    registerKernel({ kernelName: GATHER_CONCAT, backendName: "wasm", kernelFunc: gatherConcat });
  }
  if (getKernel(SCATTER_CONCAT, "wasm") === undefined) {
    registerKernel({ kernelName: SCATTER_CONCAT, backendName: "wasm", kernelFunc: scatterConcat });
  }
}
