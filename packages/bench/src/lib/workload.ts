import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Batch, createAdamOptimizer, type FeatureSpec, SeededRandom } from "@mdrec/core";
import type { BaseModelOptions, MultiDomainModel } from "@mdrec/models";
import { binaryCrossEntropyWithLogits } from "@mdrec/trainer";
import * as tf from "@tensorflow/tfjs-core";

/**
 * The fixed configuration of issue 7 that every speed figure uses (and the PyTorch reference
 * mirrors): 8 categorical fields of 10k ids embedded in 16 dims (x is [B, 128]), experts
 * 128 -> 256 -> 128, 3 domains, Adam 1e-3, batch 1024 to train and 4096 to infer.
 */
export const WORKLOAD = {
  fields: 8,
  vocabularySize: 10_000,
  embeddingDim: 16,
  numDomains: 3,
  numExperts: 4,
  expertUnits: [256, 128],
  towerUnits: [8],
  trainBatch: 1024,
  inferenceBatch: 4096,
  learningRate: 1e-3,
  cesaa: { numSharedExperts: 2, numSpecificExperts: 16, k: 2 },
} as const;

/** The categorical fields `f0` .. `f7`. */
export function featureSpecs(): FeatureSpec[] {
  return Array.from({ length: WORKLOAD.fields }, (_, index) => ({
    kind: "categorical" as const,
    name: `f${index}`,
    vocabularySize: WORKLOAD.vocabularySize,
  }));
}

/**
 * Options of a registered model at the workload size: MoE models get 4 experts' worth of
 * 128 -> 256 -> 128 MLPs (PLE: 1 shared + 1 per domain), the others the same widths as their
 * main MLP, CESAA its S=2, N=16, k=2. Models registered later run with their defaults.
 */
export function modelOptions(
  name: string,
  seed: number,
  extra: Record<string, unknown> = {},
): BaseModelOptions & Record<string, unknown> {
  const expertUnits = [...WORKLOAD.expertUnits];
  const perModel: Record<string, Record<string, unknown>> = {
    mmoe: { numExperts: WORKLOAD.numExperts, expertUnits, towerUnits: [...WORKLOAD.towerUnits] },
    ple: { numSharedExperts: 1, numSpecificExperts: 1, expertUnits, towerUnits: [...WORKLOAD.towerUnits] },
    "shared-bottom": { bottomUnits: expertUnits, towerUnits: [...WORKLOAD.towerUnits] },
    star: { fcnUnits: expertUnits },
    cesaa: { ...WORKLOAD.cesaa, expertUnits, towerUnits: [...WORKLOAD.towerUnits] },
  };
  return {
    features: featureSpecs(),
    numDomains: WORKLOAD.numDomains,
    embeddingDim: WORKLOAD.embeddingDim,
    seed,
    ...(perModel[name] ?? {}),
    ...extra,
  };
}

/** One batch on the host: ids row-major `[rows, fields]`, domains `[rows]`, labels `[rows]`. */
export interface HostBatch {
  rows: number;
  ids: Int32Array;
  domains: Int32Array;
  labels: Float32Array;
}

/**
 * Seeded synthetic batches with a learnable signal (label ~ Bernoulli(sigmoid(score)), score =
 * a per-field id bit count plus a domain offset), so the loss moves as in real training.
 */
export function makeHostBatches(count: number, rows: number, seed: number): HostBatch[] {
  const random = new SeededRandom(seed);
  const { fields, vocabularySize, numDomains } = WORKLOAD;
  return Array.from({ length: count }, () => {
    const ids = new Int32Array(rows * fields);
    const domains = new Int32Array(rows);
    const labels = new Float32Array(rows);
    for (let row = 0; row < rows; row++) {
      let score = 0;
      for (let field = 0; field < fields; field++) {
        const id = random.nextInt(vocabularySize);
        ids[row * fields + field] = id;
        if (id % 7 < 3) score += 1;
      }
      const domain = random.nextInt(numDomains);
      domains[row] = domain;
      score += -(fields * 3) / 7 + (domain - 1) * 0.5;
      labels[row] = random.next() < 1 / (1 + Math.exp(-score)) ? 1 : 0;
    }
    return { rows, ids, domains, labels };
  });
}

/** The first `rows` rows of `batches`, cycled (the inference batch). */
export function concatRows(batches: readonly HostBatch[], rows: number): HostBatch {
  const { fields } = WORKLOAD;
  const out: HostBatch = {
    rows,
    ids: new Int32Array(rows * fields),
    domains: new Int32Array(rows),
    labels: new Float32Array(rows),
  };
  let row = 0;
  while (row < rows) {
    for (const batch of batches) {
      const take = Math.min(batch.rows, rows - row);
      out.ids.set(batch.ids.subarray(0, take * fields), row * fields);
      out.domains.set(batch.domains.subarray(0, take), row);
      out.labels.set(batch.labels.subarray(0, take), row);
      row += take;
      if (row === rows) break;
    }
  }
  return out;
}

/** Device tensors of a host batch in the mdrec `Batch` layout (the caller disposes them). */
export function toBatch(host: HostBatch): Batch {
  const { fields } = WORKLOAD;
  const features: Record<string, tf.Tensor1D> = {};
  for (let field = 0; field < fields; field++) {
    const column = new Int32Array(host.rows);
    for (let row = 0; row < host.rows; row++) column[row] = host.ids[row * fields + field]!;
    features[`f${field}`] = tf.tensor1d(column, "int32");
  }
  return {
    features,
    domainIds: tf.tensor1d(host.domains, "int32"),
    labels: tf.tensor2d(host.labels, [host.rows, 1]),
  };
}

/**
 * Writes batches for the PyTorch reference (`reference/common.py --data`): `meta.json` and raw
 * little-endian `ids.bin` (int32 [count, rows, fields]), `domains.bin`, `labels.bin`.
 */
export async function writeReferenceData(directory: string, batches: readonly HostBatch[]): Promise<void> {
  await mkdir(directory, { recursive: true });
  const rows = batches[0]!.rows;
  const join32 = <T extends Int32Array | Float32Array>(parts: T[]) =>
    Buffer.concat(parts.map((part) => Buffer.from(part.buffer, part.byteOffset, part.byteLength)));
  await writeFile(join(directory, "ids.bin"), join32(batches.map((batch) => batch.ids)));
  await writeFile(join(directory, "domains.bin"), join32(batches.map((batch) => batch.domains)));
  await writeFile(join(directory, "labels.bin"), join32(batches.map((batch) => batch.labels)));
  const meta = {
    numBatches: batches.length,
    batchSize: rows,
    numFields: WORKLOAD.fields,
    vocabularySize: WORKLOAD.vocabularySize,
    numDomains: WORKLOAD.numDomains,
  };
  await writeFile(join(directory, "meta.json"), JSON.stringify(meta));
}

/**
 * Adam training steps of a model as the trainer runs them (loss = mean BCE with logits + every
 * auxiliary loss, gradients of `trainableWeights()`), with no device read in the step: the
 * loss stays on the device until {@link ModelTrainer.lastLoss} asks for it.
 */
export class ModelTrainer {
  private readonly optimizer: tf.Optimizer;
  private variables: tf.Variable[] | null = null;
  private loss: tf.Scalar | null = null;

  constructor(
    private readonly model: MultiDomainModel,
    learningRate: number = WORKLOAD.learningRate,
  ) {
    this.optimizer = createAdamOptimizer(learningRate);
  }

  /** One optimizer step on `batch`. */
  step(batch: Batch): void {
    if (this.variables === null) {
      // The first call builds the model's layers; only then do its weights exist.
      tf.tidy(() => {
        this.model.call(batch, { training: false });
      });
      this.variables = this.model.trainableWeights().map((weight) => weight.read() as tf.Variable);
    }
    const variables = this.variables;
    const loss = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const output = this.model.call(batch, { training: true });
        let total = binaryCrossEntropyWithLogits(output.logits, batch.labels);
        for (const auxiliary of Object.values(output.auxLosses)) total = tf.add(total, auxiliary);
        return total;
      }, variables);
      this.optimizer.applyGradients(
        variables.map((variable) => ({ name: variable.name, tensor: grads[variable.name] as tf.Tensor })),
      );
      return value;
    });
    this.loss?.dispose();
    this.loss = loss;
  }

  /** The loss of the latest step (one device read). */
  lastLoss(): number {
    return this.loss === null ? Number.NaN : (this.loss.dataSync()[0] as number);
  }

  dispose(): void {
    this.loss?.dispose();
    this.optimizer.dispose();
  }
}
