// Reconciles one VirtualMachine: gathers its situation, the lifecycle planner decides (power state, spec
// changes, VM monitoring, storage protection, drift), the executor acts, status reports. Cluster-wide
// decisions are not made here: placement, HA restarts, admission control and evacuation are the cluster
// planner's, whose latest verdict on the VM says why it waits or moves.

import type { Host, VirtualMachine, VirtualMachineStatus } from "../api/types.ts";
import { objectKey, vmId } from "../api/types.ts";
import { vmLease } from "../planners/labs/lease.ts";
import { findCondition } from "../api/conditions.ts";
import { hostLabels } from "../api/membership.ts";
import { MANAGED_BY } from "../core/observation.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import { INSUFFICIENT_FAILOVER_CAPACITY } from "../planners/ha/admission.ts";
import { planVm, type VmSituation } from "../planners/lifecycle.ts";
import { forbiddenHost } from "../planners/drift.ts";
import { antiAffinityConflict, type RunningVm } from "../planners/anti-affinity-drift.ts";
import type { FailoverRecord } from "./ha-state.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, clusterKey, hostByName, verdictOf, vmsOfCluster, wakeAt, writeStatusIfChanged } from "./context.ts";
import { jsonEqual } from "../api/equal.ts";
import type { PlacedView } from "./replication.ts";
import { execute } from "./executor.ts";
import { viewHost } from "./views.ts";
import { clustersOfVm, FleetView } from "./replication.ts";
import { replicationView, rpoBreachAt } from "../planners/replication/status.ts";
import { faultToleranceView } from "../planners/ha/fault-tolerance.ts";

export async function reconcileVm(ctx: ReconcileContext, key: string, id: string): Promise<ReconcileResult | void> {
  let vm = ctx.store.get(key) as VirtualMachine | undefined;
  if (!vm || vm.metadata.deletionTimestamp) return removeVm(ctx, id, vm);
  if (orphanedByLab(ctx, vm)) {
    // Its lab is gone (deleted while Vireo was down): the VM goes too. The API server's garbage collector
    // does this by the owner reference; the file mode has none.
    await ctx.objects.delete(vm);
    return;
  }
  if (ctx.finalizers) {
    await ctx.finalizers.ensure(vm);
    vm = ctx.store.get(key) as VirtualMachine;
  }

  // A lease that ran out with onExpiry Delete deletes the object in API mode (its finalizer then removes the
  // VM from its host); a file-mode manifest is the person's to remove, so there the VM is only removed.
  const lease = vmLease(vm);
  if (ctx.finalizers && lease?.onExpiry === "Delete" && ctx.clock.now() >= lease.expiresAt) {
    ctx.events.record(vm, "Normal", "LeaseExpired", `the lease expired at ${new Date(lease.expiresAt).toISOString()}: deleting the VM`);
    await ctx.objects.delete(vm);
    return;
  }
  // Where the VM belongs this round: at home as declared, or away from its cluster on its replica, as recovered.
  const placed = new FleetView(ctx).place(vm);
  const here = placed.vm;
  const plan = planVm(situationOf(ctx, here, id, placed));
  for (const step of plan.steps) {
    if (await execute(ctx, step.action) !== "applied") continue;
    if (step.action.type === "ResetVm") ctx.metrics.vmResets.inc();
    ctx.events.record(vm, step.event.type, step.event.reason, step.action.reason);
  }
  const verdict = verdictOf(ctx, here);
  const cluster = here.spec.placement.cluster;
  // A VM that waits for a host wakes its cluster, unless the last round already found no room for it:
  // then only a change of capacity (a host, a VM that stops) starts the next round. A failover that has
  // come to Ready wakes it too: the cluster records the recovery.
  if (plan.needsPlacement && verdict?.kind !== "Unschedulable") ctx.enqueue(clusterKey(cluster));
  if (ctx.ha.failovers.get(id)?.toHost && plan.status.phase === "Running") ctx.enqueue(clusterKey(cluster));
  // Its replica's state (a sync, a failover) is its cluster's to act on.
  if (vm.spec.replication && !jsonEqual(vm.status?.replication ?? null, plan.status.replication ?? null)) ctx.enqueue(clusterKey(cluster));

  // A new VM about to be placed gets its first status from the placement round, a moment later: one
  // write fewer per VM on the way to Ready, which is what a thousand new VMs cost the API server.
  if (plan.needsPlacement && verdict === undefined && vm.status === undefined) return;
  if (await writeStatusIfChanged(ctx, vm, plan.status)) {
    recordPhaseEvent(ctx, vm, plan.status);
    recordReplicationChange(ctx, vm, plan.status);
  }
  // The recovery's record is done with once the status tells of that recovery.
  const record = ctx.replication.recoveries.get(id);
  const told = plan.status.replication?.failover;
  if (record && told && Date.parse(told.time) >= record.askedAt) ctx.replication.recoveries.delete(id);
  // A replica ages with time alone: look again when it would break its RPO (vSphere Replication's rule).
  const rpoAt = rpoBreachAt(ctx.observed.replica(id), ctx.clock.now());
  const wake = Math.min(plan.wakeAt ?? Infinity, rpoAt ?? Infinity);
  if (Number.isFinite(wake)) return wakeAt(ctx, wake);
}

/** Everything the lifecycle planner looks at for one VM, as declared where it belongs now. */
function situationOf(ctx: ReconcileContext, vm: VirtualMachine, id: string, placed: PlacedView): VmSituation {
  const instance = ctx.observed.vm(id);
  const hostView = instance ? viewHost(ctx, instance.host) : undefined;
  const cluster = clusterByName(ctx, vm.spec.placement.cluster);
  const recovering = placed.role.kind === "Recovering";
  // A VM recovering from its replica leaves its original to the recovery (fenced, or stopped by the plan).
  const misplaced = instance && hostView?.host && !recovering
    ? forbiddenHost(vm, hostView.host, hostView.cluster?.metadata.name) ?? antiAffinityBroken(ctx, vm, id, hostView.host)
    : undefined;
  const lease = vmLease(placed.declared);
  const replica = ctx.observed.replica(id);
  const replication = replicationView(placed.declared, replica, ctx.replication.notes.get(vm.spec.placement.cluster)?.get(id), ctx.replication.recoveries.get(id), ctx.clock.now());
  const protection = protectionOf(placed.declared, ctx.store.list("HAPolicy"), cluster);
  const note = ctx.faultTolerance.notes.get(vm.spec.placement.cluster)?.get(id);
  const secondary = ctx.observed.secondary(id);
  const switchover = ctx.observed.switchover(id);
  const faultTolerance = faultToleranceView({
    ...(vm.status?.faultTolerance ? { previous: vm.status.faultTolerance } : {}),
    ...(note ? { note } : {}), ...(secondary ? { secondary } : {}), ...(switchover ? { switchover } : {}),
    now: ctx.clock.now(),
  });
  const record = ctx.ha.failovers.get(id);
  const verdict = verdictOf(ctx, vm);
  return {
    vm,
    ...(instance ? { instance } : {}),
    ...(hostView ? { hostPhase: hostView.phase } : {}),
    ...(hostView?.observed ? { hostObserved: hostView.observed } : {}),
    ...(misplaced ? { forbiddenHost: misplaced } : {}),
    ...(cluster ? { cluster } : {}),
    networks: placed.networks,
    ...(recovering ? { recovering: { cluster: vm.spec.placement.cluster } } : {}),
    ...(lease ? { lease } : {}),
    ...(replication.status ? { replication: { status: replication.status, ...(replication.condition ? { condition: replication.condition } : {}) } } : {}),
    ...(verdict ? { verdict } : {}),
    ...(faultTolerance ? { faultTolerance } : {}),
    ha: {
      protected: protection.protected,
      ...(record ? { lastFailover: failoverStatus(record) } : {}),
      ...(protection.monitoring ? { monitoring: protection.monitoring } : {}),
    },
    now: ctx.clock.now(),
  };
}

async function removeVm(ctx: ReconcileContext, id: string, vm: VirtualMachine | undefined): Promise<ReconcileResult | void> {
  const instance = ctx.observed.vm(id);
  // A VM Vireo did not create and no object declares is someone else's: the Host reports it, nobody deletes it.
  if (instance && !vm && instance.config.managedBy !== MANAGED_BY) return;
  if (instance) {
    await execute(ctx, { type: "Remove", vm: id, reason: "VirtualMachine deleted" });
    // The next observation confirms it is gone; until then the VM keeps its MACs and its finalizer.
    return { requeueAfter: 1_000 };
  }
  // Its replica goes with it: deleted, not leaked on the target's datastore.
  if (ctx.observed.replica(id)) {
    await execute(ctx, { type: "StopReplication", vm: id, reason: "VirtualMachine deleted" });
    return { requeueAfter: 1_000 };
  }
  ctx.macs.release(id);
  if (vm) await ctx.finalizers?.remove(vm);
  if (vm) for (const cluster of clustersOfVm(vm)) ctx.enqueue(clusterKey(cluster));
}

/** A VM a LabTopology made whose lab no longer exists, in the file mode (the API mode's collector takes it). */
function orphanedByLab(ctx: ReconcileContext, vm: Readonly<VirtualMachine>): boolean {
  if (ctx.finalizers) return false;
  const owner = vm.metadata.ownerReferences?.find((o) => o.kind === "LabTopology");
  return owner !== undefined && !ctx.store.get(objectKey("LabTopology", owner.name, vm.metadata.namespace));
}

/** An RPO violation that begins, and a failover to the replica first reported: counted and told. */
function recordReplicationChange(ctx: ReconcileContext, vm: VirtualMachine, status: VirtualMachineStatus): void {
  const before = vm.status?.replication;
  const after = status.replication;
  if (!after) return;
  if (after.rpoViolated && !before?.rpoViolated) {
    ctx.metrics.rpoViolations.inc();
    const replicated = status.conditions?.find((c) => c.type === "Replicated");
    ctx.events.record(vm, "Warning", "RPOViolated", replicated?.message ?? `the replica is older than the RPO of ${after.rpoSeconds} s`);
  }
  if (after.failover && after.failover.time !== before?.failover?.time) {
    ctx.metrics.replicaDataLoss.observe(after.failover.dataLossSeconds);
    ctx.events.record(vm, "Warning", "FailedOverToReplica", `started on host ${after.failover.host} in cluster ${after.failover.toCluster} from the instance of ${after.failover.instanceTime}: ${after.failover.dataLossSeconds} s (${after.failover.dataLossMiB} MiB) of writes lost`);
  }
}

function failoverStatus(record: FailoverRecord): NonNullable<VirtualMachineStatus["lastFailover"]> {
  return {
    fromHost: record.fromHost,
    ...(record.toHost ? { toHost: record.toHost } : {}),
    reason: record.reason,
    failedAt: new Date(record.failedAt).toISOString(),
    attempts: record.attempts,
    ...(record.lastAttempt !== undefined ? { lastAttempt: new Date(record.lastAttempt).toISOString() } : {}),
  };
}

/**
 * The events that tell a VM's story in `kubectl describe`: each phase it enters, and each new reason it
 * waits for (as kube-scheduler's FailedScheduling), once per reason and message.
 */
function recordPhaseEvent(ctx: ReconcileContext, vm: VirtualMachine, status: VirtualMachineStatus): void {
  const before = vm.status;
  const ready = findCondition(status.conditions, "Ready");
  if (before?.phase !== status.phase) {
    switch (status.phase) {
      case "Starting": ctx.events.record(vm, "Normal", "Scheduled", `placed on host ${status.host}`); break;
      case "Running": ctx.events.record(vm, "Normal", "Started", `running on host ${status.host}`); break;
      case "Stopped": ctx.events.record(vm, "Normal", "Stopped", "powered off"); break;
      case "Unschedulable": ctx.events.record(vm, "Warning", "Unschedulable", ready?.message ?? "no host fits"); break;
      default: break;
    }
  }
  if (status.phase !== "Pending" || !ready || !WAITING_REASONS.has(ready.reason)) return;
  const was = findCondition(before?.conditions, "Ready");
  if (was?.reason !== ready.reason || was.message !== ready.message) ctx.events.record(vm, "Warning", ready.reason, ready.message);
}

/** Why a VM that should run waits for the cluster: each worth an event. */
const WAITING_REASONS: ReadonlySet<string> = new Set([INSUFFICIENT_FAILOVER_CAPACITY, "InsufficientCapacity", "WaitingForPowerOnSlot"]);

/** Required VM anti-affinity that the VM's running neighbours in its cluster break with it, if any. */
function antiAffinityBroken(ctx: ReconcileContext, vm: VirtualMachine, id: string, host: Host): string | undefined {
  const instance = ctx.observed.vm(id);
  if (!instance || instance.power === "Off") return undefined;
  // Only required anti-affinity can be broken: a cluster without any needs no look at where VMs run.
  const strict = ctx.store.derived("clusters-with-required-anti-affinity", () => new Set(ctx.store.list("VirtualMachine")
    .filter((other) => (other.spec.placement.vmAntiAffinity?.required?.length ?? 0) > 0).map((other) => other.spec.placement.cluster)));
  if (!strict.has(vm.spec.placement.cluster)) return undefined;
  const neighbours = vmsOfCluster(ctx, vm.spec.placement.cluster);
  const running: RunningVm[] = [];
  for (const other of neighbours) {
    const otherId = vmId(other);
    const seen = otherId === id ? instance : ctx.observed.vm(otherId);
    if (!seen || seen.power === "Off") continue;
    const otherHost = otherId === id ? host : hostByName(ctx, seen.host);
    if (!otherHost) continue;
    running.push({
      id: otherId,
      namespace: other.metadata.namespace ?? "default",
      labels: other.metadata.labels ?? {},
      host: seen.host,
      hostLabels: hostLabels(otherHost),
      antiAffinity: other.spec.placement.vmAntiAffinity?.required ?? [],
    });
  }
  if (!running.some((r) => r.antiAffinity.length > 0)) return undefined;
  const self = running.find((r) => r.id === id);
  return self ? antiAffinityConflict(self, running) : undefined;
}
