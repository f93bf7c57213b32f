// Derived views the reconcilers share: a host's cluster and phase, from the store and the observation.

import type { HostFacts } from "../planners/cluster/types.ts";
import { clusterOf } from "../api/membership.ts";
import { hostPhase, holdsResources, unavailableReason } from "../planners/hosts.ts";
import type { ReconcileContext } from "./context.ts";
import { hostByName } from "./context.ts";

/** A host as the reconcilers see it (the planners' HostFacts). */
export type HostView = HostFacts;

/** Whether the controller could read none of a host's heartbeat datastores at the last observation. */
export function storageUnreadable(datastores: readonly string[], unreachable: ReadonlySet<string>): boolean {
  return unreachable.size > 0 && datastores.length > 0 && datastores.every((d) => unreachable.has(d));
}

export function viewHost(ctx: ReconcileContext, name: string, clusters = ctx.store.list("HostCluster")): HostView {
  const host = hostByName(ctx, name);
  const observed = ctx.observed.host(name);
  if (!host) return { name, ...(observed ? { observed } : {}), phase: "NotResponding", unavailable: "being removed" };
  if (host.metadata.deletionTimestamp) return { name, host, ...(observed ? { observed } : {}), phase: "NotResponding", unavailable: "being removed" };
  const cluster = clusterOf(host, clusters);
  const busy = ctx.observed.vmsOn(name).filter(holdsResources).length;
  // Heartbeats are judged as of the last observation, not as of now: a controller whose own observing is
  // late (a busy process, a provider out of reach) must not take its blindness for hosts going silent.
  let phase = hostPhase(host, observed, busy, ctx.observed.at(), cluster?.spec.ha.failureDetectionSeconds);
  // Silence that the controller cannot check against the host's storage is not failure: it may run on
  // behind a broken link (a site cut off, storage network included).
  const unconfirmed = phase === "Failed" && observed !== undefined && storageUnreadable(observed.config.datastores, ctx.observed.unreachableDatastores());
  if (unconfirmed) phase = "Partitioned";
  const unavailable = observed ? unavailableReason(phase, false) : "not registered";
  return { name, host, ...(observed ? { observed } : {}), ...(cluster ? { cluster } : {}), phase, ...(unavailable ? { unavailable } : {}), ...(unconfirmed ? { unconfirmed } : {}) };
}
