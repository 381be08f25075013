import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  // tfjs-core ships its gradient registrations as ESM inside a CommonJS package: bundle them.
  noExternal: [/register_all_gradients/],
});
