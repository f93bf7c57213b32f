// A host's capacity, heartbeats and report. Heartbeats are derived from the clock: a live host's last
// heartbeat is the latest whole tick since it (re)started sending, so no timer runs per host.

import { ProviderError } from "../provider.ts";
import type { HostConfig, HostObservation, VmConfig } from "../../core/observation.ts";
import type { SimTimings } from "./timings.ts";
import { allPathsDownSince, datastoreReports } from "./storage.ts";
import { copyHostConfig, lastTick } from "./world.ts";
import type { HostRecord } from "./world.ts";

export interface Resources {
  cpu: number;
  memoryMiB: number;
}

/** What a host's VMs add up to: the host's half of its report. */
export interface HostTally {
  allocated: Resources;
  /** Σ guest CPU demand, before the host's cores cap it. */
  cpuDemand: number;
  usedMemoryMiB: number;
  vmCount: number;
}

export function emptyTally(): HostTally {
  return { allocated: { cpu: 0, memoryMiB: 0 }, cpuDemand: 0, usedMemoryMiB: 0, vmCount: 0 };
}

/** vCPUs the host will hand out (cores × overcommit ratio) and memory, which is never overcommitted. */
export function capacityOf(config: HostConfig): Resources {
  return { cpu: config.cpu.cores * config.cpu.overcommitRatio, memoryMiB: config.memoryMiB };
}

export function lastNetworkHeartbeat(host: HostRecord, now: number, timings: SimTimings): number {
  const end = Math.min(now, host.isolatedAt ?? now, host.partitionedAt ?? now, host.crashedAt ?? now);
  return lastTick(host.networkSince, timings.networkHeartbeatIntervalMs, end) ?? host.networkSince;
}

export function lastDatastoreHeartbeat(host: HostRecord, now: number, timings: SimTimings): number {
  return lastTick(host.storageSince, timings.datastoreHeartbeatIntervalMs, storageEnd(host, now)) ?? host.storageSince;
}

/**
 * The host's last lock renewal on `datastore` (on every datastore when none is named): sanlock renews a
 * host's leases together, but not on a datastore it has no path to, and none once its host lease is lost.
 */
export function lastLockRenewal(host: HostRecord, now: number, timings: SimTimings, datastore?: string): number {
  const entry = datastore === undefined ? undefined : host.datastorePaths?.[datastore];
  const anchor = Math.max(host.storageSince, entry?.since ?? Number.NEGATIVE_INFINITY);
  const end = Math.min(storageEnd(host, now), entry?.allDownSince ?? now);
  return lastTick(anchor, timings.lockRenewIntervalMs, end) ?? Math.min(anchor, end);
}

/** When a host that lost all its storage paths must have killed the VMs holding locks: at lock expiry. */
export function storageFenceDueAt(host: HostRecord, timings: SimTimings): number | undefined {
  if (host.storageLostAt === undefined) return undefined;
  return lastLockRenewal(host, host.storageLostAt, timings) + timings.lockExpiryMs;
}

/**
 * When the isolated host next acts on its isolation: the response 30 s after it declared itself isolated,
 * then the power-off of guests that ignored the Shutdown response. Undefined when nothing is due.
 */
export function isolationResponseDueAt(host: HostRecord, timings: SimTimings): number | undefined {
  if (host.isolatedAt === undefined || host.crashedAt !== undefined) return undefined;
  if (host.isolationRespondedAt === undefined) return host.isolatedAt + timings.isolationDeclareMs + timings.isolationResponseDelayMs;
  if (host.isolationEnforcedAt !== undefined) return undefined;
  return host.isolationRespondedAt + timings.isolationShutdownTimeoutMs;
}

function storageEnd(host: HostRecord, now: number): number {
  return Math.min(now, host.storageLostAt ?? now, host.crashedAt ?? now);
}

/**
 * The host's report. `datastoreCutAt`: when the observer lost the last of the host's datastores (a site cut
 * off with its storage); the datastore heartbeat it reads is the last one written before.
 */
export function hostObservation(host: HostRecord, tally: HostTally, now: number, timings: SimTimings, datastoreCutAt?: number): HostObservation {
  return {
    name: host.name,
    config: copyHostConfig(host.config),
    lastNetworkHeartbeat: lastNetworkHeartbeat(host, now, timings),
    lastDatastoreHeartbeat: lastDatastoreHeartbeat(host, Math.min(now, datastoreCutAt ?? now), timings),
    storagePathsUp: host.storagePathsUp,
    datastores: datastoreReports(host),
    allocated: { ...tally.allocated },
    // Guests cannot use more cores than the host has: beyond that they contend (CPU ready time).
    used: { cpu: Math.min(host.config.cpu.cores, tally.cpuDemand), memoryMiB: tally.usedMemoryMiB },
    vmCount: tally.vmCount,
    leaseExpiryMs: timings.lockExpiryMs,
    ...(isolationDeclaredAt(host, now, timings) !== undefined ? { isolatedSince: isolationDeclaredAt(host, now, timings)! } : {}),
  };
}

/** When the isolated host declared itself isolated, once it has. */
export function isolationDeclaredAt(host: HostRecord, now: number, timings: SimTimings): number | undefined {
  if (host.isolatedAt === undefined) return undefined;
  const declared = host.isolatedAt + timings.isolationDeclareMs;
  return now >= declared ? declared : undefined;
}

/** Refuses a host description no hypervisor could have, naming the field. */
export function validateHostConfig(name: string, config: HostConfig): void {
  if (typeof name !== "string" || name.length === 0) throw invalid("name", "must be a non-empty string");
  const { cpu } = config;
  if (!Number.isInteger(cpu.cores) || cpu.cores < 1) throw invalid("cpu.cores", "must be a positive integer", name);
  if (!(cpu.overcommitRatio > 0) || !Number.isFinite(cpu.overcommitRatio)) {
    throw invalid("cpu.overcommitRatio", "must be a positive number", name);
  }
  if (!Number.isInteger(config.memoryMiB) || config.memoryMiB < 1) throw invalid("memoryMiB", "must be a positive integer", name);
  if (!Number.isInteger(config.storagePaths) || config.storagePaths < 0) {
    throw invalid("storagePaths", "must be a non-negative integer", name);
  }
}

/** Why `host` cannot run a VM made of `config` at all (as opposed to not having room for it now). */
export function checkHostCanRun(host: HostRecord, vmId: string, config: VmConfig): void {
  const seen = host.config;
  for (const disk of config.disks) {
    if (!seen.datastores.includes(disk.datastore)) {
      throw new ProviderError("Invalid", `host ${host.name} does not see datastore ${disk.datastore} of VM ${vmId}'s disk ${disk.name}`);
    }
  }
  for (const nic of config.nics) {
    if (!seen.networks.includes(nic.network)) {
      throw new ProviderError("Invalid", `host ${host.name} is not connected to network ${nic.network} of VM ${vmId}`);
    }
  }
  const missing = config.cpuFeatures.filter((feature) => !seen.cpu.features.includes(feature));
  if (missing.length > 0) {
    throw new ProviderError("Invalid", `host ${host.name} lacks CPU features ${missing.join(", ")} that VM ${vmId} sees`);
  }
  for (const disk of config.disks) {
    if (allPathsDownSince(host, disk.datastore) !== undefined) {
      throw new ProviderError("Unavailable", `host ${host.name} has all paths down to datastore ${disk.datastore}; VM ${vmId}'s disk ${disk.name} is unreachable`);
    }
  }
}

/** Refuses a power-on the host has no room for, as the hypervisor itself would. */
export function checkRoom(host: HostRecord, allocated: Resources, vmId: string, config: VmConfig): void {
  const capacity = capacityOf(host.config);
  if (config.cpu > host.config.cpu.cores) {
    throw new ProviderError("InsufficientResources", `VM ${vmId} has ${config.cpu} vCPUs; host ${host.name} has only ${host.config.cpu.cores} cores`);
  }
  if (allocated.memoryMiB + config.memoryMiB > capacity.memoryMiB) {
    throw new ProviderError(
      "InsufficientResources",
      `host ${host.name} has ${capacity.memoryMiB - allocated.memoryMiB} MiB free; VM ${vmId} needs ${config.memoryMiB} MiB`,
    );
  }
  if (allocated.cpu + config.cpu > capacity.cpu) {
    throw new ProviderError(
      "InsufficientResources",
      `host ${host.name} has ${capacity.cpu - allocated.cpu} vCPUs free (${host.config.cpu.cores} cores × ${host.config.cpu.overcommitRatio}); VM ${vmId} needs ${config.cpu}`,
    );
  }
}

function invalid(field: string, problem: string, host?: string): ProviderError {
  return new ProviderError("Invalid", `${host ? `host ${host}: ` : ""}${field} ${problem}`);
}
