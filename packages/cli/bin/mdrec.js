#!/usr/bin/env node
// Committed launcher so the `mdrec` bin exists at install time, before `dist/` is built.
import { existsSync } from "node:fs";

const entry = new URL("../dist/bin.js", import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    "mdrec: dist/bin.js is missing; build the packages first (pnpm build in the mdrec repository)\n",
  );
  process.exit(1);
}
await import(entry.href);
