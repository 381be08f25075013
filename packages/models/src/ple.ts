import { assertInteger } from "@mdrec/core";
import { ExpertPool, mixExperts, type Routing } from "@mdrec/experts";
import { CgcGate, SoftmaxGate } from "@mdrec/gating";
import * as tf from "@tensorflow/tfjs-core";
import { type ExpertCounts, MultiDomainModelBase } from "./base.js";
import type { DomainTowers } from "./layers/domain-towers.js";
import type { ModelOutput } from "./model.js";
import { assertUnits, resolveTowerModelOptions, type TowerModelOptions } from "./options.js";

/** Options of {@link Ple}. */
export interface PleOptions extends TowerModelOptions {
  /** Stacked CGC levels. Defaults to 1 (the Scenario-Wise-Rec setting). */
  numLevels?: number;
  /** Shared experts per level (>= 0). Defaults to 1. */
  numSharedExperts?: number;
  /** Specific experts per domain (and task) per level (>= 1). Defaults to 2. */
  numSpecificExperts?: number;
  /** Widths of each expert MLP. Defaults to `[16]`. */
  expertUnits?: number[];
}

/** The blocks of one CGC level. */
interface CgcLevel {
  /** S shared experts, fed the shared path (absent when S = 0). */
  shared: ExpertPool | null;
  /** Per task, D * K specific experts (K per domain), fed that task's path. */
  specific: ExpertPool[];
  /** Per task, the CGC gate mixing a row's domain's K specific experts with the S shared ones. */
  cgcGates: CgcGate[];
  /** Mixes every expert of the level into the next level's shared path (non-final levels only). */
  sharedGate: SoftmaxGate | null;
}

/**
 * PLE (Tang et al., RecSys 2020) with domains as PLE's groups: every level has S shared experts
 * and, per task, K specific experts per domain. For a row of domain d and task t a CGC gate
 * mixes `[the K experts of (d, t) ; the S shared experts]` with `softmax(W_{d,t} f_t)`; on
 * non-final levels a shared gate mixes all of the level's experts into the next level's shared
 * input. The last level's task outputs feed the (domain, task) towers. All experts run densely,
 * as in the paper.
 *
 * @example
 * const model = new Ple({ features, numDomains: 3, numLevels: 2, numSpecificExperts: 2, seed: 1 });
 */
export class Ple extends MultiDomainModelBase<PleOptions> {
  private readonly levels: CgcLevel[];
  private readonly towers: DomainTowers;

  constructor(options: PleOptions) {
    const where = "ple options";
    super(
      "ple",
      resolveTowerModelOptions(where, options, {
        numLevels: 1,
        numSharedExperts: 1,
        numSpecificExperts: 2,
        expertUnits: [16],
      }),
    );
    const { numLevels, numSharedExperts, numSpecificExperts, expertUnits, activation, dropout, numDomains } =
      this.options;
    assertInteger(`${where}.numLevels`, numLevels, 1);
    assertInteger(`${where}.numSharedExperts`, numSharedExperts, 0);
    assertInteger(`${where}.numSpecificExperts`, numSpecificExperts, 1);
    assertUnits(`${where}.expertUnits`, expertUnits);
    const tasks = Array.from({ length: this.numTasks }, (_, task) => task);
    const pool = (numExperts: number, name: string) =>
      this.track(
        new ExpertPool({ numExperts, units: expertUnits, activation, dropout, seed: this.childSeed(), name }),
      );
    this.levels = Array.from({ length: numLevels }, (_, level) => ({
      shared: numSharedExperts > 0 ? pool(numSharedExperts, `ple/level${level}_shared`) : null,
      specific: tasks.map((task) =>
        pool(numDomains * numSpecificExperts, `ple/level${level}_task${task}_specific`),
      ),
      cgcGates: tasks.map((task) =>
        this.track(
          new CgcGate({
            numGroups: numDomains,
            numSharedExperts,
            numSpecificExperts,
            seed: this.childSeed(),
            name: `ple/level${level}_task${task}_cgc`,
          }),
        ),
      ),
      sharedGate:
        level < numLevels - 1
          ? this.track(
              new SoftmaxGate({
                numExperts: numSharedExperts + this.numTasks * numDomains * numSpecificExperts,
                seed: this.childSeed(),
                name: `ple/level${level}_shared_gate`,
              }),
            )
          : null,
    }));
    this.towers = this.createTowers(this.options);
  }

  protected override expertCounts(): ExpertCounts {
    const { numLevels, numSharedExperts, numSpecificExperts, numDomains } = this.options;
    const perLevel = numSharedExperts + this.numTasks * numDomains * numSpecificExperts;
    return { expertsPerRow: numLevels * perLevel, totalExperts: numLevels * perLevel };
  }

  protected forward(x: tf.Tensor2D, domainIds: tf.Tensor1D, training: boolean): ModelOutput {
    let sharedInput = x; // [B, dIn] the shared path
    let taskInputs = this.levels[0]!.specific.map(() => x); // per task [B, dIn]
    const routing: Routing[] = [];
    for (const level of this.levels) {
      const shared = level.shared ? [level.shared.dense(sharedInput, training)] : []; // [B, S, d]
      const specific = level.specific.map((pool, task) => pool.dense(taskInputs[task]!, training)); // per task [B, D*K, d]
      const taskRouting = level.cgcGates.map((gate, task) =>
        gate.route(taskInputs[task]!, domainIds, training),
      );
      routing.push(...taskRouting);
      taskInputs = taskRouting.map((cgc, task) =>
        mixExperts(tf.concat([...shared, specific[task]!], 1), cgc),
      ); // per task [B, d]
      if (level.sharedGate) {
        const sharedRouting = level.sharedGate.route(sharedInput, domainIds, training);
        routing.push(sharedRouting);
        sharedInput = mixExperts(tf.concat([...shared, ...specific], 1), sharedRouting); // [B, d]
      }
    }
    return { logits: this.towers.forward(taskInputs, domainIds, training), routing, auxLosses: {} };
  }
}
