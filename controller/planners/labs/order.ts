// The start and stop order of one copy of a lab, as vCloud Director's start-up section has it: a tier
// starts once every tier it depends on meets what it waits for (started, Ready, or answering with its
// guest heartbeat), plus a delay; a dependency that does not come within its timeout stalls the lab with
// the reason. Stopping runs the other way: a tier stops once every tier depending on it has stopped, plus
// that tier's stop delay, each tier with its own stop action. Pure.

import type { LabTier, LabTierState, LabTierStatus, LabWaitFor } from "../../api/types.ts";

/** One VM of a tier as it stands. */
export interface TierVm {
  name: string;
  /** On at all (starting, running, stopping). */
  on: boolean;
  /** When it was powered on, if it is on. */
  startedAt?: number;
  /** When its Ready condition last became true, if it is Ready. */
  readyAt?: number;
  /** When its guest began answering, if it does. */
  heartbeatAt?: number;
}

export interface CopyOrderInput {
  tiers: readonly LabTier[];
  vms: ReadonlyMap<string, readonly TierVm[]>;
  /** The tiers' states of the last round. */
  previous: readonly LabTierStatus[];
  /** Whether the lab should run (started in order) or be stopped (in reverse order). */
  running: boolean;
  now: number;
}

export interface CopyOrder {
  /** The tiers whose VMs may run now. */
  released: Set<string>;
  /** Tiers stopping with action PowerOff: their VMs still on are powered off. */
  powerOff: Set<string>;
  tiers: LabTierStatus[];
  /** A dependency that did not come in time. */
  stalled?: { reason: string; message: string };
  /** When the order changes by time alone (a delay, a timeout), if it does. */
  wakeAt?: number;
}

/** The tiers in an order where every tier comes after those it depends on; undefined on a cycle. */
export function dependencyOrder(tiers: readonly LabTier[]): LabTier[] | { cycle: string[] } {
  const byName = new Map(tiers.map((t) => [t.name, t]));
  const done = new Set<string>();
  const visiting: string[] = [];
  const order: LabTier[] = [];
  const visit = (tier: LabTier): string[] | undefined => {
    if (done.has(tier.name)) return undefined;
    const at = visiting.indexOf(tier.name);
    if (at >= 0) return [...visiting.slice(at), tier.name];
    visiting.push(tier.name);
    for (const dep of tier.dependsOn) {
      const next = byName.get(dep.tier);
      const cycle = next ? visit(next) : undefined;
      if (cycle) return cycle;
    }
    visiting.pop();
    done.add(tier.name);
    order.push(tier);
    return undefined;
  };
  for (const tier of tiers) {
    const cycle = visit(tier);
    if (cycle) return { cycle };
  }
  return order;
}

export function orderCopy(input: Readonly<CopyOrderInput>): CopyOrder {
  const order = dependencyOrder(input.tiers);
  if (!Array.isArray(order)) {
    return { released: new Set(), powerOff: new Set(), tiers: [], stalled: { reason: "DependencyCycle", message: `tiers depend on each other in a cycle: ${order.cycle.join(" → ")}` } };
  }
  return input.running ? startOrder(input, order) : stopOrder(input, order);
}

function startOrder(input: Readonly<CopyOrderInput>, order: readonly LabTier[]): CopyOrder {
  const result: CopyOrder = { released: new Set(), powerOff: new Set(), tiers: [] };
  const states = new Map<string, LabTierStatus>();
  for (const tier of order) {
    const vms = input.vms.get(tier.name) ?? [];
    const blocking: string[] = [];
    let openAt = Number.NEGATIVE_INFINITY;
    for (const dep of tier.dependsOn) {
      const met = metAt(input.vms.get(dep.tier) ?? [], dep.waitFor, states.get(dep.tier));
      if (met === undefined) blocking.push(`${dep.tier} to be ${describe(dep.waitFor)}`);
      else openAt = Math.max(openAt, met + dep.delaySeconds * 1000);
    }
    const before = input.previous.find((p) => p.name === tier.name);
    if (blocking.length === 0 && input.now >= openAt) {
      result.released.add(tier.name);
      const state: LabTierState = vms.length > 0 && vms.every((v) => v.readyAt !== undefined) ? "Running" : "Starting";
      states.set(tier.name, status(tier, vms, state, before, input.now));
      continue;
    }
    const waiting = status(tier, vms, "Waiting", before, input.now);
    const since = Date.parse(waiting.since!);
    if (blocking.length === 0) {
      waiting.message = `start delay: starts at ${new Date(openAt).toISOString()}`;
      result.wakeAt = Math.min(result.wakeAt ?? Infinity, openAt);
    } else {
      waiting.message = `waiting for ${blocking.join(" and ")}`;
      const timeout = Math.min(...tier.dependsOn.map((d) => d.timeoutSeconds)) * 1000;
      if (input.now - since >= timeout) {
        result.stalled ??= { reason: "DependencyTimeout", message: `tier ${tier.name} waited ${Math.round((input.now - since) / 1000)} s for ${blocking.join(" and ")} (timeout ${timeout / 1000} s)` };
      } else {
        result.wakeAt = Math.min(result.wakeAt ?? Infinity, since + timeout);
      }
    }
    states.set(tier.name, waiting);
  }
  result.tiers = input.tiers.map((t) => states.get(t.name)!);
  return result;
}

function stopOrder(input: Readonly<CopyOrderInput>, order: readonly LabTier[]): CopyOrder {
  const result: CopyOrder = { released: new Set(), powerOff: new Set(), tiers: [] };
  const states = new Map<string, LabTierStatus>();
  // Dependents stop first: walk the start order backwards.
  for (const tier of [...order].reverse()) {
    const vms = input.vms.get(tier.name) ?? [];
    const before = input.previous.find((p) => p.name === tier.name);
    const dependents = input.tiers.filter((t) => t.dependsOn.some((d) => d.tier === tier.name));
    let openAt = Number.NEGATIVE_INFINITY;
    const running: string[] = [];
    for (const dependent of dependents) {
      const state = states.get(dependent.name)!;
      if (state.state !== "Stopped") running.push(dependent.name);
      else openAt = Math.max(openAt, Date.parse(state.since!) + dependent.stop.delaySeconds * 1000);
    }
    if (running.length > 0 || input.now < openAt) {
      // Still up until its dependents are down: it keeps running as it is.
      result.released.add(tier.name);
      const state = status(tier, vms, vms.some((v) => v.on) ? "Running" : "Stopped", before, input.now);
      state.message = running.length > 0 ? `stops after ${running.join(", ")}` : `stop delay: stops at ${new Date(openAt).toISOString()}`;
      if (running.length === 0) result.wakeAt = Math.min(result.wakeAt ?? Infinity, openAt);
      states.set(tier.name, state);
      continue;
    }
    const stopped = vms.every((v) => !v.on);
    if (!stopped && tier.stop.action === "PowerOff") result.powerOff.add(tier.name);
    states.set(tier.name, status(tier, vms, stopped ? "Stopped" : "Stopping", before, input.now));
  }
  result.tiers = input.tiers.map((t) => states.get(t.name)!);
  return result;
}

/** When every VM of a tier met `waitFor` (the last of them), or undefined while one has not. */
function metAt(vms: readonly TierVm[], waitFor: LabWaitFor, state: LabTierStatus | undefined): number | undefined {
  if (state?.state === "Waiting") return undefined;
  if (vms.length === 0) return Number.NEGATIVE_INFINITY;
  let latest = Number.NEGATIVE_INFINITY;
  for (const vm of vms) {
    const at = waitFor === "Started" ? vm.startedAt : waitFor === "Ready" ? vm.readyAt : vm.heartbeatAt;
    if (at === undefined) return undefined;
    latest = Math.max(latest, at);
  }
  return latest;
}

function describe(waitFor: LabWaitFor): string {
  return waitFor === "Started" ? "started" : waitFor === "Ready" ? "Ready" : "answering (guest heartbeat)";
}

function status(tier: LabTier, vms: readonly TierVm[], state: LabTierState, before: LabTierStatus | undefined, now: number): LabTierStatus {
  const since = before?.state === state && before.since ? before.since : new Date(now).toISOString();
  return { name: tier.name, ready: vms.filter((v) => v.readyAt !== undefined).length, total: vms.length, state, since };
}
