import { writeFileSync } from "node:fs";
import { initBackend } from "@mdrec/core";
import { it } from "vitest";
import { textTable } from "../../bench/src/lib/report.js";
import { suite } from "../../bench/src/suites/model-quality.js";

it("model-quality suite", async () => {
  const quick = process.env.QUICK === "1";
  await initBackend({
    prefer: "wasm",
    log: (line) => writeFileSync("/tmp/model-quality.log", `${line}\n`, { flag: "a" }),
  });
  const started = performance.now();
  const records = await suite.run({
    quick,
    log: (line) => writeFileSync("/tmp/model-quality.log", `${line}\n`, { flag: "a" }),
  });
  writeFileSync(process.env.OUT ?? "/tmp/model-quality.json", JSON.stringify(records, null, 2));
  writeFileSync(
    `${process.env.OUT ?? "/tmp/model-quality.json"}.txt`,
    `${textTable(records)}\ndone in ${((performance.now() - started) / 1000).toFixed(0)} s\n`,
  );
});
