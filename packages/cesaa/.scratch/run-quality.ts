import { writeFileSync } from "node:fs";
import { initBackend } from "@mdrec/core";
import { textTable } from "../../bench/src/lib/report.ts";
import { suite } from "../../bench/src/suites/model-quality.ts";

const quick = process.argv.includes("--quick");
await initBackend({ prefer: "wasm", log: (line) => console.error(line) });
const started = performance.now();
const records = await suite.run({ quick, log: (line) => console.error(line) });
writeFileSync(process.env.OUT ?? "/tmp/model-quality.json", JSON.stringify(records, null, 2));
console.log(textTable(records));
console.error(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
