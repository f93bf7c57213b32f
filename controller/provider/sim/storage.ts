// A host's storage paths, per datastore, as vSphere models them: each of the host's `storagePaths` HBA
// paths reaches every datastore it sees, and a fault can take some or all of the paths to one datastore
// down. Some paths down: degraded, everything runs. All paths down (APD): the VMs with disks there freeze
// and the host stops renewing its locks there. The datastore heartbeat lives on the first two datastores
// (the heartbeat datastores) and stops only when none of them has a path left.

import type { DatastoreObservation, VmConfig } from "../../core/observation.ts";
import type { DatastorePaths, HostRecord } from "./world.ts";

/** BEHAVIOUR.md, Failure detection: datastores used for heartbeats per host, 2. The first two listed. */
export const HEARTBEAT_DATASTORES = 2;

export function heartbeatDatastores(host: Readonly<HostRecord>): string[] {
  return host.config.datastores.slice(0, HEARTBEAT_DATASTORES);
}

export function pathsUpTo(host: Readonly<HostRecord>, datastore: string): number {
  return host.datastorePaths?.[datastore]?.up ?? host.config.storagePaths;
}

/** Since when no path reaches the datastore (APD), or undefined while one does. */
export function allPathsDownSince(host: Readonly<HostRecord>, datastore: string): number | undefined {
  return host.datastorePaths?.[datastore]?.allDownSince;
}

/** Since when the VM's disks have been out of reach: the earliest APD among their datastores. */
export function frozenSince(host: Readonly<HostRecord>, disks: VmConfig["disks"]): number | undefined {
  let since: number | undefined;
  for (const disk of disks) {
    const down = allPathsDownSince(host, disk.datastore);
    if (down !== undefined && (since === undefined || down < since)) since = down;
  }
  return since;
}

/**
 * The host lease is lost when no heartbeat datastore has a path. A host that sees no datastore keeps its
 * lease on the paths themselves: lost when every path is down.
 */
export function hostLeaseLost(host: Readonly<HostRecord>): boolean {
  const heartbeat = heartbeatDatastores(host);
  if (heartbeat.length === 0) return host.storagePathsUp === 0;
  return heartbeat.every((datastore) => pathsUpTo(host, datastore) === 0);
}

/** The paths up to the worst-served datastore: what `storagePathsUp` reports. */
export function worstPathsUp(host: Readonly<HostRecord>): number {
  if (host.config.datastores.length === 0) return host.storagePathsUp;
  return Math.min(...host.config.datastores.map((datastore) => pathsUpTo(host, datastore)));
}

/** Sets how many paths reach each of `datastores`; true when anything changed. */
export function setPathsUp(host: HostRecord, datastores: readonly string[], up: number, now: number): boolean {
  let changed = false;
  for (const datastore of datastores) {
    const entry: DatastorePaths = host.datastorePaths?.[datastore] ?? { up: host.config.storagePaths };
    if (entry.up === up) continue;
    if (entry.up > 0 && up === 0) entry.allDownSince = now;
    else if (entry.up === 0 && up > 0) {
      delete entry.allDownSince;
      entry.since = now;
    }
    entry.up = up;
    host.datastorePaths = { ...(host.datastorePaths ?? {}), [datastore]: entry };
    changed = true;
  }
  return changed;
}

/** A freshly booted host: every path up, unless it has none at all. */
export function bootStorage(host: HostRecord, now: number): void {
  delete host.datastorePaths;
  host.storagePathsUp = host.config.storagePaths;
  // A host without paths reaches none of its datastores from the start.
  if (host.config.storagePaths === 0) {
    host.datastorePaths = Object.fromEntries(host.config.datastores.map((name) => [name, { up: 0, allDownSince: now }]));
  }
}

/**
 * The host's description changed: datastores it no longer sees are forgotten, a datastore with every path
 * up keeps every path up, and a path fault survives as far as the new path count allows.
 */
export function reshapeStorage(host: HostRecord, previousPaths: number, now: number): void {
  const entries = host.datastorePaths ?? {};
  delete host.datastorePaths;
  for (const [datastore, entry] of Object.entries(entries)) {
    if (!host.config.datastores.includes(datastore)) continue;
    host.datastorePaths = { ...(host.datastorePaths ?? {}), [datastore]: entry };
    const up = entry.up === previousPaths ? host.config.storagePaths : Math.min(entry.up, host.config.storagePaths);
    setPathsUp(host, [datastore], up, now);
  }
  if (host.config.storagePaths === 0) {
    for (const datastore of host.config.datastores) {
      if (allPathsDownSince(host, datastore) === undefined) host.datastorePaths = { ...(host.datastorePaths ?? {}), [datastore]: { up: 0, allDownSince: now } };
    }
  }
  if (host.config.datastores.length === 0) {
    host.storagePathsUp = host.storagePathsUp === previousPaths ? host.config.storagePaths : Math.min(host.storagePathsUp, host.config.storagePaths);
  }
}

/**
 * The datastores the observer cannot read because a partition cut their site's storage network off with
 * it (partitionHosts with storage): those that only cut-off hosts see, each with when it was lost (when
 * the last host that sees it was cut off).
 */
export function unreachableDatastores(hosts: Iterable<Readonly<HostRecord>>): Map<string, number> {
  const lostAt = new Map<string, number>();
  const reachable = new Set<string>();
  for (const host of hosts) {
    for (const datastore of host.config.datastores) {
      if (host.storageCutAt === undefined) reachable.add(datastore);
      else lostAt.set(datastore, Math.max(lostAt.get(datastore) ?? host.storageCutAt, host.storageCutAt));
    }
  }
  for (const datastore of reachable) lostAt.delete(datastore);
  return lostAt;
}

/**
 * When the observer last could read the host's datastore heartbeat: undefined while it can, else when the
 * last of the host's datastores became unreachable (a host with none heartbeats on its paths, never cut).
 */
export function datastoreHeartbeatCutAt(host: Readonly<HostRecord>, unreachable: ReadonlyMap<string, number>): number | undefined {
  let cutAt: number | undefined;
  for (const datastore of host.config.datastores) {
    const lost = unreachable.get(datastore);
    if (lost === undefined) return undefined;
    cutAt = Math.max(cutAt ?? lost, lost);
  }
  return cutAt;
}

/** What the host reports of each datastore it sees. */
export function datastoreReports(host: Readonly<HostRecord>): DatastoreObservation[] {
  return host.config.datastores.map((name) => {
    const pathsUp = pathsUpTo(host, name);
    const since = allPathsDownSince(host, name);
    const state = pathsUp === 0 ? "AllPathsDown" : pathsUp < host.config.storagePaths ? "Degraded" : "Ok";
    return { name, pathsUp, state, ...(since !== undefined ? { allPathsDownSince: since } : {}) };
  });
}
