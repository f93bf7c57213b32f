// Stage 5, requested migrations: each VirtualMachineMigration, oldest first, is checked before anything is
// copied (the VM, its policy, the target and its CPU, placement's rules, the concurrency limits) and then
// started live — or cold: shut down here, placed on the target by a later round. A request for another
// hypervisor type is a conversion (conversions.ts): its pre-check, then a cold move through the hosts'
// conversion. A refusal says why and touches nothing; a request deleted while it runs is cancelled (the VM
// stays on its source).

import type { VirtualMachineMigration } from "../../api/types.ts";
import { byCodeUnits } from "../../api/selectors.ts";
import { INSUFFICIENT_CPU, INSUFFICIENT_MEMORY } from "../../placement/index.ts";
import { estimateMigration } from "../migration/estimate.ts";
import { dirtyRateOf, migrationSettingsOf } from "../migration/settings.ts";
import { maySend, migrationSlots, takeSlot } from "../migration/slots.ts";
import { requestKey, requestName } from "../migration/requests.ts";
import { desiredPower } from "../run-strategy.ts";
import { isUnderWay } from "./conversions.ts";
import { conversionSlots, conversionTo, judgeConversion } from "./conversion-requests.ts";
import { cpuIncompatibility, liveTargets, moveLive } from "./moves.ts";
import type { ClusterSituation, RequestVerdict, StageState, VmFacts } from "./types.ts";

export { requestKey, requestName } from "../migration/requests.ts";

/** The slots a request may take: a live migration's, leaving its source; a conversion's, in the cluster. */
interface Slots {
  takeSlotFrom: (host: string) => boolean;
  conversions: { free: number };
}

export function migrationsStage(s: Readonly<ClusterSituation>, state: StageState): void {
  cancelOrphans(s, state);
  const slots = migrationSlots(s, state);
  const claimed = new Map<string, string>();
  // Requests the conversions stage carried this round: their VMs are taken.
  for (const [name, verdict] of state.requestVerdicts) if (verdict.kind === "Conversion" && isUnderWay(verdict)) claimed.set(verdict.vm, name);
  const free: Slots = {
    takeSlotFrom: (source) => {
      if (!maySend(slots, source)) return false;
      takeSlot(slots, source);
      return true;
    },
    conversions: conversionSlots(s, state),
  };
  for (const request of [...s.requests].sort(oldestFirst)) {
    const name = requestName(request);
    if (state.requestVerdicts.has(name)) continue;
    state.requestVerdicts.set(name, judge(s, state, request, claimed, free));
  }
}

function judge(s: Readonly<ClusterSituation>, state: StageState, request: Readonly<VirtualMachineMigration>, claimed: Map<string, string>, slots: Slots): RequestVerdict {
  const name = requestName(request);
  const id = `${request.metadata.namespace ?? "default"}/${request.spec.vmName}`;
  const f = s.vms.find((v) => v.id === id)!;
  const key = requestKey(request);
  const observed = s.migrations.find((m) => m.vm === id && m.key === key);
  if (request.metadata.deletionTimestamp) return { kind: "Cancelling", message: "deleted: the migration is cancelled, the VM stays where it is" };
  if (observed) return { kind: "Live", source: observed.source, target: observed.target, key };
  const before = s.previousRequests?.get(name);
  if (request.status?.phase === "Switchover" || before?.kind === "Cold") return coldProgress(s, state, request, f);

  const other = claimed.get(id);
  if (other !== undefined) return { kind: "Refused", message: `VM ${id} already migrates under VirtualMachineMigration ${other}` };
  const running = s.migrations.find((m) => m.vm === id && (m.phase === "PreCopy" || m.phase === "Switchover"));
  if (running) return { kind: "Refused", message: `VM ${id} already migrates from ${running.source} to ${running.target}` };
  const to = conversionTo(s, request, f);
  if (to !== undefined) {
    const targetRefusal = targetRefusalOf(s, request, f);
    const verdict = judgeConversion(s, state, { request, f, to, ...(targetRefusal ? { targetRefusal } : {}) }, slots.conversions);
    if (verdict.step !== "Refused") claimed.set(id, name);
    return verdict;
  }
  // A conversion asked for with its VM (applied together, from a checkout): it waits for the VM's first host.
  if (request.spec.targetHypervisor !== undefined && !f.instance && desiredPower(f.vm, undefined) === "On") {
    return { kind: "Waiting", message: `waiting for VM ${id} to be placed before it can be converted for ${request.spec.targetHypervisor}` };
  }
  const refusal = refusalOf(s, request, f) ?? convertedAlready(request, f);
  if (refusal) return { kind: "Refused", message: refusal };
  claimed.set(id, name);
  const source = f.instance!.host;
  return request.spec.mode === "Cold" ? startCold(state, request, f, source) : startLive(s, state, request, f, source, slots.takeSlotFrom);
}

/** What makes the request impossible as asked, before anything is touched. */
function refusalOf(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): string | undefined {
  const policy = f.vm.spec.migration.policy;
  if (policy === "Never") return `VM ${f.id}'s migration policy is Never`;
  if (request.spec.mode === "Live" && policy === "Cold") return `VM ${f.id}'s migration policy is Cold: ask for mode Cold`;
  if (f.instance?.power !== "Running") return `VM ${f.id} is not running (${f.vm.status?.phase ?? "no host"}${f.vm.spec.runStrategy === "Halted" ? ", runStrategy Halted" : ""}): there is nothing to move`;
  const refusal = targetRefusalOf(s, request, f);
  if (refusal !== undefined || request.spec.targetHost === undefined || request.spec.mode !== "Live") return refusal;
  const host = s.hosts.find((h) => h.name === request.spec.targetHost)!;
  return cpuIncompatibility(f, s.hosts.find((h) => h.name === f.instance!.host), host);
}

/** A request for the hypervisor type the VM is on already, naming no host: nothing to convert (a conversion applied again, say). */
function convertedAlready(request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): string | undefined {
  const type = f.instanceHost?.host?.spec.hypervisor;
  if (request.spec.targetHypervisor === undefined || request.spec.targetHost !== undefined || request.spec.targetHypervisor !== type) return undefined;
  return `VM ${f.id} already runs on ${type} (host ${f.instance?.host}): there is nothing to convert`;
}

/** Why the host the request names cannot take the VM whatever the mode: missing, another cluster's, the VM's own, in maintenance. */
function targetRefusalOf(s: Readonly<ClusterSituation>, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): string | undefined {
  const target = request.spec.targetHost;
  if (target === undefined) return undefined;
  if (!s.hostClusters.has(target)) return `host ${target} does not exist`;
  const cluster = s.hostClusters.get(target);
  if (cluster !== s.cluster.metadata.name) return `host ${target} is in ${cluster ? `cluster ${cluster}` : "no cluster"}, not in VM ${f.id}'s cluster ${s.cluster.metadata.name}`;
  if (target === f.instance?.host) return `VM ${f.id} already runs on host ${target}`;
  const host = s.hosts.find((h) => h.name === target);
  if (host?.host?.spec.maintenance) return `host ${target} is in maintenance`;
  return undefined;
}

function startLive(s: Readonly<ClusterSituation>, state: StageState, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>, source: string, takeSlotFrom: (host: string) => boolean): RequestVerdict {
  const settings = migrationSettingsOf(s.cluster, f.vm);
  const estimate = estimateMigration({ memoryMiB: f.vm.spec.memoryMiB, dirtyRateMiBps: dirtyRateOf(f.vm), settings });
  const { targets, fit, incompatible } = liveTargets(s, state, f);
  const wanted = request.spec.targetHost;
  const target = wanted === undefined ? targets[0] : targets.find((t) => t === wanted);
  if (target === undefined) {
    const reasons = Object.keys(fit.rejected);
    const why = wanted !== undefined && !fit.fits.includes(wanted) ? `host ${wanted} cannot take it now (${describe(fit.rejected)})` : incompatible[0] ?? `no host can take it now (${describe(fit.rejected)})`;
    const onlyRoom = reasons.length > 0 && reasons.every((r) => r === INSUFFICIENT_CPU || r === INSUFFICIENT_MEMORY);
    return onlyRoom ? { kind: "Waiting", message: why, estimate } : { kind: "Refused", message: why };
  }
  if (!takeSlotFrom(source)) {
    const limits = s.cluster.spec.migration;
    return { kind: "Waiting", message: `waiting for a migration slot (${limits.parallelMigrations} in the cluster, ${limits.parallelOutboundPerHost} leaving a host)`, estimate };
  }
  const key = requestKey(request);
  moveLive(s, state, f, target, "migrations", key, `VirtualMachineMigration ${requestName(request)}`);
  return { kind: "Live", source, target, key, estimate };
}

function startCold(state: StageState, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>, source: string): RequestVerdict {
  const target = request.spec.targetHost;
  const reason = `VirtualMachineMigration ${requestName(request)}: moving the VM cold${target ? ` to ${target}` : ""}`;
  state.actions.push({ stage: "migrations", action: { type: "Stop", vm: f.id, mode: "Shutdown", onHost: source, reason } });
  state.handled.add(f.id);
  state.verdicts.set(f.id, { kind: "Evacuating", host: source, message: reason, cold: true });
  return { kind: "Cold", source, ...(target ? { target } : {}), message: "shutting down" };
}

/** A cold move under way: the VM shuts down at its source, then placement powers it on at the target. */
function coldProgress(s: Readonly<ClusterSituation>, state: StageState, request: Readonly<VirtualMachineMigration>, f: Readonly<VmFacts>): RequestVerdict {
  const before = s.previousRequests?.get(requestName(request));
  const source = request.status?.sourceHost ?? (before?.kind === "Cold" ? before.source : f.instance?.host) ?? "";
  const target = request.spec.targetHost;
  const where = f.instance?.host;
  const power = f.instance?.power ?? "Off";
  const message = power === "Off" ? `powered off; starting on ${target ?? "a host placement chooses"}` : where === source ? `shutting down on ${source}` : `starting on ${where}`;
  if (where === source && power !== "Off") state.handled.add(f.id);
  return { kind: "Cold", source, ...(target ? { target } : {}), message };
}

/** Live migrations begun for a request that is gone: cancelled, so the VM stays on its source. */
function cancelOrphans(s: Readonly<ClusterSituation>, state: StageState): void {
  const live = new Set(s.requests.filter((r) => !r.metadata.deletionTimestamp).map(requestKey));
  for (const m of s.migrations) {
    if (!m.key.startsWith("request:") || live.has(m.key) || (m.phase !== "PreCopy" && m.phase !== "Switchover")) continue;
    state.actions.push({ stage: "migrations", action: { type: "CancelMigration", vm: m.vm, key: m.key, reason: "its VirtualMachineMigration was deleted" } });
  }
}

function oldestFirst(a: Readonly<VirtualMachineMigration>, b: Readonly<VirtualMachineMigration>): number {
  return byCodeUnits(a.metadata.creationTimestamp ?? "", b.metadata.creationTimestamp ?? "") || byCodeUnits(requestName(a), requestName(b));
}

function describe(rejected: Readonly<Record<string, number>>): string {
  const parts = Object.entries(rejected).map(([reason, n]) => `${n} ${reason}`);
  return parts.length > 0 ? parts.join(", ") : "no other host";
}
