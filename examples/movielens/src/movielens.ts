import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type CliIo, EXIT_USAGE, processIo, runCli } from "@mdrec/cli";

/**
 * The comparison settings: the reference protocol of public multi-domain benchmarks
 * (Scenario-Wise-Rec: 80/10/10 split, Adam lr 1e-3, weight decay 1e-5, batch 4096, early
 * stopping on validation AUC with patience 4, their MovieLens model sizes), with 3 epochs.
 */
export const CONFIG_FILE = fileURLToPath(new URL("../movielens.config.json", import.meta.url));

/** Files of the MovieLens-1M release that the loader reads. */
export const MOVIELENS_FILES = ["ratings.dat", "users.dat", "movies.dat"] as const;

const HOW_TO_GET = [
  "MovieLens-1M is not shipped with mdrec (its licence does not allow redistribution). To get it:",
  "  curl -LO https://files.grouplens.org/datasets/movielens/ml-1m.zip && unzip ml-1m.zip",
  "then pass the directory, or set MOVIELENS_DIR:",
  "  pnpm --filter @example/movielens start -- ./ml-1m [mdrec compare flags, e.g. --epochs 1 --models cesaa,mmoe]",
  "  MOVIELENS_DIR=./ml-1m pnpm --filter @example/movielens start",
].join("\n");

/** Options of {@link compareOnMovieLens}. */
export interface MovieLensExampleOptions {
  /** Where the output goes and relative paths resolve. Defaults to the real process. */
  io?: CliIo;
}

/**
 * Compares every registered model (CESAA and the baselines) on a MovieLens-1M directory with
 * `mdrec compare`: label = rating >= 4, domains = age groups under 25, 25-34, 35+.
 *
 * @param args the directory first (else the `MOVIELENS_DIR` environment variable), then any
 *   `mdrec compare` flags, which win over the config file (e.g. `--epochs 1`, `--out runs/ml`).
 * @returns the exit code: 0 success, 1 run-time failure, 2 no or incomplete directory, bad flags or data.
 */
export async function compareOnMovieLens(
  args: readonly string[],
  options: MovieLensExampleOptions = {},
): Promise<number> {
  const io = options.io ?? processIo();
  const rest = args.filter((argument) => argument !== "--");
  const directory = rest[0] !== undefined && !rest[0].startsWith("-") ? rest.shift() : io.env.MOVIELENS_DIR;
  if (directory === undefined || directory === "") {
    io.stderr.write(`No MovieLens-1M directory given (argument or MOVIELENS_DIR).\n${HOW_TO_GET}\n`);
    return EXIT_USAGE;
  }
  const absolute = resolve(io.cwd, directory);
  if (!existsSync(absolute) || !statSync(absolute).isDirectory()) {
    io.stderr.write(
      `MovieLens-1M directory "${directory}" does not exist or is not a directory.\n${HOW_TO_GET}\n`,
    );
    return EXIT_USAGE;
  }
  const missing = MOVIELENS_FILES.filter((file) => !existsSync(join(absolute, file)));
  if (missing.length > 0) {
    io.stderr.write(`MovieLens-1M directory "${directory}" lacks ${missing.join(", ")}.\n${HOW_TO_GET}\n`);
    return EXIT_USAGE;
  }
  // Flags after the defaults win: commander keeps the last value of a repeated option.
  return runCli(
    [
      "compare",
      "--config",
      CONFIG_FILE,
      "--data",
      `movielens-1m:${directory}`,
      "--out",
      "mdrec-out/movielens",
      ...rest,
    ],
    io,
  );
}
