import { it } from "vitest";
import { suite } from "../../bench/src/suites/expert-pool.js";

it("expert-pool bench (temporary)", async () => {
  const records = await suite.run({ quick: process.env.BENCH_QUICK === "1" });
  for (const record of records) console.log(JSON.stringify(record));
}, 1_800_000);
