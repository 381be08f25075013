import { registerModel } from "@mdrec/models";
import { Cesaa } from "./cesaa.js";
import type { CesaaOptions } from "./options.js";

declare module "@mdrec/models" {
  interface ModelOptionsByName {
    cesaa: CesaaOptions;
  }
}

registerModel("cesaa", (options) => new Cesaa(options as unknown as CesaaOptions), {
  description:
    "CESAA (Dong et al., 2024): shared experts + domain-conditioned sparse top-k experts, domain-expert MI loss",
  presets: {
    tiny: { numSharedExperts: 1, numSpecificExperts: 4, k: 2, expertUnits: [16], towerUnits: [8] },
  },
});
