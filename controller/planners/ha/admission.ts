// HA admission control (BEHAVIOUR.md, Admission control): which new power-ons of a cluster's batch may
// start without breaking the cluster's failover policy. HA restarts never come here: admission control
// gates power-ons, not failover (BEHAVIOUR.md, Restart). Pure: the same inputs give the same plan.

import type { HostClusterSpec, RestartPriority } from "../../api/types.ts";
import { placeBatch } from "../../placement/index.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../placement/index.ts";
import { failoverCapacity, type FailoverCapacityReport } from "./failover-capacity.ts";
import { PRIORITY_RANK } from "./protection.ts";
import { placedVm } from "./restart-order.ts";

export type AdmissionControl = HostClusterSpec["ha"]["admissionControl"];

/** BEHAVIOUR.md, Admission control: the policy needs at least 3 hosts to be meaningful. */
export const MIN_HOSTS_FOR_ADMISSION_CONTROL = 3;

/** The reason a VM refused by admission control waits with. */
export const INSUFFICIENT_FAILOVER_CAPACITY = "InsufficientFailoverCapacity";

/** Why ordinary placement skips a dedicated failover host. */
export const DEDICATED_FAILOVER_HOST = "dedicated failover host";

export interface PowerOn {
  request: Readonly<VmRequest>;
  priority: RestartPriority;
  /** HA would restart it after a failure: once running, it needs failover capacity too. */
  protected: boolean;
}

export interface AdmissionInput {
  policy: Readonly<AdmissionControl>;
  /** The whole cluster, failover hosts included: the what-if failures re-place onto it. */
  snapshot: Readonly<ClusterSnapshot>;
  /** The requests of the protected VMs, by id (those running now; the power-ons are added here). */
  protectedVms: ReadonlyMap<string, Readonly<VmRequest>>;
  /** The VMs about to be powered on by ordinary placement, in batch order. */
  powerOns: readonly Readonly<PowerOn>[];
  /** Hosts the operator keeps in service (not in maintenance), whatever their health. */
  hostCount: number;
  /** HA restarts still to come (fenced, ordered, retried or short of room): they come first, so no power-on is admitted while they wait. */
  restartsAwaitingCapacity: number;
}

export interface Refusal {
  vm: string;
  message: string;
  /** Refused even were it the only VM waiting: its own size or rules break the policy. */
  ownReason: boolean;
  /** The higher-priority VM it waits behind, when that is why it waits. */
  behind?: string;
}

export interface AdmissionPlan {
  admitted: string[];
  refused: Refusal[];
  /** False when the policy gates nothing: Disabled, DedicatedFailoverHosts, or too few hosts. */
  enforced: boolean;
}

/** Host failures the policy asks the cluster to survive, where it names a number. */
export function requiredFailures(policy: Readonly<AdmissionControl>): number | undefined {
  if (policy.policy === "HostFailuresToTolerate") return policy.hostFailures ?? 1;
  // Dedicated failover hosts are there to take the VMs of a failed host.
  if (policy.policy === "DedicatedFailoverHosts") return 1;
  return undefined;
}

/** Whether the policy gates power-ons in a cluster of `hostCount` hosts. */
export function admissionEnforced(policy: Readonly<AdmissionControl>, hostCount: number): boolean {
  if (policy.policy === "Disabled" || policy.policy === "DedicatedFailoverHosts") return false;
  return hostCount >= MIN_HOSTS_FOR_ADMISSION_CONTROL;
}

/** The snapshot ordinary placement uses: dedicated failover hosts run nothing in normal operation. */
export function ordinaryPlacementSnapshot(snapshot: Readonly<ClusterSnapshot>, policy: Readonly<AdmissionControl>): ClusterSnapshot {
  if (policy.policy !== "DedicatedFailoverHosts") return snapshot;
  const dedicated = new Set(policy.failoverHosts ?? []);
  const hosts: CandidateHost[] = snapshot.hosts.map((h) => dedicated.has(h.name) && h.unavailable === undefined ? { ...h, unavailable: DEDICATED_FAILOVER_HOST } : h);
  return { ...snapshot, hosts };
}

/**
 * Admits the power-ons in order — highest restart priority first, then the batch order — each as long as
 * the policy still holds with it and everything admitted before it running. vSphere judges each power-on
 * on its own; strict order only protects a larger, higher-priority VM from being overtaken for ever by
 * smaller, lower-priority ones. So a VM that does not fit now holds back only the VMs of strictly lower
 * priority, and only if it would fit on its own: a VM the policy refuses even alone (its size, its rules)
 * holds back nobody, and neither does one of equal priority.
 * Runs of admissible VMs are found by bisection, so a batch costs a few policy checks per refusal.
 */
export function planAdmission(input: Readonly<AdmissionInput>): AdmissionPlan {
  const ordered = [...input.powerOns].sort((a, b) => PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority]);
  const ids = ordered.map((p) => p.request.id);
  if (!admissionEnforced(input.policy, input.hostCount) || ordered.length === 0) return { admitted: ids, refused: [], enforced: false };

  if (input.restartsAwaitingCapacity > 0) {
    const n = input.restartsAwaitingCapacity;
    const message = `admission control (${input.policy.policy}): ${n} HA restart${n === 1 ? " waits" : "s wait"} for capacity or their turn, and come${n === 1 ? "s" : ""} first`;
    return { admitted: [], refused: ids.map((vm) => ({ vm, message, ownReason: false })), enforced: true };
  }
  // Asked first: re-placement is greedy, not monotone, so a batch can pass a check the cluster fails now.
  const now = policyVerdict(input, []);
  if (!now.ok) return { admitted: [], refused: ids.map((vm) => ({ vm, message: now.message, ownReason: false })), enforced: true };
  if (policyVerdict(input, ordered).ok) return { admitted: ids, refused: [], enforced: true };
  return admitInOrder(input, ordered);
}

function admitInOrder(input: Readonly<AdmissionInput>, ordered: readonly Readonly<PowerOn>[]): AdmissionPlan {
  const admitted: Readonly<PowerOn>[] = [];
  const refused: Refusal[] = [];
  let holder: { id: string; rank: number } | undefined;
  let next = 0;
  while (next < ordered.length) {
    // Everything from here on is of lower priority than a VM that fits on its own but not yet: it waits.
    if (holder && PRIORITY_RANK[ordered[next]!.priority] < holder.rank) break;
    const end = holder ? endOfRank(ordered, next, holder.rank) : ordered.length;
    const run = ordered.slice(next, end);
    const fits = longestAdmissible(input, admitted, run);
    admitted.push(...run.slice(0, fits));
    next += fits;
    if (fits === run.length) continue;
    const vm = run[fits]!;
    next += 1;
    const alone = policyVerdict(input, [vm]);
    if (!alone.ok) {
      refused.push({ vm: vm.request.id, message: `${alone.message} — refused on its own${rulesOf(vm)}, whatever else waits`, ownReason: true });
      continue;
    }
    const verdict = policyVerdict(input, [...admitted, vm]);
    refused.push({ vm: vm.request.id, message: verdict.ok ? "" : verdict.message, ownReason: false });
    holder ??= { id: vm.request.id, rank: PRIORITY_RANK[vm.priority] };
  }
  const decided = new Set([...admitted.map((p) => p.request.id), ...refused.map((r) => r.vm)]);
  for (const p of ordered) {
    if (decided.has(p.request.id)) continue;
    refused.push({ vm: p.request.id, message: `admitted in restart priority order: waiting behind ${holder!.id}, of higher priority, which does not fit yet`, ownReason: false, behind: holder!.id });
  }
  return { admitted: admitted.map((p) => p.request.id), refused, enforced: true };
}

/** The end of the run from `start` of VMs whose priority is at least `rank` (the list is sorted by priority). */
function endOfRank(ordered: readonly Readonly<PowerOn>[], start: number, rank: number): number {
  let end = start;
  while (end < ordered.length && PRIORITY_RANK[ordered[end]!.priority] >= rank) end++;
  return end;
}

/** How many of `run`, from its start, the policy admits after `admitted`: by bisection over the prefixes. */
function longestAdmissible(input: Readonly<AdmissionInput>, admitted: readonly Readonly<PowerOn>[], run: readonly Readonly<PowerOn>[]): number {
  if (policyVerdict(input, [...admitted, ...run]).ok) return run.length;
  let fits = 0;
  let breaks = run.length;
  while (breaks - fits > 1) {
    const middle = Math.floor((fits + breaks) / 2);
    if (policyVerdict(input, [...admitted, ...run.slice(0, middle)]).ok) fits = middle;
    else breaks = middle;
  }
  return fits;
}

/** The rules that make a VM hard to place, named in its refusal. */
function rulesOf(p: Readonly<PowerOn>): string {
  const placement = p.request.placement;
  const rules = [
    placement.vmAntiAffinity?.required?.length ? "required VM anti-affinity" : "",
    placement.vmAffinity?.required?.length ? "required VM affinity" : "",
    placement.hostAffinity?.required?.length ? "required host affinity" : "",
  ].filter((r) => r !== "");
  return rules.length > 0 ? ` (its ${rules.join(" and ")})` : "";
}

type PolicyVerdict = { ok: true } | { ok: false; message: string };

/**
 * Whether the policy holds with `powerOns` running (placed as ordinary placement would place them): the
 * check planAdmission makes of every set it admits. Exported for the property tests.
 */
export function policyHolds(input: Readonly<AdmissionInput>, powerOns: readonly Readonly<PowerOn>[]): boolean {
  return policyVerdict(input, powerOns).ok;
}

/** Whether the policy holds with `powerOns` placed as ordinary placement would place them. */
function policyVerdict(input: Readonly<AdmissionInput>, powerOns: readonly Readonly<PowerOn>[]): PolicyVerdict {
  const plan = placeBatch(ordinaryPlacementSnapshot(input.snapshot, input.policy), powerOns.map((p) => p.request));
  const byId = new Map(powerOns.map((p) => [p.request.id, p]));
  const started: PlacedVm[] = plan.placements.map((placement) => placedVm(byId.get(placement.vm)!.request, placement.host));
  const after: ClusterSnapshot = { ...input.snapshot, placed: [...input.snapshot.placed, ...started] };
  const adding = powerOns.length > 0;
  switch (input.policy.policy) {
    case "HostFailuresToTolerate": {
      const protectedVms = new Map(input.protectedVms);
      for (const p of powerOns) if (p.protected) protectedVms.set(p.request.id, p.request);
      return toleratesVerdict(input.policy.hostFailures ?? 1, after, protectedVms, adding);
    }
    case "ReservedPercentage":
      return reservedVerdict(input.policy, after, adding);
    default:
      return { ok: true };
  }
}

function toleratesVerdict(required: number, after: ClusterSnapshot, protectedVms: ReadonlyMap<string, Readonly<VmRequest>>, adding: boolean): PolicyVerdict {
  const capacity = failoverCapacity({ snapshot: after, protectedVms, maxFailures: required });
  if (capacity.tolerates >= required) return { ok: true };
  const stranded = (capacity.unplaceable ?? []).map((id) => protectedVms.get(id)).filter((r): r is Readonly<VmRequest> => r !== undefined);
  const memory = stranded.reduce((sum, r) => sum + r.memoryMiB, 0);
  const cpu = stranded.reduce((sum, r) => sum + r.cpu, 0);
  const policy = `admission control (HostFailuresToTolerate ${required})`;
  const would = adding ? "with it running the cluster would tolerate" : "the cluster tolerates";
  const vms = `${stranded.length} protected VM${stranded.length === 1 ? "" : "s"} (${memory} MiB, ${cpu} vCPUs)`;
  return { ok: false, message: `${policy}: ${would} ${capacity.tolerates} host failure${capacity.tolerates === 1 ? "" : "s"}, ${required - capacity.tolerates} short — losing ${(capacity.worstCase ?? []).join(", ")} would leave ${vms} without a host` };
}

/** BEHAVIOUR.md, Admission control: (capacity − reservations) / capacity ≥ the percentage, CPU and memory separately. */
export function reservedFree(snapshot: Readonly<ClusterSnapshot>): { cpu: ResourceFree; memory: ResourceFree } {
  const usable = new Set(snapshot.hosts.filter((h) => h.unavailable === undefined).map((h) => h.name));
  const cpu = { capacity: 0, reserved: 0 };
  const memory = { capacity: 0, reserved: 0 };
  for (const host of snapshot.hosts) {
    if (!usable.has(host.name)) continue;
    cpu.capacity += host.cpu.cores * host.cpu.overcommitRatio;
    memory.capacity += host.memoryMiB;
  }
  for (const vm of snapshot.placed) {
    if (!usable.has(vm.host)) continue;
    cpu.reserved += vm.cpu;
    memory.reserved += vm.memoryMiB;
  }
  return { cpu: freeOf(cpu), memory: freeOf(memory) };
}

export interface ResourceFree {
  capacity: number;
  reserved: number;
  /** (capacity − reserved) / capacity, in percent; 0 when there is no capacity. */
  freePercent: number;
}

function freeOf(r: { capacity: number; reserved: number }): ResourceFree {
  return { ...r, freePercent: r.capacity > 0 ? (100 * (r.capacity - r.reserved)) / r.capacity : 0 };
}

function reservedVerdict(policy: Readonly<AdmissionControl>, after: ClusterSnapshot, adding: boolean): PolicyVerdict {
  const free = reservedFree(after);
  const wants = [
    { name: "cpu", unit: "vCPUs", free: free.cpu, percent: policy.cpuPercent ?? 0 },
    { name: "memory", unit: "MiB", free: free.memory, percent: policy.memoryPercent ?? 0 },
  ];
  const short = wants.filter((w) => w.free.freePercent < w.percent);
  if (short.length === 0) return { ok: true };
  const would = adding ? "with it running" : "now";
  const what = short.map((w) => {
    const missing = Math.ceil(w.free.reserved - w.free.capacity * (1 - w.percent / 100));
    return `${w.free.freePercent.toFixed(1)}% of ${w.name} free, below ${w.percent}% (${missing} ${w.unit} short)`;
  });
  return { ok: false, message: `admission control (ReservedPercentage cpu ${policy.cpuPercent ?? 0}%, memory ${policy.memoryPercent ?? 0}%): ${would} ${what.join("; ")}` };
}

export interface PolicyCondition {
  status: boolean;
  reason: string;
  message: string;
}

/**
 * The cluster's `FailoverCapacity` condition: True while the admission control policy holds, False (reason
 * InsufficientFailoverCapacity) when it does not; none under the Disabled policy. It never touches Ready:
 * a cluster short of failover capacity still runs what it runs (docs/ha.md).
 */
export function failoverCapacityCondition(policy: Readonly<AdmissionControl>, report: Readonly<FailoverCapacityReport>, snapshot: Readonly<ClusterSnapshot>, hostCount: number): PolicyCondition | undefined {
  if (policy.policy === "Disabled") return undefined;
  const gating = admissionEnforced(policy, hostCount) ? "" : policy.policy === "DedicatedFailoverHosts" ? "" : `; not enforced with fewer than ${MIN_HOSTS_FOR_ADMISSION_CONTROL} hosts`;
  if (policy.policy === "ReservedPercentage") {
    const verdict = reservedVerdict(policy, snapshot, false);
    const free = reservedFree(snapshot);
    const now = `${free.cpu.freePercent.toFixed(1)}% of cpu and ${free.memory.freePercent.toFixed(1)}% of memory free (${policy.cpuPercent ?? 0}% and ${policy.memoryPercent ?? 0}% reserved)`;
    return verdict.ok
      ? { status: true, reason: "SufficientFailoverCapacity", message: now + gating }
      : { status: false, reason: INSUFFICIENT_FAILOVER_CAPACITY, message: verdict.message + gating };
  }
  const required = report.required ?? 1;
  const tolerates = report.tolerates > required ? `more than ${required}` : String(report.tolerates);
  const worst = report.worstCase ? `; worst case found: losing ${report.worstCase.join(", ")} leaves ${report.unplaceable?.length ?? 0} protected VMs without a host` : "";
  const message = `tolerates ${tolerates} host failure${report.tolerates === 1 ? "" : "s"}, ${policy.policy} asks for ${required}${worst}${gating}`;
  return report.tolerates >= required
    ? { status: true, reason: "SufficientFailoverCapacity", message }
    : { status: false, reason: INSUFFICIENT_FAILOVER_CAPACITY, message };
}
