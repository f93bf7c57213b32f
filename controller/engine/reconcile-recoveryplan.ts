// Reconciles one RecoveryPlan: gathers the VMs it selects as they stand (where each belongs, its replica,
// its original), lets the recovery planner decide (planners/recovery/plan.ts), writes the plan's status
// first — it is what holds or releases each VM (replication/role.ts) — then acts, and wakes the VMs and
// clusters concerned. Deleting a Test plan removes its copies before the deletion completes.

import type { RecoveryPlan, VirtualMachine } from "../api/types.ts";
import { keyOf, vmId } from "../api/types.ts";
import { selectorMatches } from "../api/selectors.ts";
import { planRecovery, testCopyName, TEST_COPY_MANAGED_BY, type PlanVm } from "../planners/recovery/plan.ts";
import type { ReplicaSite } from "../planners/replication/settings.ts";
import type { ClusterSnapshot } from "../placement/index.ts";
import { snapshotOf } from "./cluster-snapshot.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, clusterKey, wakeAt, writeStatusIfChanged } from "./context.ts";
import { execute } from "./executor.ts";
import { clustersOfVm, FleetView } from "./replication.ts";
import { viewHost } from "./views.ts";

/** How often a plan under way looks again: its VMs' progress is observed, not announced to it. */
const PROGRESS_INTERVAL_MS = 1_000;

export async function reconcileRecoveryPlan(ctx: ReconcileContext, key: string): Promise<ReconcileResult | void> {
  let plan = ctx.store.get(key) as RecoveryPlan | undefined;
  if (!plan) return removeUnclaimedCopies(ctx);
  if (ctx.finalizers && !plan.metadata.deletionTimestamp && plan.spec.action === "Test") {
    await ctx.finalizers.ensure(plan);
    plan = ctx.store.get(key) as RecoveryPlan | undefined;
    if (!plan) return;
  }
  const fleet = new FleetView(ctx);
  const selected = selectedVms(ctx, plan);
  const vms: PlanVm[] = selected.map((vm) => planVmOf(ctx, fleet, vm));

  if (plan.metadata.deletionTimestamp) {
    const copies = vms.filter((v) => v.copy);
    for (const v of copies) await execute(ctx, { type: "Remove", vm: v.copy!.id, reason: `recovery plan ${plan.metadata.name} deleted` });
    if (copies.length > 0) return { requeueAfter: PROGRESS_INTERVAL_MS };
    await ctx.finalizers?.remove(plan);
    return;
  }

  const sites = new Map<string, ReplicaSite>();
  const snapshots = new Map<string, ClusterSnapshot>();
  for (const vm of selected) {
    for (const cluster of clustersOfVm(vm)) {
      if (sites.has(cluster)) continue;
      sites.set(cluster, fleet.replicaSite(cluster));
      const declared = clusterByName(ctx, cluster);
      if (declared && plan.spec.action === "Test") snapshots.set(cluster, snapshotOf(ctx, declared, fleet.membersOf(cluster)));
    }
  }
  const outcome = planRecovery({ plan, vms, sites, snapshots, now: ctx.clock.now() });
  const changed = await writeStatusIfChanged(ctx, plan, outcome.status);
  for (const action of outcome.actions) {
    const applied = await execute(ctx, action) === "applied";
    if (action.type !== "Recover") continue;
    ctx.metrics.replicaFailovers.inc({ kind: "Test", result: applied ? "Started" : "Refused" });
    if (applied) ctx.events.record(plan, "Normal", "TestCopyStarted", action.reason);
  }
  if (changed) {
    // A VM's result holds or releases it: its reconcile and its clusters' see the new word.
    for (const vm of selected) {
      ctx.enqueue(keyOf(vm));
      for (const cluster of clustersOfVm(vm)) ctx.enqueue(clusterKey(cluster));
    }
    if (plan.status?.phase !== outcome.status.phase) {
      ctx.events.record(plan, outcome.status.phase === "Failed" || outcome.status.phase === "WaitingForUser" ? "Warning" : "Normal", outcome.status.phase ?? "Idle", outcome.status.message ?? "");
    }
  }
  const phase = outcome.status.phase;
  if (phase !== "Succeeded" && phase !== "Failed") return { requeueAfter: PROGRESS_INTERVAL_MS };
  if (outcome.wakeAt !== undefined) return wakeAt(ctx, outcome.wakeAt);
}

/** The VirtualMachines of the plan's namespace its selector matches. */
function selectedVms(ctx: ReconcileContext, plan: Readonly<RecoveryPlan>): VirtualMachine[] {
  const namespace = plan.metadata.namespace ?? "default";
  return ctx.store.list("VirtualMachine")
    .filter((vm) => (vm.metadata.namespace ?? "default") === namespace && !vm.metadata.deletionTimestamp && selectorMatches(plan.spec.selector, vm.metadata.labels ?? {}))
    .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
}

function planVmOf(ctx: ReconcileContext, fleet: FleetView, vm: VirtualMachine): PlanVm {
  const id = vmId(vm);
  const placed = fleet.place(vm);
  const instance = ctx.observed.vm(id);
  const host = instance ? viewHost(ctx, instance.host) : undefined;
  const replica = ctx.observed.replica(id);
  const copy = ctx.observed.vm(`${vm.metadata.namespace ?? "default"}/${testCopyName(vm.metadata.name)}`);
  return {
    id,
    vm,
    role: placed.role,
    ...(replica ? { replica } : {}),
    ...(instance ? { instance } : {}),
    ...(host ? { instanceHostPhase: host.phase } : {}),
    ...(host?.unconfirmed ? { instanceHostUnconfirmed: true } : {}),
    ...(host?.cluster ? { instanceCluster: host.cluster.metadata.name } : {}),
    ...(copy && copy.config.managedBy === TEST_COPY_MANAGED_BY ? { copy } : {}),
  };
}

/**
 * Test copies no plan claims any more (a plan deleted in file mode, where no finalizer waits): removed.
 * A copy is claimed by a Test plan whose status names it.
 */
async function removeUnclaimedCopies(ctx: ReconcileContext): Promise<void> {
  const claimed = new Set<string>();
  for (const plan of ctx.store.list("RecoveryPlan")) {
    if (plan.spec.action !== "Test") continue;
    for (const v of plan.status?.vms ?? []) if (v.copy) claimed.add(`${plan.metadata.namespace ?? "default"}/${v.copy}`);
    for (const vm of selectedVms(ctx, plan)) claimed.add(`${vm.metadata.namespace ?? "default"}/${testCopyName(vm.metadata.name)}`);
  }
  for (const instance of [...ctx.observed.vms()]) {
    if (instance.config.managedBy !== TEST_COPY_MANAGED_BY || claimed.has(instance.id)) continue;
    await execute(ctx, { type: "Remove", vm: instance.id, reason: "the test recovery plan that started it is gone" });
  }
}
