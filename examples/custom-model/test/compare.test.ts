import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferIo, parseRunResults } from "@mdrec/cli";
import { afterAll, describe, expect, it } from "vitest";
import { COMPARED_MODELS, compareCustomModel } from "../src/custom-model.js";

const root = mkdtempSync(join(tmpdir(), "mdrec-custom-model-example-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// 640 training rows, 4 domains, one epoch of batch 64, cpu.
const FAST = [
  "--data",
  "synthetic:tiny",
  "--rows",
  "800",
  "--epochs",
  "1",
  "--batch-size",
  "64",
  "--backend",
  "cpu",
];

describe("examples/custom-model", () => {
  it("runs the registered custom model through mdrec compare next to two built-in models", async () => {
    const io = bufferIo({ cwd: root });
    const code = await compareCustomModel(["--", ...FAST, "--out", "out"], { io });
    expect(io.stderr.text).toBe("");
    expect(code).toBe(0);
    const results = parseRunResults(JSON.parse(readFileSync(join(root, "out", "results.json"), "utf8")));
    expect(results.models.map((model) => model.name)).toEqual(["gated-bottom", "shared-bottom", "mmoe"]);
    expect(results.models.map((model) => model.name)).toEqual(COMPARED_MODELS);
    const custom = results.models[0]!;
    // Trained: better than a constant scorer (0.5) on the held-out rows.
    expect(custom.test.overall.auc).toBeGreaterThan(0.5);
    expect(custom.history).toHaveLength(1);
    expect(custom).toMatchObject({ expertsPerRow: 1, totalExperts: 4 }); // k = 1 of numExperts = numDomains
    expect(Object.keys(custom.history[0]!.auxLosses)).toEqual(["load"]);
    expect(custom.routing[0]!.utilisation).toHaveLength(4);
    expect(io.stdout.text).toMatch(/│ test metric\s+│ gated-bottom │ shared-bottom │\s+mmoe │/);
    expect(io.stdout.text).toContain("Report: out/report.html");
    const report = readFileSync(join(root, "out", "report.html"), "utf8");
    expect(report).toContain('<tr data-model="gated-bottom">');
    expect(report).toContain('<figure id="utilisation-gated-bottom-0"');
  });

  it("lists the custom model among the known ones when a name is mistyped (exit 2)", async () => {
    const io = bufferIo({ cwd: root });
    expect(await compareCustomModel([...FAST, "--models", "gated-botom", "--out", "typo"], { io })).toBe(2);
    expect(io.stderr.text).toMatch(
      /^mdrec: Unknown model "gated-botom"\. Did you mean "gated-bottom"\? Known models: .*"gated-bottom"/,
    );
  });
});
