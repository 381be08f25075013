// Your own TensorFlow.js model, with three mdrec blocks picked from npm: a noisy top-k gate,
// a pool of experts with sparse dispatch, and the domain-expert mutual-information loss.
// Everything else (data, embeddings, head, training loop) is plain tfjs; @mdrec/metrics scores it.
import "@tensorflow/tfjs-backend-cpu";
import "@tensorflow/tfjs-backend-wasm";
import { setGlobalSeed } from "@mdrec/core";
import { ExpertPool, type Routing } from "@mdrec/experts"; // importing mdrec also registers tfjs's gradients
import { TopKGate } from "@mdrec/gating";
import {
  evaluateByDomain,
  expertUsageCounts,
  expertUtilization,
  routingMutualInformation,
} from "@mdrec/metrics";
import { MutualInformationLoss } from "@mdrec/mi-loss";
import * as tf from "@tensorflow/tfjs-core";

const NUM_DOMAINS = 4;
const NUM_SEGMENTS = 12; // user segments
const NUM_CATEGORIES = 8; // item categories
const NUM_EXPERTS = 4;

/** Options of {@link pickAndMix}; the defaults are what `pnpm start` runs. */
export interface PickAndMixOptions {
  /** Rows of click data to generate (80% train, 20% test). Defaults to 20_000. */
  numRows?: number;
  /** Defaults to 4. */
  epochs?: number;
  /** Defaults to 256. */
  batchSize?: number;
  /** Weight of the AEA term -I(D;E) in the loss; 0 turns it off. Defaults to 1. */
  miWeight?: number;
  /** A tfjs backend name. Defaults to `"wasm"`. */
  backend?: "wasm" | "cpu";
  /** Seed of the data, the weights and the batch order. Defaults to 7. */
  seed?: number;
  /** Receives each output line. Defaults to `console.log`. */
  log?: (line: string) => void;
}

/** What the example measured on its test rows. */
export interface PickAndMixResult {
  auc: number;
  perDomainAuc: number[];
  /** `[domain][expert]` share of each domain's routing weight (rows sum to 1). */
  utilization: number[][];
  /** I(D;E) in nats between a row's domain and the experts the gate chose (weighted by the mixing weights). */
  mutualInformation: number;
}

/** The user's data: columns of a click log from four app surfaces (the domains). */
interface ClickLog {
  segment: Int32Array;
  category: Int32Array;
  price: Float32Array;
  domain: Int32Array;
  click: Float32Array;
  numRows: number;
}

/** A small seeded generator (mulberry32), so the data is the same on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = Math.imul(state ^ (state >>> 15), 1 | state);
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Surfaces 0 and 1 click by one segment x category taste table, surfaces 2 and 3 by another, and
 * everyone dislikes high prices: a gate that sends each pair of surfaces to its own experts wins.
 */
function generateClicks(numRows: number, seed: number): ClickLog {
  const next = random(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  const tastes = [0, 1].map(() =>
    Array.from({ length: NUM_SEGMENTS }, () => Array.from({ length: NUM_CATEGORIES }, normal)),
  );
  const log: ClickLog = {
    segment: new Int32Array(numRows),
    category: new Int32Array(numRows),
    price: new Float32Array(numRows),
    domain: new Int32Array(numRows),
    click: new Float32Array(numRows),
    numRows,
  };
  for (let row = 0; row < numRows; row++) {
    const domain = Math.floor(next() * NUM_DOMAINS);
    const segment = Math.floor(next() * NUM_SEGMENTS);
    const category = Math.floor(next() * NUM_CATEGORIES);
    const price = normal();
    const logit = -1 + 1.5 * tastes[domain < 2 ? 0 : 1]![segment]![category]! - 0.5 * price;
    log.segment[row] = segment;
    log.category[row] = category;
    log.price[row] = price;
    log.domain[row] = domain;
    log.click[row] = next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
  }
  return log;
}

/** The tensors of a set of rows. */
interface BatchTensors {
  segment: tf.Tensor1D;
  category: tf.Tensor1D;
  price: tf.Tensor2D;
  domain: tf.Tensor1D;
  click: tf.Tensor2D;
}

function batchOf(log: ClickLog, rows: Int32Array): BatchTensors {
  const ints = (column: Int32Array) =>
    tf.tensor1d(
      Int32Array.from(rows, (row) => column[row]!),
      "int32",
    );
  const floats = (column: Float32Array) =>
    tf.tensor2d(
      Float32Array.from(rows, (row) => column[row]!),
      [rows.length, 1],
    );
  return {
    segment: ints(log.segment),
    category: ints(log.category),
    price: floats(log.price),
    domain: ints(log.domain),
    click: floats(log.click),
  };
}

/** The user's own model: embeddings and a head in plain tfjs around mdrec's gate and experts. */
class ClickModel {
  private readonly segmentTable: tf.Variable; // [NUM_SEGMENTS, 8]
  private readonly categoryTable: tf.Variable; // [NUM_CATEGORIES, 8]
  private readonly headKernel: tf.Variable; // [16, 1]
  private readonly headBias: tf.Variable; // [1]
  readonly gate: TopKGate;
  readonly experts: ExpertPool;
  readonly aea: MutualInformationLoss;

  constructor(seed: number, miWeight: number) {
    // tf.tidy frees the initial values; variables survive it.
    [this.segmentTable, this.categoryTable, this.headKernel, this.headBias] = tf.tidy(() => [
      tf.variable(tf.randomNormal([NUM_SEGMENTS, 8], 0, 0.1, "float32", seed)),
      tf.variable(tf.randomNormal([NUM_CATEGORIES, 8], 0, 0.1, "float32", seed + 1)),
      tf.variable(tf.randomNormal([16, 1], 0, 0.1, "float32", seed + 2)),
      tf.variable(tf.zeros([1])),
    ]);
    // Each row keeps 2 of 4 experts; the gate sees the row's surface through a learned embedding.
    this.gate = new TopKGate({ numExperts: NUM_EXPERTS, k: 2, numDomains: NUM_DOMAINS, seed: seed + 3 });
    this.experts = new ExpertPool({ numExperts: NUM_EXPERTS, units: [32, 16], seed: seed + 4 });
    // P(e|d) is smoothed across batches (small domains are noisy per batch); the gradient flows
    // through the (1 - 0.9) batch share, which the weight in the loss makes up for.
    this.aea = new MutualInformationLoss({
      numDomains: NUM_DOMAINS,
      numExperts: NUM_EXPERTS,
      weight: miWeight,
      movingAverage: 0.9,
    });
  }

  /** Logits `[B, 1]` and the gate's routing. Call inside `tf.tidy` (or dispose the result). */
  forward(batch: BatchTensors, training: boolean): { logits: tf.Tensor2D; routing: Routing } {
    // A one-hot matmul instead of tf.gather: its gradient is fast on cpu and exists on wasm.
    const embed = (ids: tf.Tensor1D, table: tf.Variable) =>
      tf.matMul(tf.cast(tf.oneHot(ids, table.shape[0]!), "float32"), table as tf.Tensor2D);
    const x = tf.concat(
      [embed(batch.segment, this.segmentTable), embed(batch.category, this.categoryTable), batch.price],
      1,
    ) as tf.Tensor2D; // [B, 17]
    const routing = this.gate.route(x, batch.domain, training); // indices, weights [B, 2]; probs [B, 4]
    const mixed = this.experts.sparse(x, routing, training); // [B, 16], only the 2 chosen experts run per row
    const logits = tf.add(tf.matMul(mixed, this.headKernel as tf.Tensor2D), this.headBias) as tf.Tensor2D; // [B, 1]
    return { logits, routing };
  }

  /** Every trainable variable; the mdrec layers create theirs on their first call. */
  variables(): tf.Variable[] {
    const layerVariables = [...this.gate.trainableWeights, ...this.experts.trainableWeights].map(
      (weight) => weight.read() as tf.Variable,
    );
    return [this.segmentTable, this.categoryTable, this.headKernel, this.headBias, ...layerVariables];
  }

  dispose(): void {
    tf.dispose([this.segmentTable, this.categoryTable, this.headKernel, this.headBias]);
    for (const layer of [this.gate, this.experts, this.aea]) if (layer.built) layer.dispose();
  }
}

function shuffled(count: number, next: () => number): Int32Array {
  const order = Int32Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = Math.floor(next() * (index + 1));
    [order[index], order[other]] = [order[other]!, order[index]!];
  }
  return order;
}

/**
 * Trains the user's model with `tf.train.adam` (binary cross-entropy plus the AEA term), then
 * measures test AUC with `@mdrec/metrics` and how the gate routes each domain.
 */
export async function pickAndMix(options: PickAndMixOptions = {}): Promise<PickAndMixResult> {
  const { numRows = 20_000, epochs = 4, batchSize = 256, miWeight = 1, seed = 7 } = options;
  const log = options.log ?? console.log;
  await tf.setBackend(options.backend ?? "wasm");
  await tf.ready();
  log(`backend ${tf.getBackend()}; AEA weight ${miWeight}`);

  setGlobalSeed(seed); // the gate's training noise is drawn from mdrec's global generator
  const data = generateClicks(numRows, seed);
  const numTrain = Math.floor(numRows * 0.8);
  const testRows = Int32Array.from({ length: numRows - numTrain }, (_, index) => numTrain + index);
  const model = new ClickModel(seed, miWeight);
  const optimizer = tf.train.adam(5e-3);
  const nextRandom = random(seed + 100);
  try {
    const warmUp = batchOf(data, testRows.subarray(0, 2));
    tf.dispose(tf.tidy(() => model.forward(warmUp, false).logits)); // builds the mdrec layers
    tf.dispose(Object.values(warmUp));
    const variables = model.variables();

    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = shuffled(numTrain, nextRandom);
      let bceSum = 0;
      let miSum = 0;
      let steps = 0;
      for (let start = 0; start < numTrain; start += batchSize) {
        const batch = batchOf(data, order.subarray(start, start + batchSize));
        const parts: tf.Scalar[] = []; // kept for the log line; minimize disposes everything else
        optimizer.minimize(
          () => {
            const { logits, routing } = model.forward(batch, true);
            const bce = tf.losses.sigmoidCrossEntropy(batch.click, logits) as tf.Scalar;
            const aea = model.aea.compute(routing.probs, batch.domain, true); // aea.loss = -miWeight * I(D;E)
            parts.push(tf.keep(bce), tf.keep(aea.mutualInformation));
            return tf.add(bce, aea.loss) as tf.Scalar;
          },
          false,
          variables,
        );
        const [bce, mutualInformation] = await Promise.all(parts.map((part) => part.data()));
        bceSum += bce![0]!;
        miSum += mutualInformation![0]!;
        steps += 1;
        tf.dispose([...parts, ...Object.values(batch)]);
      }
      log(
        `epoch ${epoch + 1}: bce ${(bceSum / steps).toFixed(4)}, I(D;E) of the gate probabilities ${(miSum / steps).toFixed(3)} nats`,
      );
    }

    // Evaluation: probabilities and routing of every test row, in inference mode (no gate noise).
    const test = batchOf(data, testRows);
    const [probabilities, indices, weights] = tf.tidy(() => {
      const { logits, routing } = model.forward(test, false);
      return [tf.sigmoid(logits), routing.indices, routing.weights];
    });
    const scores = await probabilities!.data();
    const usage = {
      domainIds: await test.domain.data(),
      indices: await indices!.data(),
      weights: await weights!.data(),
      numDomains: NUM_DOMAINS,
      numExperts: NUM_EXPERTS,
      k: 2,
    };
    const labels = await test.click.data();
    tf.dispose([probabilities!, indices!, weights!, ...Object.values(test)]);

    const metrics = evaluateByDomain({ labels, scores, domainIds: usage.domainIds, numDomains: NUM_DOMAINS });
    const utilization = expertUtilization(usage);
    const mutualInformation = routingMutualInformation(expertUsageCounts(usage));
    log(`test AUC ${metrics.overall.auc.toFixed(4)}`);
    metrics.perDomain.forEach((domain, id) => {
      const shares = utilization[id]!.map((share) => share.toFixed(2)).join(" ");
      log(`surface ${id}: AUC ${domain.auc.toFixed(4)}, routing weight per expert ${shares}`);
    });
    log(
      `measured domain-expert MI ${mutualInformation.toFixed(3)} nats (max log ${NUM_EXPERTS} = ${Math.log(NUM_EXPERTS).toFixed(3)})`,
    );
    return {
      auc: metrics.overall.auc,
      perDomainAuc: metrics.perDomain.map((domain) => domain.auc),
      utilization,
      mutualInformation,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}
