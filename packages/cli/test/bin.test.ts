// The real `mdrec` executable as a child process: exit codes, stdout as a pipe (not a TTY), error
// text on stderr. What runs:
// - `bin/mdrec.js`, the committed launcher importing `dist/bin.js`, when the workspace is built
//   (CI's `pnpm test` builds before vitest runs);
// - otherwise a bundle of `src/bin.ts` made here with tsup, resolving workspace packages through
//   their `source` condition, so the tests run without any build. (Plain `tsx src/bin.ts` does not
//   work: tfjs-core's gradient registrations are ESM files inside a CommonJS package, which Node's
//   ESM loader refuses; the bundle inlines them, as @mdrec/core's own build does.)
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { controlCharacters, tempDirectory } from "./fixtures.js";

const packageDirectory = dirname(dirname(fileURLToPath(import.meta.url)));
const packagesDirectory = dirname(packageDirectory);
const bundleDirectory = join(packageDirectory, "node_modules", ".cache", "mdrec-bin-test");
const launcher = join(packageDirectory, "bin", "mdrec.js");
// The launcher runs the built code of this package and of every workspace package it imports.
const builtDependencies = Object.keys(
  (
    JSON.parse(readFileSync(join(packageDirectory, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    }
  ).dependencies,
)
  .filter((name) => name.startsWith("@mdrec/"))
  .map((name) => join(packagesDirectory, name.slice("@mdrec/".length), "dist", "index.js"));
const missingBuilds = [join(packageDirectory, "dist", "bin.js"), ...builtDependencies].filter(
  (file) => !existsSync(file),
);
const distBuilt = missingBuilds.length === 0;
if (!distBuilt) {
  console.warn(
    `bin.test.ts: testing a source bundle instead of bin/mdrec.js, not built (pnpm build): ${missingBuilds.join(", ")}`,
  );
}

const work = tempDirectory("mdrec-bin-");
afterAll(() => work.cleanup());

interface ChildRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runBin(script: string, args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: work.path,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? work.path, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Third-party dependencies of the workspace packages, bundled along with their sources. */
function workspaceDependencies(): string[] {
  const names = new Set<string>();
  for (const name of readdirSync(packagesDirectory)) {
    const manifest = join(packagesDirectory, name, "package.json");
    if (name === "cli" || !existsSync(manifest)) continue;
    const dependencies =
      (JSON.parse(readFileSync(manifest, "utf8")) as { dependencies?: Record<string, string> })
        .dependencies ?? {};
    for (const dependency of Object.keys(dependencies)) {
      if (!dependency.startsWith("@mdrec/") && !dependency.startsWith("@tensorflow/")) names.add(dependency);
    }
  }
  return [...names];
}

/** The CLI's own dependencies: resolvable from packages/cli/node_modules, so left external. */
function cliDependencies(): string[] {
  const manifest = JSON.parse(readFileSync(join(packageDirectory, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  return Object.keys(manifest.dependencies).filter(
    (name) => !name.startsWith("@mdrec/") && !name.startsWith("@tensorflow/"),
  );
}

let bundled = "";

beforeAll(async () => {
  if (distBuilt) {
    bundled = launcher;
    return;
  }
  const { build } = await import("tsup");
  await build({
    entry: { mdrec: join(packageDirectory, "src", "bin.ts") },
    outDir: bundleDirectory,
    format: ["esm"],
    platform: "node",
    target: "node20",
    config: false,
    silent: true,
    clean: true,
    dts: false,
    sourcemap: false,
    // tfjs stays external (one copy, the wasm backend finds its .wasm files); everything else of
    // the workspace is bundled from source.
    external: [/^@tensorflow\/tfjs-(core|layers|backend-cpu|backend-wasm)$/, ...cliDependencies()],
    // Bundled CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: 'import { createRequire as mdrecCreateRequire } from "node:module"; const require = mdrecCreateRequire(import.meta.url);',
    },
    noExternal: [/^@mdrec\//, /register_all_gradients/, ...workspaceDependencies()],
    esbuildOptions(options) {
      options.conditions = ["source"];
    },
  });
  bundled = join(bundleDirectory, "mdrec.js");
});

describe(`mdrec as a child process (${distBuilt ? "bin/mdrec.js" : "source bundle"})`, () => {
  it("prints the version and exits with 0", async () => {
    const run = await runBin(bundled, ["--version"]);
    expect(run).toEqual({ code: 0, stdout: "0.1.0\n", stderr: "" });
  });

  it("exits with 2 on bad usage, with one line and no stack trace", async () => {
    const unknown = await runBin(bundled, ["compare", "--bogus"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("mdrec: unknown option '--bogus'\n(run with --help for usage)\n");
    const malformed = await runBin(bundled, ["compare", "--data", "csv:"]);
    expect(malformed).toEqual({
      code: 2,
      stdout: "",
      stderr: 'mdrec: --data "csv:": "csv:" must be followed by a path (the file), e.g. csv:./data.csv\n',
    });
  });

  it("exits with 1 on a run-time failure (the output directory is locked by a live run)", async () => {
    const { mkdirSync, writeFileSync } = await import("node:fs");
    mkdirSync(join(work.path, "busy"), { recursive: true });
    writeFileSync(
      join(work.path, "busy", "mdrec.lock"),
      JSON.stringify({
        pid: process.pid,
        hostname: hostname(),
        startedAt: new Date().toISOString(),
        token: "test",
      }),
    );
    const run = await runBin(bundled, [
      "compare",
      "--models",
      "shared-bottom",
      "--backend",
      "cpu",
      "--out",
      "busy",
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^mdrec: --out busy: .*in use by another run \(pid \d+/);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it("runs a comparison with stdout on a pipe: plain lines, no control characters", async () => {
    const run = await runBin(
      bundled,
      [
        "compare",
        "--models",
        "shared-bottom",
        "--data",
        "synthetic:tiny",
        "--rows",
        "300",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--out",
        "piped",
      ],
      { MDREC_BACKEND: "cpu" },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("mdrec backend: cpu (requested by environment variable MDREC_BACKEND");
    expect(run.stdout).toContain("[shared-bottom] training: 2 steps");
    expect(run.stdout).toContain("Report: piped/report.html");
    expect(controlCharacters(run.stdout)).toEqual([]);
    expect(existsSync(join(work.path, "piped", "results.json"))).toBe(true);
  });
});
