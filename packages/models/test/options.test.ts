import { ConfigError } from "@mdrec/core";
import { createModel, Mmoe, Ple, SharedBottom, Star } from "@mdrec/models";
import { describe, expect, it } from "vitest";
import { syntheticSplits } from "./training.js";

const { data } = syntheticSplits(3, 200);
const base = { features: data.features, numDomains: 4 };

describe("model options", () => {
  it("fill in documented defaults, reported by getConfig", () => {
    const expectOptions = (name: string, expected: Record<string, unknown>) => {
      const model = createModel(name, { ...base, seed: 1 });
      expect(model.getConfig().options).toEqual({
        ...base,
        numTasks: 1,
        embeddingDim: 16,
        seed: 1,
        ...expected,
      });
      model.dispose();
    };
    const common = { towerUnits: [8], towerMode: "per-domain", activation: "relu", dropout: 0 };
    expectOptions("shared-bottom", { bottomUnits: [64, 32], ...common });
    expectOptions("mmoe", { numExperts: 4, expertUnits: [16], ...common });
    expectOptions("ple", {
      numLevels: 1,
      numSharedExperts: 1,
      numSpecificExperts: 2,
      expertUnits: [16],
      ...common,
    });
    expectOptions("star", {
      fcnUnits: [128, 64, 32],
      normMomentum: 0.99,
      auxiliaryUnits: [32],
      auxiliaryUsesFeatures: false,
      activation: "relu",
      dropout: 0,
    });
  });

  it("refuse unknown keys, naming the nearest valid key", () => {
    expect(() => new Mmoe({ ...base, numExpert: 4 } as never)).toThrow(
      new ConfigError('Unknown key "numExpert" in mmoe options. Did you mean "numExperts"?'),
    );
    expect(() => createModel("ple", { ...base, numSharedExpert: 1 } as never)).toThrow(
      'Unknown key "numSharedExpert" in ple options. Did you mean "numSharedExperts"?',
    );
    expect(() => createModel("star", { ...base, fcnUnit: [8] } as never)).toThrow('Did you mean "fcnUnits"?');
    expect(() => createModel("shared-bottom", { ...base, numDomain: 4 } as never)).toThrow(
      'Unknown key "numDomain" in shared-bottom options. Did you mean "numDomains"?',
    );
  });

  it("refuse zero experts and negative shared experts, naming the value", () => {
    expect(() => createModel("mmoe", { ...base, numExperts: 0 })).toThrow(
      new ConfigError("mmoe options.numExperts must be an integer >= 1, received 0"),
    );
    expect(() => createModel("ple", { ...base, numSharedExperts: -1 })).toThrow(
      "ple options.numSharedExperts must be an integer >= 0, received -1",
    );
    expect(() => createModel("ple", { ...base, numSpecificExperts: 0 })).toThrow(
      "ple options.numSpecificExperts must be an integer >= 1, received 0",
    );
    expect(() => createModel("ple", { ...base, numLevels: 0 })).toThrow(
      "ple options.numLevels must be an integer >= 1, received 0",
    );
    expect(() => new Ple({ ...base, numSharedExperts: 2.5 })).toThrow("received 2.5");
  });

  it("refuse invalid base options and layer sizes", () => {
    expect(() => createModel("mmoe", { ...base, numDomains: 0 })).toThrow(
      "mmoe options.numDomains must be an integer >= 1, received 0",
    );
    expect(() => createModel("mmoe", { features: base.features } as never)).toThrow(
      "mmoe options.numDomains must be an integer >= 1, received undefined",
    );
    expect(() => new SharedBottom({ ...base, features: [] })).toThrow(
      "shared-bottom options.features must be a non-empty array of feature specs, received []",
    );
    expect(() => new SharedBottom({ ...base, numTasks: 0 })).toThrow(
      "shared-bottom options.numTasks must be an integer >= 1, received 0",
    );
    expect(() => new SharedBottom({ ...base, bottomUnits: [] })).toThrow(
      "shared-bottom options.bottomUnits must be a non-empty array of positive integers, received []",
    );
    expect(() => new SharedBottom({ ...base, towerUnits: [8, -1] })).toThrow(
      "shared-bottom options.towerUnits[1] must be an integer >= 1, received -1",
    );
    expect(() => new SharedBottom({ ...base, towerMode: "global" as never })).toThrow(
      'shared-bottom options.towerMode must be one of "per-domain", "shared", received "global"',
    );
    expect(() => new Mmoe({ ...base, dropout: Number.NaN })).toThrow(
      "mmoe options.dropout must be a finite number >= 0 and <= 0.999, received NaN",
    );
    expect(() => new Mmoe({ ...base, activation: "softplus" as never })).toThrow(
      /mmoe options.activation must be one of/,
    );
    expect(() => new Star({ ...base, dropout: 1 })).toThrow(
      "star options.dropout must be a finite number >= 0 and <= 0.999, received 1",
    );
    expect(() => new Star({ ...base, normMomentum: 2 })).toThrow(
      "star options.normMomentum must be a finite number >= 0 and <= 1, received 2",
    );
    expect(() => new Star({ ...base, auxiliaryUnits: "32" as never })).toThrow(
      'star options.auxiliaryUnits must be an array of positive integers, received "32"',
    );
    expect(() => createModel("star", null as never)).toThrow("star options must be an object, received null");
  });
});
