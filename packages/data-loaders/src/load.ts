import {
  assertInteger,
  assertKnownKeys,
  assertOneOf,
  ConfigError,
  DataError,
  formatValue,
} from "@mdrec/core";
import { type ColumnarDataset, concatDatasets, takeRows } from "./dataset.js";
import { DatasetEncoders } from "./encoders.js";
import { readRows } from "./readers/rows.js";
import type { DataSource } from "./readers/types.js";
import { columnOf, type DataSchema, domainNamesOf, validateSchema } from "./schema.js";
import { type DatasetSplits, type SplitOptions, splitByRowIndices, splitRowIndices } from "./split.js";
import {
  InvalidRowCollector,
  type JoinTable,
  keyOf,
  type LoadReport,
  type OnInvalidRow,
  type SkippedRows,
  sourceFiles,
  TableBuilder,
} from "./table.js";

/** Options of {@link loadDataset}. */
export interface LoadOptions {
  /** Fitted encoders to use as they are (evaluation data). Without them encoders are fitted. */
  encoders?: DatasetEncoders;
  /** Split the rows and fit the encoders on the training part only. Returned as `splits`. */
  split?: SplitOptions;
  /** What an invalid row does. Defaults to `"error"`. */
  onInvalidRow?: OnInvalidRow;
}

/** Result of {@link loadDataset}. */
export interface LoadResult {
  /** Every loaded row, encoded. */
  dataset: ColumnarDataset;
  /** The encoders used (fitted here on training rows, or the ones passed in). */
  encoders: DatasetEncoders;
  report: LoadReport;
  /** Present when `options.split` was given. */
  splits?: DatasetSplits;
}

const LOAD_KEYS = ["encoders", "split", "onInvalidRow"];

// Small reader chunks let the parsed row arrays die young (scavenged, never promoted), which keeps
// the heap and the peak RSS flat however many rows stream through.
const READER_CHUNK_ROWS = 2048;

/** Reads the lookup tables of `schema.joins` into memory. */
export async function loadJoinTables(
  schema: DataSchema,
  collector: InvalidRowCollector,
): Promise<JoinTable[]> {
  const tables: JoinTable[] = [];
  for (const join of schema.joins ?? []) {
    const rows = new Map<string, unknown[]>();
    const firstLine = new Map<string, number>();
    const wanted = [join.key, ...join.columns];
    let file = sourceFiles(join.source)[0]!;
    for await (const chunk of readRows(join.source, { columns: wanted, onInvalidRow: collector.handle })) {
      file = chunk.file;
      const positions = wanted.map((column) => {
        const position = chunk.columns.indexOf(column);
        if (position < 0) {
          throw new DataError(
            `file "${chunk.file}": has no column "${column}" needed by the join on "${join.on}"; columns: ${chunk.columns.join(", ")}`,
          );
        }
        return position;
      });
      chunk.rows.forEach((values, index) => {
        const key = keyOf(values[positions[0]!]);
        const line = chunk.lines[index]!;
        if (typeof key !== "string") {
          throw new DataError(
            `file "${chunk.file}", ${chunk.position} ${line}, column "${join.key}": ${key.problem}`,
          );
        }
        const previous = firstLine.get(key);
        if (previous !== undefined) {
          throw new DataError(
            `file "${chunk.file}", ${chunk.position} ${line}, column "${join.key}": key ${JSON.stringify(key)} appears twice (first on ${chunk.position} ${previous})`,
          );
        }
        firstLine.set(key, line);
        rows.set(
          key,
          positions.slice(1).map((position) => values[position]),
        );
      });
    }
    tables.push({ on: join.on, columns: [...join.columns], file, rows });
  }
  return tables;
}

async function fill(
  builder: TableBuilder,
  source: DataSource,
  collector: InvalidRowCollector,
): Promise<void> {
  for await (const chunk of readRows(source, {
    columns: builder.mainColumns(),
    numericColumns: builder.numericColumns(),
    onInvalidRow: collector.handle,
    chunkRows: READER_CHUNK_ROWS,
  })) {
    builder.add(chunk);
  }
}

function newBuilder(
  schema: DataSchema,
  mode: "fit-store" | "fit-count" | "frozen",
  joins: JoinTable[],
  collector: InvalidRowCollector,
  encoders?: DatasetEncoders,
): TableBuilder {
  return new TableBuilder(schema, mode, joins, collector.handle, encoders);
}

function checkEncodersMatch(schema: DataSchema, encoders: DatasetEncoders): void {
  const expected = JSON.stringify(schema.features.map((field) => [field.name, field.kind]));
  const actual = JSON.stringify(encoders.schema.features.map((field) => [field.name, field.kind]));
  if (expected !== actual) {
    throw new ConfigError(`encoders were fitted for fields ${actual}, but the schema declares ${expected}`);
  }
}

/**
 * Streams a source through a schema into an in-memory {@link ColumnarDataset}. Encoders are
 * fitted on the training rows only when `split` is given (and on every row otherwise), or taken
 * as they are from `options.encoders`. Invalid rows abort with `DataError` (naming file, line,
 * column and value) or, with `onInvalidRow: "skip"`, are counted by reason in `report.skipped`.
 *
 * @example
 * const { dataset, encoders, report, splits } = await loadDataset("clicks.csv.gz", schema, { split: { seed: 1 } });
 * await writeFile("encoders.json", JSON.stringify(encoders));
 */
export async function loadDataset(
  source: DataSource,
  schema: DataSchema,
  options: LoadOptions = {},
): Promise<LoadResult> {
  return loadDatasetWithTables(source, schema, options, []);
}

/** {@link loadDataset} with extra lookup tables prepared by a format loader (derived columns). */
export async function loadDatasetWithTables(
  source: DataSource,
  schema: DataSchema,
  options: LoadOptions,
  tables: JoinTable[],
): Promise<LoadResult> {
  const started = performance.now();
  validateSchema(schema);
  if (options == null || typeof options !== "object") {
    throw new ConfigError(`loadDataset options must be an object, received ${formatValue(options)}`);
  }
  assertKnownKeys("loadDataset options", options, LOAD_KEYS);
  const onInvalidRow = options.onInvalidRow ?? "error";
  assertOneOf("onInvalidRow", onInvalidRow, ["error", "skip"]);
  if (options.encoders) {
    if (!(options.encoders instanceof DatasetEncoders)) {
      throw new ConfigError(
        `encoders must be DatasetEncoders (use DatasetEncoders.fromJSON), received ${formatValue(options.encoders)}`,
      );
    }
    checkEncodersMatch(schema, options.encoders);
  }
  const collector = new InvalidRowCollector(onInvalidRow);
  const joins = [...(await loadJoinTables(schema, collector)), ...tables];
  const builder = newBuilder(
    schema,
    options.encoders ? "frozen" : "fit-store",
    joins,
    collector,
    options.encoders,
  );
  await fill(builder, source, collector);
  if (builder.numRows === 0) {
    throw new DataError(
      `no valid rows in ${sourceFiles(source)
        .map((file) => `"${file}"`)
        .join(", ")} (${collector.total} skipped: ${summarise(collector.list())})`,
    );
  }
  const parts = options.split ? splitRowIndices(builder.provisionalColumns(), options.split) : undefined;
  const encoders = builder.fitEncoders(parts?.train);
  const { dataset, outOfVocabulary } = builder.takeDataset(encoders);
  const warnings: string[] = [];
  let splits: DatasetSplits | undefined;
  if (parts) {
    splits = splitByRowIndices(dataset, parts, options.split?.onEmptyDomain ?? "warn");
    warnings.push(...splits.warnings);
  }
  for (const [field, count] of Object.entries(outOfVocabulary)) {
    if (options.encoders && count > 0) {
      warnings.push(
        `field "${field}": ${count} of ${dataset.numRows} rows (${((100 * count) / dataset.numRows).toFixed(1)}%) are out of vocabulary (id 0)`,
      );
    }
  }
  const report: LoadReport = {
    files: [...builder.files],
    rowsRead: builder.numRows + collector.total,
    rowsLoaded: builder.numRows,
    skipped: collector.list(),
    outOfVocabulary,
    warnings,
    seconds: (performance.now() - started) / 1000,
  };
  return splits ? { dataset, encoders, report, splits } : { dataset, encoders, report };
}

function summarise(skipped: SkippedRows[]): string {
  if (skipped.length === 0) return "none";
  return skipped
    .map((entry) => `${entry.count} ${entry.reason}, e.g. ${entry.examples[0]?.message}`)
    .join("; ");
}

/** Options of {@link fitEncoders}. */
export interface FitOptions {
  /** Defaults to `"error"`. */
  onInvalidRow?: OnInvalidRow;
}

/**
 * Fits encoders on a (training) source in one streaming pass without keeping its rows: counts per
 * categorical value, running mean and variance, and a 100k-value reservoir sample for quantile
 * boundaries. Use with {@link streamDataset} for data larger than memory.
 *
 * @example const encoders = await fitEncoders({ path: trainShards }, schema);
 */
export async function fitEncoders(
  source: DataSource,
  schema: DataSchema,
  options: FitOptions = {},
): Promise<DatasetEncoders> {
  validateSchema(schema);
  assertKnownKeys("fitEncoders options", options ?? {}, ["onInvalidRow"]);
  const onInvalidRow = options.onInvalidRow ?? "error";
  assertOneOf("onInvalidRow", onInvalidRow, ["error", "skip"]);
  const collector = new InvalidRowCollector(onInvalidRow);
  const builder = newBuilder(schema, "fit-count", await loadJoinTables(schema, collector), collector);
  await fill(builder, source, collector);
  if (builder.numRows === 0)
    throw new DataError(`no valid rows to fit encoders on in ${sourceFiles(source).join(", ")}`);
  return builder.fitEncoders();
}

/** Options of {@link streamDataset}. */
export interface StreamOptions {
  /** Fitted encoders (required: shards must share ids). */
  encoders: DatasetEncoders;
  /** Rows per emitted dataset (the last one may be smaller). Defaults to 65536. */
  chunkRows?: number;
  /** Defaults to `"error"`. */
  onInvalidRow?: OnInvalidRow;
}

/** An async iterable of dataset chunks whose `report` fills in as chunks are read. */
export interface DatasetStream extends AsyncIterable<ColumnarDataset> {
  readonly report: LoadReport;
}

/**
 * Streams a source (e.g. many shards larger than memory) as {@link ColumnarDataset} chunks of
 * `chunkRows` rows encoded with fixed encoders. Memory stays at one chunk plus the reader buffer.
 * `groupIds` stay consistent across chunks.
 *
 * @example
 * const stream = streamDataset({ path: shards }, schema, { encoders, chunkRows: 50_000 });
 * for await (const chunk of stream) for (const batch of iterateBatches(chunk, { batchSize: 512 })) { ... }
 * console.log(stream.report.skipped);
 */
export function streamDataset(source: DataSource, schema: DataSchema, options: StreamOptions): DatasetStream {
  validateSchema(schema);
  if (options == null || typeof options !== "object") {
    throw new ConfigError(
      `streamDataset options must be an object with encoders, received ${formatValue(options)}`,
    );
  }
  assertKnownKeys("streamDataset options", options, ["encoders", "chunkRows", "onInvalidRow"]);
  if (!(options.encoders instanceof DatasetEncoders)) {
    throw new ConfigError(
      `streamDataset needs fitted encoders (fitEncoders or loadDataset), received ${formatValue(options.encoders)}`,
    );
  }
  checkEncodersMatch(schema, options.encoders);
  const chunkRows = options.chunkRows ?? 65_536;
  assertInteger("chunkRows", chunkRows, 1);
  const onInvalidRow = options.onInvalidRow ?? "error";
  assertOneOf("onInvalidRow", onInvalidRow, ["error", "skip"]);
  const report: LoadReport = {
    files: [],
    rowsRead: 0,
    rowsLoaded: 0,
    skipped: [],
    outOfVocabulary: {},
    warnings: [],
    seconds: 0,
  };
  const encoders = options.encoders;
  async function* generate(): AsyncGenerator<ColumnarDataset> {
    const started = performance.now();
    const collector = new InvalidRowCollector(onInvalidRow);
    const builder = newBuilder(
      schema,
      "frozen",
      await loadJoinTables(schema, collector),
      collector,
      encoders,
    );
    const update = () => {
      report.files = [...builder.files];
      report.rowsLoaded = builder.numRows;
      report.rowsRead = builder.numRows + collector.total;
      report.skipped = collector.list();
      report.seconds = (performance.now() - started) / 1000;
    };
    const emit = () => {
      const { dataset, outOfVocabulary } = builder.takeDataset(encoders);
      for (const [field, count] of Object.entries(outOfVocabulary)) {
        report.outOfVocabulary[field] = (report.outOfVocabulary[field] ?? 0) + count;
      }
      update();
      return dataset;
    };
    // Rows left over after cutting full chunks wait here for the next block.
    let carry: ColumnarDataset | undefined;
    function* cut(final: boolean): Generator<ColumnarDataset> {
      let block = emit();
      if (carry) block = concatDatasets([carry, block]);
      carry = undefined;
      let start = 0;
      while (block.numRows - start >= chunkRows || (final && start < block.numRows)) {
        const end = Math.min(start + chunkRows, block.numRows);
        yield start === 0 && end === block.numRows ? block : takeRows(block, range(start, end));
        start = end;
      }
      if (start < block.numRows) carry = takeRows(block, range(start, block.numRows));
    }
    for await (const chunk of readRows(source, {
      columns: builder.mainColumns(),
      numericColumns: builder.numericColumns(),
      onInvalidRow: collector.handle,
      chunkRows: READER_CHUNK_ROWS,
    })) {
      builder.add(chunk);
      if (builder.pendingRows + (carry?.numRows ?? 0) >= chunkRows) yield* cut(false);
    }
    if (builder.pendingRows > 0 || carry) yield* cut(true);
    update();
    if (builder.numRows === 0) throw new DataError(`no valid rows in ${sourceFiles(source).join(", ")}`);
  }
  return { report, [Symbol.asyncIterator]: () => generate() };
}

/** Per-domain figures of {@link inspect}. */
export interface DomainSummary {
  id: number;
  name: string;
  rows: number;
  /** Task name -> share of positive labels. */
  labelRates: Record<string, number>;
}

/** Result of {@link inspect}. */
export interface InspectReport {
  files: string[];
  rows: number;
  skipped: SkippedRows[];
  domains: DomainSummary[];
  labelRates: Record<string, number>;
  /** Field -> distinct raw values (categorical) or min/max/mean/std (numeric). */
  fields: Record<
    string,
    | { kind: "categorical"; column: string; cardinality: number }
    | { kind: "numeric"; column: string; min: number; max: number; mean: number; std: number }
  >;
  /** Distinct users, when the schema has a groupColumn. */
  users?: number;
}

/**
 * Summarises a source in one streaming pass: rows, per-domain rows and label rates, field
 * cardinalities and numeric ranges. Invalid rows are skipped and reported (never fatal), since
 * finding them is the point. Used by `mdrec data inspect`.
 *
 * @example console.table((await inspect("ratings.csv", schema)).domains);
 */
export async function inspect(source: DataSource, schema: DataSchema): Promise<InspectReport> {
  validateSchema(schema);
  const collector = new InvalidRowCollector("skip");
  const builder = newBuilder(schema, "fit-count", await loadJoinTables(schema, collector), collector);
  await fill(builder, source, collector);
  const taskNames = schema.labels.map((label) => label.name);
  const names = domainNamesOf(schema.domain);
  const rate = (positives: number, rows: number) => (rows > 0 ? positives / rows : Number.NaN);
  const domains = builder.domainRows.map((rows, id) => ({
    id,
    name: names[id]!,
    rows,
    labelRates: Object.fromEntries(
      taskNames.map((task, index) => [task, rate(builder.domainPositives[id]![index]!, rows)]),
    ),
  }));
  const labelRates = Object.fromEntries(
    taskNames.map((task, index) => [
      task,
      rate(
        builder.domainPositives.reduce((sum, positives) => sum + positives[index]!, 0),
        builder.numRows,
      ),
    ]),
  );
  const cardinalities = builder.cardinalities();
  const statistics = builder.numericStatistics();
  const fields: InspectReport["fields"] = {};
  for (const field of schema.features) {
    fields[field.name] =
      field.kind === "categorical"
        ? { kind: "categorical", column: columnOf(field), cardinality: cardinalities[field.name]! }
        : { kind: "numeric", column: columnOf(field), ...statistics[field.name]! };
  }
  const report: InspectReport = {
    files: [...builder.files],
    rows: builder.numRows,
    skipped: collector.list(),
    domains,
    labelRates,
    fields,
  };
  if (schema.groupColumn !== undefined) report.users = builder.numGroups;
  return report;
}

function range(start: number, end: number): Int32Array {
  return Int32Array.from({ length: end - start }, (_, index) => start + index);
}
