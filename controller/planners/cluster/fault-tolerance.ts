// The fault tolerance stage (vSphere FT): every running VM its HAPolicy protects with FaultTolerance keeps a
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

import { hostsThatFit, placeBatch, VM_ANTI_AFFINITY } from "../../placement/index.ts";
import type { HostExclusion, PlacedVm } from "../../placement/types.ts";
import { vacating } from "./evacuation.ts";
import type { ClusterSituation, StageState, VmFacts } from "./types.ts";
import {
  addLoad, faultToleranceSettingsOf, HOLDS_SECONDARY_NOW, isFaultToleranceRule, isLive, limitReached, limitsOf, placedSecondary, RACK_LABEL, RUNS_PRIMARY,
  secondaryId, secondaryRequest, whyNeverFaultTolerant, withPairsApart, ZONE_LABEL,
  type FaultTolerantPair, type FaultToleranceLimits, type FaultToleranceLoad, type FaultToleranceNote,
} from "../ha/fault-tolerance.ts";

export function faultToleranceStage(s: Readonly<ClusterSituation>, state: StageState): Map<string, FaultToleranceNote> {
  const notes = new Map<string, FaultToleranceNote>();
  const limits = limitsOf(s.cluster);
  const load = faultToleranceLoad(s, limits);
  const needs: Need[] = [];
  for (const f of s.vms) {
    const { note, need } = judge(s, state, f, limits);
    if (note) notes.set(f.id, note);
    if (need) needs.push(need);
  }
  for (const outcome of placeSecondaries(s, state, needs, load, limits)) {
    const { need: { f, replacing }, host, why, limited } = outcome;
    if (replacing !== undefined) {
      notes.set(f.id, { state: "Protected", secondaryHost: replacing, reason: host ? `moving its secondary from ${replacing} (being emptied) to ${host}` : `its secondary's host ${replacing} is being emptied, and no other host can take it: ${why}` });
    } else {
      notes.set(f.id, host ? { state: "Starting", secondaryHost: host, reason: `making its secondary on ${host}` } : { state: limited ? "NotProtected" : "NeedsSecondary", reason: why });
    }
  }
  return notes;
}

/**
 * One VM's fault tolerance this round: what its status says, and whether it needs a secondary made. A
 * secondary it may no longer have, or one that would break a rule were it to go live, is dropped here.
 */
function judge(s: Readonly<ClusterSituation>, state: StageState, f: Readonly<VmFacts>, limits: Readonly<FaultToleranceLimits>): { note?: FaultToleranceNote; need?: Need } {
  const secondary = f.secondary;
  if (!f.protection.faultTolerance || f.vm.metadata.deletionTimestamp) {
    if (isLive(secondary)) unprotect(state, f, f.vm.metadata.deletionTimestamp ? "the VM is being deleted" : "its HAPolicy no longer protects it with FaultTolerance");
    return {};
  }
  const never = whyNeverFaultTolerant(f.vm, limits);
  if (never) {
    if (isLive(secondary)) unprotect(state, f, never);
    return { note: { state: "NotProtected", reason: never } };
  }
  const power = f.instance?.power;
  if (power !== "Running") return { note: { state: "NeedsSecondary", reason: `the VM is ${power === undefined ? "on no host" : power.toLowerCase()}: its secondary is made once it runs` } };
  const conflict = isLive(secondary) ? antiAffineOn(state, f, secondary.host) : undefined;
  if (conflict) {
    unprotect(state, f, conflict);
    return { note: { state: "NeedsSecondary", reason: conflict } };
  }
  if (secondary?.state === "Copying") return { note: { state: "Starting", secondaryHost: secondary.host, reason: `copying its memory to ${secondary.host}` } };
  if (secondary?.state === "Lockstep") {
    const leaving = vacating(s.hosts.find((h) => h.name === secondary.host));
    const migrating = s.migrations.some((m) => m.vm === f.id && (m.phase === "PreCopy" || m.phase === "Switchover"));
    const note: FaultToleranceNote = { state: "Protected", secondaryHost: secondary.host };
    return leaving && !migrating ? { note, need: { f, why: `its secondary's host ${secondary.host} is ${leaving}`, replacing: secondary.host } } : { note };
  }
  // None yet, or the last one failed (its host failed, it went live, it lost the race to go live).
  return { need: { f, why: secondary?.state === "Failed" ? `its secondary on ${secondary.host} failed (${secondary.reason ?? "no reason given"})` : "fault tolerance is declared" } };
}

/** A VM that needs a secondary made: a first one, one to replace a failed one, or one to move off `replacing`. */
interface Need {
  f: Readonly<VmFacts>;
  why: string;
  replacing?: string;
}

interface Outcome {
  need: Need;
  /** Where its secondary is asked for, or undefined when nowhere. */
  host?: string;
  why: string;
  /** Only fault tolerance's own rules stood in the way (its primary's host, the per-host limits), not room. */
  limited: boolean;
}

/** Rounds of placement at most: a round places what fits, the per-host limits turn some back for the next. */
const MAX_ROUNDS = 4;

/**
 * Places the secondaries in a few batches of placement (its filters and scores, with a preference for another
 * rack than the primary's, and the pair kept apart), then holds each placed one to the per-host limits in
 * the batch's order; those the limits turn back try again in the next round, with the full hosts excluded.
 * Each secondary asked for is counted at once in the snapshot and the limits, for the rest of the round.
 */
function placeSecondaries(s: Readonly<ClusterSituation>, state: StageState, needs: readonly Need[], load: FaultToleranceLoad, limits: Readonly<FaultToleranceLimits>): Outcome[] {
  const outcomes: Outcome[] = [];
  if (needs.length === 0) return outcomes;
  if (s.snapshot.hosts.length < 2) return needs.map((need) => ({ need, why: "fault tolerance needs a second host in the cluster", limited: true }));
  const rackOf = new Map(s.snapshot.hosts.map((h) => [h.name, h.labels[RACK_LABEL] ?? h.labels[ZONE_LABEL]]));
  const rackKey = s.snapshot.hosts.some((h) => h.labels[RACK_LABEL] !== undefined) ? RACK_LABEL : ZONE_LABEL;
  let pending = [...needs];
  for (let round = 0; round < MAX_ROUNDS && pending.length > 0; round++) {
    const apart = new Map(state.snapshot.apart ?? []);
    const requests = pending.map((need) => {
      const primary = need.f.instance!.host;
      const excluded: HostExclusion[] = [{ host: primary, reason: RUNS_PRIMARY }];
      if (need.replacing !== undefined) excluded.push({ host: need.replacing, reason: HOLDS_SECONDARY_NOW });
      for (const host of s.snapshot.hosts) {
        const reached = limitReached(load, host.name, need.f.vm.spec.cpu, limits);
        if (reached && host.name !== primary && host.name !== need.replacing) excluded.push({ host: host.name, reason: reached });
      }
      const request = secondaryRequest(need.f.vm, rackOf.get(primary) !== undefined ? { key: rackKey, value: rackOf.get(primary)! } : undefined);
      apart.set(request.id, excluded);
      return request;
    });
    const byId = new Map(pending.map((need, i) => [requests[i]!.id, need]));
    const plan = placeBatch({ ...state.snapshot, apart }, requests);
    const accepted: PlacedVm[] = [];
    const pairs: FaultTolerantPair[] = [];
    const retry: Need[] = [];
    for (const placement of plan.placements) {
      const need = byId.get(placement.vm)!;
      // Placement counts room; the limits count FT VMs, which the batch itself may have pushed over.
      if (limitReached(load, placement.host, need.f.vm.spec.cpu, limits)) {
        retry.push(need);
        continue;
      }
      addLoad(load, placement.host, need.f.vm.spec.cpu);
      ask(s, state, need, placement.host);
      accepted.push({ ...placedSecondary({ vm: need.f.id, key: "", host: placement.host, primaryHost: need.f.instance!.host, state: "Copying", since: s.now, cpu: need.f.vm.spec.cpu, memoryMiB: need.f.vm.spec.memoryMiB }), id: `${secondaryId(need.f.id)}@${placement.host}` });
      pairs.push({ vm: need.f.id, primaryHost: need.f.instance!.host, secondaryHost: placement.host });
      outcomes.push({ need, host: placement.host, why: need.why, limited: false });
    }
    for (const refusal of plan.unschedulable) {
      const need = byId.get(refusal.vm)!;
      const reasons = Object.keys(refusal.reasons);
      const limited = reasons.length > 0 && reasons.every(isFaultToleranceRule);
      outcomes.push({ need, why: `no host can take its secondary: ${refusal.message.replace(/^0\/\d+ hosts fit: /, "")}`, limited });
    }
    if (accepted.length > 0) state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, ...accepted], apart: withPairsApart(state.snapshot.apart, pairs) };
    pending = retry;
  }
  for (const need of pending) outcomes.push({ need, why: "no host can take its secondary within the FT limits this round", limited: false });
  return outcomes;
}

function ask(s: Readonly<ClusterSituation>, state: StageState, need: Readonly<Need>, host: string): void {
  state.actions.push({ stage: "faultTolerance", action: { type: "Protect", vm: need.f.id, host, key: `ft:${need.f.id}@${host}`, settings: faultToleranceSettingsOf(s.cluster, need.f.vm), reason: need.why } });
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
 * Why the VM may not go live on `host` now, when a VM it is anti-affine to (either way) runs or starts there:
 * its secondary gives way, or going live would break the rule. Undefined when it may, or no rule applies.
 */
function antiAffineOn(state: Readonly<StageState>, f: Readonly<VmFacts>, host: string): string | undefined {
  const snapshot = state.snapshot;
  const rules = f.vm.spec.placement.vmAntiAffinity?.required !== undefined || snapshot.placed.some((p) => p.antiAffinity !== undefined);
  if (!rules) return undefined;
  const only = snapshot.hosts.filter((h) => h.name === host).map(({ unavailable: _, ...h }) => h);
  // The room is the secondary's already: only the rules are asked about.
  const fit = hostsThatFit({ ...snapshot, hosts: only, apart: new Map() }, { ...secondaryRequest(f.vm), cpu: 0, memoryMiB: 0 });
  return fit.rejected[VM_ANTI_AFFINITY] ? `its secondary's host ${host} runs a VM it is anti-affine to: going live there would break the rule, so the secondary gives way` : undefined;
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
  const placed = placedSecondary({ vm: f.id, key: "", host: to, primaryHost: f.instance?.host ?? "", state: "Copying", since: s.now, cpu: f.vm.spec.cpu, memoryMiB: f.vm.spec.memoryMiB });
  state.snapshot = { ...state.snapshot, placed: [...state.snapshot.placed, { ...placed, id: `${secondaryId(f.id)}@${to}` }] };
}
