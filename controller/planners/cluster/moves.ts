// What a live move needs whichever stage asks for it: a target the VM may go to (placement's filters and
// scores, and a CPU that can run the guest as it is), and the Migrate action itself.

import { hostsThatFit, requestOf } from "../../placement/index.ts";
import type { HostFit } from "../../placement/index.ts";
import { placedVm } from "../ha/restart-order.ts";
import { migrationSettingsOf } from "../migration/settings.ts";
import type { ClusterAction, ClusterSituation, HostFacts, StageState, VmFacts } from "./types.ts";

/**
 * Why `target` cannot run the guest as it runs now, or undefined when it can: another hypervisor type (that
 * takes a conversion, cold: conversions.ts), or its CPU (BEHAVIOUR.md, Live migration: the guest sees the
 * cluster's baseline, or its first host's features; Intel↔AMD is refused).
 */
export function cpuIncompatibility(f: Readonly<VmFacts>, source: Readonly<HostFacts> | undefined, target: Readonly<HostFacts>): string | undefined {
  const cpu = target.host?.spec.cpu;
  if (!cpu) return `host ${target.name} is not declared`;
  const from = source?.host?.spec.hypervisor;
  if (from !== undefined && from !== target.host!.spec.hypervisor) return `host ${target.name} runs ${target.host!.spec.hypervisor}, the VM runs on ${from}: a live migration cannot change hypervisor type (a conversion can: targetHypervisor)`;
  const vendor = source?.host?.spec.cpu.vendor;
  if (vendor !== undefined && vendor !== cpu.vendor) return `host ${target.name} has an ${cpu.vendor} CPU, the VM runs on ${vendor}: live migration between CPU vendors is refused`;
  const have = new Set(cpu.features);
  const missing = (f.instance?.config.cpuFeatures ?? []).filter((feature) => !have.has(feature));
  if (missing.length > 0) return `host ${target.name} lacks CPU feature${missing.length === 1 ? "" : "s"} ${missing.join(", ")} the guest sees (a cluster cpuBaseline below it would hide it from guests)`;
  return undefined;
}

/** The hosts placement would move the VM to now, best first, that can also run its guest as it is. */
export function liveTargets(s: Readonly<ClusterSituation>, state: Readonly<StageState>, f: Readonly<VmFacts>): { targets: string[]; fit: HostFit; incompatible: string[] } {
  // The VM is listed as placed on its source: placement sees it as moving, not as competing with itself.
  const fit = hostsThatFit(state.snapshot, requestOf(f.vm));
  const source = s.hosts.find((h) => h.name === f.instance?.host);
  const incompatible: string[] = [];
  const targets = fit.fits.filter((name) => {
    if (name === f.instance?.host) return false;
    const target = s.hosts.find((h) => h.name === name);
    const why = target ? cpuIncompatibility(f, source, target) : "not a member";
    if (why) incompatible.push(why);
    return why === undefined;
  });
  return { targets, fit, incompatible };
}

/** Asks for a live move: the action, and the VM counted on its target too while it moves (both hold it). */
export function moveLive(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, target: string, stage: "evacuation" | "migrations" | "balancing", key: string, reason: string): void {
  const step: ClusterAction = { stage, action: { type: "Migrate", vm: f.id, target, key, settings: migrationSettingsOf(s.cluster, f.vm), reason } };
  state.actions.push(step);
  state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, { ...placedVm(requestOf(f.vm), target), id: `${f.id}@${target}` }] };
  state.handled.add(f.id);
  state.verdicts.set(f.id, { kind: "Migrating", target, message: `migrating live from ${f.instance?.host} to ${target}: ${reason}` });
}
