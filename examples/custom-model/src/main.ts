import { compareCustomModel } from "./custom-model.js";

process.exitCode = await compareCustomModel(process.argv.slice(2));
