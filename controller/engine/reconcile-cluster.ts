// Reconciles one HostCluster: places every VM of the cluster that waits for a host, in one batch from one
// snapshot (so two VMs never count on the same free capacity), after HA restarts and through HA admission
// control, and reports the cluster's state, its failover capacity included.

import type { HostCluster, HostClusterStatus, VirtualMachine } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import { nextConditions, type ConditionInput } from "../api/conditions.ts";
import { placeBatch } from "../placement/index.ts";
import type { ClusterSnapshot, VmRequest } from "../placement/index.ts";
import { INSUFFICIENT_FAILOVER_CAPACITY, failoverCapacityCondition, ordinaryPlacementSnapshot, planAdmission, requiredFailures } from "../planners/ha/admission.ts";
import { failoverCapacityReport } from "../planners/ha/failover-capacity.ts";
import { desiredConfig } from "../planners/lifecycle.ts";
import { desiredPower } from "../planners/run-strategy.ts";
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
  if (!cluster) {
    ctx.metrics.tolerableHostFailures.remove({ cluster: name });
    ctx.metrics.vmsAwaitingCapacity.remove({ cluster: name });
    return;
  }
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
  if (waiting.length > 0 && !registering) failures = await placeWaiting(ctx, cluster, members, waiting, vms, protections);
  else if (!registering) forgetAdmissionWaits(ctx, cluster, new Set());

  await writeStatusIfChanged(ctx, cluster, clusterStatus(ctx, cluster, members, vms, protections));
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

async function placeWaiting(ctx: ReconcileContext, cluster: HostCluster, members: HostView[], waiting: VirtualMachine[], vms: readonly VirtualMachine[], protections: ReadonlyMap<string, Protection>): Promise<number> {
  const snapshot = snapshotOf(ctx, cluster, members);
  const admitted = admit(ctx, cluster, members, snapshot, waiting, vms, protections);
  const byId = new Map(admitted.map((vm) => [vmId(vm), vm]));
  const ordinary = cluster.spec.ha.enabled ? ordinaryPlacementSnapshot(snapshot, cluster.spec.ha.admissionControl) : snapshot;
  const plan = placeBatch(ordinary, admitted.map(requestOf));
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

/**
 * HA admission control: the waiting VMs that may power on now. The others wait Pending with reason
 * InsufficientFailoverCapacity, kept with HA's waits so the VM's status says why.
 */
function admit(ctx: ReconcileContext, cluster: HostCluster, members: readonly HostView[], snapshot: ClusterSnapshot, waiting: readonly VirtualMachine[], vms: readonly VirtualMachine[], protections: ReadonlyMap<string, Protection>): VirtualMachine[] {
  if (!cluster.spec.ha.enabled) {
    forgetAdmissionWaits(ctx, cluster, new Set());
    return [...waiting];
  }
  const plan = planAdmission({
    policy: cluster.spec.ha.admissionControl,
    snapshot,
    protectedVms: protectedRequests(vms, protections),
    powerOns: waiting.map((vm) => {
      const protection = protections.get(vmId(vm));
      return { request: requestOf(vm), priority: protection?.priority ?? "Medium", protected: protection?.protected === true };
    }),
    hostCount: hostsInService(members),
    restartsAwaitingCapacity: restartsAwaitingCapacity(ctx, vms),
  });
  const refused = new Set<string>();
  for (const { vm, message } of plan.refused) {
    refused.add(vm);
    ctx.unschedulable.delete(vm);
    const before = ctx.ha.waiting.get(vm);
    if (before?.reason === INSUFFICIENT_FAILOVER_CAPACITY && before.message === message) continue;
    ctx.ha.waiting.set(vm, { reason: INSUFFICIENT_FAILOVER_CAPACITY, message });
    ctx.enqueue(vmKeyOfId(vm));
  }
  forgetAdmissionWaits(ctx, cluster, refused);
  const admitted = new Set(plan.admitted);
  return waiting.filter((vm) => admitted.has(vmId(vm)));
}

/** Admission waits of this cluster's VMs that are over: admitted now, or no longer waiting to start. */
function forgetAdmissionWaits(ctx: ReconcileContext, cluster: HostCluster, stillRefused: ReadonlySet<string>): void {
  for (const [id, wait] of ctx.ha.waiting) {
    if (wait.reason !== INSUFFICIENT_FAILOVER_CAPACITY || stillRefused.has(id)) continue;
    const vm = ctx.store.get(vmKeyOfId(id)) as VirtualMachine | undefined;
    if (vm && vm.spec.placement.cluster !== cluster.metadata.name) continue;
    ctx.ha.waiting.delete(id);
    ctx.enqueue(vmKeyOfId(id));
  }
}

/** The placement requests of the cluster's protected VMs, by id. */
function protectedRequests(vms: readonly VirtualMachine[], protections: ReadonlyMap<string, Protection>): Map<string, VmRequest> {
  const requests = new Map<string, VmRequest>();
  for (const vm of vms) if (protections.get(vmId(vm))?.protected && !vm.metadata.deletionTimestamp) requests.set(vmId(vm), requestOf(vm));
  return requests;
}

function restartsAwaitingCapacity(ctx: ReconcileContext, vms: readonly VirtualMachine[]): number {
  return vms.filter((vm) => ctx.ha.waiting.get(vmId(vm))?.reason === "InsufficientCapacity").length;
}

/** The cluster's failover capacity and the condition that says whether its policy holds, or nothing when HA is off. */
function failoverCapacityStatus(ctx: ReconcileContext, cluster: HostCluster, members: HostView[], vms: readonly VirtualMachine[], protections: ReadonlyMap<string, Protection>): { status?: HostClusterStatus["failoverCapacity"]; condition?: ConditionInput } {
  const name = cluster.metadata.name;
  if (!cluster.spec.ha.enabled || members.some((m) => m.host === undefined)) {
    ctx.metrics.tolerableHostFailures.remove({ cluster: name });
    return {};
  }
  const policy = cluster.spec.ha.admissionControl;
  const snapshot = snapshotOf(ctx, cluster, members);
  const report = failoverCapacityReport(requiredFailures(policy), snapshot, protectedRequests(vms, protections));
  ctx.metrics.tolerableHostFailures.set({ cluster: name }, report.tolerates);
  const condition = failoverCapacityCondition(policy, report, snapshot, hostsInService(members));
  return {
    status: {
      tolerates: report.tolerates,
      ...(report.required !== undefined ? { required: report.required } : {}),
      ...(report.worstCase ? { worstCase: report.worstCase } : {}),
      ...(report.unplaceable ? { unplaceable: report.unplaceable.length } : {}),
    },
    ...(condition ? { condition: { type: "FailoverCapacity", ...condition } } : {}),
  };
}

/** Hosts the operator keeps in service (not in maintenance), whatever their health: admission control needs 3. */
function hostsInService(members: readonly HostView[]): number {
  return members.filter((m) => m.host?.spec.maintenance === false).length;
}

function hasHostsReady(members: readonly HostView[]): boolean {
  return members.some((m) => m.phase === "Ready");
}

function clusterStatus(ctx: ReconcileContext, cluster: HostCluster, members: HostView[], vms: VirtualMachine[], protections: ReadonlyMap<string, Protection>): HostClusterStatus {
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
  let awaitingCapacity = 0;
  for (const vm of vms) {
    const id = vmId(vm);
    if (ctx.observed.vm(id)?.power === "Running") running++;
    if (ctx.unschedulable.has(id)) unschedulable++;
    const wait = ctx.ha.waiting.get(id)?.reason;
    if (wait === "InsufficientCapacity" || wait === INSUFFICIENT_FAILOVER_CAPACITY) awaitingCapacity++;
  }
  ctx.metrics.vmsAwaitingCapacity.set({ cluster: cluster.metadata.name }, awaitingCapacity);
  const failover = hasHostsReady(members) ? failoverCapacityStatus(ctx, cluster, members, vms, protections) : {};
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
    vmsAwaitingCapacity: awaitingCapacity,
    ...(failover.status ? { failoverCapacity: failover.status } : {}),
    conditions: nextConditions(cluster.status?.conditions, [
      { type: "Ready", status: hasHosts, reason: hasHosts ? "HostsReady" : "NoReadyHosts", message },
      ...(hasHosts ? [] : [{ type: "Stalled", status: true, reason: "NoReadyHosts", message: "no host of this cluster is ready: its selector matches none, or all are down" }]),
      ...(failover.condition ? [failover.condition] : []),
    ], new Date(ctx.clock.now()).toISOString(), generation),
  };
}
