import { parseArgs } from "node:util";
import { pickAndMix } from "./pick-and-mix.js";

// e.g. `pnpm --filter @example/pick-and-mix start -- --mi-weight 0` trains without the AEA term.
const { values } = parseArgs({
  args: process.argv.slice(2).filter((argument) => argument !== "--"),
  options: { "mi-weight": { type: "string" }, backend: { type: "string" } },
});
const miWeight = values["mi-weight"] === undefined ? undefined : Number(values["mi-weight"]);
const backend = values.backend === undefined ? undefined : (values.backend as "wasm" | "cpu");
await pickAndMix({ miWeight, backend });
