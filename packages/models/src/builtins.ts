import { registerModel } from "./registry.js";
import { SharedBottom, type SharedBottomOptions } from "./shared-bottom.js";
import { Star, type StarOptions } from "./star.js";

declare module "./registry.js" {
  interface ModelOptionsByName {
    "shared-bottom": SharedBottomOptions;
    star: StarOptions;
  }
}

registerModel("shared-bottom", (options) => new SharedBottom(options as unknown as SharedBottomOptions), {
  description: "Shared-bottom MLP with per-domain towers",
  presets: { tiny: { bottomUnits: [32, 16], towerUnits: [8] } },
});
registerModel("star", (options) => new Star(options as unknown as StarOptions), {
  description:
    "STAR (Sheng et al., CIKM 2021): star-topology FCN, partitioned norm, auxiliary domain network",
  presets: { tiny: { fcnUnits: [32, 16], auxiliaryUnits: [8] } },
});
