import { assertInteger, ConfigError, type FeatureSpec, formatValue } from "@mdrec/core";
import { type DataSchema, domainNamesOf, numDomainsOf, validateSchema } from "./schema.js";

const utf8 = new TextEncoder();

/**
 * 32-bit FNV-1a hash of the UTF-8 bytes of `text`: stable across runs, platforms and versions.
 * @example fnv1a32("a") // 0xe40c292c
 */
export function fnv1a32(text: string): number {
  let hash = 0x811c9dc5;
  let ascii = true;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code >= 0x80) {
      ascii = false;
      break;
    }
    hash = Math.imul(hash ^ code, 0x01000193);
  }
  if (ascii) return hash >>> 0;
  hash = 0x811c9dc5;
  for (const byte of utf8.encode(text)) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

/** JSON form of a {@link VocabularyEncoder}. */
export interface VocabularyJSON {
  kind: "vocabulary";
  minCount: number;
  maxSize: number | null;
  /** Value of id `i + 1` (id 0 is OOV). */
  values: string[];
}

/**
 * Value -> id by training frequency: the most frequent value gets id 1, ties broken by the value
 * (code-unit order), so the same training data always gives the same ids. Values seen fewer than
 * `minCount` times, beyond `maxSize`, or never seen map to the OOV id 0.
 */
export class VocabularyEncoder {
  readonly kind = "vocabulary";
  private readonly index = new Map<string, number>();

  constructor(
    readonly values: readonly string[],
    readonly minCount = 1,
    readonly maxSize: number | null = null,
  ) {
    values.forEach((value, position) => {
      if (typeof value !== "string")
        throw new ConfigError(
          `vocabulary values[${position}] must be a string, received ${formatValue(value)}`,
        );
      if (this.index.has(value)) throw new ConfigError(`vocabulary lists "${value}" twice`);
      this.index.set(value, position + 1);
    });
  }

  /**
   * Fits on `(value, count)` pairs (counts over training rows).
   * @example VocabularyEncoder.fit([["b", 2], ["a", 2], ["c", 1]], { minCount: 2 }).values // ["a", "b"]
   */
  static fit(
    counts: Iterable<readonly [string, number]>,
    options: { minCount?: number; maxSize?: number } = {},
  ): VocabularyEncoder {
    const minCount = options.minCount ?? 1;
    const kept = [...counts].filter(([, count]) => count >= minCount);
    kept.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const values = kept.slice(0, options.maxSize ?? kept.length).map(([value]) => value);
    return new VocabularyEncoder(values, minCount, options.maxSize ?? null);
  }

  /** Id of `value`, 0 when out of vocabulary. */
  encode(value: string): number {
    return this.index.get(value) ?? 0;
  }

  /** Number of ids, OOV included. */
  get size(): number {
    return this.values.length + 1;
  }

  toJSON(): VocabularyJSON {
    return { kind: "vocabulary", minCount: this.minCount, maxSize: this.maxSize, values: [...this.values] };
  }

  static fromJSON(json: VocabularyJSON): VocabularyEncoder {
    if (json?.kind !== "vocabulary" || !Array.isArray(json.values)) {
      throw new ConfigError(
        `expected a vocabulary encoder { kind: "vocabulary", values }, received ${formatValue(json)}`,
      );
    }
    return new VocabularyEncoder(json.values, json.minCount ?? 1, json.maxSize ?? null);
  }
}

/** JSON form of a {@link HashingEncoder}. */
export interface HashingJSON {
  kind: "hashing";
  numBuckets: number;
}

/** Value -> `fnv1a32(value) % numBuckets`. Needs no fitting; distinct values may share an id. */
export class HashingEncoder {
  readonly kind = "hashing";

  constructor(readonly numBuckets: number) {
    assertInteger("numBuckets", numBuckets, 1, 2 ** 31 - 1);
  }

  encode(value: string): number {
    return fnv1a32(value) % this.numBuckets;
  }

  get size(): number {
    return this.numBuckets;
  }

  toJSON(): HashingJSON {
    return { kind: "hashing", numBuckets: this.numBuckets };
  }

  static fromJSON(json: HashingJSON): HashingEncoder {
    if (json?.kind !== "hashing")
      throw new ConfigError(
        `expected a hashing encoder { kind: "hashing", numBuckets }, received ${formatValue(json)}`,
      );
    return new HashingEncoder(json.numBuckets);
  }
}

/** JSON form of an {@link IdentityEncoder}. */
export interface IdentityJSON {
  kind: "identity";
  vocabularySize: number;
}

/** The value already is an integer id in `[0, vocabularySize)`; anything else is an invalid row. */
export class IdentityEncoder {
  readonly kind = "identity";

  constructor(readonly vocabularySize: number) {
    assertInteger("vocabularySize", vocabularySize, 1, 2 ** 31 - 1);
  }

  /** The id, or a description of why `value` is not a valid id. */
  encode(value: string): number | string {
    if (!/^-?\d+$/.test(value)) return `${JSON.stringify(value)} is not an integer id`;
    const id = Number(value);
    if (id < 0 || id >= this.vocabularySize)
      return `id ${value} is outside [0, vocabularySize=${this.vocabularySize})`;
    return id;
  }

  get size(): number {
    return this.vocabularySize;
  }

  toJSON(): IdentityJSON {
    return { kind: "identity", vocabularySize: this.vocabularySize };
  }

  static fromJSON(json: IdentityJSON): IdentityEncoder {
    if (json?.kind !== "identity")
      throw new ConfigError(
        `expected an identity encoder { kind: "identity", vocabularySize }, received ${formatValue(json)}`,
      );
    return new IdentityEncoder(json.vocabularySize);
  }
}

/** JSON form of a {@link StandardScaler}. */
export interface StandardizeJSON {
  kind: "standardize";
  mean: number;
  std: number;
}

/** `(x - mean) / std` with training statistics (a constant field gets std 1). */
export class StandardScaler {
  readonly kind = "standardize";

  constructor(
    readonly mean: number,
    readonly std: number,
  ) {
    if (!Number.isFinite(mean)) throw new ConfigError(`mean must be finite, received ${formatValue(mean)}`);
    if (!Number.isFinite(std) || std <= 0)
      throw new ConfigError(`std must be finite and > 0, received ${formatValue(std)}`);
  }

  /** Fits mean and (population) standard deviation of `values`. */
  static fit(values: ArrayLike<number>): StandardScaler {
    let sum = 0;
    for (let index = 0; index < values.length; index++) sum += values[index]!;
    const mean = values.length > 0 ? sum / values.length : 0;
    let squares = 0;
    for (let index = 0; index < values.length; index++) squares += (values[index]! - mean) ** 2;
    const std = values.length > 0 ? Math.sqrt(squares / values.length) : 0;
    return new StandardScaler(mean, std > 1e-12 ? std : 1);
  }

  transform(value: number): number {
    return (value - this.mean) / this.std;
  }

  toJSON(): StandardizeJSON {
    return { kind: "standardize", mean: this.mean, std: this.std };
  }

  static fromJSON(json: StandardizeJSON): StandardScaler {
    if (json?.kind !== "standardize")
      throw new ConfigError(`expected { kind: "standardize", mean, std }, received ${formatValue(json)}`);
    return new StandardScaler(json.mean, json.std);
  }
}

/** JSON form of a {@link QuantileBucketizer}. */
export interface QuantileJSON {
  kind: "quantile";
  boundaries: number[];
}

/**
 * Bucket boundaries at training quantiles. Values pass through unchanged; the boundaries go into
 * the numeric feature spec, and the embedding layer embeds bucket `#{boundaries <= x}`.
 */
export class QuantileBucketizer {
  readonly kind = "quantile";

  constructor(readonly boundaries: readonly number[]) {
    const ok = boundaries.every(
      (value, index) => Number.isFinite(value) && (index === 0 || value > boundaries[index - 1]!),
    );
    if (!ok)
      throw new ConfigError(
        `boundaries must be finite and strictly increasing, received ${formatValue(boundaries)}`,
      );
  }

  /**
   * Boundaries at the `i / numBuckets` quantiles of `values` (duplicates merged, so a field with
   * few distinct values gets fewer buckets).
   */
  static fit(values: ArrayLike<number>, numBuckets: number): QuantileBucketizer {
    assertInteger("numBuckets", numBuckets, 2);
    const sorted = Float64Array.from(values).sort();
    const boundaries: number[] = [];
    if (sorted.length > 0) {
      for (let bucket = 1; bucket < numBuckets; bucket++) {
        const value = sorted[Math.min(sorted.length - 1, Math.floor((bucket * sorted.length) / numBuckets))]!;
        if (value > sorted[0]! && (boundaries.length === 0 || value > boundaries.at(-1)!))
          boundaries.push(value);
      }
    }
    return new QuantileBucketizer(boundaries);
  }

  /** Bucket id of `value` (what the embedding layer computes). */
  bucket(value: number): number {
    let count = 0;
    while (count < this.boundaries.length && this.boundaries[count]! <= value) count++;
    return count;
  }

  transform(value: number): number {
    return value;
  }

  toJSON(): QuantileJSON {
    return { kind: "quantile", boundaries: [...this.boundaries] };
  }

  static fromJSON(json: QuantileJSON): QuantileBucketizer {
    if (json?.kind !== "quantile")
      throw new ConfigError(`expected { kind: "quantile", boundaries }, received ${formatValue(json)}`);
    return new QuantileBucketizer(json.boundaries);
  }
}

/** JSON form of a pass-through numeric field. */
export interface PassThroughJSON {
  kind: "none";
}

/** Numeric values used as they are. */
export class PassThrough {
  readonly kind = "none";

  transform(value: number): number {
    return value;
  }

  toJSON(): PassThroughJSON {
    return { kind: "none" };
  }
}

/** An encoder of a categorical field. */
export type CategoricalEncoder = VocabularyEncoder | HashingEncoder | IdentityEncoder;
/** An encoder of a numeric field. */
export type NumericEncoder = StandardScaler | QuantileBucketizer | PassThrough;
/** Any field encoder. */
export type FieldEncoder = CategoricalEncoder | NumericEncoder;
/** JSON form of any field encoder. */
export type FieldEncoderJSON =
  | VocabularyJSON
  | HashingJSON
  | IdentityJSON
  | StandardizeJSON
  | QuantileJSON
  | PassThroughJSON;

/** Decodes a field encoder from its JSON form. */
export function fieldEncoderFromJSON(json: FieldEncoderJSON): FieldEncoder {
  switch (json?.kind) {
    case "vocabulary":
      return VocabularyEncoder.fromJSON(json);
    case "hashing":
      return HashingEncoder.fromJSON(json);
    case "identity":
      return IdentityEncoder.fromJSON(json);
    case "standardize":
      return StandardScaler.fromJSON(json);
    case "quantile":
      return QuantileBucketizer.fromJSON(json);
    case "none":
      return new PassThrough();
    default:
      throw new ConfigError(`unknown encoder kind ${formatValue((json as { kind?: unknown })?.kind)}`);
  }
}

/** JSON form of {@link DatasetEncoders}. */
export interface DatasetEncodersJSON {
  format: "mdrec-encoders";
  version: 1;
  schema: DataSchema;
  fields: Record<string, FieldEncoderJSON>;
}

/**
 * The schema plus the fitted encoder of every field: what turns raw rows into model inputs.
 * Saved with a model (`JSON.stringify(encoders)`) so evaluation on new data uses the training
 * vocabulary; restored with {@link DatasetEncoders.fromJSON}.
 */
export class DatasetEncoders {
  constructor(
    readonly schema: DataSchema,
    readonly fields: Readonly<Record<string, FieldEncoder>>,
  ) {
    validateSchema(schema);
    for (const field of schema.features) {
      const encoder = fields[field.name];
      if (encoder === undefined) throw new ConfigError(`encoders have no encoder for field "${field.name}"`);
      const categorical =
        encoder.kind === "vocabulary" || encoder.kind === "hashing" || encoder.kind === "identity";
      if (categorical !== (field.kind === "categorical")) {
        throw new ConfigError(`encoder "${encoder.kind}" does not fit ${field.kind} field "${field.name}"`);
      }
    }
  }

  /** Feature specs of the encoded dataset (vocabulary sizes, bucket boundaries). */
  featureSpecs(): FeatureSpec[] {
    return this.schema.features.map((field) => {
      const encoder = this.fields[field.name]!;
      const embedding = field.embeddingDim !== undefined ? { embeddingDim: field.embeddingDim } : {};
      if (field.kind === "categorical") {
        return {
          kind: "categorical",
          name: field.name,
          vocabularySize: (encoder as CategoricalEncoder).size,
          ...embedding,
        };
      }
      if (encoder.kind === "quantile") {
        return { kind: "numeric", name: field.name, boundaries: [...encoder.boundaries], ...embedding };
      }
      return { kind: "numeric", name: field.name, ...embedding };
    });
  }

  get numDomains(): number {
    return numDomainsOf(this.schema.domain);
  }

  get domainNames(): string[] {
    return domainNamesOf(this.schema.domain);
  }

  get taskNames(): string[] {
    return this.schema.labels.map((label) => label.name);
  }

  toJSON(): DatasetEncodersJSON {
    const fields: Record<string, FieldEncoderJSON> = {};
    for (const [name, encoder] of Object.entries(this.fields)) fields[name] = encoder.toJSON();
    return { format: "mdrec-encoders", version: 1, schema: structuredClone(this.schema), fields };
  }

  /** Restores encoders from {@link DatasetEncoders.toJSON} output (or its JSON text). */
  static fromJSON(json: DatasetEncodersJSON | string): DatasetEncoders {
    const value = typeof json === "string" ? (JSON.parse(json) as DatasetEncodersJSON) : json;
    if (value?.format !== "mdrec-encoders" || value.version !== 1) {
      throw new ConfigError(
        `expected mdrec encoders JSON { format: "mdrec-encoders", version: 1 }, received format ${formatValue(value?.format)} version ${formatValue(value?.version)}`,
      );
    }
    const fields: Record<string, FieldEncoder> = {};
    for (const [name, encoder] of Object.entries(value.fields ?? {}))
      fields[name] = fieldEncoderFromJSON(encoder);
    return new DatasetEncoders(value.schema, fields);
  }
}
