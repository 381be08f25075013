import { processIo } from "@mdrec/cli";
import { compareCustomModel } from "./custom-model.js";

// pnpm runs the script in the package directory; paths resolve against where the command was typed.
const io = { ...processIo(), cwd: process.env.INIT_CWD ?? process.cwd() };
process.exitCode = await compareCustomModel(process.argv.slice(2), { io });
