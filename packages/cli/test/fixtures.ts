import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../src/cli.js";
import { bufferIo } from "../src/io.js";
import type { ModelResult, RunResults } from "../src/results.js";

/** A fresh temp directory and its cleanup. */
export function tempDirectory(prefix = "mdrec-cli-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

function model(name: string, auc: number, options: { moe: boolean; numExperts?: number }): ModelResult {
  const domains = [0, 1, 2];
  const numExperts = options.numExperts ?? 4;
  return {
    name,
    parameters: 12345 + Math.round(auc * 1000),
    expertsPerRow: options.moe ? 3 : null,
    totalExperts: options.moe ? numExperts + 1 : null,
    epochs: 2,
    bestEpoch: 2,
    trainExamplesPerSecond: 4321.5,
    trainSeconds: 3.2,
    wallSeconds: 3.9,
    test: {
      overall: { rows: 300, auc, logloss: 0.5 - (auc - 0.5) / 4, calibration: 1.02, gauc: null },
      perDomain: domains.map((domain) => ({
        domain,
        name: `domain_${domain}`,
        rows: 100,
        auc: auc - 0.02 * domain,
        logloss: 0.5 + 0.01 * domain,
        calibration: 1,
        gauc: null,
      })),
    },
    history: [1, 2].map((epoch) => ({
      epoch,
      trainLoss: 0.6 - 0.05 * epoch,
      auxLosses: options.moe ? { mi: -0.01 * epoch } : ({} as Record<string, number>),
      validationAuc: auc - 0.03 / epoch,
      validationLogloss: 0.55 - 0.02 * epoch,
      domainExpertMi: options.moe ? 0.1 * epoch : null,
      seconds: 1.5,
    })),
    routing: options.moe
      ? [
          {
            gate: "gate 0",
            utilisation: domains.map((domain) =>
              Array.from({ length: numExperts }, (_, expert) =>
                expert === domain ? 0.7 : 0.3 / (numExperts - 1),
              ),
            ),
            mutualInformation: 0.42,
          },
        ]
      : [],
  };
}

/** A hand-built results file: three domains, one MoE model and one without gates. */
export function sampleResults(overrides: Partial<RunResults> = {}): RunResults {
  return {
    formatVersion: 1,
    kind: "compare",
    runId: "run-fixture",
    createdAt: "2025-01-02T03:04:05.000Z",
    totalSeconds: 8.5,
    config: {
      data: "synthetic:tiny",
      seed: 7,
      epochs: 2,
      batchSize: 256,
      models: ["cesaa", "shared-bottom"],
    },
    environment: {
      mdrec: "0.1.0",
      tfjs: "4.22.0",
      node: "v20.0.0",
      platform: "linux x64",
      backend: "cpu",
      threads: 1,
    },
    dataset: {
      source: "synthetic:tiny",
      rows: 2000,
      train: 1600,
      validation: 200,
      test: 200,
      domainNames: ["domain_0", "domain_1", "domain_2"],
      trainRowsPerDomain: [800, 500, 300],
      domainCtr: [0.3, 0.15, 0.4],
      features: 10,
      taskNames: ["click"],
    },
    models: [model("cesaa", 0.74, { moe: true }), model("shared-bottom", 0.7, { moe: false })],
    ...overrides,
  };
}

/** Result of one in-process `mdrec` run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mdrec <args>` in-process with captured, non-TTY output. */
export async function runMdrec(
  args: string[],
  options: { cwd: string; env?: Record<string, string | undefined>; isTTY?: boolean },
): Promise<CliRun> {
  const io = bufferIo({ cwd: options.cwd, env: options.env ?? {}, isTTY: options.isTTY ?? false });
  const code = await runCli(args, io);
  return { code, stdout: io.stdout.text, stderr: io.stderr.text };
}

/**
 * The control characters in `text` that a terminal would interpret (ESC sequences, carriage
 * returns, other C0 controls and DEL), newline excepted. Empty for plain log output.
 */
export function controlCharacters(text: string): string[] {
  const found = new Set<string>();
  for (const character of text) {
    const code = character.charCodeAt(0);
    if ((code < 0x20 && code !== 0x0a) || code === 0x7f) found.add(`U+${code.toString(16).padStart(4, "0")}`);
  }
  return [...found];
}

/** The two models every command test trains: one with gates (routing in the results) and one without. */
export const TEST_MODELS = ["shared-bottom", "mmoe"];

/** Flags of a small, fast run: tiny synthetic data, one epoch, cpu. */
export const FAST_FLAGS = [
  "--data",
  "synthetic:tiny",
  "--rows",
  "400",
  "--epochs",
  "1",
  "--batch-size",
  "128",
  "--backend",
  "cpu",
];
