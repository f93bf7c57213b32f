// The HA restart plan of one cluster, from one snapshot: which VMs of failed hosts start where, in restart
// priority order (Highest first), each only once the VMs it waits for meet their ready condition (plus
// delay) or the timeout passed, never before its old lease can have expired, at most 32 power-ons per
// host, dedicated failover hosts tried first. What does not fit waits, highest priorities served first.
// Pure: the same inputs give the same plan.

import { byCodeUnits } from "../../api/selectors.ts";
import type { VmObservation } from "../../core/observation.ts";
import { placeBatch } from "../../placement/index.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm, VmRequest } from "../../placement/index.ts";
import { nextAttemptAt, type FailoverNeed, type FailoverReason, type RestartAttempts } from "./failover.ts";
import { PRIORITY_RANK, type Protection } from "./protection.ts";

/** BEHAVIOUR.md, Restart: at most 32 concurrent power-ons per host. */
export const MAX_CONCURRENT_POWER_ONS = 32;

export interface FailoverVm {
  id: string;
  request: VmRequest;
  protection: Protection;
  instance?: Readonly<VmObservation>;
  /** Set when the VM needs a restart after a failure. */
  need?: FailoverNeed;
}

export interface FailoverInput {
  snapshot: ClusterSnapshot;
  /** Every protected VM of the cluster (candidates and the VMs they may wait for). */
  vms: readonly FailoverVm[];
  /** Hosts that run nothing in normal operation and are tried first for restarts. */
  failoverHosts: readonly string[];
  attempts: ReadonlyMap<string, RestartAttempts>;
  now: number;
}

export type WaitReason = "WaitingForLeaseExpiry" | "WaitingForRestartOrder" | "InsufficientCapacity" | "WaitingForRetry" | "WaitingForPowerOnSlot";

export interface Restart {
  vm: string;
  host: string;
  fromHost: string;
  reason: FailoverReason;
  failedAt: number;
}

export interface FailoverWait {
  vm: string;
  reason: WaitReason;
  message: string;
  /** When waiting ends by itself (lease expiry, a delay, a retry), if it does. */
  until?: number;
}

export interface FailoverPlan {
  restarts: Restart[];
  waiting: FailoverWait[];
  failed: { vm: string; message: string }[];
  /** Every VM HA is restarting: the cluster's ordinary placement leaves them alone. */
  handled: string[];
}

/** A VM of the current failover: its ready condition, and since when its timeout runs. */
interface Predecessor {
  vm: FailoverVm;
  /** When its ready condition held, or undefined while it does not. */
  readyAt?: number;
  since: number;
}

export function planFailover(input: Readonly<FailoverInput>): FailoverPlan {
  const candidates = input.vms.filter((vm) => vm.need !== undefined)
    .sort((a, b) => PRIORITY_RANK[b.protection.priority] - PRIORITY_RANK[a.protection.priority] || byCodeUnits(a.id, b.id));
  const plan: FailoverPlan = { restarts: [], waiting: [], failed: [], handled: candidates.map((c) => c.id) };
  if (candidates.length === 0) return plan;

  const epoch = Math.min(...candidates.map((c) => c.need!.failedAt));
  const predecessors = currentFailover(input.vms, epoch, input.now);
  const placed = [...input.snapshot.placed];
  const starting = startingByHost(input.vms);

  for (const group of byPriority(candidates)) {
    const eligible: FailoverVm[] = [];
    const gate = new Gates(predecessors.values(), input.now);
    for (const candidate of group) {
      const wait = whyWait(candidate, gate, input);
      if (wait === "exhausted") plan.failed.push({ vm: candidate.id, message: exhaustedMessage(candidate, input.attempts) });
      else if (wait) plan.waiting.push(wait);
      else eligible.push(candidate);
    }
    const restarts = placeGroup(eligible, { ...input.snapshot, placed }, input.failoverHosts, starting, plan);
    for (const restart of restarts) {
      const vm = group.find((c) => c.id === restart.vm)!;
      plan.restarts.push(restart);
      placed.push(placedVm(vm.request, restart.host));
      starting.set(restart.host, (starting.get(restart.host) ?? 0) + 1);
      // ResourcesAllocated holds once the restart is placed: lower priorities may follow in this plan.
      const entry = predecessors.get(vm.id);
      if (entry && vm.protection.readyCondition === "ResourcesAllocated") entry.readyAt = input.now;
    }
  }
  return plan;
}

/** The VMs of the current failover: the candidates, and protected VMs restarted since it began. */
function currentFailover(vms: readonly FailoverVm[], epoch: number, now: number): Map<string, Predecessor> {
  const entries = new Map<string, Predecessor>();
  for (const vm of vms) {
    if (vm.need) {
      entries.set(vm.id, { vm, since: vm.need.failedAt });
      continue;
    }
    const instance = vm.instance;
    if (!instance || instance.power === "Off" || instance.poweredOnAt === undefined || instance.poweredOnAt < epoch) continue;
    const readyAt = readyTime(vm, instance, now);
    entries.set(vm.id, { vm, since: instance.poweredOnAt, ...(readyAt !== undefined ? { readyAt } : {}) });
  }
  return entries;
}

/** When a restarted VM met its policy's ready condition (BEHAVIOUR.md, Restart: "start the next priority when"). */
function readyTime(vm: FailoverVm, instance: Readonly<VmObservation>, now: number): number | undefined {
  switch (vm.protection.readyCondition) {
    case "ResourcesAllocated": return instance.poweredOnAt ?? now;
    case "PoweredOn": return instance.power === "Running" ? instance.since : undefined;
    case "GuestHeartbeat": return instance.power === "Running" && instance.guestHeartbeat !== undefined ? instance.since : undefined;
  }
}

function whyWait(candidate: FailoverVm, gate: Gates, input: Readonly<FailoverInput>): FailoverWait | "exhausted" | undefined {
  const need = candidate.need!;
  const { now } = input;
  if (now < need.safeAt) {
    return { vm: candidate.id, reason: "WaitingForLeaseExpiry", until: need.safeAt, message: `waiting until ${iso(need.safeAt)}, when host ${need.fromHost}'s lease on the VM's disks has expired` };
  }
  const attempt = nextAttemptAt(input.attempts.get(candidate.id));
  if (attempt === "exhausted") return "exhausted";
  if (now < attempt) return { vm: candidate.id, reason: "WaitingForRetry", until: attempt, message: `restart attempt ${(input.attempts.get(candidate.id)?.count ?? 0) + 1} at ${iso(attempt)}` };

  const gates = [gate.higher(PRIORITY_RANK[candidate.protection.priority]), ...candidate.protection.startAfter.map((policy) => gate.policy(policy))];
  const blockers = gates.flatMap((g) => g.blockers).filter((id) => id !== candidate.id);
  if (blockers.length > 0) {
    const until = Math.min(...gates.map((g) => g.blockedUntil));
    return { vm: candidate.id, reason: "WaitingForRestartOrder", until, message: `waiting for ${describeList([...new Set(blockers)].sort(byCodeUnits))} to be ready first (restart order)` };
  }
  const openAt = Math.max(...gates.map((g) => g.openAt));
  const delayedUntil = openAt + candidate.protection.startDelayMs;
  if (candidate.protection.startDelayMs > 0 && openAt > Number.NEGATIVE_INFINITY && now < delayedUntil) {
    return { vm: candidate.id, reason: "WaitingForRestartOrder", until: delayedUntil, message: `start delay: restarting at ${iso(delayedUntil)}` };
  }
  return undefined;
}

/** What a set of predecessors allows: the latest time one became ready, and those not ready within their timeout. */
interface GateState {
  openAt: number;
  blockers: string[];
  blockedUntil: number;
}

/** Gates over the current failover, computed once per priority group (a group's placements change them). */
class Gates {
  private readonly byRank = new Map<number, GateState>();
  private readonly byPolicy = new Map<string, GateState>();
  private readonly predecessors: readonly Predecessor[];
  private readonly now: number;

  constructor(predecessors: Iterable<Predecessor>, now: number) {
    this.predecessors = [...predecessors];
    this.now = now;
  }

  higher(rank: number): GateState {
    let state = this.byRank.get(rank);
    if (!state) {
      state = this.gateOver((p) => PRIORITY_RANK[p.vm.protection.priority] > rank);
      this.byRank.set(rank, state);
    }
    return state;
  }

  policy(policy: string): GateState {
    let state = this.byPolicy.get(policy);
    if (!state) {
      state = this.gateOver((p) => p.vm.protection.policy === policy);
      this.byPolicy.set(policy, state);
    }
    return state;
  }

  private gateOver(include: (p: Predecessor) => boolean): GateState {
    const state: GateState = { openAt: Number.NEGATIVE_INFINITY, blockers: [], blockedUntil: Number.POSITIVE_INFINITY };
    for (const p of this.predecessors) {
      if (!include(p)) continue;
      const timeoutAt = p.since + p.vm.protection.readyTimeoutMs;
      if (p.readyAt !== undefined) state.openAt = Math.max(state.openAt, p.readyAt);
      else if (this.now < timeoutAt) {
        state.blockers.push(p.vm.id);
        state.blockedUntil = Math.min(state.blockedUntil, timeoutAt);
      }
    }
    return state;
  }
}

function placeGroup(group: readonly FailoverVm[], snapshot: ClusterSnapshot, failoverHosts: readonly string[], starting: ReadonlyMap<string, number>, plan: FailoverPlan): Restart[] {
  if (group.length === 0) return [];
  const slotsLeft = new Map<string, number>();
  const hosts = snapshot.hosts.map((host) => withPowerOnSlots(host, starting, slotsLeft));
  const restarts: Restart[] = [];
  let remaining = [...group];
  // Dedicated failover hosts first (BEHAVIOUR.md, Admission control), then every host.
  const dedicated = new Set(failoverHosts);
  const passes: CandidateHost[][] = dedicated.size > 0
    ? [hosts.map((h) => dedicated.has(h.name) ? h : { ...h, unavailable: h.unavailable ?? "not a failover host" }), hosts]
    : [hosts];
  const placed = [...snapshot.placed];
  for (const [index, passHosts] of passes.entries()) {
    if (remaining.length === 0) break;
    const batch = placeBatch({ ...snapshot, hosts: passHosts, placed }, remaining.map((vm) => vm.request));
    const byId = new Map(remaining.map((vm) => [vm.id, vm]));
    const left = new Set(remaining.map((vm) => vm.id));
    for (const placement of batch.placements) {
      const vm = byId.get(placement.vm)!;
      const slots = slotsLeft.get(placement.host) ?? MAX_CONCURRENT_POWER_ONS;
      if (slots <= 0) continue;
      slotsLeft.set(placement.host, slots - 1);
      left.delete(vm.id);
      placed.push(placedVm(vm.request, placement.host));
      restarts.push({ vm: vm.id, host: placement.host, fromHost: vm.need!.fromHost, reason: vm.need!.reason, failedAt: vm.need!.failedAt });
    }
    remaining = remaining.filter((vm) => left.has(vm.id));
    if (index === passes.length - 1) {
      const reasons = new Map(batch.unschedulable.map((u) => [u.vm, u.message]));
      for (const vm of remaining) {
        const message = reasons.get(vm.id);
        plan.waiting.push(message === undefined
          ? { vm: vm.id, reason: "WaitingForPowerOnSlot", message: `waiting for a power-on slot (${MAX_CONCURRENT_POWER_ONS} per host)` }
          : { vm: vm.id, reason: "InsufficientCapacity", message: `no host can take it now: ${message}` });
      }
    }
  }
  return restarts;
}

function withPowerOnSlots(host: CandidateHost, starting: ReadonlyMap<string, number>, slotsLeft: Map<string, number>): CandidateHost {
  const slots = MAX_CONCURRENT_POWER_ONS - (starting.get(host.name) ?? 0);
  slotsLeft.set(host.name, slots);
  return slots > 0 || host.unavailable ? host : { ...host, unavailable: `${MAX_CONCURRENT_POWER_ONS} power-ons in progress` };
}

function startingByHost(vms: readonly FailoverVm[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const vm of vms) if (vm.instance?.power === "Starting" && !vm.need) counts.set(vm.instance.host, (counts.get(vm.instance.host) ?? 0) + 1);
  return counts;
}

function byPriority(candidates: readonly FailoverVm[]): FailoverVm[][] {
  const groups = new Map<number, FailoverVm[]>();
  for (const c of candidates) {
    const rank = PRIORITY_RANK[c.protection.priority];
    groups.set(rank, [...(groups.get(rank) ?? []), c]);
  }
  return [...groups.entries()].sort((a, b) => b[0] - a[0]).map(([, group]) => group);
}

export function placedVm(request: Readonly<VmRequest>, host: string): PlacedVm {
  const anti = request.placement.vmAntiAffinity?.required;
  return { id: request.id, namespace: request.namespace, labels: request.labels, host, cpu: request.cpu, memoryMiB: request.memoryMiB, ...(anti ? { antiAffinity: anti } : {}) };
}

function exhaustedMessage(vm: FailoverVm, attempts: ReadonlyMap<string, RestartAttempts>): string {
  const last = attempts.get(vm.id)?.lastError;
  return `restart failed ${attempts.get(vm.id)?.count ?? 0} times (the last: ${last ?? "unknown"}); HA gives up, as vSphere does after 5 attempts`;
}

function describeList(ids: readonly string[]): string {
  return ids.length <= 3 ? ids.join(", ") : `${ids.slice(0, 3).join(", ")} and ${ids.length - 3} more`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
