// Reconciles one VirtualMachineMigration: its cluster's planner decides when and where it moves (the
// "migrations" stage, and for a conversion the "conversions" stage too); this reports where it stands from
// that verdict and from what the hosts report, and tells its story as Events. Deleting it while it runs
// cancels it (the cluster stage does; the finalizer waits until the hosts no longer run it, or until a
// conversion is over). A conversion that gives the VM new MACs hands them to the fleet's MAC registry once
// the hosts converted it, before the VM starts with them.

import type { VirtualMachine, VirtualMachineMigration, VirtualMachineMigrationStatus } from "../api/types.ts";
import { objectKey } from "../api/types.ts";
import { requestKey } from "../planners/migration/requests.ts";
import { isUnderWay } from "../planners/cluster/conversions.ts";
import type { RequestVerdict } from "../planners/cluster/types.ts";
import type { MigrationObservation } from "../core/migration.ts";
import type { ConversionObservation } from "../core/conversion.ts";
import { sameMacs } from "../planners/migration/conversion-config.ts";
import { conversionDowntime, conversionResult } from "../observe/conversions.ts";
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
    // A conversion deleted under way goes on (or, not begun, brings the VM back up) under its cluster's care; the object stays until then.
    const verdict = vm ? verdictFor(ctx, request, vm) : undefined;
    if (vm) adoptNewMacs(ctx, request, vm, id);
    if (isUnderWay(verdict)) return { requeueAfter: 1_000 };
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
  const verdict = vm ? verdictFor(ctx, request, vm) : undefined;
  if (vm) adoptNewMacs(ctx, request, vm, id);
  const instance = ctx.observed.vm(id);
  const conversion = ourConversion(ctx, request, id);
  const status = requestStatus({
    request: withEstimate(request, verdict),
    ...(orphaned ? { orphaned } : {}),
    ...(verdict ? { verdict } : {}),
    ...(ours ? { observed: ours } : {}),
    ...(conversion ? { conversion } : {}),
    ...(instance ? { instance } : {}),
    now: ctx.clock.now(),
  });
  const before = request.status?.phase;
  if (await writeStatusIfChanged(ctx, request, status)) tellPhase(ctx, request, before, status);
  // A request its cluster has not judged yet, or one that ended, wakes the cluster: its room or slot is free.
  if (vm && (!verdict || isEnded(status.phase))) ctx.enqueue(clusterKey(vm.spec.placement.cluster));
  // The stored object: a status just written moved its resourceVersion on, and the old one would conflict.
  if (isEnded(status.phase) && ctx.finalizers) await ctx.finalizers.remove((ctx.store.get(key) as VirtualMachineMigration | undefined) ?? request);
}

function verdictFor(ctx: ReconcileContext, request: Readonly<VirtualMachineMigration>, vm: Readonly<VirtualMachine>): RequestVerdict | undefined {
  return ctx.requestVerdicts.get(vm.spec.placement.cluster)?.get(`${request.metadata.namespace ?? "default"}/${request.metadata.name}`);
}

/** The hosts' report of this request's conversion, if they have one. */
function ourConversion(ctx: ReconcileContext, request: Readonly<VirtualMachineMigration>, id: string): ConversionObservation | undefined {
  const observed = ctx.observed.conversion(id);
  return observed?.key === requestKey(request) ? observed : undefined;
}

/**
 * A conversion that gives up the MACs registered the VM on its target with new ones: the fleet's registry
 * takes them as the VM's own (so its status, its desired configuration and every later start carry them)
 * before its cluster starts it there. Once it runs, they are its MACs anyway.
 */
function adoptNewMacs(ctx: ReconcileContext, request: Readonly<VirtualMachineMigration>, vm: Readonly<VirtualMachine>, id: string): void {
  if (request.spec.keepMacAddresses !== false) return;
  const converted = ourConversion(ctx, request, id);
  const instance = ctx.observed.vm(id);
  if (converted?.phase !== "Succeeded" || instance?.host !== converted.target || instance.power !== "Off") return;
  const networks = instance.config.nics.map((n) => ({ name: n.network, macAddress: n.macAddress }));
  if (sameMacs(networks, ctx.macs.macsFor(vm))) return;
  ctx.macs.adopt({ ...vm, status: { ...vm.status, networks } });
  ctx.enqueue(objectKey("VirtualMachine", vm.metadata.name, vm.metadata.namespace));
  ctx.enqueue(clusterKey(vm.spec.placement.cluster));
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
  if (status.preCheck) return tellConversion(ctx, request, { before, status, message });
  switch (status.phase) {
    case "PreCopy": ctx.events.record(request, "Normal", "MigrationStarted", message); break;
    case "Succeeded": ctx.events.record(request, "Normal", "MigrationSucceeded", message); break;
    case "Failed": ctx.events.record(request, "Warning", "MigrationFailed", message); break;
    case "Cancelled": ctx.events.record(request, "Normal", "MigrationCancelled", message); break;
    default: break;
  }
}

/** A conversion's story: the pre-check passed (with what will not survive), the conversion began, how it ended. */
function tellConversion(ctx: ReconcileContext, request: VirtualMachineMigration, change: { before: string | undefined; status: Readonly<VirtualMachineMigrationStatus>; message: string }): void {
  const { status, message } = change;
  const pre = status.preCheck!;
  const result = conversionResult(status);
  if (result) {
    ctx.metrics.conversions.inc({ result });
    const downtime = conversionDowntime(status);
    if (downtime !== undefined) ctx.metrics.conversionDowntime.observe(downtime);
  }
  // A VM that is off goes straight to Converting: its pre-check passed all the same.
  const begun = status.phase === "ShuttingDown" || (status.phase === "Converting" && (change.before === undefined || change.before === "Pending"));
  if (begun) ctx.events.record(request, "Normal", "PreCheckPassed", `${pre.from} → ${pre.to}, ~${Math.ceil(pre.estimatedSeconds)} s to convert ${pre.diskMiB} MiB${pre.warnings.length > 0 ? `; what will not survive: ${pre.warnings.join("; ")}` : ""}`);
  switch (status.phase) {
    case "Converting": ctx.events.record(request, "Normal", "ConversionStarted", message); break;
    case "Succeeded": ctx.events.record(request, "Normal", "ConversionSucceeded", message); break;
    case "Failed": ctx.events.record(request, "Warning", result === "Refused" ? "PreCheckFailed" : "ConversionFailed", message); break;
    case "Cancelled": ctx.events.record(request, "Normal", "ConversionCancelled", message); break;
    default: break;
  }
}
