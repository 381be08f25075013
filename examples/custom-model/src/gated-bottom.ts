import { assertInteger, assertNumber, assertOneOf, Mlp } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { TopKGate } from "@mdrec/gating";
import {
  assertUnits,
  type DomainTowers,
  type ExpertCounts,
  type ModelOutput,
  MultiDomainModelBase,
  registerModel,
  resolveTowerModelOptions,
  type TowerModelOptions,
} from "@mdrec/models";
import type * as tf from "@tensorflow/tfjs-core";

/** Registry name of {@link GatedBottom}. */
export const GATED_BOTTOM = "gated-bottom";

/** Options of {@link GatedBottom}: the base, tower and MLP options of every model, plus its own. */
export interface GatedBottomOptions extends TowerModelOptions {
  /** Widths of the shared bottom MLP. Defaults to `[64]`. */
  bottomUnits?: number[];
  /** Experts N on top of the bottom. Defaults to `numDomains`. */
  numExperts?: number;
  /** Experts each row keeps, in `[1, numExperts]`. Defaults to 1. */
  k?: number;
  /** Widths of each expert MLP. Defaults to `[32]`. */
  expertUnits?: number[];
  /** `"sparse"`: each expert runs only on its rows; `"dense"`: every expert on every row. Defaults to `"sparse"`. */
  dispatch?: "sparse" | "dense";
  /** Weight of the gate's switch load-balance loss (`N * sum_i f_i P_i`), >= 0. Defaults to 0.01. */
  loadBalance?: number;
}

/**
 * A domain-gated shared bottom, authored from mdrec's blocks:
 *
 * ```
 * x       = embed(batch)                          // FeatureEmbedding (the base class)
 * h       = Bottom(x)                             // Mlp shared by every domain
 * routing = TopKGate_d(h)                         // one gate matrix per domain, noisy top-k
 * f       = sum_{i in topk} w_i E_i(h)            // ExpertPool, sparse (or dense + mixExperts)
 * logit   = Tower_d(f)                            // DomainTowers
 * aux     = loadBalance * N * sum_i f_i P_i       // the gate's switch load-balance loss
 * ```
 *
 * Unlike MMoE, the experts sit on a shared representation and each row computes only k of them;
 * unlike CESAA, there are no always-on shared experts and no mutual-information term.
 *
 * @example
 * const model = createModel("gated-bottom", { features, numDomains: 4, numExperts: 4, k: 1, seed: 1 });
 */
export class GatedBottom extends MultiDomainModelBase<GatedBottomOptions> {
  private readonly bottom: Mlp;
  private readonly gate: TopKGate;
  private readonly experts: ExpertPool;
  private readonly towers: DomainTowers;

  constructor(options: GatedBottomOptions) {
    const where = `${GATED_BOTTOM} options`;
    super(
      GATED_BOTTOM,
      resolveTowerModelOptions(where, options, {
        bottomUnits: [64],
        numExperts: (base) => base.numDomains,
        k: 1,
        expertUnits: [32],
        dispatch: "sparse",
        loadBalance: 0.01,
      }),
    );
    const { bottomUnits, numExperts, k, expertUnits, dispatch, loadBalance, activation, dropout } =
      this.options;
    assertUnits(`${where}.bottomUnits`, bottomUnits);
    assertInteger(`${where}.numExperts`, numExperts, 1);
    assertInteger(`${where}.k`, k, 1, numExperts, `numExperts=${numExperts}`);
    assertUnits(`${where}.expertUnits`, expertUnits);
    assertOneOf(`${where}.dispatch`, dispatch, ["sparse", "dense"]);
    assertNumber(`${where}.loadBalance`, loadBalance, { min: 0 });
    // Blocks are tracked in creation order, which is the order of the saved weights.
    this.bottom = this.track(
      new Mlp({
        units: bottomUnits,
        activation,
        dropout,
        seed: this.childSeed(),
        name: `${GATED_BOTTOM}/bottom`,
      }),
    );
    this.gate = this.track(
      new TopKGate({
        numExperts,
        k,
        domainConditioning: "per-domain",
        numDomains: this.numDomains,
        loadBalance: { load: loadBalance },
        seed: this.childSeed(),
        name: `${GATED_BOTTOM}/gate`,
      }),
    );
    this.experts = this.track(
      new ExpertPool({
        numExperts,
        units: expertUnits,
        activation,
        dropout,
        seed: this.childSeed(),
        name: `${GATED_BOTTOM}/experts`,
      }),
    );
    this.towers = this.createTowers(this.options);
  }

  /** k experts per row with sparse dispatch, all N with dense. */
  protected override expertCounts(): ExpertCounts {
    const { numExperts, k, dispatch } = this.options;
    return { expertsPerRow: dispatch === "sparse" ? k : numExperts, totalExperts: numExperts };
  }

  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const h = this.bottom.forward(x, training); // [B, bottomUnits.at(-1)]
    const routing = this.gate.route(h, domainIds, training); // indices, weights [B, k]; probs [B, N]
    const mixed =
      this.options.dispatch === "sparse"
        ? this.experts.sparse(h, routing, training) // [B, expertUnits.at(-1)]
        : mixExperts(this.experts.dense(h, training), routing); // [B, N, d] -> [B, d]
    return {
      logits: this.towers.forward(mixed, domainIds, training), // [B, numTasks]
      routing: [routing],
      auxLosses: this.gate.auxiliaryLosses(routing), // { load } when loadBalance > 0
    };
  }
}

declare module "@mdrec/models" {
  interface ModelOptionsByName {
    "gated-bottom": GatedBottomOptions;
  }
}

// Registered on import, like the built-in models: createModel, loadModel and `mdrec compare` find it by name.
registerModel(GATED_BOTTOM, (options) => new GatedBottom(options as GatedBottomOptions), {
  description:
    "Domain-gated shared bottom: a shared MLP, a per-domain noisy top-k gate over experts, per-domain towers",
  presets: { tiny: { bottomUnits: [16], numExperts: 4, k: 1, expertUnits: [16], towerUnits: [8] } },
});
