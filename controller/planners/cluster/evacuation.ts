// Stage 4, maintenance evacuation: a VM that should run on a host that must be emptied (in maintenance, or
// its Host object deleted) is shut down there and placed again, elsewhere, by a later round (a cold move).
// A Manual VM is left where it is: Vireo never changes its power state.

import { desiredPower } from "../run-strategy.ts";
import type { ClusterSituation, HostFacts, StageState } from "./types.ts";

export function evacuationStage(s: Readonly<ClusterSituation>, state: StageState): void {
  for (const f of s.vms) {
    const instance = f.instance;
    if (!instance || state.handled.has(f.id) || f.vm.metadata.deletionTimestamp) continue;
    if (instance.power !== "Starting" && instance.power !== "Running") continue;
    const why = vacating(f.instanceHost);
    if (!why || desiredPower(f.vm, instance) !== "On") continue;
    const message = `host ${instance.host} is ${why}`;
    state.actions.push({ stage: "evacuation", action: { type: "Stop", vm: f.id, mode: "Shutdown", reason: `${message}: moving the VM (cold)` } });
    state.verdicts.set(f.id, { kind: "Evacuating", host: instance.host, message });
    state.handled.add(f.id);
  }
}

/** Why a host must be emptied, if it must. */
export function vacating(host: Readonly<HostFacts> | undefined): string | undefined {
  if (host?.unavailable === "being removed") return "being removed";
  return host?.host?.spec.maintenance ? "in maintenance" : undefined;
}
