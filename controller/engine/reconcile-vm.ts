// Reconciles one VirtualMachine: the lifecycle planner decides, the executor acts, status reports.
// Placement is not decided here: a VM that needs a host is handed to its cluster's next placement round,
// which places all waiting VMs from one snapshot.

import type { VirtualMachine } from "../api/types.ts";
import { vmId } from "../api/types.ts";
import { planVm } from "../planners/lifecycle.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, clusterKey, writeStatusIfChanged } from "./context.ts";
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
  const unschedulable = ctx.unschedulable.get(id);
  const plan = planVm({
    vm,
    ...(instance ? { instance } : {}),
    ...(hostView ? { hostPhase: hostView.phase } : {}),
    ...(vacate ? { vacate } : {}),
    ...(cluster ? { cluster } : {}),
    networks: ctx.macs.macsFor(vm),
    ...(unschedulable ? { unschedulable } : {}),
    now: ctx.clock.now(),
  });

  for (const action of plan.actions) {
    const outcome = await execute(ctx, action);
    if (outcome === "applied" && action.type === "Stop") ctx.events.record(vm, "Normal", "Stopping", action.reason);
  }
  // A VM that waits for a host wakes its cluster, unless the last round already found no room for it:
  // then only a change of capacity (a host, a VM that stops) starts the next round.
  if (plan.needsPlacement && !unschedulable) ctx.enqueue(clusterKey(vm.spec.placement.cluster));

  // A new VM about to be placed gets its first status from the placement round, a moment later: one
  // write fewer per VM on the way to Ready, which is what a thousand new VMs cost the API server.
  if (plan.needsPlacement && !unschedulable && vm.status === undefined) return;
  const before = vm.status?.phase;
  if (await writeStatusIfChanged(ctx, vm, plan.status)) recordPhaseEvent(ctx, vm, before, plan.status.phase, plan.status.host);
}

async function removeVm(ctx: ReconcileContext, id: string, vm: VirtualMachine | undefined): Promise<ReconcileResult | void> {
  ctx.unschedulable.delete(id);
  const instance = ctx.observed.vm(id);
  if (instance) {
    await execute(ctx, { type: "Remove", vm: id, reason: "VirtualMachine deleted" });
    // The next observation confirms it is gone; until then the VM keeps its MACs and its finalizer.
    return { requeueAfter: 1_000 };
  }
  ctx.macs.release(id);
  if (vm) await ctx.finalizers?.remove(vm);
  if (vm) ctx.enqueue(clusterKey(vm.spec.placement.cluster));
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
