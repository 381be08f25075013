import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Tests run against each package's `src`, so no build is needed before `vitest`.
const packagesDir = fileURLToPath(new URL("./packages", import.meta.url));
const alias = Object.fromEntries(
  readdirSync(packagesDir).map((name) => [`@mdrec/${name}`, `${packagesDir}/${name}/src/index.ts`]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    include: ["packages/*/test/**/*.test.ts", "examples/*/test/**/*.test.ts"],
    setupFiles: ["./test-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
  },
});
