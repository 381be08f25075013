import { Mlp } from "@mdrec/core";
import type * as tf from "@tensorflow/tfjs-core";
import { MultiDomainModelBase } from "./base.js";
import type { DomainTowers } from "./layers/domain-towers.js";
import type { ModelOutput } from "./model.js";
import { assertUnits, resolveTowerModelOptions, type TowerModelOptions } from "./options.js";

/** Options of {@link SharedBottom}. */
export interface SharedBottomOptions extends TowerModelOptions {
  /** Widths of the shared bottom MLP. Defaults to `[64, 32]`. */
  bottomUnits?: number[];
}

/**
 * Shared-bottom: one MLP shared by every domain and task, then per-domain towers.
 * `h = MLP(x)`; `logit_t = Tower_{d,t}(h)`.
 *
 * @example
 * const model = new SharedBottom({ features, numDomains: 3, bottomUnits: [64, 32], seed: 1 });
 */
export class SharedBottom extends MultiDomainModelBase<SharedBottomOptions> {
  private readonly bottom: Mlp;
  private readonly towers: DomainTowers;

  constructor(options: SharedBottomOptions) {
    const where = "shared-bottom options";
    super("shared-bottom", resolveTowerModelOptions(where, options, { bottomUnits: [64, 32] }));
    assertUnits(`${where}.bottomUnits`, this.options.bottomUnits);
    const { bottomUnits, activation, dropout } = this.options;
    this.bottom = this.track(new Mlp({ units: bottomUnits, activation, dropout, seed: this.childSeed() }));
    this.towers = this.createTowers(this.options);
  }

  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const shared = this.bottom.forward(x, training); // [B, bottomUnits.at(-1)]
    return { logits: this.towers.forward(shared, domainIds, training), routing: [], auxLosses: {} };
  }
}
