// Reconciles one Fault (an HA drill): injects it into the simulated hosts once its start delay has passed,
// heals it when its duration ends or the Fault is deleted, and reports Pending → Active → Healed. Only this
// reconciler reads Faults; HA learns of what they did from the hosts' heartbeats, like of any failure.

import type { Fault, FaultSpec, FaultStatus } from "../api/types.ts";
import { objectKey } from "../api/types.ts";
import { summarize } from "../api/conditions.ts";
import type { FaultInjector } from "../provider/provider.ts";
import { ProviderError } from "../provider/provider.ts";
import type { ReconcileResult } from "./runner.ts";
import type { ReconcileContext } from "./context.ts";
import { hostByName, writeStatusIfChanged } from "./context.ts";

/** SlowHost without a factor: four times slower. */
const DEFAULT_SLOWDOWN = 4;

export async function reconcileFault(ctx: ReconcileContext, name: string): Promise<ReconcileResult | void> {
  const fault = ctx.store.get(objectKey("Fault", name)) as Fault | undefined;
  if (!fault || fault.metadata.deletionTimestamp) {
    // Deleting an active Fault heals it.
    const active = ctx.activeFaults.get(name) ?? (fault?.status?.phase === "Active" ? fault.spec : undefined);
    if (active && ctx.faults) await heal(ctx, ctx.faults, active);
    ctx.activeFaults.delete(name);
    if (fault) await ctx.finalizers?.remove(fault);
    return;
  }
  if (ctx.finalizers) await ctx.finalizers.ensure(fault);
  const now = ctx.clock.now();
  const phase = fault.status?.phase;
  if (phase === "Healed" || phase === "Failed") return;
  if (phase === "Active" && !ctx.activeFaults.has(name)) ctx.activeFaults.set(name, fault.spec);

  const created = fault.metadata.creationTimestamp ? Date.parse(fault.metadata.creationTimestamp) : now;
  const startAt = created + fault.spec.startAfterSeconds * 1000;
  if (!ctx.faults) return report(ctx, fault, { phase: "Failed", message: "the hosts' provider cannot inject faults (only the simulator can)" });
  if (now < startAt) {
    await report(ctx, fault, { phase: "Pending", message: `strikes at ${iso(startAt)}` });
    return { requeueAfter: startAt - now };
  }

  let startTime = fault.status?.startTime ? Date.parse(fault.status.startTime) : undefined;
  if (!ctx.activeFaults.has(name)) {
    try {
      await inject(ctx, ctx.faults, fault.spec);
    } catch (error) {
      if (!(error instanceof ProviderError)) throw error;
      return report(ctx, fault, { phase: "Failed", message: `could not inject: ${error.message}` });
    }
    ctx.activeFaults.set(name, fault.spec);
    ctx.metrics.faultsInjected.inc({ type: fault.spec.type });
    ctx.events.record(fault, "Warning", "FaultInjected", describe(fault.spec));
    startTime = now;
  }
  const started = startTime ?? now;
  const duration = fault.spec.durationSeconds;
  const healAt = duration === undefined ? undefined : started + duration * 1000;
  if (healAt !== undefined && now >= healAt) {
    await heal(ctx, ctx.faults, fault.spec);
    ctx.activeFaults.delete(name);
    ctx.events.record(fault, "Normal", "FaultHealed", `${describe(fault.spec)} healed`);
    return report(ctx, fault, { phase: "Healed", startTime: iso(started), healTime: iso(now), message: `${describe(fault.spec)}; healed after ${duration}s` });
  }
  await report(ctx, fault, { phase: "Active", startTime: iso(started), message: describe(fault.spec) + (healAt ? `; heals at ${iso(healAt)}` : "; until the Fault is deleted") });
  if (healAt !== undefined) return { requeueAfter: healAt - now };
}

async function inject(ctx: ReconcileContext, faults: FaultInjector, spec: Readonly<FaultSpec>): Promise<void> {
  const { target } = spec;
  switch (spec.type) {
    case "HostCrash": return faults.crashHost(target.host!);
    case "NetworkIsolation": return faults.isolateHost(target.host!);
    case "NetworkPartition": return faults.partitionHosts([...target.hosts!]);
    case "StoragePathLoss": {
      // Some or all paths to the named datastore, or to every datastore the host sees when none is named.
      const paths = storagePaths(ctx, target.host!);
      return faults.setStoragePathsUp(target.host!, target.paths === undefined ? 0 : Math.max(0, paths - target.paths), target.datastore);
    }
    case "GuestHang": return faults.hangGuest(`${target.vm!.namespace}/${target.vm!.name}`);
    case "SlowHost": return faults.slowHost(target.host!, spec.slowdownFactor ?? DEFAULT_SLOWDOWN);
  }
}

async function heal(ctx: ReconcileContext, faults: FaultInjector, spec: Readonly<FaultSpec>): Promise<void> {
  const { target } = spec;
  try {
    switch (spec.type) {
      case "HostCrash": return await faults.recoverHost(target.host!);
      case "NetworkIsolation": return await faults.healIsolation(target.host!);
      case "NetworkPartition": return await faults.healPartition([...target.hosts!]);
      case "StoragePathLoss": return await faults.setStoragePathsUp(target.host!, storagePaths(ctx, target.host!), target.datastore);
      case "GuestHang": return await faults.healGuestHang(`${target.vm!.namespace}/${target.vm!.name}`);
      case "SlowHost": return await faults.healSlowHost(target.host!);
    }
  } catch (error) {
    // A host or VM that is gone has nothing left to heal.
    if (error instanceof ProviderError && error.code === "NotFound") {
      ctx.log.info({ err: error.message }, "fault target gone; nothing to heal");
      return;
    }
    throw error;
  }
}

function storagePaths(ctx: ReconcileContext, host: string): number {
  return ctx.observed.host(host)?.config.storagePaths ?? hostByName(ctx, host)?.spec.storagePaths ?? 0;
}

function describe(spec: Readonly<FaultSpec>): string {
  const t = spec.target;
  switch (spec.type) {
    case "HostCrash": return `host ${t.host} crashed`;
    case "NetworkIsolation": return `host ${t.host} isolated from the network`;
    case "NetworkPartition": return `hosts ${t.hosts!.join(", ")} partitioned from the rest`;
    case "StoragePathLoss": return `host ${t.host} lost ${t.paths === undefined ? "all" : t.paths} storage path(s) to ${t.datastore === undefined ? "every datastore" : `datastore ${t.datastore}`}`;
    case "GuestHang": return `guest of VM ${t.vm!.namespace}/${t.vm!.name} hung`;
    case "SlowHost": return `host ${t.host} slowed down ${spec.slowdownFactor ?? DEFAULT_SLOWDOWN}x`;
  }
}

async function report(ctx: ReconcileContext, fault: Fault, fields: Omit<FaultStatus, "observedGeneration" | "conditions">): Promise<void> {
  const generation = fault.metadata.generation;
  const done = fields.phase === "Healed";
  const status: FaultStatus = {
    observedGeneration: generation,
    ...(fault.status?.startTime && !fields.startTime ? { startTime: fault.status.startTime } : {}),
    ...fields,
    conditions: summarize(fault.status?.conditions, {
      ready: done,
      reason: fields.phase ?? "Pending",
      message: fields.message ?? "",
      ...(fields.phase === "Failed" ? { stalled: { reason: "InjectionFailed", message: fields.message ?? "" } } : {}),
    }, iso(ctx.clock.now()), generation),
  };
  await writeStatusIfChanged(ctx, fault, status);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
