import { DataError, nearestKey, SeededRandom } from "@mdrec/core";
import type { ColumnarDataset } from "./dataset.js";
import {
  type CategoricalEncoder,
  DatasetEncoders,
  type FieldEncoder,
  HashingEncoder,
  IdentityEncoder,
  type NumericEncoder,
  PassThrough,
  QuantileBucketizer,
  StandardScaler,
  VocabularyEncoder,
} from "./encoders.js";
import { KeyIndex } from "./key-index.js";
import { resolveSource } from "./readers/rows.js";
import type { DataSource, InvalidRowHandler, RowChunk } from "./readers/types.js";
import { columnOf, type DataSchema, domainNamesOf, numDomainsOf, validateSchema } from "./schema.js";

/** Rows dropped under one reason, with a few examples. */
export interface SkippedRows {
  reason: string;
  count: number;
  /** Up to 5 examples. */
  examples: { file: string; line: number; message: string }[];
}

/** What reading a source did. */
export interface LoadReport {
  files: string[];
  /** Data rows seen (loaded + skipped). */
  rowsRead: number;
  rowsLoaded: number;
  /** Every dropped row, counted by reason (`onInvalidRow: "skip"`). Empty under `"error"`. */
  skipped: SkippedRows[];
  /** Rows whose value mapped to the OOV id 0, per vocabulary field. */
  outOfVocabulary: Record<string, number>;
  warnings: string[];
  seconds: number;
}

/** What a row that cannot be read does: abort with `DataError` (default) or be skipped and reported. */
export type OnInvalidRow = "error" | "skip";

// Reasons under which invalid rows are reported.
export const UNPARSABLE_NUMBER = "unparsable number";
export const LABEL_OUTSIDE_RULE = "label outside its rule";
export const UNKNOWN_DOMAIN = "unknown domain value";
export const INVALID_ID = "invalid id";
export const MISSING_VALUE = "missing value";
export const UNKNOWN_JOIN_KEY = "unknown join key";
export const INVALID_TIME = "invalid timestamp";

const MAX_EXAMPLES = 5;
const RESERVOIR_SIZE = 100_000;
const STRICT_NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/;

/** Collects skipped rows by reason, or throws under `"error"`. */
export class InvalidRowCollector {
  readonly skipped = new Map<string, SkippedRows>();
  total = 0;

  constructor(readonly mode: OnInvalidRow) {}

  readonly handle: InvalidRowHandler = ({ reason, file, line, message }) => {
    if (this.mode === "error") throw new DataError(message);
    this.total++;
    let entry = this.skipped.get(reason);
    if (!entry) {
      entry = { reason, count: 0, examples: [] };
      this.skipped.set(reason, entry);
    }
    entry.count++;
    if (entry.examples.length < MAX_EXAMPLES) entry.examples.push({ file, line, message });
  };

  list(): SkippedRows[] {
    return [...this.skipped.values()].map((entry) => ({ ...entry, examples: [...entry.examples] }));
  }
}

class GrowableInt32 {
  data = new Int32Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  take(): Int32Array {
    return this.data.slice(0, this.length);
  }
  reset(): void {
    this.data = new Int32Array(1024);
    this.length = 0;
  }
}

class GrowableFloat64 {
  data = new Float64Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = value;
  }
  take(): Float64Array {
    return this.data.slice(0, this.length);
  }
  reset(): void {
    this.data = new Float64Array(1024);
    this.length = 0;
  }
}

/** Where a value comes from: the row itself (`join = -1`) or a joined table. */
interface ColumnRef {
  join: number;
  index: number;
  column: string;
}

interface CategoricalPlan {
  name: string;
  column: string;
  encoding: "vocabulary" | "hashing" | "identity";
  separator: string | undefined;
  dictionary: KeyIndex<number>;
  keys: string[];
  counts: number[];
  ids: GrowableInt32;
  frozen: CategoricalEncoder | undefined;
  identity: IdentityEncoder | undefined;
  ref: ColumnRef;
  /** Cache slot in the joined row when the value comes from a join, else -1. */
  slot: number;
}

interface NumericPlan {
  name: string;
  column: string;
  fillValue: number | undefined;
  values: GrowableFloat64;
  frozen: NumericEncoder | undefined;
  count: number;
  mean: number;
  squares: number;
  minimum: number;
  maximum: number;
  reservoir: number[];
  ref: ColumnRef;
}

interface LabelPlan {
  name: string;
  column: string;
  test: ((value: number) => boolean) | undefined;
  range: [number, number] | undefined;
  ref: ColumnRef;
}

/** A joined lookup table, read fully into memory. */
export interface JoinTable {
  on: string;
  columns: string[];
  file: string;
  rows: Map<string, unknown[]>;
}

/** A joined row plus the ids computed from it (joined values repeat across many rows). */
interface JoinEntry {
  values: unknown[];
  cache: Int32Array;
}

/** How the builder treats rows: fit (store raw ids), fit without storing, or encode with fixed encoders. */
export type BuilderMode = "fit-store" | "fit-count" | "frozen";

/**
 * Turns row chunks into columns following a schema. In `fit-store` mode categorical values get
 * provisional ids (first-appearance order) that {@link TableBuilder.finish} remaps once the
 * encoders are fitted (on all rows or on training rows only); `fit-count` keeps only counts and
 * running statistics (fitting encoders on data larger than memory); `frozen` encodes with given
 * encoders as rows arrive (streaming shards).
 */
export class TableBuilder {
  readonly numTasks: number;
  readonly numDomains: number;
  numRows = 0;
  readonly files = new Set<string>();
  readonly domainRows: number[];
  readonly domainPositives: number[][];
  private readonly categorical: CategoricalPlan[];
  private readonly numeric: NumericPlan[];
  private readonly labels: LabelPlan[];
  private readonly domainRef: ColumnRef;
  private readonly domainMapping: KeyIndex<number> | undefined;
  private readonly domainValues: string[];
  private readonly groupRef: ColumnRef | undefined;
  private readonly groupDictionary = new KeyIndex<number>();
  private readonly timeRef: ColumnRef | undefined;
  private readonly timeScale: number;
  private readonly domainIds = new GrowableInt32();
  private readonly labelValues = new GrowableFloat64();
  private readonly groupIds = new GrowableInt32();
  private readonly times = new GrowableInt32();
  private readonly joinRefs: ColumnRef[];
  private readonly joinEntries: KeyIndex<JoinEntry>[];
  private readonly domainSlot: number;
  private readonly groupPlan: number;
  private planColumns: string[] | undefined;
  private planFile: string | undefined;
  private readonly random = new SeededRandom(7);
  private readonly store: boolean;

  constructor(
    readonly schema: DataSchema,
    readonly mode: BuilderMode,
    readonly joins: JoinTable[],
    private readonly onInvalidRow: InvalidRowHandler,
    readonly encoders?: DatasetEncoders,
  ) {
    validateSchema(schema);
    if (mode === "frozen" && !encoders) throw new DataError("frozen mode needs fitted encoders");
    this.store = mode !== "fit-count";
    const ref = (column: string): ColumnRef => ({ join: -1, index: -1, column });
    this.categorical = [];
    this.numeric = [];
    for (const field of schema.features) {
      const column = columnOf(field);
      if (field.kind === "categorical") {
        const encoding = field.encoding ?? "vocabulary";
        const frozen = mode === "frozen" ? (encoders!.fields[field.name] as CategoricalEncoder) : undefined;
        this.categorical.push({
          name: field.name,
          column,
          encoding,
          separator: field.valueSeparator,
          dictionary: new KeyIndex<number>(),
          keys: [],
          counts: [],
          ids: new GrowableInt32(),
          frozen,
          identity: encoding === "identity" ? new IdentityEncoder(field.vocabularySize!) : undefined,
          ref: ref(column),
          slot: -1,
        });
      } else {
        this.numeric.push({
          name: field.name,
          column,
          fillValue: field.fillValue,
          values: new GrowableFloat64(),
          frozen: mode === "frozen" ? (encoders!.fields[field.name] as NumericEncoder) : undefined,
          count: 0,
          mean: 0,
          squares: 0,
          minimum: Number.POSITIVE_INFINITY,
          maximum: Number.NEGATIVE_INFINITY,
          reservoir: [],
          ref: ref(column),
        });
      }
    }
    this.labels = schema.labels.map((label) => ({
      name: label.name,
      column: columnOf(label),
      test: label.rule ? ruleTest(label.rule.op, label.rule.value) : undefined,
      range: label.range,
      ref: ref(columnOf(label)),
    }));
    this.numTasks = this.labels.length;
    this.numDomains = numDomainsOf(schema.domain);
    this.domainRef = ref(schema.domain.column);
    this.domainValues = Object.keys(schema.domain.mapping ?? {});
    if (schema.domain.mapping) {
      this.domainMapping = new KeyIndex<number>();
      for (const [value, id] of Object.entries(schema.domain.mapping)) this.domainMapping.set(value, id);
    }
    this.groupRef = schema.groupColumn !== undefined ? ref(schema.groupColumn) : undefined;
    this.timeRef = schema.time ? ref(schema.time.column) : undefined;
    this.timeScale = schema.time?.unit === "ms" ? 1000 : 1;
    this.joinRefs = joins.map((join) => ref(join.on));
    // Values brought by a join are encoded once per joined row and cached in that row.
    const slotCounts = new Array<number>(joins.length).fill(0);
    const joinOf = (column: string) => joins.findIndex((join) => join.columns.includes(column));
    for (const plan of this.categorical) {
      const joinIndex = joinOf(plan.column);
      if (joinIndex >= 0) plan.slot = slotCounts[joinIndex]!++;
    }
    const domainJoin = joinOf(this.domainRef.column);
    this.domainSlot = domainJoin >= 0 ? slotCounts[domainJoin]!++ : -1;
    this.joinEntries = joins.map((join, joinIndex) => {
      const entries = new KeyIndex<JoinEntry>();
      for (const [key, values] of join.rows) {
        entries.set(key, { values, cache: new Int32Array(slotCounts[joinIndex]!).fill(-1) });
      }
      return entries;
    });
    // The user column is usually also the user-id field: reuse its provisional id as the group id.
    this.groupPlan =
      mode === "frozen" || this.groupRef === undefined
        ? -1
        : this.categorical.findIndex(
            (plan) =>
              plan.column === this.groupRef!.column &&
              plan.separator === undefined &&
              !plan.identity &&
              joinOf(plan.column) < 0,
          );
    this.domainRows = new Array(this.numDomains).fill(0);
    this.domainPositives = Array.from({ length: this.numDomains }, () => new Array(this.numTasks).fill(0));
  }

  /** Every column this builder reads from the main rows (join-provided columns excluded). */
  mainColumns(): string[] {
    const joined = new Set(this.joins.flatMap((join) => join.columns));
    const all = [
      ...this.categorical.map((plan) => plan.column),
      ...this.numeric.map((plan) => plan.column),
      ...this.labels.map((plan) => plan.column),
      this.domainRef.column,
      ...(this.groupRef ? [this.groupRef.column] : []),
      ...(this.timeRef ? [this.timeRef.column] : []),
      ...this.joins.map((join) => join.on),
    ];
    return [...new Set(all.filter((column) => !joined.has(column)))];
  }

  /** Main-row columns that must hold numbers (checked up front for Parquet). */
  numericColumns(): string[] {
    const joined = new Set(this.joins.flatMap((join) => join.columns));
    return [
      ...new Set([
        ...this.numeric.map((plan) => plan.column),
        ...(this.timeRef ? [this.timeRef.column] : []),
      ]),
    ].filter((column) => !joined.has(column));
  }

  private bind(chunk: RowChunk): void {
    if (this.planColumns === chunk.columns && this.planFile === chunk.file) return;
    const index = new Map(chunk.columns.map((column, position) => [column, position]));
    const neededBy = new Map<string, string>();
    for (const plan of this.categorical) neededBy.set(plan.column, `field "${plan.name}"`);
    for (const plan of this.numeric) neededBy.set(plan.column, `field "${plan.name}"`);
    for (const plan of this.labels) neededBy.set(plan.column, `label "${plan.name}"`);
    neededBy.set(this.domainRef.column, "the domain");
    if (this.groupRef) neededBy.set(this.groupRef.column, "groupColumn");
    if (this.timeRef) neededBy.set(this.timeRef.column, "time");
    this.joins.forEach((join) => {
      neededBy.set(join.on, `the join with "${join.file}"`);
    });
    const resolve = (ref: ColumnRef) => {
      const joinIndex = this.joins.findIndex((join) => join.columns.includes(ref.column));
      if (joinIndex >= 0) {
        ref.join = joinIndex;
        ref.index = this.joins[joinIndex]!.columns.indexOf(ref.column);
        return;
      }
      const position = index.get(ref.column);
      if (position === undefined) {
        const suggestion = nearestKey(ref.column, chunk.columns);
        const where = chunk.position === "line" ? "header" : "file";
        throw new DataError(
          `file "${chunk.file}": ${where} has no column "${ref.column}" needed by ${neededBy.get(ref.column) ?? "the schema"}${suggestion ? ` (did you mean "${suggestion}"?)` : ""}; columns: ${chunk.columns.join(", ")}`,
        );
      }
      ref.join = -1;
      ref.index = position;
    };
    for (const plan of this.categorical) resolve(plan.ref);
    for (const plan of this.numeric) resolve(plan.ref);
    for (const plan of this.labels) resolve(plan.ref);
    resolve(this.domainRef);
    if (this.groupRef) resolve(this.groupRef);
    if (this.timeRef) resolve(this.timeRef);
    for (const ref of this.joinRefs) resolve(ref);
    this.planColumns = chunk.columns;
    this.planFile = chunk.file;
  }

  /** Reads every row of a chunk; invalid rows go to the handler (which throws or records). */
  add(chunk: RowChunk): void {
    this.bind(chunk);
    this.files.add(chunk.file);
    const { rows, lines, file, position } = chunk;
    const numTasks = this.numTasks;
    const categorical = this.categorical;
    const numeric = this.numeric;
    const labels = this.labels;
    const joins = this.joins;
    const joined: JoinEntry[] = new Array(joins.length);
    const categoricalScratch = new Int32Array(categorical.length);
    const numericScratch = new Float64Array(numeric.length);
    const labelScratch = new Float64Array(numTasks);
    const invalid = (line: number, ref: ColumnRef, role: string, reason: string, detail: string) => {
      this.onInvalidRow({
        reason,
        file,
        line,
        message: `file "${file}", ${position} ${line}, column "${ref.column}" (${role}): ${detail}`,
      });
    };
    const get = (values: unknown[], ref: ColumnRef): unknown =>
      ref.join < 0 ? values[ref.index] : joined[ref.join]!.values[ref.index];
    const domainRef = this.domainRef;
    const domainSlot = this.domainSlot;

    rowLoop: for (let row = 0; row < rows.length; row++) {
      const values = rows[row]!;
      const line = lines[row]!;
      for (let join = 0; join < joins.length; join++) {
        const ref = this.joinRefs[join]!;
        const key = keyOf(values[ref.index]);
        const match = typeof key === "string" ? this.joinEntries[join]!.get(key) : undefined;
        if (match === undefined) {
          invalid(
            line,
            ref,
            "join key",
            UNKNOWN_JOIN_KEY,
            `value ${JSON.stringify(String(values[ref.index]))} has no row in "${joins[join]!.file}"`,
          );
          continue rowLoop;
        }
        joined[join] = match;
      }
      // Domain.
      let domain = domainSlot >= 0 ? joined[domainRef.join]!.cache[domainSlot]! : -1;
      if (domain < 0) {
        const rawDomain = get(values, domainRef);
        if (this.domainMapping) {
          const key = keyOf(rawDomain);
          const mapped = typeof key === "string" ? this.domainMapping.get(key) : undefined;
          if (mapped === undefined) {
            const known = this.domainValues;
            invalid(
              line,
              domainRef,
              "domain",
              UNKNOWN_DOMAIN,
              `value ${JSON.stringify(String(rawDomain))} is not in the domain mapping (known values: ${known.slice(0, 20).join(", ")}${known.length > 20 ? ", ..." : ""})`,
            );
            continue;
          }
          domain = mapped;
        } else {
          const parsed = numberOf(rawDomain);
          if (
            typeof parsed !== "number" ||
            !Number.isInteger(parsed) ||
            parsed < 0 ||
            parsed >= this.numDomains
          ) {
            invalid(
              line,
              domainRef,
              "domain",
              UNKNOWN_DOMAIN,
              `value ${JSON.stringify(String(rawDomain))} is not a domain id in [0, numDomains=${this.numDomains})`,
            );
            continue;
          }
          domain = parsed;
        }
        if (domainSlot >= 0) joined[domainRef.join]!.cache[domainSlot] = domain;
      }
      // Labels.
      for (let task = 0; task < numTasks; task++) {
        const plan = labels[task]!;
        const raw = get(values, plan.ref);
        const parsed =
          typeof raw === "boolean" ? (raw ? 1 : 0) : raw === "true" ? 1 : raw === "false" ? 0 : numberOf(raw);
        if (typeof parsed !== "number") {
          invalid(
            line,
            plan.ref,
            `label "${plan.name}"`,
            parsed === undefined ? MISSING_VALUE : UNPARSABLE_NUMBER,
            parsed ?? "empty value",
          );
          continue rowLoop;
        }
        if (plan.range && (parsed < plan.range[0] || parsed > plan.range[1])) {
          invalid(
            line,
            plan.ref,
            `label "${plan.name}"`,
            LABEL_OUTSIDE_RULE,
            `value ${parsed} is outside the allowed range [${plan.range[0]}, ${plan.range[1]}]`,
          );
          continue rowLoop;
        }
        if (plan.test) {
          labelScratch[task] = plan.test(parsed) ? 1 : 0;
        } else if (parsed === 0 || parsed === 1) {
          labelScratch[task] = parsed;
        } else {
          invalid(
            line,
            plan.ref,
            `label "${plan.name}"`,
            LABEL_OUTSIDE_RULE,
            `value ${parsed} is not a binary label (expected 0 or 1; declare a rule such as { "op": ">=", "value": 1 } to binarise)`,
          );
          continue rowLoop;
        }
      }
      // Numeric fields.
      for (let field = 0; field < numeric.length; field++) {
        const plan = numeric[field]!;
        const raw = get(values, plan.ref);
        let parsed = numberOf(raw);
        if (parsed === undefined && plan.fillValue !== undefined) parsed = plan.fillValue;
        if (typeof parsed !== "number") {
          invalid(
            line,
            plan.ref,
            `field "${plan.name}"`,
            parsed === undefined ? MISSING_VALUE : UNPARSABLE_NUMBER,
            parsed ?? "empty value (declare fillValue to fill missing values)",
          );
          continue rowLoop;
        }
        numericScratch[field] = parsed;
      }
      // Categorical fields.
      for (let field = 0; field < categorical.length; field++) {
        const plan = categorical[field]!;
        if (plan.slot >= 0) {
          const cached = joined[plan.ref.join]!.cache[plan.slot]!;
          if (cached >= 0) {
            categoricalScratch[field] = cached;
            continue;
          }
        }
        const raw = get(values, plan.ref);
        let key = keyOf(raw);
        if (typeof key !== "string") {
          invalid(line, plan.ref, `field "${plan.name}"`, INVALID_ID, key.problem);
          continue rowLoop;
        }
        if (plan.separator !== undefined) {
          const cut = key.indexOf(plan.separator);
          if (cut >= 0) key = key.slice(0, cut);
        }
        let id: number;
        if (plan.identity) {
          const encoded = plan.identity.encode(key.trim());
          if (typeof encoded !== "number") {
            invalid(line, plan.ref, `field "${plan.name}"`, INVALID_ID, encoded);
            continue rowLoop;
          }
          id = encoded;
        } else if (plan.frozen) {
          id = (plan.frozen as VocabularyEncoder | HashingEncoder).encode(key);
        } else {
          const known = plan.dictionary.get(key);
          if (known === undefined) {
            id = plan.keys.length;
            plan.dictionary.set(key, id);
            plan.keys.push(key);
            plan.counts.push(0);
          } else {
            id = known;
          }
        }
        categoricalScratch[field] = id;
        if (plan.slot >= 0) joined[plan.ref.join]!.cache[plan.slot] = id;
      }
      let group = 0;
      if (this.groupPlan >= 0) {
        group = categoricalScratch[this.groupPlan]!;
      } else if (this.groupRef) {
        const key = keyOf(get(values, this.groupRef));
        const text = typeof key === "string" ? key : String(get(values, this.groupRef));
        const known = this.groupDictionary.get(text);
        if (known === undefined) {
          group = this.groupDictionary.size;
          this.groupDictionary.set(text, group);
        } else {
          group = known;
        }
      }
      let time = 0;
      if (this.timeRef) {
        const parsed = numberOf(get(values, this.timeRef));
        const seconds = typeof parsed === "number" ? Math.floor(parsed / this.timeScale) : Number.NaN;
        if (!Number.isInteger(seconds) || seconds < -(2 ** 31) || seconds >= 2 ** 31) {
          invalid(
            line,
            this.timeRef,
            "time",
            INVALID_TIME,
            `value ${JSON.stringify(String(get(values, this.timeRef)))} is not a timestamp in int32 seconds${this.timeScale === 1 ? ' (milliseconds? set time.unit to "ms")' : ""}`,
          );
          continue;
        }
        time = seconds;
      }
      // Commit: the row is valid.
      this.numRows++;
      this.domainRows[domain]!++;
      const positives = this.domainPositives[domain]!;
      for (let task = 0; task < numTasks; task++) positives[task]! += labelScratch[task]!;
      if (this.store) {
        this.domainIds.push(domain);
        for (let task = 0; task < numTasks; task++) this.labelValues.push(labelScratch[task]!);
        for (let field = 0; field < categorical.length; field++)
          categorical[field]!.ids.push(categoricalScratch[field]!);
        for (let field = 0; field < numeric.length; field++) {
          const plan = numeric[field]!;
          const value = numericScratch[field]!;
          plan.values.push(plan.frozen ? plan.frozen.transform(value) : value);
        }
        if (this.groupRef) this.groupIds.push(group);
        if (this.timeRef) this.times.push(time);
      } else {
        for (let field = 0; field < categorical.length; field++) {
          const plan = categorical[field]!;
          if (!plan.identity) plan.counts[categoricalScratch[field]!]!++;
          else {
            const key = String(categoricalScratch[field]);
            if (!plan.dictionary.has(key)) {
              plan.dictionary.set(key, plan.keys.length);
              plan.keys.push(key);
            }
          }
        }
        for (let field = 0; field < numeric.length; field++)
          accumulate(numeric[field]!, numericScratch[field]!, this.random);
      }
    }
  }

  /** Rows of categorical field `name` mapped to the OOV id 0 (frozen vocabularies). */
  private outOfVocabulary(ids: Int32Array, plan: CategoricalPlan): number {
    if (plan.encoding !== "vocabulary") return 0;
    let count = 0;
    for (const id of ids) if (id === 0) count++;
    return count;
  }

  /** Provisional columns for computing a split before fitting (ids are unique per raw value). */
  provisionalColumns(): {
    numRows: number;
    columns: Record<string, Int32Array | Float32Array>;
    groupIds?: Int32Array;
  } {
    const columns: Record<string, Int32Array | Float32Array> = {};
    for (const plan of this.categorical) columns[plan.name] = plan.ids.data.subarray(0, plan.ids.length);
    for (const plan of this.numeric)
      columns[plan.name] = Float32Array.from(plan.values.data.subarray(0, plan.values.length));
    if (this.timeRef)
      columns[this.schema.time!.name ?? "timestamp"] = this.times.data.subarray(0, this.times.length);
    const result: {
      numRows: number;
      columns: Record<string, Int32Array | Float32Array>;
      groupIds?: Int32Array;
    } = {
      numRows: this.numRows,
      columns,
    };
    if (this.groupRef) result.groupIds = this.groupIds.data.subarray(0, this.groupIds.length);
    return result;
  }

  /** Fits encoders: on stored rows (`fitRows`, default all) in `fit-store` mode, on counts in `fit-count` mode. */
  fitEncoders(fitRows?: Int32Array): DatasetEncoders {
    if (this.mode === "frozen") return this.encoders!;
    const fields: Record<string, FieldEncoder> = {};
    const schemaFields = new Map(this.schema.features.map((field) => [field.name, field]));
    for (const plan of this.categorical) {
      const field = schemaFields.get(plan.name)!;
      if (field.kind !== "categorical") continue;
      if (plan.encoding === "identity") {
        fields[plan.name] = plan.identity!;
      } else if (plan.encoding === "hashing") {
        fields[plan.name] = new HashingEncoder(field.numBuckets!);
      } else {
        const counts = this.store ? countIds(plan.ids, plan.keys.length, fitRows) : plan.counts;
        fields[plan.name] = VocabularyEncoder.fit(
          plan.keys.map((key, id) => [key, counts[id]!] as const),
          {
            ...(field.minCount ? { minCount: field.minCount } : {}),
            ...(field.maxSize ? { maxSize: field.maxSize } : {}),
          },
        );
      }
    }
    for (const plan of this.numeric) {
      const field = schemaFields.get(plan.name)!;
      if (field.kind !== "numeric") continue;
      const normalization = field.normalization ?? "standardize";
      if (normalization === "none") {
        fields[plan.name] = new PassThrough();
        continue;
      }
      if (!this.store) {
        fields[plan.name] =
          normalization === "standardize"
            ? new StandardScaler(
                plan.count > 0 ? plan.mean : 0,
                plan.count > 0 && plan.squares > 1e-12 * plan.count
                  ? Math.sqrt(plan.squares / plan.count)
                  : 1,
              )
            : QuantileBucketizer.fit(plan.reservoir, field.numBuckets ?? 10);
        continue;
      }
      const all = plan.values.data.subarray(0, plan.values.length);
      const values = fitRows ? Float64Array.from(fitRows, (row) => all[row]!) : all;
      fields[plan.name] =
        normalization === "standardize"
          ? StandardScaler.fit(values)
          : QuantileBucketizer.fit(values, field.numBuckets ?? 10);
    }
    return new DatasetEncoders(this.schema, fields);
  }

  /**
   * Builds the dataset of the stored rows with `encoders` (remapping provisional ids), then
   * empties the storage (shard streaming keeps going with the same builder).
   */
  takeDataset(encoders: DatasetEncoders): {
    dataset: ColumnarDataset;
    outOfVocabulary: Record<string, number>;
  } {
    const columns: Record<string, Int32Array | Float32Array> = {};
    const outOfVocabulary: Record<string, number> = {};
    for (const plan of this.categorical) {
      const stored = plan.ids.take();
      let ids = stored;
      if (this.mode !== "frozen" && !plan.identity) {
        const encoder = encoders.fields[plan.name] as VocabularyEncoder | HashingEncoder;
        const remap = Int32Array.from(plan.keys, (key) => encoder.encode(key));
        ids = new Int32Array(stored.length);
        for (let row = 0; row < stored.length; row++) ids[row] = remap[stored[row]!]!;
      }
      columns[plan.name] = ids;
      if (plan.encoding === "vocabulary") outOfVocabulary[plan.name] = this.outOfVocabulary(ids, plan);
      plan.ids.reset();
    }
    for (const plan of this.numeric) {
      const stored = plan.values.take();
      const encoder = encoders.fields[plan.name] as NumericEncoder;
      const values = new Float32Array(stored.length);
      for (let row = 0; row < stored.length; row++) {
        values[row] = this.mode === "frozen" ? stored[row]! : encoder.transform(stored[row]!);
      }
      columns[plan.name] = values;
      plan.values.reset();
    }
    if (this.timeRef) {
      columns[this.schema.time!.name ?? "timestamp"] = this.times.take();
      this.times.reset();
    }
    const numRows = this.domainIds.length;
    const dataset: ColumnarDataset = {
      features: encoders.featureSpecs(),
      columns,
      domainIds: this.domainIds.take(),
      labels: Float32Array.from(this.labelValues.take()),
      numRows,
      numTasks: this.numTasks,
      numDomains: this.numDomains,
      domainNames: domainNamesOf(this.schema.domain),
      taskNames: this.labels.map((label) => label.name),
    };
    if (this.groupRef) {
      dataset.groupIds = this.groupIds.take();
      this.groupIds.reset();
    }
    this.domainIds.reset();
    this.labelValues.reset();
    return { dataset, outOfVocabulary };
  }

  /** Stored rows not yet taken. */
  get pendingRows(): number {
    return this.domainIds.length;
  }

  /** Distinct raw values seen per categorical field (counted rows only in fit-count mode). */
  cardinalities(): Record<string, number> {
    const result: Record<string, number> = {};
    for (const plan of this.categorical) {
      result[plan.name] = plan.identity ? plan.keys.length : plan.counts.filter((count) => count > 0).length;
    }
    return result;
  }

  /** Running statistics of numeric fields (fit-count mode). */
  numericStatistics(): Record<string, { min: number; max: number; mean: number; std: number }> {
    const result: Record<string, { min: number; max: number; mean: number; std: number }> = {};
    for (const plan of this.numeric) {
      result[plan.name] = {
        min: plan.minimum,
        max: plan.maximum,
        mean: plan.mean,
        std: plan.count > 0 ? Math.sqrt(plan.squares / plan.count) : 0,
      };
    }
    return result;
  }

  /** Distinct users seen (groupColumn). */
  get numGroups(): number {
    if (this.groupPlan < 0) return this.groupDictionary.size;
    const plan = this.categorical[this.groupPlan]!;
    return this.store ? plan.keys.length : plan.counts.filter((count) => count > 0).length;
  }
}

function accumulate(plan: NumericPlan, value: number, random: SeededRandom): void {
  plan.count++;
  const delta = value - plan.mean;
  plan.mean += delta / plan.count;
  plan.squares += delta * (value - plan.mean);
  if (value < plan.minimum) plan.minimum = value;
  if (value > plan.maximum) plan.maximum = value;
  // Reservoir sample (algorithm R) for quantile boundaries of data larger than memory.
  if (plan.reservoir.length < RESERVOIR_SIZE) plan.reservoir.push(value);
  else {
    const slot = random.nextInt(plan.count);
    if (slot < RESERVOIR_SIZE) plan.reservoir[slot] = value;
  }
}

function countIds(ids: GrowableInt32, numKeys: number, rows: Int32Array | undefined): number[] {
  const counts = new Array<number>(numKeys).fill(0);
  const data = ids.data;
  if (rows) for (const row of rows) counts[data[row]!]!++;
  else for (let row = 0; row < ids.length; row++) counts[data[row]!]!++;
  return counts;
}

function ruleTest(op: string, threshold: number): (value: number) => boolean {
  switch (op) {
    case ">=":
      return (value) => value >= threshold;
    case ">":
      return (value) => value > threshold;
    case "<=":
      return (value) => value <= threshold;
    case "<":
      return (value) => value < threshold;
    case "==":
      return (value) => value === threshold;
    default:
      return (value) => value !== threshold;
  }
}

/**
 * The string key of a categorical value: strings as they are, numbers in decimal, bigints exactly,
 * null/undefined as "" (missing is a value of its own). JSON integers beyond 2^53 have already
 * lost precision, so they are a problem rather than a key.
 */
export function keyOf(value: unknown): string | { problem: string } {
  if (typeof value === "string") return value;
  if (typeof value === "number") {
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      return {
        problem: `integer ${value} is beyond 2^53 and lost precision when parsed as a number; store ids as strings`,
      };
    }
    return String(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "boolean") return value ? "true" : "false";
  if (value == null) return "";
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

/**
 * A finite number from a raw value; undefined when empty; a description when unparsable. Strings
 * must be plain decimal numbers: `"1,5"`, `"abc"`, `"0x10"`, `"NaN"` and `"Infinity"` are rejected.
 */
export function numberOf(value: unknown): number | string | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) ? value : `${value} is not a finite number`;
  }
  if (typeof value === "string") {
    const length = value.length;
    // Fast path: plain non-negative integers (ids, ratings, timestamps), the common case.
    if (length > 0 && length < 16) {
      let result = 0;
      let index = 0;
      for (; index < length; index++) {
        const digit = value.charCodeAt(index) - 48;
        if (digit < 0 || digit > 9) break;
        result = result * 10 + digit;
      }
      if (index === length) return result;
    }
    if (length === 0 || value.trim().length === 0) return undefined;
    if (!STRICT_NUMBER.test(value)) {
      if (/^\s*[+-]?(nan|inf(inity)?)\s*$/i.test(value))
        return `${JSON.stringify(value)} is not a finite number`;
      const comma = /^\s*[+-]?\d+,\d+\s*$/.test(value)
        ? ' (decimal comma? use "." as the decimal separator)'
        : "";
      return `cannot parse ${JSON.stringify(value)} as a number${comma}`;
    }
    const parsed = Number(value);
    return Number.isFinite(parsed) ? parsed : `${JSON.stringify(value)} is not a finite number`;
  }
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value == null) return undefined;
  return `cannot parse ${JSON.stringify(value)} as a number`;
}

/** Source files named in a report. */
export function sourceFiles(source: DataSource): string[] {
  return resolveSource(source).files;
}
