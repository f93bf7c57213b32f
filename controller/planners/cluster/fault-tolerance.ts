// Stage 4, fault tolerance (vSphere FT): every running VM its HAPolicy protects with FaultTolerance keeps a
// secondary in lockstep on another host of the cluster. After placement, so that primaries are placed first
// and secondaries take what is left, and before evacuation and balancing, which then see the secondaries'
// reservations. The rules are planners/ha/fault-tolerance.ts's:
//
// - a VM without a live secondary gets one, on a host placement's filters accept, apart from its primary,
//   within the per-host FT limits, in another rack when one can take it;
// - a secondary on a host being emptied (maintenance, removal) moves, made anew before the old one goes;
// - a VM that no longer asks for fault tolerance, or may not have it, loses its secondary.
//
// The hosts themselves make a secondary go live when its primary's host fails; this stage only finds, the
// next round, a VM running from its former secondary's host with none, and makes it a new one.

import { hostsThatFit } from "../../placement/index.ts";
import { reasonsByCount } from "../../placement/index.ts";
import type { HostExclusion } from "../../placement/types.ts";
import { vacating } from "./evacuation.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";
import {
  addLoad, faultToleranceSettingsOf, isLive, limitReached, limitsOf, placedSecondary, preferOtherRack, secondaryId, secondaryRequest, whyNeverFaultTolerant,
  type FaultToleranceLimits, type FaultToleranceLoad, type FaultToleranceNote,
} from "../ha/fault-tolerance.ts";

export function faultToleranceStage(s: Readonly<ClusterSituation>, state: StageState): Map<string, FaultToleranceNote> {
  const notes = new Map<string, FaultToleranceNote>();
  const limits = limitsOf(s.cluster);
  const load = faultToleranceLoad(s, limits);
  for (const f of s.vms) {
    const secondary = f.secondary;
    if (!f.protection.faultTolerance || f.vm.metadata.deletionTimestamp) {
      if (isLive(secondary)) unprotect(state, f, f.vm.metadata.deletionTimestamp ? "the VM is being deleted" : "its HAPolicy no longer protects it with FaultTolerance");
      continue;
    }
    const never = whyNeverFaultTolerant(f.vm, limits);
    if (never) {
      if (isLive(secondary)) unprotect(state, f, never);
      notes.set(f.id, { state: "NotProtected", reason: never });
      continue;
    }
    const power = f.instance?.power;
    if (power !== "Running") {
      notes.set(f.id, { state: "NeedsSecondary", reason: `the VM is ${power === undefined ? "on no host" : power.toLowerCase()}: its secondary is made once it runs` });
      continue;
    }
    if (secondary?.state === "Copying") {
      notes.set(f.id, { state: "Starting", secondaryHost: secondary.host, reason: `copying its memory to ${secondary.host}` });
      continue;
    }
    if (secondary?.state === "Lockstep") {
      const leaving = vacating(s.hosts.find((h) => h.name === secondary.host));
      const migrating = s.migrations.some((m) => m.vm === f.id && (m.phase === "PreCopy" || m.phase === "Switchover"));
      if (leaving && !migrating) {
        const moved = makeSecondary(s, state, f, load, limits, `its secondary's host ${secondary.host} is ${leaving}`, secondary.host);
        notes.set(f.id, { state: "Protected", secondaryHost: secondary.host, ...(moved.host ? { reason: `moving its secondary from ${secondary.host} (${leaving}) to ${moved.host}` } : { reason: `its secondary's host is ${leaving}, and no other host can take it: ${moved.why}` }) });
      } else {
        notes.set(f.id, { state: "Protected", secondaryHost: secondary.host });
      }
      continue;
    }
    // None yet, or the last one failed (its host failed, it went live, it lost the race to go live).
    const why = secondary?.state === "Failed" ? `its secondary on ${secondary.host} failed (${secondary.reason ?? "no reason given"})` : "fault tolerance is declared";
    const made = makeSecondary(s, state, f, load, limits, why);
    notes.set(f.id, made.host
      ? { state: "Starting", secondaryHost: made.host, reason: `making its secondary on ${made.host}` }
      : { state: made.limited ? "NotProtected" : "NeedsSecondary", reason: made.why });
  }
  return notes;
}

/** The FT VMs on each host now, primaries and live secondaries alike: those that may have fault tolerance. */
function faultToleranceLoad(s: Readonly<ClusterSituation>, limits: Readonly<FaultToleranceLimits>): FaultToleranceLoad {
  const load: FaultToleranceLoad = new Map();
  for (const f of s.vms) {
    if (!f.protection.faultTolerance || whyNeverFaultTolerant(f.vm, limits) !== undefined) continue;
    if (f.instance && f.instance.power !== "Off") addLoad(load, f.instance.host, f.vm.spec.cpu);
    if (isLive(f.secondary)) addLoad(load, f.secondary.host, f.secondary.cpu);
  }
  return load;
}

/**
 * Asks for a secondary on the best host that may take it (`replacing` the one on that host, if any),
 * counting it at once on that host for the rest of the round. Returns its host, or why there is none and
 * whether only the FT limits stood in the way.
 */
function makeSecondary(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, load: FaultToleranceLoad, limits: Readonly<FaultToleranceLimits>, reason: string, replacing?: string): { host?: string; why: string; limited: boolean } {
  const primary = f.instance!.host;
  const request = secondaryRequest(f.vm);
  const excluded: HostExclusion[] = [{ host: primary, reason: "runs its fault-tolerant primary" }];
  if (replacing !== undefined) excluded.push({ host: replacing, reason: "holds its secondary now" });
  const apart = new Map(state.snapshot.apart ?? []);
  apart.set(request.id, excluded);
  // The secondary it replaces still holds its room until the new one is in lockstep: it stays in the snapshot.
  const fit = hostsThatFit({ ...state.snapshot, apart }, request);
  const limited: Record<string, number> = {};
  const allowed = fit.fits.filter((host) => {
    const reached = limitReached(load, host, f.vm.spec.cpu, limits);
    if (reached) limited[reached] = (limited[reached] ?? 0) + 1;
    return reached === undefined;
  });
  const labelsOf = (host: string) => s.snapshot.hosts.find((h) => h.name === host)?.labels;
  const host = preferOtherRack(allowed, labelsOf(primary) ?? {}, labelsOf);
  if (host === undefined) {
    const hosts = s.snapshot.hosts.length;
    if (hosts < 2) return { why: "fault tolerance needs a second host in the cluster", limited: true };
    const refusals = [...reasonsByCount(fit.rejected), ...Object.entries(limited)].map(([why, n]) => `${n} ${why}`);
    const onlyLimits = fit.fits.length > 0;
    return { why: `no host can take its secondary: ${refusals.join(", ") || "no other host"}`, limited: onlyLimits };
  }
  state.actions.push({ stage: "faultTolerance", action: { type: "Protect", vm: f.id, host, key: `ft:${f.id}@${host}`, settings: faultToleranceSettingsOf(s.cluster, f.vm), reason } });
  const namespace = f.vm.metadata.namespace ?? "default";
  state.snapshot = {
    ...state.snapshot,
    placed: [...state.snapshot.placed, { ...placedSecondary({ vm: f.id, key: "", host, primaryHost: primary, state: "Copying", since: s.now, cpu: f.vm.spec.cpu, memoryMiB: f.vm.spec.memoryMiB }, namespace), id: `${secondaryId(f.id)}@${host}` }],
    apart: new Map([...(state.snapshot.apart ?? []), [f.id, [{ host, reason: "holds its fault-tolerant secondary" }]], [secondaryId(f.id), [{ host: primary, reason: "runs its fault-tolerant primary" }]]]),
  };
  addLoad(load, host, f.vm.spec.cpu);
  return { host, why: reason, limited: false };
}

function unprotect(state: StageState, f: Readonly<VmFacts>, reason: string): void {
  state.actions.push({ stage: "faultTolerance", action: { type: "Unprotect", vm: f.id, reason } });
}

/**
 * Balancing's move of a secondary: a new one made on `to` (the old one dropped by the hosts once the new is
 * in lockstep), counted there at once.
 */
export function moveSecondary(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, to: string, reason: string): void {
  state.actions.push({ stage: "balancing", action: { type: "Protect", vm: f.id, host: to, key: `ft:${f.id}@${to}`, settings: faultToleranceSettingsOf(s.cluster, f.vm), reason } });
  const namespace = f.vm.metadata.namespace ?? "default";
  state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, { id: `${secondaryId(f.id)}@${to}`, namespace, labels: {}, host: to, cpu: f.vm.spec.cpu, memoryMiB: f.vm.spec.memoryMiB }] };
}
