// Reconciles one HostCluster: places every VM of the cluster that waits for a host, in one batch from one
// snapshot (so two VMs never count on the same free capacity), and reports the cluster's state.

import type { HostCluster, HostClusterStatus, VirtualMachine } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import { nextConditions } from "../api/conditions.ts";
import { placeBatch } from "../placement/index.ts";
import { desiredConfig, desiredPower } from "../planners/lifecycle.ts";
import type { Protection } from "../planners/ha/protection.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, vmKeyOfId, vmsOfCluster, writeStatusIfChanged } from "./context.ts";
import { requestOf, snapshotOf } from "./cluster-snapshot.ts";
import { protectionsOf, restartFailedVms, type FailoverRound } from "./reconcile-ha.ts";
import { execute } from "./executor.ts";
import { viewHost, type HostView } from "./views.ts";

export async function reconcileCluster(ctx: ReconcileContext, name: string): Promise<ReconcileResult | void> {
  const cluster = clusterByName(ctx, name);
  if (!cluster) return;
  const clusters = ctx.store.list("HostCluster");
  const members = ctx.store.list("Host")
    .map((h) => viewHost(ctx, h.metadata.name, clusters))
    .filter((v) => v.cluster?.metadata.name === name)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const vms = vmsOfCluster(ctx, name);
  const protections = protectionsOf(ctx, cluster, vms);

  // Hosts declared but not yet seen by an observation are being registered: placing now would call
  // VMs unschedulable for want of hosts that are a second away.
  const registering = members.some((m) => m.observed === undefined && m.host !== undefined);
  // HA restarts first: they take capacity before new power-ons, and are not gated by admission control.
  const round: FailoverRound = registering ? { handled: new Set() } : await restartFailedVms(ctx, cluster, members, vms, protections, snapshotOf(ctx, cluster, members));
  const waiting = vms.filter((vm) => !round.handled.has(vmId(vm)) && waitsForHost(ctx, vm));
  let failures = 0;
  if (waiting.length > 0 && !registering) failures = await placeWaiting(ctx, cluster, members, waiting, protections);

  await writeStatusIfChanged(ctx, cluster, clusterStatus(ctx, cluster, members, vms));
  if (failures > 0) throw new Error(`${failures} of ${waiting.length} VM starts in cluster ${name} failed`);
  if (registering && waiting.length > 0) return { requeueAfter: REGISTRATION_WAIT_MS };
  if (round.wakeAt !== undefined) return { requeueAfter: Math.max(0, round.wakeAt - ctx.clock.now()) };
}

const REGISTRATION_WAIT_MS = 1_000;

/** A VM that should run, is not on, and is not being deleted. */
function waitsForHost(ctx: ReconcileContext, vm: VirtualMachine): boolean {
  if (vm.metadata.deletionTimestamp) return false;
  const instance = ctx.observed.vm(vmId(vm));
  if (instance && instance.power !== "Off") return false;
  return desiredPower(vm, instance) === "On";
}

async function placeWaiting(ctx: ReconcileContext, cluster: HostCluster, members: HostView[], waiting: VirtualMachine[], protections: ReadonlyMap<string, Protection>): Promise<number> {
  const snapshot = snapshotOf(ctx, cluster, members);
  const byId = new Map(waiting.map((vm) => [vmId(vm), vm]));
  const plan = placeBatch(snapshot, waiting.map(requestOf));
  const hosts = new Map(members.map((m) => [m.name, m]));

  let failures = 0;
  for (const placement of plan.placements) {
    const vm = byId.get(placement.vm)!;
    const features = hosts.get(placement.host)?.host?.spec.cpu.features ?? [];
    const isolationResponse = protections.get(placement.vm)?.isolationResponse ?? "LeavePoweredOn";
    const config = { ...desiredConfig(vm, ctx.macs.macsFor(vm), cluster, features), isolationResponse };
    const reason = ctx.observed.vm(placement.vm) ? "restart" : "placement";
    ctx.unschedulable.delete(placement.vm);
    try {
      const outcome = await execute(ctx, { type: "Start", vm: placement.vm, host: placement.host, config, reason: `${reason} (score ${placement.score})` });
      if (outcome === "refused") failures++;
    } catch (error) {
      failures++;
      ctx.log.error({ err: error, vm: placement.vm }, "start failed");
    }
    ctx.enqueue(vmKeyOfId(placement.vm));
  }
  for (const refusal of plan.unschedulable) {
    if (ctx.unschedulable.get(refusal.vm) !== refusal.message) {
      ctx.unschedulable.set(refusal.vm, refusal.message);
      ctx.enqueue(vmKeyOfId(refusal.vm));
    }
  }
  return failures;
}

function clusterStatus(ctx: ReconcileContext, cluster: HostCluster, members: HostView[], vms: VirtualMachine[]): HostClusterStatus {
  const ready = members.filter((m) => m.phase === "Ready");
  const capacity = { cpu: 0, memoryMiB: 0 };
  const allocated = { cpu: 0, memoryMiB: 0 };
  for (const m of ready) {
    const spec = m.host!.spec;
    capacity.cpu += spec.cpu.cores * spec.cpu.overcommitRatio;
    capacity.memoryMiB += spec.memoryMiB;
  }
  for (const m of members) {
    allocated.cpu += m.observed?.allocated.cpu ?? 0;
    allocated.memoryMiB += m.observed?.allocated.memoryMiB ?? 0;
  }
  let running = 0;
  let unschedulable = 0;
  for (const vm of vms) {
    const id = vmId(vm);
    if (ctx.observed.vm(id)?.power === "Running") running++;
    if (ctx.unschedulable.has(id)) unschedulable++;
  }
  const generation = cluster.metadata.generation;
  const hasHosts = ready.length > 0;
  const message = `${ready.length}/${members.length} hosts ready, ${running}/${vms.length} VMs running` + (unschedulable > 0 ? `, ${unschedulable} unschedulable` : "");
  return {
    observedGeneration: generation,
    hostsReady: ready.length,
    hostsTotal: members.length,
    capacity,
    allocated,
    vmsRunning: running,
    vmsTotal: vms.length,
    vmsUnschedulable: unschedulable,
    conditions: nextConditions(cluster.status?.conditions, [
      { type: "Ready", status: hasHosts, reason: hasHosts ? "HostsReady" : "NoReadyHosts", message },
      ...(hasHosts ? [] : [{ type: "Stalled", status: true, reason: "NoReadyHosts", message: "no host of this cluster is ready: its selector matches none, or all are down" }]),
    ], new Date(ctx.clock.now()).toISOString(), generation),
  };
}
