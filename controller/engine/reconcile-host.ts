// Reconciles one Host: registers it with the provider as declared, unregisters it once deleted and empty,
// and reports its phase, allocation and usage.

import type { Host } from "../api/types.ts";
import { holdsResources, hostConfig, hostStatus } from "../planners/hosts.ts";
import { MANAGED_BY } from "../core/observation.ts";
import { TEST_COPY_MANAGED_BY } from "../planners/recovery/plan.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterKey, hostByName, vmKeyOfId, writeStatusIfChanged } from "./context.ts";
import { execute } from "./executor.ts";
import { viewHost } from "./views.ts";
import { jsonEqual } from "../api/equal.ts";

/** Usage moves all the time; it is reported at this pace rather than on every observation. */
const HOST_STATUS_REFRESH_MS = 30_000;

export async function reconcileHost(ctx: ReconcileContext, name: string): Promise<ReconcileResult | void> {
  if (ctx.finalizers) {
    const declared = hostByName(ctx, name);
    if (declared) await ctx.finalizers.ensure(declared);
  }
  const view = viewHost(ctx, name);
  const host = view.host;
  if (!host || host.metadata.deletionTimestamp) return removeHost(ctx, name, host);

  const config = hostConfig(host);
  if (!view.observed || !jsonEqual(view.observed.config, config)) {
    await execute(ctx, { type: "RegisterHost", host: name, config, reason: view.observed ? "declared configuration changed" : "new host" });
    if (view.cluster) ctx.enqueue(clusterKey(view.cluster.metadata.name));
  }
  const findings = hostFindings(ctx, name);
  const status = hostStatus(host, view.observed, view.phase, view.cluster?.metadata.name, ctx.clock.now(), findings, evacuationBlocked(ctx, name));
  reportNewUnknownVms(ctx, host, findings.unknownVms);
  if (await writeStatusIfChanged(ctx, host, status)) {
    if (view.observed && status.phase !== host.status?.phase) ctx.events.record(host, status.phase === "Ready" || status.phase === "Maintenance" ? "Normal" : "Warning", `Host${status.phase}`, phaseMessage(host, status.phase));
  }
  return { requeueAfter: HOST_STATUS_REFRESH_MS };
}

/** The VMs its cluster found cannot leave the host, with why. */
function evacuationBlocked(ctx: ReconcileContext, name: string): { vm: string; reason: string }[] {
  const blocked: { vm: string; reason: string }[] = [];
  for (const verdicts of ctx.verdicts.values()) {
    for (const [vm, verdict] of verdicts) if (verdict.kind === "EvacuationBlocked" && verdict.host === name) blocked.push({ vm, reason: verdict.message });
  }
  return blocked.sort((a, b) => (a.vm < b.vm ? -1 : 1));
}

/** What the host holds, for its drift: the VMs holding resources, and those nobody declared or created. */
export function hostFindings(ctx: ReconcileContext, name: string): { vmsHeld: string[]; unknownVms: string[] } {
  const vmsHeld: string[] = [];
  const unknownVms: string[] = [];
  for (const instance of ctx.observed.vmsOn(name)) {
    if (holdsResources(instance)) vmsHeld.push(instance.id);
    // A test copy of a recovery plan is Vireo's too: its plan owns and removes it.
    if (instance.config.managedBy !== MANAGED_BY && instance.config.managedBy !== TEST_COPY_MANAGED_BY && !ctx.store.get(vmKeyOfId(instance.id))) unknownVms.push(instance.id);
  }
  return { vmsHeld, unknownVms };
}

/** A Warning event for each unknown VM the host's status did not list yet. */
function reportNewUnknownVms(ctx: ReconcileContext, host: Host, unknownVms: readonly string[]): void {
  if (unknownVms.length === 0) return;
  const known = new Set(host.status?.drift?.operations.filter((op) => op.path.startsWith("/unknownVms")).map((op) => op.value));
  for (const id of unknownVms) {
    if (!known.has(id)) ctx.events.record(host, "Warning", "UnknownVm", `VM ${id} runs on host ${host.metadata.name} but no VirtualMachine declares it and Vireo did not create it: reported, not deleted`);
  }
}

/** A deleted host is drained (its VMs move elsewhere), then unregistered; then its deletion completes. */
async function removeHost(ctx: ReconcileContext, name: string, host: Host | undefined): Promise<ReconcileResult | void> {
  if (ctx.observed.host(name)) {
    const busy = ctx.observed.vmsOn(name).filter((vm) => vm.power !== "Off").length;
    if (busy > 0) return { requeueAfter: 5_000 };
    await execute(ctx, { type: "UnregisterHost", host: name, reason: "Host object deleted" });
    return { requeueAfter: 1_000 };
  }
  if (host) await ctx.finalizers?.remove(host);
}

function phaseMessage(host: Host, phase: string | undefined): string {
  return `host ${host.metadata.name} is ${phase ?? "unknown"}`;
}
