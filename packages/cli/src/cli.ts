// Registers "cesaa" in the model registry next to the baselines of @mdrec/models.
import "@mdrec/cesaa";
import { Command, CommanderError } from "commander";
import { runBench } from "./commands/bench.js";
import { COMPARE_DEFAULTS, DEFAULT_DATA, runCompare } from "./commands/compare.js";
import { runEvaluate } from "./commands/evaluate.js";
import { runDataInspect } from "./commands/inspect.js";
import { runReport } from "./commands/report.js";
import { runTrain, TRAIN_DEFAULTS } from "./commands/train.js";
import { numberFromFlag } from "./config.js";
import { CLI_VERSION, type CommandContext, createContext } from "./context.js";
import { EXIT_OK, EXIT_USAGE, exitCodeFor, formatError } from "./errors.js";
import { type CliIo, processIo } from "./io.js";

// Flags whose text is converted to a number before validation.
const NUMERIC_FLAGS = [
  "seed",
  "threads",
  "epochs",
  "batchSize",
  "learningRate",
  "weightDecay",
  "gradientClip",
  "rows",
  "steps",
];

/** Options of commander that are not config keys. */
const NOT_CONFIG = new Set(["config"]);

function flagsFrom(options: Record<string, unknown>): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (NOT_CONFIG.has(key) || value === undefined) continue;
    if (NUMERIC_FLAGS.includes(key) && typeof value === "string") flags[key] = numberFromFlag(value);
    else if (key === "models" && typeof value === "string") {
      flags[key] = value
        .split(",")
        .map((name) => name.trim())
        .filter((name) => name.length > 0);
    } else if (key === "split" && typeof value === "string") {
      flags[key] = value.split(",").map((part) => numberFromFlag(part));
    } else flags[key] = value;
  }
  return flags;
}

function addGeneralOptions(command: Command): Command {
  return command
    .option("--config <file>", "JSON or YAML file of config keys (flags win over it)")
    .option("--verbose", "print stack traces on errors and more detail")
    .option("--json", "print one machine-readable JSON document on stdout (progress goes to stderr)");
}

function addBackendOptions(command: Command): Command {
  return command
    .option(
      "--backend <name>",
      "node-gpu, node, wasm or cpu (default: MDREC_BACKEND, else the best that loads)",
    )
    .option("--allow-backend-fallback", "use the next best backend when the requested one cannot load")
    .option("--threads <n>", "threads of the wasm backend (default 1)");
}

function addDataOptions(command: Command, defaultData = DEFAULT_DATA): Command {
  return command
    .option(
      "--data <source>",
      `synthetic[:tiny|small|default], movielens-1m:<dir>, movielens-100k:<dir>, kuairand:<file>, ali-ccp:<file>, csv:<file>, parquet:<file> (default ${defaultData})`,
    )
    .option("--schema <file>", "schema file for csv: and parquet: data")
    .option("--rows <n>", "rows of synthetic data to generate (overrides the preset)")
    .option("--split <fractions>", "train,validation,test fractions (default 0.8,0.1,0.1)")
    .option("--seed <n>", "seed of data, split, initialisation and shuffling (default 42)");
}

function addTrainingOptions(
  command: Command,
  defaults: { epochs: number; batchSize: number; learningRate: number },
): Command {
  return command
    .option("--epochs <n>", `training epochs (default ${defaults.epochs})`)
    .option("--batch-size <n>", `rows per training step (default ${defaults.batchSize})`)
    .option("--learning-rate <rate>", `learning rate (default ${defaults.learningRate})`)
    .option("--optimizer <name>", "adam, adagrad, sgd or rmsprop (default adam)")
    .option("--weight-decay <value>", "L2 weight decay (default 0)")
    .option("--gradient-clip <norm>", "clip the global gradient norm (default none)");
}

function addOutputOptions(command: Command, defaultOut: string): Command {
  return command
    .option("--out <dir>", `output directory (default ${defaultOut})`)
    .option("--overwrite", "replace results of another run in the output directory");
}

/**
 * Builds the `mdrec` command tree. Each action receives the validated config; `run` records
 * the action's promise so {@link runCli} can await it and map errors to exit codes.
 */
function buildProgram(io: CliIo, run: (task: () => Promise<void>) => void): Command {
  const program = new Command("mdrec");
  program
    .description(
      "Train, evaluate, compare and benchmark multi-domain recommenders (CESAA, MMoE, PLE, STAR, SharedBottom).",
    )
    .version(CLI_VERSION, "--version", "print the version")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)")
    .showSuggestionAfterError(true)
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`mdrec: ${text.replace(/^error: /, "")}`),
    });

  const action =
    (name: string, body: (context: CommandContext, command: Command, args: string[]) => Promise<void>) =>
    (...received: unknown[]) => {
      const command = received[received.length - 1] as Command;
      const args = received.slice(0, -2).map(String);
      const options = command.opts() as Record<string, unknown>;
      run(async () => {
        const context = await createContext(
          io,
          name,
          flagsFrom(options),
          options.config as string | undefined,
        );
        await body(context, command, args);
      });
    };

  addOutputOptions(
    addTrainingOptions(
      addDataOptions(addBackendOptions(addGeneralOptions(program.command("compare"))), COMPARE_DEFAULTS.data),
      COMPARE_DEFAULTS,
    ),
    COMPARE_DEFAULTS.out,
  )
    .description(
      "train every chosen model with the same data, seed and budget; print one table; write results and report",
    )
    .option("--models <names>", "comma-separated model names (default: every registered model)")
    .action(action("compare", (context) => runCompare(context)));

  addOutputOptions(
    addTrainingOptions(
      addDataOptions(addBackendOptions(addGeneralOptions(program.command("train")))),
      TRAIN_DEFAULTS,
    ),
    TRAIN_DEFAULTS.out,
  )
    .description("train one model, evaluate it on the test split, save it with its results and report")
    .option("--model <name>", "model name (default cesaa)")
    .action(action("train", (context) => runTrain(context)));

  addDataOptions(addBackendOptions(addGeneralOptions(program.command("eval"))))
    .description("evaluate a saved model on the test split of its training data (or of --data)")
    .option("--model-dir <dir>", "directory of a model saved by mdrec train")
    .option("--batch-size <n>", "rows per forward pass (default 4096)")
    .action(action("eval", (context) => runEvaluate(context)));

  addDataOptions(addBackendOptions(addGeneralOptions(program.command("bench"))))
    .description(
      "measure training and inference examples/s of each model (short; the full suite is pnpm bench)",
    )
    .option("--models <names>", "comma-separated model names (default: every registered model)")
    .option("--batch-size <n>", "rows per step (default 1024)")
    .option("--steps <n>", "timed training steps per model (default 20)")
    .action(action("bench", (context) => runBench(context)));

  addGeneralOptions(program.command("report"))
    .description("re-render report.html from a results.json")
    .argument("<results>", "results.json written by mdrec compare or mdrec train")
    .option("--out <file>", "where to write the report (default: report.html beside the results file)")
    .action(action("report", (context, _command, args) => runReport(context, args[0]!)));

  const data = program.command("data").description("look at data sources");
  addDataOptions(addGeneralOptions(data.command("inspect")))
    .description("print rows, domains (size, click rate), tasks and features of a data source")
    .action(action("data inspect", (context) => runDataInspect(context)));

  return program;
}

/**
 * Runs the `mdrec` command line in-process and resolves to its exit code: 0 success, 1 run-time
 * failure, 2 bad usage or bad input. Errors are printed as one line on `io.stderr` (with the
 * stack when `--verbose` is among the arguments); nothing calls `process.exit`.
 *
 * @example
 * const code = await runCli(["compare", "--models", "mmoe,cesaa", "--data", "synthetic:tiny", "--epochs", "1"]);
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  let task: (() => Promise<void>) | undefined;
  const program = buildProgram(io, (body) => {
    task = body;
  });
  const verbose = argv.includes("--verbose");
  try {
    if (argv.length === 0) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync([...argv], { from: "user" });
    if (task === undefined) {
      // A command group without its subcommand (`mdrec data`) prints its help.
      return EXIT_USAGE;
    }
    await task();
    return EXIT_OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed its message (unknown option, missing argument, help, version).
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    io.stderr.write(formatError(error, verbose));
    return exitCodeFor(error);
  }
}
