import { processIo } from "@mdrec/cli";
import { compareOnMovieLens } from "./movielens.js";

// pnpm runs the script in the package directory; paths resolve against where the command was typed.
const io = { ...processIo(), cwd: process.env.INIT_CWD ?? process.cwd() };
process.exitCode = await compareOnMovieLens(process.argv.slice(2), { io });
