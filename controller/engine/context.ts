// What every reconcile shares: the store of desired objects, the observation cache, the provider, and the
// sinks for status, events and metrics. Built once by the Controller.

import type { Host, HostCluster, VireoObject, VirtualMachine } from "../api/types.ts";
import { keyOf, objectKey, vmId } from "../api/types.ts";
import { jsonEqual } from "../api/equal.ts";
import type { Clock } from "../core/clock.ts";
import type { ObservationCache } from "./observer.ts";
import type { FaultSpec } from "../api/types.ts";
import type { FaultInjector, HypervisorProvider } from "../provider/provider.ts";
import type { HaState } from "./ha-state.ts";
import type { ObjectStore } from "../sources/store.ts";
import type { Logger } from "../observe/log.ts";
import type { ControllerMetrics } from "../observe/metrics.ts";
import { MacRegistry } from "./macs.ts";
import type { Action } from "../planners/actions.ts";
import type { ReconcileResult } from "./runner.ts";
import type { PublishedVerdict, RequestVerdict } from "../planners/cluster/types.ts";
import type { RecoveryRecord, ReplicationNote } from "../planners/replication/status.ts";
import type { SiteState } from "../planners/replication/site.ts";
import type { FaultToleranceNote } from "../planners/ha/fault-tolerance.ts";

/** Where status goes: a file under the state directory, or the API server's status subresource. */
export interface StatusWriter {
  writeStatus(object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<void>;
}

export type EventType = "Normal" | "Warning";

/** Where events go: the log in file mode, Kubernetes Events in API mode. */
export interface EventRecorder {
  record(object: Readonly<VireoObject>, type: EventType, reason: string, message: string): void;
}

/**
 * Where the objects Vireo itself makes go (a lab's VirtualMachines): the store in file mode, the API server
 * in API mode. Both take effect in the store before they resolve, so the next reconcile sees them.
 */
export interface ObjectWriter {
  /** Creates the object, or updates its spec, labels, annotations and owner references. */
  apply(object: Readonly<VireoObject>): Promise<void>;
  /** Deletes it (in API mode, it goes once its finalizers are done); a no-op when it is gone. */
  delete(object: Readonly<VireoObject>): Promise<void>;
}

export interface Finalizers {
  /** Adds Vireo's finalizer if the object lacks it. */
  ensure(object: Readonly<VireoObject>): Promise<void>;
  /** Removes it once the object is gone from the hosts, letting the deletion complete. */
  remove(object: Readonly<VireoObject>): Promise<void>;
}

export interface ReconcileContext {
  store: ObjectStore;
  observed: ObservationCache;
  provider: HypervisorProvider;
  statusWriter: StatusWriter;
  /** Where objects Vireo makes go (a lab's VMs). */
  objects: ObjectWriter;
  events: EventRecorder;
  clock: Clock;
  log: Logger;
  metrics: ControllerMetrics;
  macs: MacRegistry;
  /**
   * Each cluster's latest verdicts on its VMs (why a VM waits, is held back, or is being moved), by cluster
   * name, then VM id. Replaced whole by the cluster's reconcile and read by the VMs' reconciles.
   */
  verdicts: Map<string, ReadonlyMap<string, PublishedVerdict>>;
  /** Each cluster's latest verdicts on the VirtualMachineMigrations of its VMs, by cluster, then "namespace/name". */
  requestVerdicts: Map<string, ReadonlyMap<string, RequestVerdict>>;
  /**
   * Replication: each cluster's latest notes on its replicated VMs (by cluster, then VM id), and what each
   * recovery from a replica began with (by VM id), until the VM's status has recorded it.
   */
  replication: {
    notes: Map<string, ReadonlyMap<string, ReplicationNote>>;
    recoveries: Map<string, RecoveryRecord>;
    /** Each cluster's site state as of one observation (and number of hosts): engine/replication.ts. */
    sites: { at: number; hosts: number; states: Map<string, SiteState> };
  };
  /** Each cluster's latest notes on its fault-tolerant VMs (by cluster, then VM id): their state and secondary's host. */
  faultTolerance: { notes: Map<string, ReadonlyMap<string, FaultToleranceNote>> };
  enqueue(key: string): void;
  /** API mode: finalizers, so deleting an object waits until Vireo has removed it from the hosts. */
  finalizers?: Finalizers;
  /** What HA remembers between rounds: restart attempts and failovers under way (memory only). */
  ha: HaState;
  /** The provider's fault hooks, for the Fault kind; undefined when it has none (a real hypervisor). */
  faults?: FaultInjector;
  /** Faults injected and not yet healed, by name: a deleted Fault is healed from here. */
  activeFaults: Map<string, FaultSpec>;
  /** `vireo plan`: the executor records each action here instead of applying it. */
  dryRun?: Action[];
}

export function clusterKey(name: string): string {
  return objectKey("HostCluster", name);
}

export function hostKey(name: string): string {
  return objectKey("Host", name);
}

/** The store key of a VM from its provider id ("namespace/name"). */
export function vmKeyOfId(id: string): string {
  const slash = id.indexOf("/");
  return objectKey("VirtualMachine", id.slice(slash + 1), id.slice(0, slash));
}

/** The VMs declared in the cluster. (Replicated VMs may belong elsewhere this round: engine/replication.ts.) */
export function vmsOfCluster(ctx: ReconcileContext, cluster: string): VirtualMachine[] {
  return ctx.store.list("VirtualMachine").filter((vm) => vm.spec.placement.cluster === cluster);
}

/** Deleted, or being deleted (waiting on Vireo's finalizer). */
export function isDeleting(object: Readonly<VireoObject> | undefined): boolean {
  return object === undefined || object.metadata.deletionTimestamp !== undefined;
}

export function hostByName(ctx: ReconcileContext, name: string): Host | undefined {
  return ctx.store.get(objectKey("Host", name)) as Host | undefined;
}

/**
 * Look again at `at` (clock time). A time that passed while the reconcile ran means at once — never "not
 * at all", which is what a requeueAfter of 0 says to the runner (controller-runtime's meaning).
 */
export function wakeAt(ctx: ReconcileContext, at: number): ReconcileResult {
  return { requeueAfter: Math.max(1, at - ctx.clock.now()) };
}

/** The cluster's latest verdict on a VM, unless the VM's spec changed since it was made. */
export function verdictOf(ctx: ReconcileContext, vm: Readonly<VirtualMachine>): PublishedVerdict | undefined {
  const verdict = ctx.verdicts.get(vm.spec.placement.cluster)?.get(vmId(vm));
  return verdict && verdict.generation === vm.metadata.generation ? verdict : undefined;
}

export function clusterByName(ctx: ReconcileContext, name: string): HostCluster | undefined {
  return ctx.store.get(clusterKey(name)) as HostCluster | undefined;
}

/** Writes status only when it changed, then records it in the store. */
export async function writeStatusIfChanged(ctx: ReconcileContext, object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): Promise<boolean> {
  if (jsonEqual(object.status ?? null, status)) return false;
  await ctx.statusWriter.writeStatus(object, status);
  ctx.store.setStatus(keyOf(object), status);
  recordDriftEvents(ctx, object, status);
  return true;
}

/** An event when drift begins and when it is corrected, so `kubectl describe` tells the story. */
function recordDriftEvents(ctx: ReconcileContext, object: Readonly<VireoObject>, status: NonNullable<VireoObject["status"]>): void {
  const before = object.status?.conditions?.find((c) => c.type === "Drifted" && c.status === "True");
  const after = status.conditions?.find((c) => c.type === "Drifted" && c.status === "True");
  if (after && !before) ctx.events.record(object, "Warning", "Drifted", after.message);
  else if (before && !after) ctx.events.record(object, "Normal", "DriftCorrected", "the hosts report what the spec implies again");
}

export { vmId };
