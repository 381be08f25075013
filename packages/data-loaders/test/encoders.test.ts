import { ConfigError } from "@mdrec/core";
import { describe, expect, it } from "vitest";
import {
  type DataSchema,
  DatasetEncoders,
  fnv1a32,
  HashingEncoder,
  IdentityEncoder,
  PassThrough,
  QuantileBucketizer,
  StandardScaler,
  VocabularyEncoder,
} from "../src/index.js";

describe("fnv1a32", () => {
  it("matches the published FNV-1a test vectors, over UTF-8 bytes", () => {
    expect(fnv1a32("")).toBe(0x811c9dc5);
    expect(fnv1a32("a")).toBe(0xe40c292c);
    expect(fnv1a32("foobar")).toBe(0xbf9cf968);
    // "é" is the two bytes 0xC3 0xA9.
    let expected = 0x811c9dc5;
    for (const byte of [0xc3, 0xa9]) expected = Math.imul(expected ^ byte, 0x01000193) >>> 0;
    expect(fnv1a32("é")).toBe(expected);
  });
});

describe("VocabularyEncoder", () => {
  it("orders by count then value, applies minCount and maxSize, maps unknown values to OOV 0", () => {
    const counts: [string, number][] = [
      ["b", 3],
      ["a", 3],
      ["c", 5],
      ["d", 1],
    ];
    const vocabulary = VocabularyEncoder.fit(counts);
    expect(vocabulary.values).toEqual(["c", "a", "b", "d"]);
    expect(vocabulary.encode("c")).toBe(1);
    expect(vocabulary.encode("b")).toBe(3);
    expect(vocabulary.encode("zzz")).toBe(0);
    expect(vocabulary.size).toBe(5);
    // Input order does not matter.
    expect(VocabularyEncoder.fit([...counts].reverse()).values).toEqual(vocabulary.values);
    expect(VocabularyEncoder.fit(counts, { minCount: 2 }).values).toEqual(["c", "a", "b"]);
    expect(VocabularyEncoder.fit(counts, { maxSize: 2 }).values).toEqual(["c", "a"]);
    expect(VocabularyEncoder.fit(counts, { maxSize: 2 }).encode("b")).toBe(0);
  });

  it("round-trips through JSON and rejects malformed JSON", () => {
    const vocabulary = VocabularyEncoder.fit(
      [
        ["x", 2],
        ["y", 1],
      ],
      { minCount: 1, maxSize: 10 },
    );
    const restored = VocabularyEncoder.fromJSON(JSON.parse(JSON.stringify(vocabulary)));
    expect(restored.values).toEqual(["x", "y"]);
    expect(restored.maxSize).toBe(10);
    expect(() => VocabularyEncoder.fromJSON({ kind: "hashing" } as never)).toThrow(ConfigError);
    expect(() => new VocabularyEncoder(["a", "a"])).toThrow('vocabulary lists "a" twice');
  });
});

describe("other encoders", () => {
  it("hashing maps into [0, numBuckets) stably", () => {
    const hashing = new HashingEncoder(10);
    expect(hashing.encode("a")).toBe(0xe40c292c % 10);
    expect(hashing.size).toBe(10);
    expect(() => new HashingEncoder(0)).toThrow(
      "numBuckets must be an integer in [1, 2147483647], received 0",
    );
  });

  it("identity accepts integer ids in range and describes the others", () => {
    const identity = new IdentityEncoder(100);
    expect(identity.encode("42")).toBe(42);
    expect(identity.encode("-5")).toBe("id -5 is outside [0, vocabularySize=100)");
    expect(identity.encode("3000000000")).toBe("id 3000000000 is outside [0, vocabularySize=100)");
    expect(identity.encode("4.5")).toBe('"4.5" is not an integer id');
  });

  it("standardisation and quantile buckets give hand-computed values", () => {
    const scaler = StandardScaler.fit([1, 2, 3, 4]);
    expect(scaler.mean).toBe(2.5);
    expect(scaler.std).toBeCloseTo(Math.sqrt(1.25), 12);
    expect(scaler.transform(4)).toBeCloseTo(1.5 / Math.sqrt(1.25), 12);
    expect(StandardScaler.fit([7, 7]).std).toBe(1);
    const quantiles = QuantileBucketizer.fit([1, 2, 3, 4, 5, 6, 7, 8], 4);
    expect(quantiles.boundaries).toEqual([3, 5, 7]);
    expect([0, 3, 4.9, 8].map((value) => quantiles.bucket(value))).toEqual([0, 1, 1, 3]);
    // Repeated values merge boundaries instead of producing empty buckets.
    expect(QuantileBucketizer.fit([0, 0, 0, 0, 0, 0, 1, 2], 4).boundaries).toEqual([1]);
    expect(() => new QuantileBucketizer([2, 1])).toThrow(
      "boundaries must be finite and strictly increasing, received [2,1]",
    );
  });
});

describe("DatasetEncoders", () => {
  const schema: DataSchema = {
    features: [
      { kind: "categorical", name: "user" },
      { kind: "categorical", name: "city", encoding: "hashing", numBuckets: 8, embeddingDim: 4 },
      { kind: "numeric", name: "price", normalization: "quantile" },
      { kind: "numeric", name: "age" },
      { kind: "numeric", name: "raw", normalization: "none" },
    ],
    domain: { column: "domain", numDomains: 2 },
    labels: [{ name: "click" }],
  };
  const encoders = new DatasetEncoders(schema, {
    user: VocabularyEncoder.fit([["u1", 2]]),
    city: new HashingEncoder(8),
    price: new QuantileBucketizer([1, 2]),
    age: new StandardScaler(30, 10),
    raw: new PassThrough(),
  });

  it("derives the feature specs", () => {
    expect(encoders.featureSpecs()).toEqual([
      { kind: "categorical", name: "user", vocabularySize: 2 },
      { kind: "categorical", name: "city", vocabularySize: 8, embeddingDim: 4 },
      { kind: "numeric", name: "price", boundaries: [1, 2] },
      { kind: "numeric", name: "age" },
      { kind: "numeric", name: "raw" },
    ]);
    expect(encoders.domainNames).toEqual(["domain_0", "domain_1"]);
    expect(encoders.taskNames).toEqual(["click"]);
  });

  it("round-trips through JSON text", () => {
    const restored = DatasetEncoders.fromJSON(JSON.stringify(encoders));
    expect(restored.toJSON()).toEqual(encoders.toJSON());
    expect(restored.featureSpecs()).toEqual(encoders.featureSpecs());
    expect((restored.fields.user as VocabularyEncoder).encode("u1")).toBe(1);
  });

  it("rejects a wrong format, a missing encoder and an encoder of the wrong kind", () => {
    expect(() => DatasetEncoders.fromJSON({ format: "other", version: 1 } as never)).toThrow(
      'expected mdrec encoders JSON { format: "mdrec-encoders", version: 1 }, received format "other" version 1',
    );
    expect(() => new DatasetEncoders(schema, { user: new HashingEncoder(2) })).toThrow(
      'encoders have no encoder for field "city"',
    );
    expect(
      () =>
        new DatasetEncoders(schema, {
          user: new StandardScaler(0, 1),
          city: new HashingEncoder(8),
          price: new PassThrough(),
          age: new PassThrough(),
          raw: new PassThrough(),
        }),
    ).toThrow('encoder "standardize" does not fit categorical field "user"');
  });
});
