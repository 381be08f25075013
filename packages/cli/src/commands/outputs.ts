import type { OutputDirectory } from "../output-dir.js";
import { renderReport } from "../report/render.js";
import { type RunResults, stringifyRunResults } from "../results.js";
import { renderResultsMarkdown } from "../table.js";

/**
 * Writes `results.md`, `report.html` and, last, `results.json` (its presence marks a finished
 * run) into a locked output directory, each atomically.
 */
export async function writeRunOutputs(directory: OutputDirectory, results: RunResults): Promise<void> {
  await directory.write("results.md", renderResultsMarkdown(results));
  await directory.write("report.html", await renderReport(results));
  await directory.write("results.json", stringifyRunResults(results));
}

/** The config keys a results file records (the ones that change what was measured); unset and empty ones are left out. */
export function recordedConfig(
  config: Record<string, unknown>,
  keys: readonly string[],
): Record<string, unknown> {
  const recorded: Record<string, unknown> = {};
  for (const key of keys) {
    const value = config[key];
    const empty =
      value !== null && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0;
    if (value !== undefined && !empty) recorded[key] = value;
  }
  return recorded;
}
