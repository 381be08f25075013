import { type CliIo, processIo, runCli } from "@mdrec/cli";
import { GATED_BOTTOM } from "./gated-bottom.js"; // importing the module registers the model

/** The models compared: the new one next to two built-in baselines. */
export const COMPARED_MODELS = [GATED_BOTTOM, "shared-bottom", "mmoe"];

/**
 * Runs `mdrec compare` in-process on the custom model and two built-in ones: same data, split,
 * seed and budget for all three, one table, `results.json`, `results.md` and `report.html`.
 *
 * @param args extra `mdrec compare` flags; they win over the defaults here (e.g. `--epochs 4`).
 * @returns the exit code (0 success, 1 run-time failure, 2 bad usage or input).
 */
export async function compareCustomModel(
  args: readonly string[] = [],
  options: { io?: CliIo } = {},
): Promise<number> {
  const flags = args.filter((argument) => argument !== "--");
  const defaults = ["--data", "synthetic:small", "--epochs", "2", "--out", "mdrec-out/custom-model"];
  return runCli(
    ["compare", "--models", COMPARED_MODELS.join(","), ...defaults, ...flags],
    options.io ?? processIo(),
  );
}
