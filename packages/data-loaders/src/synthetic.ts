import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  ConfigError,
  type FeatureSpec,
  formatValue,
  SeededRandom,
} from "@mdrec/core";
import type { ColumnarDataset } from "./dataset.js";
import { mixSeed, randomPermutation } from "./permutation.js";

/**
 * Options of {@link generateSyntheticDataset}. Every option has a default; see the package README
 * for the generative process these numbers drive.
 */
export interface SyntheticOptions {
  /** Seed; equal seeds give identical data. Defaults to 42. */
  seed?: number;
  /** Total rows over all domains. Defaults to 60_000 (48k train rows in an 80/10/10 split). */
  numRows?: number;
  /** Domains. Defaults to 8. */
  numDomains?: number;
  /** Latent interaction patterns. Defaults to 4. */
  numPatterns?: number;
  /** Share of rows per domain (normalised). Defaults to `0.75^d` for domain d (unequal sizes). */
  domainShares?: number[];
  /** Target click rate per domain in (0, 1). Defaults to a fixed unequal list between 0.12 and 0.40. */
  domainCtr?: number[];
  /** Distinct users. Defaults to 4000. */
  numUsers?: number;
  /** Distinct items. Defaults to 2000. */
  numItems?: number;
  /** Categorical fields of pure noise (`extra_0`, ...). Defaults to 2. */
  numExtraFields?: number;
  /** Vocabulary size of each noise field (id 0 unused, as the OOV id). Defaults to 100. */
  vocabularySize?: number;
  /** Numeric fields: `numeric_0` carries a small shared effect, the others are noise. Defaults to 2. */
  numericFields?: number;
  /** Scale of every planted effect (shared part and patterns). Defaults to 1. */
  signalStrength?: number;
  /** Standard deviation of the logit noise. Defaults to 0.3. */
  noise?: number;
  /** Attribute fields per user and per item (`user_attr_j`, `item_attr_j`). Defaults to 3, at least enough for numPatterns + 1 distinct pairs. */
  numAttributes?: number;
  /** Distinct values of each attribute field. Defaults to 8. */
  attributeCardinality?: number;
  /** Also return the true logits and click probabilities in `truth` (for Bayes-optimal AUC). Defaults to false. */
  includeLogits?: boolean;
}

/** What the generator planted, so a model's routing can be scored against it. */
export interface SyntheticTruth {
  /** Domain -> the latent patterns that drive its labels. */
  domainPatterns: number[][];
  /** Domain -> planted group id (domains of a group share their patterns). */
  domainGroup: number[];
  numPatterns: number;
  /** Pattern -> the user and item attribute fields whose interaction it is. */
  patternFields: { userField: string; itemField: string }[];
  /** The attribute pair of the shared (pattern-independent) effect. */
  sharedFields: { userField: string; itemField: string };
  /** Domain -> intercept solved so the domain's mean click probability matches its target CTR. */
  domainBias: number[];
  /** `[numRows]` true logits, when `includeLogits`. */
  logits?: Float32Array;
  /** `[numRows]` true click probabilities sigmoid(logit), when `includeLogits`. */
  probabilities?: Float32Array;
}

/** A synthetic dataset plus the structure planted in it. */
export interface SyntheticDataset extends ColumnarDataset {
  truth: SyntheticTruth;
}

const SYNTHETIC_KEYS = [
  "seed",
  "numRows",
  "numDomains",
  "numPatterns",
  "domainShares",
  "domainCtr",
  "numUsers",
  "numItems",
  "numExtraFields",
  "vocabularySize",
  "numericFields",
  "signalStrength",
  "noise",
  "numAttributes",
  "attributeCardinality",
  "includeLogits",
];

const DEFAULT_CTR = [0.3, 0.15, 0.4, 0.2, 0.12, 0.35, 0.25, 0.18];

/**
 * Size presets: `tiny` for unit tests (2k rows), `small` for quick examples (20k rows), `default`
 * the embedded default data set (60k rows, what `generateSyntheticDataset()` produces).
 */
export const syntheticPresets: Readonly<Record<"tiny" | "small" | "default", Readonly<SyntheticOptions>>> = {
  tiny: { numRows: 2000, numDomains: 4, numPatterns: 2, numUsers: 300, numItems: 200 },
  small: { numRows: 20_000, numUsers: 2000, numItems: 1000 },
  default: {},
};

// Relative weights of the planted terms (times signalStrength). The patterns dominate so that
// knowing a row's domain -> pattern assignment matters; the shared part is what every domain has.
const SHARED_WEIGHT = 0.6;
const USER_BIAS_STD = 0.3;
const ITEM_BIAS_STD = 0.3;
const NUMERIC_WEIGHT = 0.3;
const SECOND_PATTERN_WEIGHT = 0.7;
const PATTERN_WEIGHT = 1.2;

/**
 * The seeded synthetic multi-domain click data set: D domains of unequal size and CTR, users and
 * items with latent attributes carried by categorical fields, G latent patterns (each a lookup
 * table over a different user-attribute x item-attribute pair), domains organised in groups that
 * share one or two patterns. `truth` returns the planted structure. 100k rows take well under a
 * second; equal options give identical arrays.
 *
 * @example
 * const data = generateSyntheticDataset({ seed: 7, numRows: 20_000 });
 * data.truth.domainGroup; // e.g. [0, 1, 2, 3, 0, 1, 2, 3]
 */
export function generateSyntheticDataset(options: SyntheticOptions = {}): SyntheticDataset {
  if (options == null || typeof options !== "object") {
    throw new ConfigError(
      `generateSyntheticDataset options must be an object, received ${formatValue(options)}`,
    );
  }
  assertKnownKeys("generateSyntheticDataset options", options, SYNTHETIC_KEYS);
  const {
    seed = 42,
    numRows = 60_000,
    numDomains = 8,
    numPatterns = 4,
    numUsers = 4000,
    numItems = 2000,
    numExtraFields = 2,
    vocabularySize = 100,
    numericFields = 2,
    signalStrength = 1,
    noise = 0.3,
    attributeCardinality = 8,
    includeLogits = false,
  } = options;
  assertInteger("seed", seed, Number.MIN_SAFE_INTEGER);
  assertInteger("numRows", numRows, 1);
  assertInteger("numDomains", numDomains, 1, 1000);
  assertInteger("numPatterns", numPatterns, 1, 64);
  assertInteger("numUsers", numUsers, 1);
  assertInteger("numItems", numItems, 1);
  assertInteger("numExtraFields", numExtraFields, 0, 100);
  assertInteger("vocabularySize", vocabularySize, 2);
  assertInteger("numericFields", numericFields, 0, 100);
  assertNumber("signalStrength", signalStrength, { min: 0 });
  assertNumber("noise", noise, { min: 0 });
  assertInteger("attributeCardinality", attributeCardinality, 2, 10_000);
  const minimumAttributes = Math.max(1, Math.ceil(Math.sqrt(numPatterns + 1)));
  const numAttributes = options.numAttributes ?? Math.max(3, minimumAttributes);
  assertInteger("numAttributes", numAttributes, minimumAttributes, 100);
  if (typeof includeLogits !== "boolean") {
    throw new ConfigError(`includeLogits must be a boolean, received ${formatValue(includeLogits)}`);
  }
  const shares = options.domainShares ?? Array.from({ length: numDomains }, (_, domain) => 0.75 ** domain);
  checkPerDomain("domainShares", shares, numDomains, (value) => value > 0, "> 0");
  const ctr =
    options.domainCtr ??
    Array.from({ length: numDomains }, (_, domain) => DEFAULT_CTR[domain % DEFAULT_CTR.length]!);
  checkPerDomain("domainCtr", ctr, numDomains, (value) => value > 0 && value < 1, "in (0, 1)");

  // Independent streams keep e.g. the user table unchanged when numRows changes.
  const structureRandom = new SeededRandom(mixSeed(seed, 1));
  const rowRandom = new SeededRandom(mixSeed(seed, 2));
  const noiseRandom = new SeededRandom(mixSeed(seed, 3));
  const cardinality = attributeCardinality;

  // Latent user and item attributes (values 0..C-1; the fields carry value + 1, 0 is OOV).
  const userAttributes = new Int32Array(numUsers * numAttributes);
  for (let index = 0; index < userAttributes.length; index++)
    userAttributes[index] = structureRandom.nextInt(cardinality);
  const itemAttributes = new Int32Array(numItems * numAttributes);
  for (let index = 0; index < itemAttributes.length; index++)
    itemAttributes[index] = structureRandom.nextInt(cardinality);
  const userBias = new Float64Array(numUsers);
  for (let user = 0; user < numUsers; user++) userBias[user] = USER_BIAS_STD * structureRandom.nextNormal();
  const itemBias = new Float64Array(numItems);
  for (let item = 0; item < numItems; item++) itemBias[item] = ITEM_BIAS_STD * structureRandom.nextNormal();
  // Popularity: rank r is drawn with density ~ 1/sqrt(r); the permutation hides rank from the id.
  const userByRank = randomPermutation(numUsers, structureRandom);
  const itemByRank = randomPermutation(numItems, structureRandom);

  // Attribute pairs in a seeded order: pair 0 is the shared effect, pair g + 1 is pattern g.
  const pairs: [number, number][] = [];
  for (let userField = 0; userField < numAttributes; userField++) {
    for (let itemField = 0; itemField < numAttributes; itemField++) pairs.push([userField, itemField]);
  }
  const pairOrder = randomPermutation(pairs.length, structureRandom);
  const pairOf = (index: number) => pairs[pairOrder[index]!]!;
  const newTable = () => {
    const table = new Float64Array(cardinality * cardinality);
    for (let cell = 0; cell < table.length; cell++) table[cell] = structureRandom.nextNormal();
    return table;
  };
  const sharedTable = newTable();
  const patternTables = Array.from({ length: numPatterns }, newTable);

  // Groups: domain d belongs to group d mod K; group k uses pattern k, odd groups also pattern k + 1.
  const numGroups = Math.min(numDomains, numPatterns);
  const groupPatterns = Array.from({ length: numGroups }, (_, group) =>
    group % 2 === 1 && numPatterns > 1 ? [group, (group + 1) % numPatterns] : [group],
  );
  const domainGroup = Array.from({ length: numDomains }, (_, domain) => domain % numGroups);
  const domainPatterns = domainGroup.map((group) => [...groupPatterns[group]!]);

  // Rows: domain by share, then user, item, noise fields and numeric fields.
  const shareTotal = shares.reduce((sum, share) => sum + share, 0);
  const cumulative = new Float64Array(numDomains);
  let running = 0;
  shares.forEach((share, domain) => {
    running += share / shareTotal;
    cumulative[domain] = running;
  });
  cumulative[numDomains - 1] = 1;
  const domainIds = new Int32Array(numRows);
  const users = new Int32Array(numRows);
  const items = new Int32Array(numRows);
  for (let row = 0; row < numRows; row++) {
    const draw = rowRandom.next();
    let domain = 0;
    while (cumulative[domain]! <= draw && domain < numDomains - 1) domain++;
    domainIds[row] = domain;
    const userDraw = rowRandom.next();
    users[row] = userByRank[Math.floor(numUsers * userDraw * userDraw)]!;
    const itemDraw = rowRandom.next();
    items[row] = itemByRank[Math.floor(numItems * itemDraw * itemDraw)]!;
  }
  const extraColumns = Array.from({ length: numExtraFields }, () => {
    const column = new Int32Array(numRows);
    for (let row = 0; row < numRows; row++) column[row] = 1 + rowRandom.nextInt(vocabularySize - 1);
    return column;
  });
  const numericColumns = Array.from({ length: numericFields }, () => {
    const column = new Float32Array(numRows);
    for (let row = 0; row < numRows; row++) column[row] = rowRandom.nextNormal();
    return column;
  });

  // Logit without the domain intercept. Per-domain term lists are flattened up front because this
  // loop runs once per row.
  const strength = signalStrength;
  const [sharedUserField, sharedItemField] = pairOf(0);
  const domainTerms = domainPatterns.map((patterns) =>
    patterns.map((pattern, position) => {
      const [userField, itemField] = pairOf(pattern + 1);
      return {
        userField,
        itemField,
        weight: position === 0 ? PATTERN_WEIGHT : SECOND_PATTERN_WEIGHT,
        table: patternTables[pattern]!,
      };
    }),
  );
  const numeric = numericFields > 0 ? numericColumns[0]! : undefined;
  const body = new Float64Array(numRows);
  for (let row = 0; row < numRows; row++) {
    const user = users[row]!;
    const item = items[row]!;
    const userBase = user * numAttributes;
    const itemBase = item * numAttributes;
    let value =
      SHARED_WEIGHT *
        sharedTable[
          userAttributes[userBase + sharedUserField]! * cardinality +
            itemAttributes[itemBase + sharedItemField]!
        ]! +
      userBias[user]! +
      itemBias[item]!;
    if (numeric) value += NUMERIC_WEIGHT * numeric[row]!;
    const terms = domainTerms[domainIds[row]!]!;
    for (let position = 0; position < terms.length; position++) {
      const term = terms[position]!;
      const cell =
        userAttributes[userBase + term.userField]! * cardinality + itemAttributes[itemBase + term.itemField]!;
      value += term.weight * term.table[cell]!;
    }
    body[row] = strength * value + noise * noiseRandom.nextNormal();
  }

  // Intercept per domain: bisection so the mean click probability of the domain's rows is its CTR.
  const domainBias = solveDomainBias(body, domainIds, numDomains, ctr);
  const labelRandom = new SeededRandom(mixSeed(seed, 4));
  const labels = new Float32Array(numRows);
  const logits = includeLogits ? new Float32Array(numRows) : undefined;
  const probabilities = includeLogits ? new Float32Array(numRows) : undefined;
  for (let row = 0; row < numRows; row++) {
    const logit = body[row]! + domainBias[domainIds[row]!]!;
    const probability = 1 / (1 + Math.exp(-logit));
    labels[row] = labelRandom.next() < probability ? 1 : 0;
    if (logits && probabilities) {
      logits[row] = logit;
      probabilities[row] = probability;
    }
  }

  const features: FeatureSpec[] = [];
  const columns: Record<string, Int32Array | Float32Array> = {};
  const addCategorical = (name: string, vocabularySizeOfField: number, values: Int32Array) => {
    features.push({ kind: "categorical", name, vocabularySize: vocabularySizeOfField });
    columns[name] = values;
  };
  addCategorical(
    "user_id",
    numUsers + 1,
    users.map((user) => user + 1),
  );
  addCategorical(
    "item_id",
    numItems + 1,
    items.map((item) => item + 1),
  );
  for (let field = 0; field < numAttributes; field++) {
    addCategorical(
      `user_attr_${field}`,
      cardinality + 1,
      users.map((user) => userAttributes[user * numAttributes + field]! + 1),
    );
  }
  for (let field = 0; field < numAttributes; field++) {
    addCategorical(
      `item_attr_${field}`,
      cardinality + 1,
      items.map((item) => itemAttributes[item * numAttributes + field]! + 1),
    );
  }
  extraColumns.forEach((column, field) => {
    addCategorical(`extra_${field}`, vocabularySize, column);
  });
  numericColumns.forEach((column, field) => {
    features.push({ kind: "numeric", name: `numeric_${field}` });
    columns[`numeric_${field}`] = column;
  });

  const fieldsOf = ([userField, itemField]: [number, number]) => ({
    userField: `user_attr_${userField}`,
    itemField: `item_attr_${itemField}`,
  });
  const truth: SyntheticTruth = {
    domainPatterns,
    domainGroup,
    numPatterns,
    patternFields: Array.from({ length: numPatterns }, (_, pattern) => fieldsOf(pairOf(pattern + 1))),
    sharedFields: fieldsOf(pairOf(0)),
    domainBias,
  };
  if (logits && probabilities) {
    truth.logits = logits;
    truth.probabilities = probabilities;
  }
  return {
    features,
    columns,
    domainIds,
    labels,
    numRows,
    numTasks: 1,
    numDomains,
    domainNames: Array.from({ length: numDomains }, (_, domain) => `domain_${domain}`),
    taskNames: ["click"],
    groupIds: users.map((user) => user + 1),
    truth,
  };
}

function checkPerDomain(
  name: string,
  values: unknown,
  numDomains: number,
  ok: (value: number) => boolean,
  rule: string,
): asserts values is number[] {
  if (!Array.isArray(values) || values.length !== numDomains) {
    throw new ConfigError(
      `${name} must have numDomains=${numDomains} entries, received ${formatValue(values)}`,
    );
  }
  values.forEach((value, domain) => {
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value)) {
      throw new ConfigError(`${name}[${domain}] must be a number ${rule}, received ${formatValue(value)}`);
    }
  });
}

function solveDomainBias(
  body: Float64Array,
  domainIds: Int32Array,
  numDomains: number,
  ctr: number[],
): number[] {
  // A subsample per domain bounds the cost (40 bisection steps x at most 4000 rows per domain).
  const maximumRows = 4000;
  const rowsByDomain: number[][] = Array.from({ length: numDomains }, () => []);
  for (let row = 0; row < body.length; row++) {
    const rows = rowsByDomain[domainIds[row]!]!;
    if (rows.length < maximumRows) rows.push(row);
  }
  return rowsByDomain.map((rows, domain) => {
    const target = ctr[domain]!;
    if (rows.length === 0) return Math.log(target / (1 - target));
    let low = -20;
    let high = 20;
    for (let step = 0; step < 40; step++) {
      const middle = (low + high) / 2;
      let mean = 0;
      for (const row of rows) mean += 1 / (1 + Math.exp(-(body[row]! + middle)));
      mean /= rows.length;
      if (mean < target) low = middle;
      else high = middle;
    }
    return (low + high) / 2;
  });
}
