import { compareOnMovieLens } from "./movielens.js";

process.exitCode = await compareOnMovieLens(process.argv.slice(2));
