import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Batch,
  encodeVariables,
  FeatureEmbedding,
  type FeatureSpec,
  gatherRows,
  nextSeed,
  nodeFileSystem,
  SeededRandom,
} from "@mdrec/core";
import type { ColumnarDataset } from "@mdrec/data-loaders";
import type { ModelConfig, ModelOutput, ModelSummary, MultiDomainModel } from "@mdrec/models";
import * as tf from "@tensorflow/tfjs-core";
import { initializers, type LayerVariable, layers } from "@tensorflow/tfjs-layers";

/** Options of {@link TinyModel}. */
export interface TinyModelOptions {
  features: FeatureSpec[];
  numDomains: number;
  numTasks?: number;
  /** Experts of the fake top-1 gate (routing output only). Defaults to 3. */
  numExperts?: number;
  /** Dropout on the embedded input while training, drawn from the global generator. Defaults to 0. */
  dropout?: number;
  /** Weight of the `importance` auxiliary loss. Defaults to 0.01. */
  auxWeight?: number;
  seed?: number;
}

/**
 * Logistic regression on a FeatureEmbedding plus a per-domain bias, with a softmax "gate" whose
 * top-1 choice is reported as routing and whose load balance is an auxiliary loss, dropout seeded
 * by the global generator, and a non-trainable moving mean of the logits: every kind of state the
 * trainer must save and restore, in a model small enough to hand-check.
 */
class TinyHead extends layers.Layer {
  static className = "MdrecTestTinyHead";
  builtInputShape: number[] | null = null;
  kernel!: LayerVariable; // [dIn, T]
  domainBias!: LayerVariable; // [D, T]
  gateKernel!: LayerVariable; // [dIn, N]
  movingMean!: LayerVariable; // [T]

  constructor(
    readonly numDomains: number,
    readonly numTasks: number,
    readonly numExperts: number,
    readonly seed: number,
  ) {
    super({});
  }

  override build(inputShape: number[]): void {
    this.builtInputShape = inputShape;
    const inputDim = inputShape[inputShape.length - 1]!;
    this.kernel = this.addWeight(
      "kernel",
      [inputDim, this.numTasks],
      "float32",
      initializers.glorotUniform({ seed: this.seed }),
    );
    this.domainBias = this.addWeight(
      "domain_bias",
      [this.numDomains, this.numTasks],
      "float32",
      initializers.zeros(),
    );
    this.gateKernel = this.addWeight(
      "gate_kernel",
      [inputDim, this.numExperts],
      "float32",
      initializers.glorotUniform({ seed: this.seed + 1 }),
    );
    this.movingMean = this.addWeight(
      "moving_mean",
      [this.numTasks],
      "float32",
      initializers.zeros(),
      undefined,
      false,
    );
    this.built = true;
  }
}

export class TinyModel implements MultiDomainModel {
  readonly name = "tiny";
  readonly numDomains: number;
  readonly numTasks: number;
  readonly features: FeatureSpec[];
  readonly options: Required<TinyModelOptions>;
  private readonly embedding: FeatureEmbedding;
  private readonly head: TinyHead;

  constructor(options: TinyModelOptions) {
    const seed = options.seed ?? nextSeed();
    this.options = { numTasks: 1, numExperts: 3, dropout: 0, auxWeight: 0.01, ...options, seed };
    this.numDomains = options.numDomains;
    this.numTasks = this.options.numTasks;
    this.features = options.features;
    this.embedding = new FeatureEmbedding({
      features: options.features,
      embeddingDim: 2,
      seed,
      initScale: 0.5,
    });
    this.head = new TinyHead(this.numDomains, this.numTasks, this.options.numExperts, seed + 7);
    this.embedding.build([[1]]);
    this.head.build([1, this.embedding.outputDim]);
  }

  call(batch: Batch, options: { training: boolean }): ModelOutput {
    return tf.tidy(() => {
      let x = this.embedding.embed(batch.features); // [B, dIn]
      if (options.training && this.options.dropout > 0) {
        x = tf.dropout(x, this.options.dropout, undefined, nextSeed()) as tf.Tensor2D;
      }
      const probs = tf.softmax(tf.matMul(x, this.head.gateKernel.read() as tf.Tensor2D)) as tf.Tensor2D; // [B, N]
      const { values, indices } = tf.topk(probs, 1); // [B, 1]
      const bias = gatherRows(this.head.domainBias.read() as tf.Tensor2D, batch.domainIds); // [B, T]
      const logits = tf.add(tf.matMul(x, this.head.kernel.read() as tf.Tensor2D), bias) as tf.Tensor2D; // [B, T]
      if (options.training) {
        const mean = this.head.movingMean;
        mean.write(tf.add(tf.mul(mean.read(), 0.9), tf.mul(tf.mean(logits, 0), 0.1)));
      }
      const load = tf.mean(probs, 0); // [N]
      const importance = tf.mul(
        tf.sum(tf.square(load)),
        this.options.auxWeight * this.options.numExperts,
      ) as tf.Scalar;
      return {
        logits,
        routing: [{ probs, indices: indices as tf.Tensor2D, weights: values as tf.Tensor2D }],
        auxLosses: { importance },
      } as unknown as tf.TensorContainer;
    }) as unknown as ModelOutput;
  }

  predict(batch: Batch): tf.Tensor2D {
    return tf.tidy(() => tf.sigmoid(this.call(batch, { training: false }).logits));
  }

  trainableWeights(): LayerVariable[] {
    return [...this.embedding.trainableWeights, ...this.head.trainableWeights];
  }

  nonTrainableWeights(): LayerVariable[] {
    return [...this.head.nonTrainableWeights];
  }

  getConfig(): ModelConfig {
    return {
      name: this.name,
      options: { ...this.options, features: this.features } as ModelConfig["options"],
      formatVersion: 1,
    };
  }

  summary(): ModelSummary {
    const parameters = this.trainableWeights().reduce(
      (sum, weight) => sum + weight.shape.reduce((a, b) => (a ?? 1) * (b ?? 1), 1)!,
      0,
    );
    return { name: this.name, parameters, expertsPerRow: 1, totalExperts: this.options.numExperts };
  }

  async save(directory: string): Promise<void> {
    const { data, specs } = await encodeVariables([
      ...this.trainableWeights(),
      ...this.nonTrainableWeights(),
    ]);
    await nodeFileSystem(directory).save!({
      modelTopology: this.getConfig() as unknown as object,
      weightSpecs: specs,
      weightData: data,
    });
  }

  dispose(): void {
    // Built without `apply`, so tfjs's Layer.dispose could refuse them; no boundary tensors to free.
    for (const weight of [...this.embedding.weights, ...this.head.weights]) weight.dispose();
  }
}

/** Features of {@link makeDataset}. */
export const TINY_FEATURES: FeatureSpec[] = [
  { kind: "categorical", name: "user", vocabularySize: 6 },
  { kind: "categorical", name: "item", vocabularySize: 5 },
  { kind: "numeric", name: "price" },
];

/**
 * A small learnable dataset: the click logit is a user effect plus an item effect, a price slope
 * and a per-domain offset, so a TinyModel can fit it.
 */
export function makeDataset(
  numRows: number,
  seed: number,
  options: { numDomains?: number; numTasks?: number; groups?: boolean } = {},
): ColumnarDataset {
  const { numDomains = 3, numTasks = 1 } = options;
  const random = new SeededRandom(seed);
  const user = new Int32Array(numRows);
  const item = new Int32Array(numRows);
  const price = new Float32Array(numRows);
  const domainIds = new Int32Array(numRows);
  const labels = new Float32Array(numRows * numTasks);
  const userEffect = [1.5, -1, 0.5, -1.5, 1, 0];
  const itemEffect = [-1, 1, 0.5, -0.5, 0];
  for (let row = 0; row < numRows; row++) {
    user[row] = random.nextInt(6);
    item[row] = random.nextInt(5);
    price[row] = random.next() * 2 - 1;
    domainIds[row] = random.nextInt(numDomains);
    for (let task = 0; task < numTasks; task++) {
      const logit =
        userEffect[user[row]!]! +
        itemEffect[item[row]!]! -
        price[row]! +
        (domainIds[row]! - 1) * 0.8 -
        task * 0.5;
      labels[row * numTasks + task] = random.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
    }
  }
  const dataset: ColumnarDataset = {
    features: TINY_FEATURES.map((spec) => ({ ...spec })),
    columns: { user, item, price },
    domainIds,
    labels,
    numRows,
    numTasks,
    numDomains,
    domainNames: Array.from({ length: numDomains }, (_, domain) => `domain_${domain}`),
    taskNames: Array.from({ length: numTasks }, (_, task) => `task_${task}`),
  };
  if (options.groups) dataset.groupIds = user.slice();
  return dataset;
}

/** A TinyModel for {@link makeDataset} data. */
export function makeModel(options: Partial<TinyModelOptions> = {}): TinyModel {
  return new TinyModel({ features: TINY_FEATURES, numDomains: 3, seed: 11, ...options });
}

/** A fresh temporary directory; remove it with {@link removeDirectory}. */
export function temporaryDirectory(prefix = "mdrec-trainer-"): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function removeDirectory(directory: string): Promise<void> {
  return rm(directory, { recursive: true, force: true });
}

/** The model's weights as plain arrays (for bit-for-bit comparisons). */
export function readWeights(model: MultiDomainModel): number[][] {
  return [...model.trainableWeights(), ...model.nonTrainableWeights()].map((weight) =>
    Array.from(weight.read().dataSync()),
  );
}

/** History without the wall-clock fields, for comparing runs. */
export function stripTimes<
  T extends { seconds: number; examplesPerSecond: number; evaluationSeconds?: number },
>(entries: readonly T[]): Omit<T, "seconds" | "examplesPerSecond" | "evaluationSeconds">[] {
  return entries.map(
    ({ seconds: _seconds, examplesPerSecond: _rate, evaluationSeconds: _evaluation, ...rest }) => rest,
  );
}
