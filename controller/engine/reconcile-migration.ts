// Reconciles one VirtualMachineMigration: its cluster's planner decides when and where it moves (the
// "migrations" stage); this reports where it stands from that verdict and from what the hosts report, and
// tells its story as Events. Deleting it while it runs cancels it (the cluster stage does; the finalizer
// waits until the hosts no longer run it).

import type { VirtualMachine, VirtualMachineMigration } from "../api/types.ts";
import { objectKey } from "../api/types.ts";
import { requestKey } from "../planners/cluster/migrations.ts";
import type { RequestVerdict } from "../planners/cluster/types.ts";
import type { MigrationObservation } from "../core/migration.ts";
import { isEnded, requestStatus } from "../planners/migration/request-status.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterByName, clusterKey, writeStatusIfChanged } from "./context.ts";

export async function reconcileMigration(ctx: ReconcileContext, key: string): Promise<ReconcileResult | void> {
  let request = ctx.store.get(key) as VirtualMachineMigration | undefined;
  if (!request) return;
  const namespace = request.metadata.namespace ?? "default";
  const id = `${namespace}/${request.spec.vmName}`;
  const vm = ctx.store.get(objectKey("VirtualMachine", request.spec.vmName, namespace)) as VirtualMachine | undefined;

  if (request.metadata.deletionTimestamp) {
    const ours = ourMigration(ctx, request, id);
    if (vm) ctx.enqueue(clusterKey(vm.spec.placement.cluster));
    if (ours && (ours.phase === "PreCopy" || ours.phase === "Switchover")) return { requeueAfter: 1_000 };
    await ctx.finalizers?.remove(request);
    return;
  }
  if (ctx.finalizers && !isEnded(request.status?.phase)) {
    await ctx.finalizers.ensure(request);
    request = ctx.store.get(key) as VirtualMachineMigration | undefined;
    if (!request) return;
  }
  // Read after the finalizer's round trip: the cluster may have started the copy meanwhile.
  const ours = ourMigration(ctx, request, id);
  const cluster = vm ? clusterByName(ctx, vm.spec.placement.cluster) : undefined;
  const orphaned = !vm ? `VirtualMachine ${id} does not exist` : !cluster ? `VM ${id}'s HostCluster ${vm.spec.placement.cluster} does not exist` : undefined;
  const verdict = vm ? ctx.requestVerdicts.get(vm.spec.placement.cluster)?.get(`${namespace}/${request.metadata.name}`) : undefined;
  const instance = ctx.observed.vm(id);
  const status = requestStatus({ request: withEstimate(request, verdict), ...(orphaned ? { orphaned } : {}), ...(verdict ? { verdict } : {}), ...(ours ? { observed: ours } : {}), ...(instance ? { instance } : {}), now: ctx.clock.now() });
  const before = request.status?.phase;
  if (await writeStatusIfChanged(ctx, request, status)) tellPhase(ctx, request, before, status);
  // A request its cluster has not judged yet, or one that ended, wakes the cluster: its room or slot is free.
  if (vm && (!verdict || isEnded(status.phase))) ctx.enqueue(clusterKey(vm.spec.placement.cluster));
  // The stored object: a status just written moved its resourceVersion on, and the old one would conflict.
  if (isEnded(status.phase) && ctx.finalizers) await ctx.finalizers.remove((ctx.store.get(key) as VirtualMachineMigration | undefined) ?? request);
}

/** The hosts' report of this request's own live migration, if they have one. */
function ourMigration(ctx: ReconcileContext, request: Readonly<VirtualMachineMigration>, id: string): MigrationObservation | undefined {
  const observed = ctx.observed.migration(id);
  return observed?.key === requestKey(request) ? observed : undefined;
}

/**
 * The request as if its status already held the estimate its cluster made when it judged the copy possible.
 * The copy may be under way (or over) by the time this reconcile first sees the request, and a status made
 * from the hosts' report keeps only an estimate already recorded.
 */
function withEstimate(request: Readonly<VirtualMachineMigration>, verdict: RequestVerdict | undefined): Readonly<VirtualMachineMigration> {
  const estimate = verdict?.kind === "Live" || verdict?.kind === "Waiting" ? verdict.estimate : undefined;
  if (!estimate || request.status?.estimate || isEnded(request.status?.phase)) return request;
  return { ...request, status: { ...request.status, estimate } };
}

function tellPhase(ctx: ReconcileContext, request: VirtualMachineMigration, before: string | undefined, status: NonNullable<VirtualMachineMigration["status"]>): void {
  if (before === status.phase) return;
  const message = status.conditions?.find((c) => c.type === "Ready")?.message ?? "";
  switch (status.phase) {
    case "PreCopy": ctx.events.record(request, "Normal", "MigrationStarted", message); break;
    case "Succeeded": ctx.events.record(request, "Normal", "MigrationSucceeded", message); break;
    case "Failed": ctx.events.record(request, "Warning", "MigrationFailed", message); break;
    case "Cancelled": ctx.events.record(request, "Normal", "MigrationCancelled", message); break;
    default: break;
  }
}
