/**
 * `pnpm bench`: runs every suite in src/suites (modules exporting `suite: BenchSuite`), prints
 * their tables, writes bench-results.json at the repository root and regenerates
 * docs/benchmarks.md from it.
 *
 *   tsx src/run.ts [--quick] [--only <suite,...>] [--backend <name>]
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { BACKEND_PREFERENCE, type BackendName, initBackend } from "@mdrec/core";
import { machineInfo } from "./lib/machine.js";
import { type BenchResults, markdown, readResults, textTable, writeText } from "./lib/report.js";
import type { BenchSuite } from "./record.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const SUITES_DIRECTORY = fileURLToPath(new URL("./suites/", import.meta.url));
const RESULTS_PATH = join(ROOT, "bench-results.json");
const DOCS_PATH = join(ROOT, "docs", "benchmarks.md");

const USAGE = `usage: pnpm bench [-- --quick] [--only <suite,...>] [--backend <${BACKEND_PREFERENCE.join("|")}>]
  --quick           fewer steps and smaller sizes (a smoke run)
  --only a,b        run only these suites (the results file keeps the others)
  --backend name    the backend to measure on (default: the best that loads)
  --report-only     rewrite docs/benchmarks.md from bench-results.json, measure nothing`;

/** Command-line options of the runner. */
interface RunnerOptions {
  quick: boolean;
  reportOnly?: boolean;
  only?: string[];
  backend?: BackendName;
}

class UsageError extends Error {}

function parseArguments(argv: readonly string[]): RunnerOptions {
  const options: RunnerOptions = { quick: false };
  const args = argv.filter((arg) => arg !== "--");
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      const next = inline ?? args[++index];
      if (next === undefined || next.startsWith("--")) throw new UsageError(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case "--quick":
        options.quick = true;
        break;
      case "--report-only":
        options.reportOnly = true;
        break;
      case "--only":
        options.only = value()
          .split(",")
          .map((name) => name.trim())
          .filter((name) => name.length > 0);
        break;
      case "--backend": {
        const backend = value();
        if (!(BACKEND_PREFERENCE as readonly string[]).includes(backend)) {
          throw new UsageError(
            `--backend must be one of ${BACKEND_PREFERENCE.join(", ")}, received "${backend}"`,
          );
        }
        options.backend = backend as BackendName;
        break;
      }
      case "--help":
      case "-h":
        console.log(USAGE);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown argument "${arg}"`);
    }
  }
  return options;
}

async function loadSuites(): Promise<BenchSuite[]> {
  const files = readdirSync(SUITES_DIRECTORY)
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .sort();
  const suites: BenchSuite[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(join(SUITES_DIRECTORY, file)).href)) as { suite?: BenchSuite };
    const suite = module.suite;
    if (suite && typeof suite.name === "string" && typeof suite.run === "function") suites.push(suite);
    else console.error(`bench: src/suites/${file} exports no suite, skipped`);
  }
  return suites;
}

async function main(): Promise<void> {
  let options: RunnerOptions;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.reportOnly) {
    const saved = readResults(RESULTS_PATH);
    if (saved === null) {
      console.error(`bench: ${RESULTS_PATH} is missing or unreadable; run the benchmarks first`);
      process.exit(2);
    }
    await writeText(DOCS_PATH, markdown(saved));
    console.error(`bench: wrote ${DOCS_PATH} from ${RESULTS_PATH}`);
    return;
  }
  const all = await loadSuites();
  const known = all.map((suite) => suite.name);
  const unknown = (options.only ?? []).filter((name) => !known.includes(name));
  if (unknown.length > 0) {
    console.error(
      `bench: unknown suite ${unknown.map((name) => `"${name}"`).join(", ")}; known: ${known.join(", ")}`,
    );
    process.exit(2);
  }
  const selected =
    options.only === undefined ? all : all.filter((suite) => options.only!.includes(suite.name));
  const log = (message: string) => console.error(message);
  let backendLine = "";
  const initialise = async (quiet: boolean) => {
    const info = await initBackend({
      ...(options.backend === undefined ? {} : { prefer: options.backend }),
      log: (line) => {
        backendLine = line.replace(/^mdrec backend: /, "");
        if (!quiet) log(line);
      },
    });
    return info;
  };
  await initialise(false);
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const results: BenchResults = readResults(RESULTS_PATH) ?? {
    date: startedAt,
    machine,
    backend: backendLine,
    suites: {},
  };
  results.date = startedAt;
  results.machine = machine;
  results.backend = backendLine;
  let failures = 0;
  for (const suite of selected) {
    log(`\n== ${suite.name}${options.quick ? " (quick)" : ""}`);
    await initialise(true);
    const date = new Date().toISOString();
    const started = performance.now();
    const entry: BenchResults["suites"][string] = {
      date,
      quick: options.quick,
      machine: machineInfo(),
      backend: backendLine,
      seconds: 0,
      records: [],
    };
    if (suite.description !== undefined) entry.description = suite.description;
    try {
      entry.records = await suite.run({
        quick: options.quick,
        ...(options.backend === undefined ? {} : { backends: [options.backend] }),
        log,
      });
      console.log(`\n${suite.name}\n${textTable(entry.records)}`);
    } catch (error) {
      failures++;
      entry.error =
        error instanceof Error
          ? (error.stack ?? error.message).split("\n").slice(0, 3).join(" ")
          : String(error);
      console.error(`bench: suite ${suite.name} failed: ${entry.error}`);
    }
    entry.seconds = (performance.now() - started) / 1000;
    results.suites[suite.name] = entry;
    // Written after every suite, so a long run that is interrupted keeps what it measured.
    await writeText(RESULTS_PATH, `${JSON.stringify(results, null, 2)}\n`);
    await writeText(DOCS_PATH, markdown(results));
  }
  log(`\nbench: wrote ${RESULTS_PATH} and ${DOCS_PATH}`);
  if (failures > 0) process.exit(1);
}

await main();
