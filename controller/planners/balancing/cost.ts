// What a balancing move costs, and whether what it gains is worth it (BEHAVIOUR.md, Balancing: moves whose
// gain does not outlast their cost are dropped; DRS 7.x prefers moving smaller VMs for the same gain).
//
// The cost is what the live migration copies — the guest's memory and what it dirties while the copy runs
// (planners/migration/estimate.ts) — plus its predicted pause at switch-over, counted as 10 MiB per ms
// (300 ms, QEMU's default downtime limit, weighs as much as copying 3 GiB). A migration predicted not to
// converge is never proposed.
//
// The gain is measured in load moved across a gap: a move lowering the cluster's imbalance from I to I′ on
// n hosts gains n (I² − I′²) / 2, which for two hosts of equal size is the share of a host that moves times
// the gap in load it leaves between them. A preferred rule repaired adds 0.05 per 100 of its weight (as much
// as moving a tenth of a host across a half-host gap). A move is worth making when its gain per unit of cost
// (cost as a share of the mean host's memory) reaches the threshold's floor: for a memory move between
// hosts of equal size, when the load gap left between source and target, times the share of the copy
// that is the guest's memory, is at least 10 % (threshold 2), 5 % (3), 2 % (4) or 1 % (5). Moves that close
// a small gap with a large or restless VM fail it; they would be undone by the next swing of load.

import type { VirtualMachine, HostCluster } from "../../api/types.ts";
import { estimateMigration } from "../migration/estimate.ts";
import { dirtyRateOf, migrationSettingsOf } from "../migration/settings.ts";

/** MiB a millisecond of predicted switch-over pause weighs as. */
export const DOWNTIME_WEIGHT_MIB_PER_MS = 10;

/** Gain units a repaired preferred rule of weight 100 is worth. */
export const PREFERENCE_GAIN_PER_100 = 0.05;

/** The least gain per unit of cost a move must bring, by threshold (2–5; threshold 1 moves nothing). */
export const WORTH_FLOOR: Readonly<Record<number, number>> = Object.freeze({ 2: 0.1, 3: 0.05, 4: 0.02, 5: 0.01 });

export interface MoveCost {
  /** MiB the migration is predicted to copy. */
  transferMiB: number;
  /** Its predicted pause at switch-over, ms. */
  downtimeMs: number;
  /** The cost the gain is weighed against, MiB. */
  weighedMiB: number;
  /** Why the migration is predicted to fail, when it is. */
  fails?: string;
}

export function moveCost(cluster: Readonly<HostCluster>, vm: Readonly<VirtualMachine>, memoryMiB: number): MoveCost {
  const estimate = estimateMigration({ memoryMiB, dirtyRateMiBps: dirtyRateOf(vm), settings: migrationSettingsOf(cluster, vm) });
  return {
    transferMiB: estimate.transferMiB,
    downtimeMs: estimate.downtimeMs,
    weighedMiB: estimate.transferMiB + DOWNTIME_WEIGHT_MIB_PER_MS * estimate.downtimeMs,
    ...(estimate.converges ? {} : { fails: estimate.reason ?? "does not converge" }),
  };
}

/** The gain of a move, in load moved across a gap: n (I² − I′²) / 2 plus what it repairs of preferred rules. */
export function moveGain(hosts: number, before: number, after: number, preferenceDelta: number): number {
  return (hosts * (before * before - after * after)) / 2 + (PREFERENCE_GAIN_PER_100 * preferenceDelta) / 100;
}

/** Gain per unit of cost: the cost counted as a share of the mean host's memory. */
export function worth(gain: number, cost: Readonly<MoveCost>, meanHostMemoryMiB: number): number {
  const share = cost.weighedMiB / Math.max(meanHostMemoryMiB, 1);
  return share > 0 ? gain / share : Infinity;
}

export function worthFloor(threshold: number): number {
  return WORTH_FLOOR[Math.min(5, Math.max(2, Math.round(threshold)))] ?? Infinity;
}
