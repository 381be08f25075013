#!/usr/bin/env node
// Committed launcher so the `mdrec` bin exists at install time, before `dist/` is built.
import "../dist/bin.js";
