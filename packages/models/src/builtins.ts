import { Mmoe, type MmoeOptions } from "./mmoe.js";
import { Ple, type PleOptions } from "./ple.js";
import { registerModel } from "./registry.js";
import { SharedBottom, type SharedBottomOptions } from "./shared-bottom.js";
import { Star, type StarOptions } from "./star.js";

declare module "./registry.js" {
  interface ModelOptionsByName {
    "shared-bottom": SharedBottomOptions;
    mmoe: MmoeOptions;
    ple: PleOptions;
    star: StarOptions;
  }
}

registerModel("shared-bottom", (options) => new SharedBottom(options as unknown as SharedBottomOptions), {
  description: "Shared-bottom MLP with per-domain towers",
  presets: { tiny: { bottomUnits: [32, 16], towerUnits: [8] } },
});
registerModel("mmoe", (options) => new Mmoe(options as unknown as MmoeOptions), {
  description: "MMoE (Ma et al., KDD 2018): shared experts, a softmax gate and a tower per domain",
  presets: { tiny: { expertUnits: [16], towerUnits: [8] } },
});
registerModel("ple", (options) => new Ple(options as unknown as PleOptions), {
  description: "PLE (Tang et al., RecSys 2020): CGC levels of shared and per-domain experts",
  presets: { tiny: { numSpecificExperts: 1, expertUnits: [16], towerUnits: [8] } },
});
registerModel("star", (options) => new Star(options as unknown as StarOptions), {
  description:
    "STAR (Sheng et al., CIKM 2021): star-topology FCN, partitioned norm, auxiliary domain network",
  presets: { tiny: { fcnUnits: [32, 16], auxiliaryUnits: [8] } },
});
