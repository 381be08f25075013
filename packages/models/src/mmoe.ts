import { assertInteger } from "@mdrec/core";
import { ExpertPool, mixExperts } from "@mdrec/experts";
import { SoftmaxGate } from "@mdrec/gating";
import type * as tf from "@tensorflow/tfjs-core";
import { type ExpertCounts, MultiDomainModelBase } from "./base.js";
import type { DomainTowers } from "./layers/domain-towers.js";
import type { ModelOutput } from "./model.js";
import { assertUnits, resolveTowerModelOptions, type TowerModelOptions } from "./options.js";

/** Options of {@link Mmoe}. */
export interface MmoeOptions extends TowerModelOptions {
  /** Number of experts N. Defaults to `numDomains` (one expert per domain, the Scenario-Wise-Rec setting). */
  numExperts?: number;
  /** Widths of each expert MLP. Defaults to `[16]` (Scenario-Wise-Rec). */
  expertUnits?: number[];
}

/**
 * MMoE (Ma et al., KDD 2018) for multi-domain data: N experts shared by everyone, one softmax
 * gate per (domain, task) and one tower per (domain, task):
 * `f_t = sum_i softmax(W_{d,t} x)_i E_i(x)`, `logit_t = Tower_{d,t}(f_t)`.
 *
 * @example
 * const model = new Mmoe({ features, numDomains: 3, numExperts: 4, seed: 1 });
 */
export class Mmoe extends MultiDomainModelBase<MmoeOptions> {
  private readonly experts: ExpertPool;
  /** One gate per task, each with a matrix per domain. */
  private readonly gates: SoftmaxGate[];
  private readonly towers: DomainTowers;

  constructor(options: MmoeOptions) {
    const where = "mmoe options";
    super(
      "mmoe",
      resolveTowerModelOptions(where, options, {
        numExperts: (base) => base.numDomains,
        expertUnits: [16],
      }),
    );
    const { numExperts, expertUnits, activation, dropout, numDomains } = this.options;
    assertInteger(`${where}.numExperts`, numExperts, 1);
    assertUnits(`${where}.expertUnits`, expertUnits);
    this.experts = this.track(
      new ExpertPool({
        numExperts,
        units: expertUnits,
        activation,
        dropout,
        seed: this.childSeed(),
        name: "mmoe/experts",
      }),
    );
    this.gates = Array.from({ length: this.numTasks }, (_, task) =>
      this.track(
        new SoftmaxGate({
          numExperts,
          domainConditioning: "per-domain",
          numDomains,
          seed: this.childSeed(),
          name: `mmoe/gate_task${task}`,
        }),
      ),
    );
    this.towers = this.createTowers(this.options);
  }

  protected override expertCounts(): ExpertCounts {
    return { expertsPerRow: this.options.numExperts, totalExperts: this.options.numExperts };
  }

  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    const expertOutputs = this.experts.dense(x, training); // [B, N, expertDim]
    const routing = this.gates.map((gate) => gate.route(x, domainIds, training)); // per task, k = N
    const mixed = routing.map((taskRouting) => mixExperts(expertOutputs, taskRouting)); // per task [B, expertDim]
    return { logits: this.towers.forward(mixed, domainIds, training), routing, auxLosses: {} };
  }
}
