import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
const packagesDir = fileURLToPath(new URL("../..", import.meta.url));
const alias = Object.fromEntries(
  readdirSync(packagesDir).map((name) => [`@mdrec/${name}`, `${packagesDir}/${name}/src/index.ts`]),
);
export default defineConfig({
  resolve: { alias },
  test: { include: ["**/*.probe.ts"], testTimeout: 600_000, pool: "forks", root: fileURLToPath(new URL(".", import.meta.url)) },
});
