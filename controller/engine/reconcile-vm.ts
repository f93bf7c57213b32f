// Reconciles one VirtualMachine: the lifecycle planner decides, the executor acts, status reports.
// Placement is not decided here: a VM that needs a host is handed to its cluster's next placement round,
// which places all waiting VMs from one snapshot.

import type { Host, VirtualMachine, VirtualMachineStatus } from "../api/types.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import { nextMonitoringCheck } from "../planners/ha/monitoring.ts";
import { componentProtectionResponse } from "../planners/ha/storage.ts";
import type { FailoverRecord } from "./ha-state.ts";
import { vmId } from "../api/types.ts";
import { shutdownGraceEndsAt, planVm } from "../planners/lifecycle.ts";
import { forbiddenHost } from "../planners/drift.ts";
import { antiAffinityConflict, type RunningVm } from "../planners/anti-affinity-drift.ts";
import { hostLabels } from "../api/membership.ts";
import { MANAGED_BY } from "../core/observation.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, clusterKey, hostByName, vmsOfCluster, writeStatusIfChanged } from "./context.ts";
import { execute } from "./executor.ts";
import { viewHost } from "./views.ts";

export async function reconcileVm(ctx: ReconcileContext, key: string, id: string): Promise<ReconcileResult | void> {
  let vm = ctx.store.get(key) as VirtualMachine | undefined;
  if (!vm || vm.metadata.deletionTimestamp) return removeVm(ctx, id, vm);
  if (ctx.finalizers) {
    await ctx.finalizers.ensure(vm);
    vm = ctx.store.get(key) as VirtualMachine;
  }

  const instance = ctx.observed.vm(id);
  const hostView = instance ? viewHost(ctx, instance.host) : undefined;
  const vacate = hostView?.unavailable === "being removed" ? "being removed" : hostView?.host?.spec.maintenance ? "in maintenance" : undefined;
  const cluster = clusterByName(ctx, vm.spec.placement.cluster);
  const misplaced = instance && hostView?.host
    ? forbiddenHost(vm, hostView.host, hostView.cluster?.metadata.name) ?? antiAffinityBroken(ctx, vm, id, hostView.host)
    : undefined;
  const unschedulable = ctx.unschedulable.get(id);
  const protection = protectionOf(vm, ctx.store.list("HAPolicy"), cluster);
  const waiting = ctx.ha.waiting.get(id);
  const record = ctx.ha.failovers.get(id);
  const lastFailover = record ? failoverStatus(record) : undefined;
  const plan = planVm({
    vm,
    ...(instance ? { instance } : {}),
    ...(hostView ? { hostPhase: hostView.phase } : {}),
    ...(vacate ? { vacate } : {}),
    ...(misplaced ? { forbiddenHost: misplaced } : {}),
    ...(cluster ? { cluster } : {}),
    networks: ctx.macs.macsFor(vm),
    ...(unschedulable ? { unschedulable } : {}),
    ha: {
      ...(waiting ? { waiting } : {}),
      ...(lastFailover ? { lastFailover } : {}),
      ...(protection.monitoring && instance ? { monitoring: protection.monitoring } : {}),
    },
    now: ctx.clock.now(),
  });

  // VM component protection: a protected VM frozen by all paths down on a host that still answers is
  // terminated there once the APD timeout and response delay have passed; HA then restarts it elsewhere.
  const answers = hostView?.phase === "Ready" || hostView?.phase === "EnteringMaintenance" || hostView?.phase === "Maintenance";
  const vmcp = protection.protected && answers ? componentProtectionResponse(instance, hostView?.observed) : undefined;
  if (vmcp && ctx.clock.now() >= vmcp.dueAt && !plan.actions.some((a) => a.type === "Stop" && a.mode === "PowerOff")) {
    const reason = `VM component protection: all paths down to datastore ${vmcp.datastores.join(", ")} on host ${instance!.host} since ${new Date(vmcp.allPathsDownSince).toISOString()}`;
    if (await execute(ctx, { type: "Stop", vm: id, mode: "PowerOff", reason }) === "applied") ctx.events.record(vm, "Warning", "ComponentProtectionTerminated", reason);
  }
  for (const action of plan.actions) {
    const outcome = await execute(ctx, action);
    if (outcome === "applied" && action.type === "Stop") ctx.events.record(vm, "Normal", "Stopping", action.reason);
    if (outcome === "applied" && action.type === "ResetVm") {
      ctx.metrics.vmResets.inc();
      ctx.events.record(vm, "Warning", "VmMonitoringReset", action.reason);
    }
  }
  noteRecovery(ctx, vm, id, plan.status.phase, plan.status.conditions);
  // A VM that waits for a host wakes its cluster, unless the last round already found no room for it:
  // then only a change of capacity (a host, a VM that stops) starts the next round.
  if (plan.needsPlacement && !unschedulable) ctx.enqueue(clusterKey(vm.spec.placement.cluster));

  // A new VM about to be placed gets its first status from the placement round, a moment later: one
  // write fewer per VM on the way to Ready, which is what a thousand new VMs cost the API server.
  if (plan.needsPlacement && !unschedulable && vm.status === undefined) return;
  const before = vm.status?.phase;
  if (await writeStatusIfChanged(ctx, vm, plan.status)) recordPhaseEvent(ctx, vm, before, plan.status.phase, plan.status.host);
  // A guest's heartbeat ages without any report changing: VM monitoring looks again when it could be due.
  const check = protection.monitoring && instance ? nextMonitoringCheck(instance, protection.monitoring, ctx.clock.now()) : undefined;
  const grace = shutdownGraceEndsAt(instance);
  const wake = Math.min(check ?? Infinity, vmcp && vmcp.dueAt > ctx.clock.now() ? vmcp.dueAt : Infinity, grace !== undefined && grace > ctx.clock.now() ? grace : Infinity);
  if (wake !== Infinity) return { requeueAfter: wake - ctx.clock.now() };
}

async function removeVm(ctx: ReconcileContext, id: string, vm: VirtualMachine | undefined): Promise<ReconcileResult | void> {
  ctx.unschedulable.delete(id);
  const instance = ctx.observed.vm(id);
  // A VM Vireo did not create and no object declares is someone else's: the Host reports it, nobody deletes it.
  if (instance && !vm && instance.config.managedBy !== MANAGED_BY) return;
  if (instance) {
    await execute(ctx, { type: "Remove", vm: id, reason: "VirtualMachine deleted" });
    // The next observation confirms it is gone; until then the VM keeps its MACs and its finalizer.
    return { requeueAfter: 1_000 };
  }
  ctx.macs.release(id);
  if (vm) await ctx.finalizers?.remove(vm);
  if (vm) ctx.enqueue(clusterKey(vm.spec.placement.cluster));
}

/** A VM that HA restarted and that is Ready again: its recovery time is measured, its failover done. */
function noteRecovery(ctx: ReconcileContext, vm: VirtualMachine, id: string, phase: string | undefined, conditions: VirtualMachineStatus["conditions"]): void {
  const record = ctx.ha.failovers.get(id);
  if (!record?.toHost || phase !== "Running" || conditions?.find((c) => c.type === "Ready")?.status !== "True") return;
  const seconds = (ctx.clock.now() - record.failedAt) / 1000;
  ctx.metrics.recoveryTime.observe(seconds);
  ctx.events.record(vm, "Normal", "FailoverComplete", `Ready on host ${record.toHost} ${Math.round(seconds)}s after host ${record.fromHost} failed (${record.reason})`);
  ctx.ha.failovers.delete(id);
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

function recordPhaseEvent(ctx: ReconcileContext, vm: VirtualMachine, before: string | undefined, after: string | undefined, host: string | undefined): void {
  if (before === after) return;
  switch (after) {
    case "Starting": ctx.events.record(vm, "Normal", "Scheduled", `placed on host ${host}`); break;
    case "Running": ctx.events.record(vm, "Normal", "Started", `running on host ${host}`); break;
    case "Stopped": ctx.events.record(vm, "Normal", "Stopped", "powered off"); break;
    case "Unschedulable": ctx.events.record(vm, "Warning", "Unschedulable", ctx.unschedulable.get(vmId(vm)) ?? "no host fits"); break;
    default: break;
  }
}

/** Required VM anti-affinity that the VM's running neighbours in its cluster break with it, if any. */
function antiAffinityBroken(ctx: ReconcileContext, vm: VirtualMachine, id: string, host: Host): string | undefined {
  const instance = ctx.observed.vm(id);
  if (!instance || instance.power === "Off") return undefined;
  const running: RunningVm[] = [];
  for (const other of vmsOfCluster(ctx, vm.spec.placement.cluster)) {
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
