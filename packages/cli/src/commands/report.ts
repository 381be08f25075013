import { readFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { DataError, writeFileAtomic } from "@mdrec/core";
import type { CommandContext } from "../context.js";
import { UsageError } from "../errors.js";
import { renderReport } from "../report/render.js";
import { parseRunResults } from "../results.js";

/**
 * `mdrec report <results.json>`: re-renders `report.html` from a results file (next to it, or
 * at `--out`). The report is derived from the results, so an existing report is replaced.
 */
export async function runReport(context: CommandContext, resultsPath: string): Promise<void> {
  const absolute = context.resolvePath(resultsPath);
  let text: string;
  try {
    text = await readFile(absolute, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : (error as Error).message;
    throw new UsageError(`Cannot read results file ${resultsPath} (argument <results>): ${reason}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataError(`${resultsPath} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const results = parseRunResults(parsed, resultsPath);
  const outPath = context.config.out
    ? context.resolvePath(context.config.out)
    : join(dirname(absolute), "report.html");
  await writeFileAtomic(outPath, await renderReport(results));
  const shown = relative(context.io.cwd, outPath);
  if (context.config.json)
    context.emitJson({ report: outPath, models: results.models.map((model) => model.name) });
  context.print(
    `Report: ${shown} (${results.models.length} model${results.models.length === 1 ? "" : "s"}, run ${results.runId})`,
  );
}
