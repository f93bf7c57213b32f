// Reconciles one Host: registers it with the provider as declared, unregisters it once deleted and empty,
// and reports its phase, allocation and usage.

import type { Host } from "../api/types.ts";
import { hostConfig, hostStatus } from "../planners/hosts.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { clusterKey, hostByName, writeStatusIfChanged } from "./context.ts";
import { execute } from "./executor.ts";
import { viewHost } from "./views.ts";

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
  if (!view.observed || JSON.stringify(view.observed.config) !== JSON.stringify(config)) {
    await execute(ctx, { type: "RegisterHost", host: name, config, reason: view.observed ? "declared configuration changed" : "new host" });
    if (view.cluster) ctx.enqueue(clusterKey(view.cluster.metadata.name));
  }
  const status = hostStatus(host, view.observed, view.phase, view.cluster?.metadata.name, ctx.clock.now());
  if (await writeStatusIfChanged(ctx, host, status)) {
    if (view.observed && status.phase !== host.status?.phase) ctx.events.record(host, status.phase === "Ready" || status.phase === "Maintenance" ? "Normal" : "Warning", `Host${status.phase}`, phaseMessage(host, status.phase));
  }
  return { requeueAfter: HOST_STATUS_REFRESH_MS };
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
