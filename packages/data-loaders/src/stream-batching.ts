import {
  assertInteger,
  assertKnownKeys,
  type Batch,
  ConfigError,
  DataError,
  disposeBatch,
  formatValue,
  SeededRandom,
  validateFeatureSpecs,
} from "@mdrec/core";
import { type BatchSource, gatherBatch } from "./batching.js";
import type { ColumnarDataset } from "./dataset.js";
import { mixSeed } from "./permutation.js";

/** Options of {@link streamBatches}. */
export interface StreamBatchOptions {
  /** Rows per batch, >= 1. */
  batchSize: number;
  /**
   * Rows held in the shuffle buffer. Each output row is drawn uniformly at random from the buffer
   * and its place taken by the next incoming row; at the end of the stream the buffer drains in
   * random order (tf.data's `shuffle`). Defaults to 0: stream order (1 gives stream order too).
   */
  shuffleBuffer?: number;
  /** Shuffle seed. Defaults to 0. The same seed and the same rows give the same batches. */
  seed?: number;
  /** Drop the last batch when it has fewer than `batchSize` rows. Defaults to false. */
  dropLast?: boolean;
  /** Batches prepared ahead of the one the consumer holds. Defaults to 1; 0 disables prefetch. */
  prefetch?: number;
}

const STREAM_BATCH_OPTION_KEYS = ["batchSize", "shuffleBuffer", "seed", "dropLast", "prefetch"];

/**
 * Batches a stream of {@link ColumnarDataset} chunks (e.g. {@link streamDataset}) into tensor
 * batches with the layout of {@link iterateBatches}: each feature int32 (categorical) or float32
 * (numeric) `[B]`, `domainIds` int32 `[B]`, `labels` float32 `[B, numTasks]`. Batches span chunk
 * boundaries, and a seeded shuffle buffer of `shuffleBuffer` rows mixes rows across chunks while
 * memory stays at one chunk plus the buffer. The consumer disposes each batch (`disposeBatch`).
 *
 * Prefetch (as tfjs-data's `prefetch`): when the consumer asks for a batch, the next `prefetch`
 * batches are requested too, so their tensors are built, and the next chunk is pulled from the
 * source, while the consumer trains on the current one. File reads and gzip decompression run
 * on Node's thread pool and so overlap with the training step; parsing and encoding run on the
 * main thread, whenever the consumer yields to the event loop (awaits).
 *
 * Stopping early (`break`, `return()`, a throw in the loop) disposes the prefetched batches and
 * closes the source (its iterator's `return()`). An error of the source reaches the consumer
 * after the batches produced before it. Options are validated when called, before the first
 * chunk is read; every chunk must have the features, `numTasks` and `numDomains` of the first
 * (`DataError` naming the chunk index and the field otherwise).
 *
 * @example
 * const chunks = streamDataset({ path: shards }, schema, { encoders, chunkRows: 65_536 });
 * for await (const batch of streamBatches(chunks, { batchSize: 1024, shuffleBuffer: 65_536, seed: epoch })) {
 *   trainStep(batch);
 *   disposeBatch(batch);
 * }
 */
export function streamBatches(
  chunks: AsyncIterable<ColumnarDataset> | Iterable<ColumnarDataset>,
  options: StreamBatchOptions,
): AsyncGenerator<Batch> {
  if (
    chunks == null ||
    (typeof (chunks as AsyncIterable<unknown>)[Symbol.asyncIterator] !== "function" &&
      typeof (chunks as Iterable<unknown>)[Symbol.iterator] !== "function")
  ) {
    throw new ConfigError(
      `streamBatches chunks must be an async iterable of ColumnarDataset (e.g. streamDataset), received ${formatValue(chunks)}`,
    );
  }
  if (options == null || typeof options !== "object") {
    throw new ConfigError(
      `streamBatches options must be an object with batchSize, received ${formatValue(options)}`,
    );
  }
  assertKnownKeys("streamBatches options", options, STREAM_BATCH_OPTION_KEYS);
  const { batchSize, shuffleBuffer = 0, seed = 0, dropLast = false, prefetch = 1 } = options;
  assertInteger("batchSize", batchSize, 1);
  assertInteger("shuffleBuffer", shuffleBuffer, 0);
  assertInteger("seed", seed, Number.MIN_SAFE_INTEGER);
  assertInteger("prefetch", prefetch, 0);
  if (typeof dropLast !== "boolean")
    throw new ConfigError(`dropLast must be a boolean, received ${formatValue(dropLast)}`);
  const producer = shuffledBatches(chunks, { batchSize, shuffleBuffer, seed, dropLast });
  return prefetchBatches(producer, prefetch);
}

/**
 * Keeps `prefetch` requests to `producer` in flight beyond the batch the consumer awaits. An
 * async generator queues `next()` calls, so the producer builds them in order, one after the
 * other, and a request that fails rejects only after the batches before it resolved.
 */
async function* prefetchBatches(producer: AsyncGenerator<Batch>, prefetch: number): AsyncGenerator<Batch> {
  const requests: Promise<IteratorResult<Batch>>[] = [];
  const request = () => {
    const next = producer.next();
    // A request that fails while queued is awaited (and rethrown) in its turn; this handler only
    // keeps Node from reporting it as unhandled meanwhile.
    next.catch(() => {});
    requests.push(next);
  };
  try {
    while (true) {
      while (requests.length <= prefetch) request();
      const result = await requests.shift()!;
      if (result.done) return;
      yield result.value;
    }
  } finally {
    // Early stop: the queued requests finish (an async generator cannot drop them), then their
    // batches are disposed and `return()` closes the producer, which closes the source.
    for (const pending of requests.splice(0)) {
      const result = await pending.catch(() => undefined);
      if (result !== undefined && !result.done) disposeBatch(result.value);
    }
    await producer.return(undefined);
  }
}

interface ShuffleConfig {
  batchSize: number;
  shuffleBuffer: number;
  seed: number;
  dropLast: boolean;
}

/**
 * The batches of the stream without prefetch. Rows are copied from each chunk into slots of one
 * columnar store of `shuffleBuffer + batchSize` rows: `live` slots form the shuffle buffer,
 * `pending` slots the batch being filled (gathered into tensors when full, then freed), so no
 * chunk is kept once its rows are copied.
 */
async function* shuffledBatches(
  chunks: AsyncIterable<ColumnarDataset> | Iterable<ColumnarDataset>,
  config: ShuffleConfig,
): AsyncGenerator<Batch> {
  const { batchSize, dropLast } = config;
  // A buffer of one row gives stream order, like no buffer.
  const bufferRows = config.shuffleBuffer > 1 ? config.shuffleBuffer : 0;
  const random = new SeededRandom(mixSeed(config.seed, 0));
  const capacity = bufferRows + batchSize;
  const live = new Int32Array(Math.max(bufferRows, 1));
  const pending = new Int32Array(batchSize);
  const free = Int32Array.from({ length: capacity }, (_, index) => capacity - 1 - index);
  const destination = new Int32Array(capacity);
  let liveCount = 0;
  let pendingCount = 0;
  let freeCount = capacity;
  let store: BatchSource | undefined;
  let layout: ChunkLayout | undefined;

  const emit = (): Batch => {
    const batch = gatherBatch(store!, pending.subarray(0, pendingCount));
    for (let index = 0; index < pendingCount; index++) free[freeCount++] = pending[index]!;
    pendingCount = 0;
    return batch;
  };

  let chunkIndex = 0;
  for await (const chunk of chunks) {
    checkChunk(chunk, chunkIndex, layout);
    if (layout === undefined) {
      layout = {
        features: chunk.features.map((spec) => ({ ...spec })),
        numTasks: chunk.numTasks,
        numDomains: chunk.numDomains,
      };
      store = allocateStore(layout, capacity);
    }
    let row = 0;
    while (row < chunk.numRows) {
      // Assign slots to a run of incoming rows that ends when a batch fills, then copy the run
      // column by column.
      let count = 0;
      while (row + count < chunk.numRows && pendingCount < batchSize) {
        const slot = free[--freeCount]!;
        destination[count++] = slot;
        if (bufferRows === 0) {
          pending[pendingCount++] = slot;
        } else if (liveCount < bufferRows) {
          live[liveCount++] = slot;
        } else {
          const drawn = random.nextInt(bufferRows);
          pending[pendingCount++] = live[drawn]!;
          live[drawn] = slot;
        }
      }
      copyRows(chunk, row, count, destination, store!);
      row += count;
      if (pendingCount === batchSize) yield emit();
    }
    chunkIndex++;
  }
  while (liveCount > 0) {
    const drawn = random.nextInt(liveCount);
    pending[pendingCount++] = live[drawn]!;
    live[drawn] = live[--liveCount]!;
    if (pendingCount === batchSize) yield emit();
  }
  if (pendingCount > 0 && !dropLast) yield emit();
}

/** What every chunk must share with the first one. */
type ChunkLayout = Pick<ColumnarDataset, "features" | "numTasks" | "numDomains">;

function allocateStore(layout: ChunkLayout, capacity: number): BatchSource {
  const columns: Record<string, Int32Array | Float32Array> = {};
  for (const spec of layout.features) {
    columns[spec.name] = spec.kind === "categorical" ? new Int32Array(capacity) : new Float32Array(capacity);
  }
  return {
    features: layout.features,
    columns,
    domainIds: new Int32Array(capacity),
    labels: new Float32Array(capacity * layout.numTasks),
    numTasks: layout.numTasks,
  };
}

/** Copies rows `[start, start + count)` of `chunk` into `store` slots `destination[0..count)`. */
function copyRows(
  chunk: ColumnarDataset,
  start: number,
  count: number,
  destination: Int32Array,
  store: BatchSource,
): void {
  for (const spec of store.features) {
    const from = chunk.columns[spec.name]!;
    const to = store.columns[spec.name]!;
    for (let index = 0; index < count; index++) to[destination[index]!] = from[start + index]!;
  }
  const fromDomains = chunk.domainIds;
  const toDomains = store.domainIds;
  for (let index = 0; index < count; index++) toDomains[destination[index]!] = fromDomains[start + index]!;
  const { numTasks } = store;
  for (let index = 0; index < count; index++) {
    const fromOffset = (start + index) * numTasks;
    const toOffset = destination[index]! * numTasks;
    for (let task = 0; task < numTasks; task++)
      store.labels[toOffset + task] = chunk.labels[fromOffset + task]!;
  }
}

/**
 * Checks the layout of chunk `index` (array types and lengths) and that it agrees with the first
 * chunk on features, `numTasks` and `numDomains`. Values (id ranges) are the producer's business.
 */
function checkChunk(chunk: ColumnarDataset, index: number, first: ChunkLayout | undefined): void {
  const where = `chunk ${index}`;
  if (chunk == null || typeof chunk !== "object") {
    throw new DataError(`${where} must be a ColumnarDataset, received ${formatValue(chunk)}`);
  }
  const { numRows, numTasks } = chunk;
  if (!Number.isInteger(numRows) || numRows < 0) {
    throw new DataError(`${where}.numRows must be a non-negative integer, received ${formatValue(numRows)}`);
  }
  if (first === undefined) {
    validateFeatureSpecs(chunk.features, `${where}.features`);
    if (!Number.isInteger(numTasks) || numTasks < 1) {
      throw new DataError(`${where}.numTasks must be a positive integer, received ${formatValue(numTasks)}`);
    }
  } else {
    if (!Array.isArray(chunk.features) || chunk.features.length !== first.features.length) {
      throw new DataError(
        `${where}.features differs from chunk 0: expected ${first.features.length} features ${formatValue(first.features.map((spec) => spec.name))}, received ${formatValue(chunk.features)}`,
      );
    }
    first.features.forEach((expected, position) => {
      const received = chunk.features[position];
      if (canonical(received) !== canonical(expected)) {
        throw new DataError(
          `${where}.features[${position}] differs from chunk 0: expected ${JSON.stringify(expected)}, received ${formatValue(received)}`,
        );
      }
    });
    for (const key of ["numTasks", "numDomains"] as const) {
      if (chunk[key] !== first[key]) {
        throw new DataError(
          `${where}.${key} differs from chunk 0: expected ${first[key]}, received ${formatValue(chunk[key])}`,
        );
      }
    }
  }
  const expectArray = (
    name: string,
    array: unknown,
    type: typeof Int32Array | typeof Float32Array,
    length: number,
  ) => {
    if (!(array instanceof type) || array.length !== length) {
      const received =
        array instanceof Int32Array || array instanceof Float32Array
          ? `${array.constructor.name} of length ${array.length}`
          : formatValue(array);
      const article = type === Int32Array ? "an" : "a";
      throw new DataError(
        `${where}.${name} must be ${article} ${type.name} of length ${length}, received ${received}`,
      );
    }
  };
  for (const spec of chunk.features) {
    const type = spec.kind === "categorical" ? Int32Array : Float32Array;
    expectArray(`columns.${spec.name}`, chunk.columns?.[spec.name], type, numRows);
  }
  expectArray("domainIds", chunk.domainIds, Int32Array, numRows);
  expectArray("labels", chunk.labels, Float32Array, numRows * numTasks);
}

/** JSON of a feature spec with sorted keys, so key order does not count as a difference. */
function canonical(spec: unknown): string {
  if (spec == null || typeof spec !== "object") return JSON.stringify(spec) ?? String(spec);
  return JSON.stringify(spec, Object.keys(spec).sort());
}
