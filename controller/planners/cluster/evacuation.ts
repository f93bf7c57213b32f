// Stage 4, maintenance evacuation: the VMs of a host that must be emptied (in maintenance, or its Host
// object deleted) leave it — live, within the concurrency limits, to a host placement chooses and whose
// CPU can run the guest; cold (shut down here, placed again by a later round) where the VM's policy says
// Cold, or says LiveIfPossible and its live attempts failed. A VM that cannot leave (policy Never, pinned
// by a required rule, no room, every live attempt failed) is named with the reason, never retried
// silently for ever: the host stays EnteringMaintenance and says why.
// A Manual VM is left where it is: Vireo never changes its power state.

import { desiredPower } from "../run-strategy.ts";
import { ASKED_UNREPORTED_MS, maySend, migrationSlots, takeSlot, type MigrationSlots } from "../migration/slots.ts";
import { liveTargets, moveLive } from "./moves.ts";
import type { ClusterSituation, HostFacts, StageState, VmFacts } from "./types.ts";

/** Live attempts an evacuation makes per VM before it gives up (Live) or moves it cold (LiveIfPossible). */
export const MAX_LIVE_EVACUATION_ATTEMPTS = 3;


export function evacuationStage(s: Readonly<ClusterSituation>, state: StageState): void {
  const slots = migrationSlots(s, state);
  for (const f of s.vms) {
    const instance = f.instance;
    if (!instance || state.handled.has(f.id) || f.vm.metadata.deletionTimestamp) continue;
    if (instance.power !== "Starting" && instance.power !== "Running") continue;
    const why = vacating(f.instanceHost);
    if (!why || desiredPower(f.vm, instance) !== "On") continue;
    evacuate(s, state, slots, f, `host ${instance.host} is ${why}`);
  }
}

function evacuate(s: Readonly<ClusterSituation>, state: StageState, slots: MigrationSlots, f: Readonly<VmFacts>, why: string): void {
  const host = f.instance!.host;
  const policy = f.vm.spec.migration.policy;
  if (policy === "Never") return blocked(state, f, host, `${why}, but VM ${f.id}'s migration policy is Never`);
  const asked = s.memory.moves.get(f.id);
  if (asked && asked.stage === "evacuation" && !s.migrations.some((m) => m.vm === f.id && m.key === asked.key) && s.now - asked.startedAt < ASKED_UNREPORTED_MS) {
    return waiting(state, f, host, `${why}: migrating live to ${asked.target}`);
  }
  const failures = liveFailures(s, f);
  if (policy === "Cold" || (policy === "LiveIfPossible" && failures.count >= MAX_LIVE_EVACUATION_ATTEMPTS)) return moveCold(state, f, host, why, failures.count > 0 ? ` after ${failures.count} failed live attempts` : "");
  if (failures.count >= MAX_LIVE_EVACUATION_ATTEMPTS) return blocked(state, f, host, `${why}, but ${failures.count} live migrations of VM ${f.id} failed (the last: ${failures.last ?? "unknown"}) and its policy is Live: set LiveIfPossible to allow a cold move`);
  if (f.instance!.power !== "Running") return waiting(state, f, host, `${why}: waiting for the VM to finish booting before it migrates`);
  const { targets, fit, incompatible } = liveTargets(s, state, f);
  const target = targets[0];
  if (target === undefined) {
    const rejected = Object.entries(fit.rejected).map(([reason, n]) => `${n} ${reason}`).join(", ");
    return blocked(state, f, host, `${why}, but no host can take VM ${f.id}: ${incompatible[0] ?? (rejected || "no other host")}`);
  }
  if (!maySend(slots, host)) return waiting(state, f, host, `${why}: waiting for a migration slot`);
  takeSlot(slots, host);
  const key = `evacuate:${f.id}:${s.now}`;
  moveLive(s, state, f, target, "evacuation", key, `${why}: evacuating${failures.count > 0 ? ` (attempt ${failures.count + 1})` : ""}`);
  state.moves.set(f.id, { stage: "evacuation", key, target, startedAt: s.now, failures: failures.count, ...(failures.last ? { lastFailure: failures.last } : {}) });
}

/** The live attempts the cluster made to move the VM that failed, counting the one the hosts report last. */
function liveFailures(s: Readonly<ClusterSituation>, f: Readonly<VmFacts>): { count: number; last?: string } {
  const record = s.memory.moves.get(f.id);
  if (!record || record.stage !== "evacuation") return { count: 0 };
  const observed = s.migrations.find((m) => m.vm === f.id && m.key === record.key);
  if (observed?.phase === "Failed") return { count: record.failures + 1, ...(observed.reason ? { last: observed.reason } : {}) };
  if (!observed && s.now - record.startedAt >= ASKED_UNREPORTED_MS) return { count: record.failures + 1, last: record.lastFailure ?? "the hosts never reported the migration" };
  return { count: record.failures, ...(record.lastFailure ? { last: record.lastFailure } : {}) };
}

function moveCold(state: StageState, f: Readonly<VmFacts>, host: string, why: string, after: string): void {
  const message = `${why}: moving the VM (cold${after})`;
  state.actions.push({ stage: "evacuation", action: { type: "Stop", vm: f.id, mode: "Shutdown", ...(f.instance ? { onHost: f.instance.host } : {}), reason: message } });
  state.verdicts.set(f.id, { kind: "Evacuating", host, message: why, cold: true });
  state.handled.add(f.id);
}

function blocked(state: StageState, f: Readonly<VmFacts>, host: string, message: string): void {
  state.verdicts.set(f.id, { kind: "EvacuationBlocked", host, message });
  state.handled.add(f.id);
}

function waiting(state: StageState, f: Readonly<VmFacts>, host: string, message: string): void {
  state.verdicts.set(f.id, { kind: "Evacuating", host, message, cold: false });
  state.handled.add(f.id);
}

/** Why a host must be emptied, if it must. */
export function vacating(host: Readonly<HostFacts> | undefined): string | undefined {
  if (host?.unavailable === "being removed") return "being removed";
  return host?.host?.spec.maintenance ? "in maintenance" : undefined;
}
