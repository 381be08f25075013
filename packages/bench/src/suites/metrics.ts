import { SeededRandom } from "@mdrec/core";
import { AucAccumulator, auc, DomainMetricsAccumulator, evaluateByDomain, gauc } from "@mdrec/metrics";
import type { BenchRecord, BenchSuite } from "../record.js";

interface Predictions {
  labels: Uint8Array; // [rows]
  scores: Float32Array; // [rows] probabilities, as read back from a tensor
  domainIds: Int32Array; // [rows]
  groupIds: Int32Array; // [rows]
}

const NUM_DOMAINS = 8;
const NUM_USERS = 100_000;

/** Seeded predictions with a real signal (AUC ~0.8) and float32 scores, so ties occur as in practice. */
function randomPredictions(rows: number, seed: number): Predictions {
  const random = new SeededRandom(seed);
  const labels = new Uint8Array(rows);
  const scores = new Float32Array(rows);
  const domainIds = new Int32Array(rows);
  const groupIds = new Int32Array(rows);
  for (let index = 0; index < rows; index++) {
    const label = random.next() < 0.25 ? 1 : 0;
    labels[index] = label;
    scores[index] = 1 / (1 + Math.exp(-(random.nextNormal() + 1.2 * label - 1)));
    domainIds[index] = random.nextInt(NUM_DOMAINS);
    groupIds[index] = random.nextInt(NUM_USERS);
  }
  return { labels, scores, domainIds, groupIds };
}

/** Wall time, plus process CPU time, which is the fairer figure on a machine shared with other jobs. */
function seconds<T>(work: () => T): { result: T; seconds: number; cpu: string } {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const result = work();
  const cpu = process.cpuUsage(cpuStart);
  const seconds = (performance.now() - start) / 1000;
  return { result, seconds, cpu: `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s` };
}

/** AUC on 10M predictions (1M in quick mode), batch and streamed in 1M-row chunks, plus the per-domain breakdown. */
export const suite: BenchSuite = {
  name: "metrics",
  async run({ quick }) {
    const rows = quick ? 1_000_000 : 10_000_000;
    const chunk = quick ? 100_000 : 1_000_000;
    const size = `${rows / 1e6}M rows`;
    const data = randomPredictions(rows, 2024);
    const records: BenchRecord[] = [];
    const record = (name: string, value: number, unit: string, notes?: string) =>
      records.push({ suite: "metrics", name, value, unit, ...(notes ? { notes } : {}) });

    const batch = seconds(() => auc(data.labels, data.scores));
    record(
      `auc, ${size}`,
      batch.seconds,
      "s",
      `${batch.cpu}; AUC ${batch.result.toFixed(6)}; float32 scores`,
    );

    const streamed = seconds(() => {
      const accumulator = new AucAccumulator();
      for (let start = 0; start < rows; start += chunk) {
        accumulator.add(
          data.labels.subarray(start, start + chunk),
          data.scores.subarray(start, start + chunk),
        );
      }
      return accumulator.value();
    });
    if (streamed.result !== batch.result) {
      throw new Error(`AucAccumulator gave ${streamed.result}, batch auc gave ${batch.result}`);
    }
    record(
      `AucAccumulator, ${size} in ${chunk / 1e6}M-row chunks`,
      streamed.seconds,
      "s",
      `${streamed.cpu}; add all chunks + value()`,
    );

    const reference = seconds(() => {
      const positives = new Float64Array(data.labels.reduce((sum, label) => sum + label, 0));
      const negatives = new Float64Array(rows - positives.length);
      let positiveIndex = 0;
      let negativeIndex = 0;
      for (let index = 0; index < rows; index++) {
        if (data.labels[index] === 1) positives[positiveIndex++] = data.scores[index]!;
        else negatives[negativeIndex++] = data.scores[index]!;
      }
      positives.sort();
      negatives.sort();
    });
    record(
      `reference: split + native Float64Array.sort, ${size}`,
      reference.seconds,
      "s",
      `${reference.cpu}; the sort auc would need without its radix sort`,
    );

    const byDomain = seconds(() =>
      evaluateByDomain({
        labels: data.labels,
        scores: data.scores,
        domainIds: data.domainIds,
        numDomains: NUM_DOMAINS,
      }),
    );
    record(
      `evaluateByDomain, ${size}, ${NUM_DOMAINS} domains`,
      byDomain.seconds,
      "s",
      `${byDomain.cpu}; AUC, logloss, calibration`,
    );

    const byDomainStreamed = seconds(() => {
      const accumulator = new DomainMetricsAccumulator({ numDomains: NUM_DOMAINS });
      for (let start = 0; start < rows; start += chunk) {
        const end = start + chunk;
        accumulator.add(
          data.labels.subarray(start, end),
          data.scores.subarray(start, end),
          data.domainIds.subarray(start, end),
        );
      }
      return accumulator.result();
    });
    if (byDomainStreamed.result.overall.auc !== batch.result) {
      throw new Error(
        `DomainMetricsAccumulator overall AUC ${byDomainStreamed.result.overall.auc} != ${batch.result}`,
      );
    }
    record(
      `DomainMetricsAccumulator, ${size} in ${chunk / 1e6}M-row chunks, ${NUM_DOMAINS} domains`,
      byDomainStreamed.seconds,
      "s",
      byDomainStreamed.cpu,
    );

    const grouped = seconds(() => gauc(data.labels, data.scores, data.groupIds));
    record(
      `gauc, ${size}, ${NUM_USERS / 1000}k users`,
      grouped.seconds,
      "s",
      `${grouped.cpu}; GAUC ${grouped.result.value.toFixed(6)}, ${grouped.result.usersCounted} users counted`,
    );
    return records;
  },
};
