// What `vireo report usage` says, computed at one instant from the VMs and labs (and, for idle VMs, the
// simulator's usage model when its world is at hand): VMs, vCPUs and memory by owner and by lab, labs near
// or past their expiry, VMs with no owner, idle VMs, and what the leases would stop or delete now — judged
// by the same pure functions the reconcilers use (planners/labs/lease.ts). Pure: nothing here changes
// anything.

import type { LabTopology, VirtualMachine, VmPhase } from "../api/types.ts";
import { LAB_LABEL, LEASE_EXEMPT_LABEL } from "../api/types.ts";
import { durationMs, leaseVerdict, vmLease, type LeaseFacts } from "../planners/labs/lease.ts";
import type { VmConfig, VmPowerState } from "../core/observation.ts";
import { BURST_FACTOR, BURST_WINDOW_MS, DIURNAL_AMPLITUDE, IDLE_FRACTION, cpuDemand } from "../provider/sim/usage.ts";

export interface Usage {
  vms: number;
  /** Powered on: Starting, Running, Migrating or Stopping. */
  running: number;
  /** Declared, whether the VMs run or not. */
  vcpus: number;
  memoryMiB: number;
}

/** An owner's VMs; `owner` is absent for the VMs that have none. */
export interface OwnerUsage extends Usage {
  owner?: string;
}

export interface LabUsage extends Usage {
  namespace: string;
  lab: string;
  /** Absent when the lab is gone and only VMs labelled with it are left. */
  owner?: string;
  phase?: string;
}

export interface ExpiringLab {
  namespace: string;
  lab: string;
  owner: string;
  phase?: string;
  /** The next expiry from the lab's status; absent once it has expired. */
  action?: "Stop" | "Delete";
  time?: string;
  /** Seconds from now to the expiry; negative when it is overdue. */
  inSeconds?: number;
}

export interface UnownedVm {
  namespace: string;
  name: string;
  phase?: string;
  host?: string;
  vcpus: number;
  memoryMiB: number;
}

export interface IdleVm {
  namespace: string;
  name: string;
  owner?: string;
  lab?: string;
  host?: string;
  /** The highest CPU use over the idle window, percent of the VM's vCPUs. */
  peakCpuPercent: number;
  /** How long it has been powered on. */
  runningSeconds: number;
}

/** A VM is idle when it has run for `forMs` and its CPU use stayed at or below `cpuPercent` all that time. */
export interface IdleRule {
  cpuPercent: number;
  forMs: number;
}

/** Where idle VMs are judged from: the simulator's usage (Observed) or the VMs' declared workload. */
export type IdleBasis = "Observed" | "Declared";

export interface UsageReport {
  time: string;
  byOwner: OwnerUsage[];
  byLab: LabUsage[];
  expiringWithinSeconds: number;
  expiringLabs: ExpiringLab[];
  unownedVms: UnownedVm[];
  idle: { cpuPercent: number; forSeconds: number; basis: IdleBasis };
  idleVms: IdleVm[];
}

/** One VM as the simulator's world holds it: what its CPU demand over time is computed from. */
export interface ObservedVm {
  power: VmPowerState;
  host: string;
  poweredOnAt?: number;
  config: Pick<VmConfig, "cpu" | "workload">;
}

/** The simulator's world, as far as usage goes: its seed and its VMs by id (namespace/name). */
export interface ObservedUsage {
  seed: number;
  vms: ReadonlyMap<string, ObservedVm>;
}

export interface ReportInput {
  vms: readonly VirtualMachine[];
  labs: readonly LabTopology[];
  now: number;
  expiringWithinMs: number;
  idle: IdleRule;
  observed?: ObservedUsage;
}

const ON_PHASES: ReadonlySet<VmPhase | undefined> = new Set<VmPhase | undefined>(["Starting", "Running", "Migrating", "Stopping"]);
/** The workload a VM without one runs: the lifecycle planner's default (planners/lifecycle.ts). */
const DEFAULT_WORKLOAD: VmConfig["workload"] = { profile: "Steady", cpuPercent: 20 };

const byNamespaceAndName = (a: { namespace: string; name: string }, b: { namespace: string; name: string }): number =>
  a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);
const namespaceOf = (o: { metadata: { namespace?: string } }): string => o.metadata.namespace ?? "default";
const labOf = (vm: Readonly<VirtualMachine>): string | undefined => vm.metadata.labels?.[LAB_LABEL];

export function usageReport(input: Readonly<ReportInput>): UsageReport {
  return {
    time: new Date(input.now).toISOString(),
    byOwner: byOwner(input.vms),
    byLab: byLab(input.vms, input.labs),
    expiringWithinSeconds: input.expiringWithinMs / 1000,
    expiringLabs: expiringLabs(input.labs, input.now, input.expiringWithinMs),
    unownedVms: input.vms.filter((vm) => vm.spec.owner === undefined).map(unowned).sort(byNamespaceAndName),
    idle: { cpuPercent: input.idle.cpuPercent, forSeconds: input.idle.forMs / 1000, basis: input.observed ? "Observed" : "Declared" },
    idleVms: idleVms(input.vms, input.idle, input.now, input.observed).sort(byNamespaceAndName),
  };
}

function add(usage: Usage, vm: Readonly<VirtualMachine>): void {
  usage.vms++;
  if (ON_PHASES.has(vm.status?.phase)) usage.running++;
  usage.vcpus += vm.spec.cpu;
  usage.memoryMiB += vm.spec.memoryMiB;
}

const empty = (): Usage => ({ vms: 0, running: 0, vcpus: 0, memoryMiB: 0 });

/** Owners by name, the VMs without one last. */
function byOwner(vms: readonly VirtualMachine[]): OwnerUsage[] {
  const owners = new Map<string | undefined, OwnerUsage>();
  for (const vm of vms) {
    const owner = vm.spec.owner;
    let usage = owners.get(owner);
    if (!usage) owners.set(owner, usage = { ...(owner !== undefined ? { owner } : {}), ...empty() });
    add(usage, vm);
  }
  return [...owners.values()].sort((a, b) => (a.owner === undefined ? 1 : b.owner === undefined ? -1 : a.owner.localeCompare(b.owner)));
}

/** Every lab, with the VMs labelled with it — also a lab that is gone and left VMs behind. */
function byLab(vms: readonly VirtualMachine[], labs: readonly LabTopology[]): LabUsage[] {
  const rows = new Map<string, LabUsage>();
  for (const lab of labs) {
    rows.set(`${namespaceOf(lab)}/${lab.metadata.name}`, {
      namespace: namespaceOf(lab), lab: lab.metadata.name, owner: lab.spec.owner, ...(lab.status?.phase ? { phase: lab.status.phase } : {}), ...empty(),
    });
  }
  for (const vm of vms) {
    const lab = labOf(vm);
    if (lab === undefined) continue;
    const key = `${namespaceOf(vm)}/${lab}`;
    let row = rows.get(key);
    if (!row) rows.set(key, row = { namespace: namespaceOf(vm), lab, ...empty() });
    add(row, vm);
  }
  return [...rows.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.lab.localeCompare(b.lab));
}

/** Labs whose status names an expiry within the window (or overdue), and labs already Expired; soonest first. */
function expiringLabs(labs: readonly LabTopology[], now: number, withinMs: number): ExpiringLab[] {
  return labs.flatMap((lab) => expiringRow(lab, now, withinMs) ?? [])
    .sort((a, b) => (a.inSeconds ?? -Infinity) - (b.inSeconds ?? -Infinity) || a.namespace.localeCompare(b.namespace) || a.lab.localeCompare(b.lab));
}

function expiringRow(lab: Readonly<LabTopology>, now: number, withinMs: number): ExpiringLab | undefined {
  const status = lab.status;
  const row: ExpiringLab = { namespace: namespaceOf(lab), lab: lab.metadata.name, owner: lab.spec.owner, ...(status?.phase ? { phase: status.phase } : {}) };
  if (status?.phase === "Expired") return row;
  const next = status?.nextExpiry;
  const at = next ? Date.parse(next.time) : Number.NaN;
  if (!next || Number.isNaN(at) || at - now > withinMs) return undefined;
  return { ...row, action: next.action, time: next.time, inSeconds: Math.round((at - now) / 1000) };
}

function unowned(vm: Readonly<VirtualMachine>): UnownedVm {
  return {
    namespace: namespaceOf(vm), name: vm.metadata.name,
    ...(vm.status?.phase ? { phase: vm.status.phase } : {}), ...(vm.status?.host ? { host: vm.status.host } : {}),
    vcpus: vm.spec.cpu, memoryMiB: vm.spec.memoryMiB,
  };
}

// ---------------------------------------------------------------- idle VMs

function idleVms(vms: readonly VirtualMachine[], rule: Readonly<IdleRule>, now: number, observed: ObservedUsage | undefined): IdleVm[] {
  const rows: IdleVm[] = [];
  for (const vm of vms) {
    const judged = observed ? observedIdle(vm, rule, now, observed) : declaredIdle(vm, rule, now);
    // Compared as printed (to a tenth of a percent): 3 × 10 % is 30 %, not 30.000000000000004 %.
    if (!judged || round(judged.peakCpuPercent) > rule.cpuPercent) continue;
    const lab = labOf(vm);
    rows.push({
      namespace: namespaceOf(vm), name: vm.metadata.name, ...(vm.spec.owner !== undefined ? { owner: vm.spec.owner } : {}), ...(lab !== undefined ? { lab } : {}),
      ...(judged.host ? { host: judged.host } : {}), peakCpuPercent: round(judged.peakCpuPercent), runningSeconds: Math.round(judged.runningMs / 1000),
    });
  }
  return rows;
}

interface Judged { peakCpuPercent: number; runningMs: number; host?: string }

/**
 * From the simulator's world: powered on for the whole window, and its CPU demand (the simulator's own
 * model, usage.ts) sampled once per burst window — so every burst of a Bursty guest is seen — never above
 * the threshold.
 */
function observedIdle(vm: Readonly<VirtualMachine>, rule: Readonly<IdleRule>, now: number, observed: ObservedUsage): Judged | undefined {
  const id = `${namespaceOf(vm)}/${vm.metadata.name}`;
  const record = observed.vms.get(id);
  if (!record || record.power !== "Running" || record.poweredOnAt === undefined || now - record.poweredOnAt < rule.forMs) return undefined;
  let peak = 0;
  for (let t = now - rule.forMs; t <= now; t += BURST_WINDOW_MS) peak = Math.max(peak, cpuDemand(observed.seed, id, record.config, t));
  peak = Math.max(peak, cpuDemand(observed.seed, id, record.config, now));
  return { peakCpuPercent: (100 * peak) / record.config.cpu, runningMs: now - record.poweredOnAt, host: record.host };
}

/** Without the world: Running since status.startedAt for the whole window, and its declared workload's peak. */
function declaredIdle(vm: Readonly<VirtualMachine>, rule: Readonly<IdleRule>, now: number): Judged | undefined {
  const started = vm.status?.startedAt ? Date.parse(vm.status.startedAt) : Number.NaN;
  if (vm.status?.phase !== "Running" || Number.isNaN(started) || now - started < rule.forMs) return undefined;
  return { peakCpuPercent: declaredPeakPercent(vm.spec.workload ?? DEFAULT_WORKLOAD), runningMs: now - started, ...(vm.status.host ? { host: vm.status.host } : {}) };
}

/** The most a declared workload asks of its vCPUs, percent, as the simulator's profiles shape it (usage.ts). */
export function declaredPeakPercent(workload: Readonly<VmConfig["workload"]>): number {
  switch (workload.profile) {
    case "Idle": return IDLE_FRACTION * 100;
    case "Steady": return workload.cpuPercent;
    case "Diurnal": return Math.min(100, workload.cpuPercent * (1 + DIURNAL_AMPLITUDE));
    case "Bursty": return Math.min(100, workload.cpuPercent * BURST_FACTOR);
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

// ---------------------------------------------------------------- what expiry reclaims now

export type ReclaimLease = "runtime" | "storage" | "maxLifetime" | "ttl";

export interface ReclaimItem {
  action: "Stop" | "Delete";
  kind: "LabTopology" | "VirtualMachine";
  namespace: string;
  name: string;
  owner?: string;
  /** Which lease ran out, and when. */
  lease: ReclaimLease;
  expiredAt: string;
  /** The VMs it stops or deletes. */
  vms: string[];
}

/**
 * What the leases stop or delete now: labs whose runtime lease ran out (stopped: their VMs still on) or whose
 * storage lease or lifetime ran out (deleted, with every VM), and plain VMs whose spec.lease ran out and that
 * are not yet as it leaves them (stopped; with onExpiry Delete also removed from their host). A lab already
 * Expired with no VM left has nothing more to reclaim.
 */
export function reclaimNow(vms: readonly VirtualMachine[], labs: readonly LabTopology[], now: number): ReclaimItem[] {
  const items: ReclaimItem[] = [];
  for (const lab of labs) {
    const item = labReclaim(lab, vms.filter((vm) => namespaceOf(vm) === namespaceOf(lab) && labOf(vm) === lab.metadata.name), now);
    if (item) items.push(item);
  }
  for (const vm of vms) {
    const item = vmReclaim(vm, now);
    if (item) items.push(item);
  }
  // Labs first, then VMs, each by namespace and name, as `kubectl get` would list them.
  return items.sort((a, b) => a.kind.localeCompare(b.kind) || a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

/** The lease facts of a lab as its reconciler reads them from its status (reconcile-lab.ts). */
export function labLeaseFacts(lab: Readonly<LabTopology>, now: number): LeaseFacts {
  const status = lab.status;
  return {
    ...(lab.spec.lease ? { lease: lab.spec.lease } : {}),
    exempt: lab.metadata.labels?.[LEASE_EXEMPT_LABEL] === "true",
    createdAt: Date.parse(lab.metadata.creationTimestamp ?? new Date(now).toISOString()),
    ...(status?.startedAt && !status.stoppedAt ? { startedAt: Date.parse(status.startedAt) } : {}),
    ...(status?.stoppedAt ? { stoppedAt: Date.parse(status.stoppedAt) } : {}),
    now,
  };
}

function labReclaim(lab: Readonly<LabTopology>, labVms: readonly VirtualMachine[], now: number): ReclaimItem | undefined {
  const facts = labLeaseFacts(lab, now);
  const verdict = leaseVerdict(facts);
  const action = verdict.delete ? "Delete" : verdict.stop ? "Stop" : undefined;
  if (!action || !facts.lease) return undefined;
  const affected = action === "Delete" ? labVms : labVms.filter((vm) => vm.status?.phase !== "Stopped");
  if (affected.length === 0 && (action === "Stop" || lab.status?.phase === "Expired")) return undefined;
  const expiry = labExpiry(facts.lease, facts, action);
  return {
    action, kind: "LabTopology", namespace: namespaceOf(lab), name: lab.metadata.name, owner: lab.spec.owner,
    lease: expiry.lease, expiredAt: new Date(expiry.at).toISOString(), vms: affected.map((vm) => vm.metadata.name).sort(),
  };
}

/** Which of the lab's leases ran out first for this action: its own (runtime or storage) or its lifetime. */
function labExpiry(lease: NonNullable<LeaseFacts["lease"]>, facts: Readonly<LeaseFacts>, action: "Stop" | "Delete"): { lease: ReclaimLease; at: number } {
  const lifetimeEnd = facts.createdAt + (durationMs(lease.maxLifetime) ?? Infinity);
  const own = action === "Stop"
    ? (facts.startedAt ?? Infinity) + (durationMs(lease.runtime) ?? Infinity)
    : (facts.stoppedAt ?? Infinity) + (durationMs(lease.storage) ?? Infinity);
  if (own <= lifetimeEnd) return { lease: action === "Stop" ? "runtime" : "storage", at: own };
  return { lease: "maxLifetime", at: lifetimeEnd };
}

function vmReclaim(vm: Readonly<VirtualMachine>, now: number): ReclaimItem | undefined {
  const lease = vmLease(vm);
  if (!lease || now < lease.expiresAt) return undefined;
  if (reclaimed(vm, lease.onExpiry)) return undefined;
  return {
    action: lease.onExpiry, kind: "VirtualMachine", namespace: namespaceOf(vm), name: vm.metadata.name,
    ...(vm.spec.owner !== undefined ? { owner: vm.spec.owner } : {}),
    lease: "ttl", expiredAt: new Date(lease.expiresAt).toISOString(), vms: [vm.metadata.name],
  };
}

/** Already as its lease leaves it: stopped, and for Delete also removed from its host (Ready for reason LeaseExpired). */
function reclaimed(vm: Readonly<VirtualMachine>, onExpiry: "Stop" | "Delete"): boolean {
  if (vm.status?.phase !== "Stopped") return false;
  return onExpiry === "Stop" || vm.status.conditions?.find((c) => c.type === "Ready")?.reason === "LeaseExpired";
}
