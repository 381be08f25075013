import { ConfigError, DataError, type FeatureSpec, formatValue, validateFeatureSpecs } from "@mdrec/core";

/**
 * In-memory columnar data: the exchange format between loaders, trainer, CLI and tests.
 *
 * Categorical columns hold `Int32Array` ids in `[0, vocabularySize)` (id 0 is the
 * out-of-vocabulary id of every encoder-produced field); numeric columns hold `Float32Array`
 * values. `columns` may hold extra columns that are not in `features` (for example a
 * `timestamp` kept for time splits); only `features` are batched.
 */
export interface ColumnarDataset {
  /** The batched fields, in model input order. */
  features: FeatureSpec[];
  /** Field name -> values, one per row. */
  columns: Record<string, Int32Array | Float32Array>;
  /** `[numRows]` domain ids in `[0, numDomains)`. */
  domainIds: Int32Array;
  /** `[numRows * numTasks]` labels in {0, 1}, row-major. */
  labels: Float32Array;
  numRows: number;
  numTasks: number;
  numDomains: number;
  /** Length `numDomains`. */
  domainNames: string[];
  /** Length `numTasks`. */
  taskNames: string[];
  /** Optional `[numRows]` user ids, for GAUC and per-user splits. */
  groupIds?: Int32Array;
}

/**
 * Checks that every array of a dataset has the declared length and every id is in range.
 * Throws `DataError` naming the column, row and value.
 */
export function validateDataset(dataset: ColumnarDataset, where = "dataset"): void {
  if (dataset == null || typeof dataset !== "object") {
    throw new ConfigError(`${where} must be a ColumnarDataset, received ${formatValue(dataset)}`);
  }
  const { numRows, numTasks, numDomains } = dataset;
  for (const [key, value] of [
    ["numRows", numRows],
    ["numTasks", numTasks],
    ["numDomains", numDomains],
  ] as const) {
    if (!Number.isInteger(value) || value < (key === "numRows" ? 0 : 1)) {
      throw new DataError(
        `${where}.${key} must be a ${key === "numRows" ? "non-negative" : "positive"} integer, received ${formatValue(value)}`,
      );
    }
  }
  validateFeatureSpecs(dataset.features, `${where}.features`);
  const expectLength = (name: string, array: ArrayLike<number> | undefined, length: number) => {
    if (array === undefined || array.length !== length) {
      throw new DataError(
        `${where}.${name} must have length ${length}, received ${array === undefined ? "undefined" : array.length}`,
      );
    }
  };
  expectLength("domainIds", dataset.domainIds, numRows);
  expectLength("labels", dataset.labels, numRows * numTasks);
  if (dataset.groupIds !== undefined) expectLength("groupIds", dataset.groupIds, numRows);
  if (dataset.domainNames?.length !== numDomains) {
    throw new DataError(
      `${where}.domainNames must have numDomains=${numDomains} entries, received ${formatValue(dataset.domainNames)}`,
    );
  }
  if (dataset.taskNames?.length !== numTasks) {
    throw new DataError(
      `${where}.taskNames must have numTasks=${numTasks} entries, received ${formatValue(dataset.taskNames)}`,
    );
  }
  for (let row = 0; row < numRows; row++) {
    const id = dataset.domainIds[row]!;
    if (id < 0 || id >= numDomains) {
      throw new DataError(
        `${where}.domainIds[${row}] must be in [0, numDomains=${numDomains}), received ${id}`,
      );
    }
  }
  for (const spec of dataset.features) {
    const column = dataset.columns[spec.name];
    if (spec.kind === "categorical") {
      if (!(column instanceof Int32Array)) {
        throw new DataError(
          `${where}.columns.${spec.name} (categorical) must be an Int32Array, received ${describeArray(column)}`,
        );
      }
      expectLength(`columns.${spec.name}`, column, numRows);
      for (let row = 0; row < numRows; row++) {
        const id = column[row]!;
        if (id < 0 || id >= spec.vocabularySize) {
          throw new DataError(
            `${where}.columns.${spec.name}[${row}] must be in [0, vocabularySize=${spec.vocabularySize}), received ${id}`,
          );
        }
      }
    } else {
      if (!(column instanceof Float32Array)) {
        throw new DataError(
          `${where}.columns.${spec.name} (numeric) must be a Float32Array, received ${describeArray(column)}`,
        );
      }
      expectLength(`columns.${spec.name}`, column, numRows);
    }
  }
}

function describeArray(value: unknown): string {
  if (value === undefined) return "undefined";
  return (value as object)?.constructor?.name ?? formatValue(value);
}

/**
 * A new dataset holding the given rows, in the given order (rows may repeat). Every column,
 * including columns outside `features`, is copied.
 *
 * @example const firstTen = takeRows(dataset, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
 */
export function takeRows(dataset: ColumnarDataset, rowIndices: Int32Array | number[]): ColumnarDataset {
  const count = rowIndices.length;
  for (let position = 0; position < count; position++) {
    const row = rowIndices[position]!;
    if (!Number.isInteger(row) || row < 0 || row >= dataset.numRows) {
      throw new ConfigError(
        `rowIndices[${position}] must be an integer in [0, numRows=${dataset.numRows}), received ${formatValue(row)}`,
      );
    }
  }
  const columns: Record<string, Int32Array | Float32Array> = {};
  for (const [name, column] of Object.entries(dataset.columns)) columns[name] = gather(column, rowIndices);
  const { numTasks } = dataset;
  const labels = new Float32Array(count * numTasks);
  for (let position = 0; position < count; position++) {
    const source = rowIndices[position]! * numTasks;
    for (let task = 0; task < numTasks; task++)
      labels[position * numTasks + task] = dataset.labels[source + task]!;
  }
  const result: ColumnarDataset = {
    features: dataset.features.map((spec) => ({ ...spec })),
    columns,
    domainIds: gather(dataset.domainIds, rowIndices),
    labels,
    numRows: count,
    numTasks,
    numDomains: dataset.numDomains,
    domainNames: [...dataset.domainNames],
    taskNames: [...dataset.taskNames],
  };
  if (dataset.groupIds !== undefined) result.groupIds = gather(dataset.groupIds, rowIndices);
  return result;
}

/** Copies `source[rowIndices[i]]` into a new array of the same type. Indices are trusted. */
export function gather<T extends Int32Array | Float32Array>(source: T, rowIndices: ArrayLike<number>): T {
  const count = rowIndices.length;
  const target = new (source.constructor as new (length: number) => T)(count);
  for (let position = 0; position < count; position++) target[position] = source[rowIndices[position]!]!;
  return target;
}

/**
 * Concatenates datasets with identical features, domains and tasks (e.g. shards read with the
 * same fitted encoders). Throws `ConfigError` naming the first difference.
 */
export function concatDatasets(datasets: readonly ColumnarDataset[]): ColumnarDataset {
  if (!Array.isArray(datasets) || datasets.length === 0) {
    throw new ConfigError(`datasets must be a non-empty array, received ${formatValue(datasets)}`);
  }
  const first: ColumnarDataset = datasets[0]!;
  const signature = (dataset: ColumnarDataset) =>
    JSON.stringify({
      features: dataset.features,
      columns: Object.keys(dataset.columns).sort(),
      numTasks: dataset.numTasks,
      numDomains: dataset.numDomains,
      domainNames: dataset.domainNames,
      taskNames: dataset.taskNames,
      groups: dataset.groupIds !== undefined,
    });
  const expected = signature(first);
  datasets.forEach((dataset, index) => {
    if (signature(dataset) !== expected) {
      throw new ConfigError(
        `datasets[${index}] differs from datasets[0] in features, columns, domains, tasks or groupIds: ${signature(dataset)} vs ${expected}`,
      );
    }
  });
  const numRows = datasets.reduce((sum, dataset) => sum + dataset.numRows, 0);
  const join = <T extends Int32Array | Float32Array>(pick: (dataset: ColumnarDataset) => T): T => {
    const sample = pick(first);
    const total = datasets.reduce((sum, dataset) => sum + pick(dataset).length, 0);
    const target = new (sample.constructor as new (length: number) => T)(total);
    let offset = 0;
    for (const dataset of datasets) {
      const part = pick(dataset);
      target.set(part, offset);
      offset += part.length;
    }
    return target;
  };
  const columns: Record<string, Int32Array | Float32Array> = {};
  for (const name of Object.keys(first.columns)) columns[name] = join((dataset) => dataset.columns[name]!);
  const result: ColumnarDataset = {
    features: first.features.map((spec) => ({ ...spec })),
    columns,
    domainIds: join((dataset) => dataset.domainIds),
    labels: join((dataset) => dataset.labels),
    numRows,
    numTasks: first.numTasks,
    numDomains: first.numDomains,
    domainNames: [...first.domainNames],
    taskNames: [...first.taskNames],
  };
  if (first.groupIds !== undefined) result.groupIds = join((dataset) => dataset.groupIds!);
  return result;
}

/** Rows per domain, `[numDomains]`. */
export function domainCounts(dataset: Pick<ColumnarDataset, "domainIds" | "numDomains">): number[] {
  const counts = new Array<number>(dataset.numDomains).fill(0);
  for (const id of dataset.domainIds) counts[id] = (counts[id] ?? 0) + 1;
  return counts;
}
