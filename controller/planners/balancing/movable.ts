// Which VMs balancing may move, and what each asks of its host. Balancing moves live only, and only VMs no
// one else is dealing with: a VM that is not running, that its policy keeps in place (Never) or moves only
// cold (Cold), that migrates now, that a migration request names, that an earlier stage of the round dealt
// with, or that a recent balancing move holds down, stays where it is.

import type { VmRequest } from "../../placement/index.ts";
import { requestOf } from "../../placement/index.ts";
import type { ClusterSituation, HoldDown, StageState, VmFacts } from "../cluster/types.ts";
import { PRIORITY_RANK } from "../ha/protection.ts";
import { desiredPower } from "../run-strategy.ts";
import { secondaryId, secondaryRequest } from "../ha/fault-tolerance.ts";
import { heldDown } from "./hold-down.ts";
import type { Demand } from "./load.ts";

export interface Movable {
  facts: VmFacts;
  id: string;
  /** The host it runs on. */
  host: string;
  demand: Demand;
  /** Its placement request, at the size it runs with. */
  request: VmRequest;
  /** Its restart priority's rank (higher: restarted first, moved last). */
  rank: number;
  /** Until when a recent balancing move holds it down, if one does: only an approval moves it. */
  heldUntil?: number;
}

/** The VMs under way in a live migration the hosts report. */
export function migratingNow(s: Readonly<ClusterSituation>): Set<string> {
  return new Set(s.migrations.filter((m) => m.phase === "PreCopy" || m.phase === "Switchover").map((m) => m.vm));
}

/**
 * The VMs balancing may move, by id, among those on `hosts` (the hosts that take part). Held-down VMs are
 * listed with `heldUntil`: the search leaves them, an approved recommendation may still move them.
 */
export function movableVms(s: Readonly<ClusterSituation>, state: Readonly<StageState>, hosts: ReadonlySet<string>, holdDowns: ReadonlyMap<string, HoldDown>): Map<string, Movable> {
  const migrating = migratingNow(s);
  const requested = new Set(s.requests.map((r) => `${r.metadata.namespace ?? "default"}/${r.spec.vmName}`));
  const movable = new Map<string, Movable>();
  for (const f of s.vms) {
    const instance = f.instance;
    if (!instance || !hosts.has(instance.host)) continue;
    if (whyStays(f, state, migrating, requested) !== undefined) continue;
    const record = holdDowns.get(f.id);
    movable.set(f.id, {
      facts: f,
      id: f.id,
      host: instance.host,
      demand: { cpu: instance.cpuUsage, memoryMiB: instance.config.memoryMiB },
      request: { ...requestOf(f.vm), cpu: instance.config.cpu, memoryMiB: instance.config.memoryMiB },
      rank: PRIORITY_RANK[f.protection.priority],
      ...(heldDown(record, s.now) ? { heldUntil: record!.until } : {}),
    });
  }
  // A fault-tolerant secondary in lockstep moves like a VM (its move is a new secondary made first, then the
  // old one dropped), never onto its primary's host: placement keeps the pair apart.
  const protecting = new Set(state.actions.filter((a) => a.stage === "faultTolerance").map((a) => a.action.vm));
  for (const f of s.vms) {
    const secondary = f.secondary;
    if (secondary?.state !== "Lockstep" || !hosts.has(secondary.host) || !f.protection.faultTolerance) continue;
    if (protecting.has(f.id) || whyStays(f, state, migrating, requested) !== undefined) continue;
    const id = secondaryId(f.id);
    const record = holdDowns.get(id);
    movable.set(id, {
      facts: f,
      id,
      host: secondary.host,
      // With fast checkpointing a secondary executes nothing: it holds memory, and next to no CPU.
      demand: { cpu: 0, memoryMiB: secondary.memoryMiB },
      request: { ...secondaryRequest(f.vm), cpu: secondary.cpu, memoryMiB: secondary.memoryMiB },
      rank: PRIORITY_RANK[f.protection.priority],
      ...(heldDown(record, s.now) ? { heldUntil: record!.until } : {}),
    });
  }
  return movable;
}

/** Why balancing leaves the VM where it is, whatever the load; undefined when it may move it. */
export function whyStays(f: Readonly<VmFacts>, state: Readonly<StageState>, migrating: ReadonlySet<string>, requested: ReadonlySet<string>): string | undefined {
  const instance = f.instance;
  if (instance?.power !== "Running") return "not running";
  if (f.vm.metadata.deletionTimestamp) return "being deleted";
  const policy = f.vm.spec.migration.policy;
  if (policy === "Never") return "its migration policy is Never";
  if (policy === "Cold") return "its migration policy is Cold, and balancing moves VMs live only";
  if (migrating.has(f.id)) return "it migrates now";
  if (requested.has(f.id)) return "a migration request names it";
  if (state.handled.has(f.id)) return "an earlier stage dealt with it this round";
  if (desiredPower(f.vm, instance) === "Off") return "it is to be stopped";
  return undefined;
}
