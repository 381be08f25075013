import { pickAndMix } from "./pick-and-mix.js";

await pickAndMix();
