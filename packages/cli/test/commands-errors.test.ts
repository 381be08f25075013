import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMdrec, tempDirectory } from "./fixtures.js";

const directory = tempDirectory("mdrec-errors-");
afterAll(() => directory.cleanup());
const cwd = directory.path;

function config(name: string, content: string): string {
  writeFileSync(join(cwd, name), content);
  return name;
}

async function expectUsage(args: string[], message: string | RegExp, env: Record<string, string> = {}) {
  const run = await runMdrec(args, { cwd, env });
  expect(run.code, run.stderr).toBe(2);
  if (typeof message === "string") expect(run.stderr).toContain(message);
  else expect(run.stderr).toMatch(message);
  // No stack trace without --verbose.
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stdout).toBe("");
  return run;
}

describe("bad usage exits with code 2 and names the argument and the value (BAD_INPUTS 26)", () => {
  it("unknown flag, unknown command, missing argument, no command", async () => {
    await expectUsage(
      ["compare", "--epoch", "2"],
      "mdrec: unknown option '--epoch'\n(Did you mean --epochs?)",
    );
    await expectUsage(["comparre"], "mdrec: unknown command 'comparre'\n(Did you mean compare?)");
    await expectUsage(["report"], "mdrec: missing required argument 'results'");
    await expectUsage(["compare", "--data"], "mdrec: option '--data <source>' argument missing");
    const bare = await runMdrec([], { cwd });
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain("Usage: mdrec [options] [command]");
    expect((await runMdrec(["data"], { cwd })).code).toBe(2);
  });

  it("help and version exit with 0", async () => {
    const help = await runMdrec(["compare", "--help"], { cwd });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--models <names>");
    expect(help.stdout).toContain("--allow-backend-fallback");
    const version = await runMdrec(["--version"], { cwd });
    expect(version).toMatchObject({ code: 0, stdout: "0.1.0\n" });
  });

  it("malformed data arguments", async () => {
    await expectUsage(
      ["compare", "--data", "csv:"],
      'mdrec: --data "csv:": "csv:" must be followed by a path (the file)',
    );
    await expectUsage(
      ["train", "--model", "shared-bottom", "--data", "csv:clicks.csv"],
      'mdrec: --data "csv:clicks.csv" needs --schema <file>',
    );
    await expectUsage(
      ["compare", "--data", "movielens:x"],
      'unknown data kind "movielens" (did you mean "movielens-1m"?)',
    );
    await expectUsage(["data", "inspect", "--data", "synthetic:huge"], 'unknown synthetic preset "huge"');
    await expectUsage(["data", "inspect", "--data", "movielens-1m:no-such-dir"], /no-such-dir/);
  });

  it("unknown model names list the known ones (BAD_INPUTS 13)", async () => {
    const run = await expectUsage(
      ["compare", "--models", "shared-bottom,mmeo", "--backend", "cpu"],
      /^mdrec: Unknown model "mmeo"\./,
    );
    expect(run.stderr).toContain('Did you mean "mmoe"? Known models: "shared-bottom", "mmoe"');
    await expectUsage(["train", "--model", "nope", "--backend", "cpu"], 'Unknown model "nope"');
    // Nothing was written for a refused command.
    expect(existsSync(join(cwd, "mdrec-out"))).toBe(false);
  });

  it("bad flag values and bad config files (BAD_INPUTS 15, 16)", async () => {
    await expectUsage(
      ["compare", "--epochs", "0"],
      "mdrec: --epochs must be a positive integer, received 0\n",
    );
    await expectUsage(
      ["compare", "--batch-size", "-8"],
      "mdrec: --batch-size must be a positive integer, received -8\n",
    );
    await expectUsage(
      ["compare", "--learning-rate", "NaN"],
      "mdrec: --learning-rate must be a finite number > 0, received NaN\n",
    );
    await expectUsage(
      ["train", "--seed", "abc"],
      'mdrec: --seed must be a non-negative integer, received "abc"\n',
    );
    await expectUsage(
      ["compare", "--split", "0.5,0.5"],
      "--split must be three fractions [train, validation, test] summing to 1",
    );
    await expectUsage(
      ["compare", "--config", config("typo.yaml", "epoch: 2\n")],
      'mdrec: Unknown config key "epoch" in typo.yaml. Did you mean "epochs"?\n',
    );
    await expectUsage(
      ["compare", "--config", config("type.json", '{"batchSize": "64"}')],
      'mdrec: config key "batchSize" in type.json must be a positive integer, received "64"\n',
    );
    await expectUsage(
      ["compare", "--config", config("nan.yaml", "learningRate: .nan\nepochs: -1\n")],
      'config key "epochs" in nan.yaml must be a positive integer, received -1\nconfig key "learningRate" in nan.yaml must be a finite number > 0, received NaN\n',
    );
    await expectUsage(
      ["compare", "--config", "absent.yaml"],
      "mdrec: Cannot read config file absent.yaml (--config): no such file",
    );
    // A flag fixes a bad file value: flags win.
    const fixed = await runMdrec(
      ["data", "inspect", "--config", config("seed.yaml", "seed: -1\ndata: synthetic:tiny\n"), "--seed", "3"],
      { cwd },
    );
    expect(fixed.code).toBe(0);
  });

  it("a backend that cannot load is refused without --allow-backend-fallback (BAD_INPUTS 19)", async () => {
    const run = await expectUsage(
      ["bench", "--models", "shared-bottom", "--backend", "node-gpu", "--data", "synthetic:tiny"],
      /^mdrec: Backend "node-gpu" requested by --backend could not load \(node-gpu: .*tfjs-node-gpu.*\)\. Install @tensorflow\/tfjs-node-gpu \(see docs\/gpu\.md\), choose another --backend, or pass --allow-backend-fallback to use the next best one\.\n$/,
    );
    expect(run.stdout).toBe("");
    await expectUsage(
      ["bench", "--data", "synthetic:tiny"],
      'environment variable MDREC_BACKEND must be one of "node-gpu", "node", "wasm", "cpu", received "tpu"',
      { MDREC_BACKEND: "tpu" },
    );
    const fallback = await runMdrec(
      [
        "bench",
        "--models",
        "shared-bottom",
        "--backend",
        "node",
        "--allow-backend-fallback",
        "--data",
        "synthetic:tiny",
        "--rows",
        "300",
        "--steps",
        "1",
        "--batch-size",
        "64",
      ],
      { cwd },
    );
    expect(fallback.code, fallback.stderr).toBe(0);
    expect(fallback.stdout).toMatch(/^mdrec backend: (wasm|cpu) \(.*\bnode\b.*\)$/m);
    const fromEnv = await expectUsage(
      ["bench", "--data", "synthetic:tiny"],
      /^mdrec: Backend "node" requested by environment variable MDREC_BACKEND could not load/,
      {
        MDREC_BACKEND: "node",
      },
    );
    expect(fromEnv.stderr).toContain("pass --allow-backend-fallback");
  });

  it("--verbose adds the stack trace", async () => {
    const run = await runMdrec(["compare", "--models", "nope", "--verbose"], { cwd });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^mdrec: Unknown model "nope"/);
    expect(run.stderr).toMatch(/^\s+at /m);
  });
});
