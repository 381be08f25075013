import { readdirSync } from "node:fs";
import { defineConfig } from "vitest/config";

const packagesDir = "/work/main/packages";
const alias = Object.fromEntries(
  readdirSync(packagesDir).map((name) => [`@mdrec/${name}`, `${packagesDir}/${name}/src/index.ts`]),
);

export default defineConfig({
  resolve: { alias },
  test: {
    root: "/work/main",
    include: ["packages/cesaa/.scratch/*.test.ts"],
    setupFiles: ["./test-setup.ts"],
    testTimeout: 1_200_000,
    pool: "forks",
  },
});
