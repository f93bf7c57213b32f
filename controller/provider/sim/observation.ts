// What observers see: each host's latest report and its VMs'. A live host reports the truth as of now;
// a crashed host's report, and its VMs', stay as they were when it went down. Every report is a fresh
// copy, so nothing an observer does to it reaches the world.

import type { MigrationObservation } from "../../core/migration.ts";
import type { HostObservation, Observation, VmObservation } from "../../core/observation.ts";
import { emptyTally, hostObservation } from "./hosts.ts";
import type { HostTally, Resources } from "./hosts.ts";
import { migrationsUnderWay, reservedOn } from "./migration-hosts.ts";
import { replicaObservation } from "./replication.ts";
import { conversionObservation } from "./conversion.ts";
import { heldBySecondaries, lockstepLoad, secondaryObservation, switchoverObservation } from "./secondaries.ts";
import type { LockstepFigures } from "./secondaries.ts";
import { datastoreHeartbeatCutAt, unreachableDatastores } from "./storage.ts";
import type { SimTimings } from "./timings.ts";
import { addToTally, vmObservation } from "./vms.ts";
import { copyHostObservation, copyVmObservation, isPoweredOn, vmsOnHost } from "./world.ts";
import type { HostRecord, MigrationRecord, VmRecord, World } from "./world.ts";

/** The VM's report; `load` (secondaries.ts), when the caller has it for many VMs, saves working it out again. */
export function reportVm(world: World, vm: VmRecord, now: number, timings: SimTimings, load: ReadonlyMap<string, LockstepFigures> = lockstepLoad(world)): VmObservation {
  const host = hostOf(world, vm);
  if (host.crashedAt !== undefined) return copyVmObservation(lastReportOf(vm));
  return slowedByLogging(vmObservation(vm, host, now, world.seed, timings), load);
}

/** A primary that its saturated FT logging link slows runs that much less of the time (secondaries.ts). */
function slowedByLogging(report: VmObservation, load: ReadonlyMap<string, LockstepFigures>): VmObservation {
  const slowdown = load.get(report.id)?.slowdown ?? 0;
  if (slowdown > 0) report.cpuUsage *= 1 - slowdown;
  return report;
}

/**
 * The report a live host sends now: as observers read it, or (`asWritten`) as the host wrote it — its
 * datastore heartbeat as on the datastore, whether or not observers can read it there.
 */
export function liveHostReport(world: World, host: HostRecord, now: number, timings: SimTimings, asWritten = false): HostObservation {
  const tally = emptyTally();
  const load = lockstepLoad(world);
  for (const vm of vmsOnHost(world, host.name)) addToTally(tally, slowedByLogging(vmObservation(vm, host, now, world.seed, timings), load));
  addIncomingMigrations(world, host.name, tally);
  return hostObservation(host, tally, now, timings, asWritten ? undefined : datastoreHeartbeatCutAt(host, unreachableDatastores(world.hosts.values())));
}

/**
 * A crashed host's last report as observers read it: the heartbeat it last wrote on its datastores, or,
 * while those are cut off from observers, the last one they read before the cut.
 */
function crashedHostReport(host: HostRecord, unreachable: ReadonlyMap<string, number>): HostObservation {
  const report = copyHostObservation(lastHostReportOf(host));
  const cutAt = datastoreHeartbeatCutAt(host, unreachable);
  if (cutAt !== undefined) report.lastDatastoreHeartbeat = Math.min(report.lastDatastoreHeartbeat, cutAt);
  return report;
}

export function observeWorld(world: World, now: number, timings: SimTimings): Observation {
  const tallies = new Map<string, HostTally>();
  const vms: VmObservation[] = [];
  const load = lockstepLoad(world);
  for (const vm of world.vms.values()) {
    const report = reportVm(world, vm, now, timings, load);
    vms.push(report);
    let tally = tallies.get(vm.host);
    if (!tally) {
      tally = emptyTally();
      tallies.set(vm.host, tally);
    }
    addToTally(tally, report);
  }
  const unreachable = unreachableDatastores(world.hosts.values());
  const hosts: HostObservation[] = [];
  for (const host of world.hosts.values()) {
    if (host.crashedAt !== undefined) hosts.push(crashedHostReport(host, unreachable));
    else hosts.push(hostObservation(host, addIncomingMigrations(world, host.name, tallies.get(host.name) ?? emptyTally()), now, timings, datastoreHeartbeatCutAt(host, unreachable)));
  }
  const migrations = [...world.migrations.values()].map(migrationObservation);
  const replicas = [...world.replicas.values()].map((replica) => replicaObservation(world, replica, now));
  return {
    at: now,
    hosts,
    vms,
    splitBrainAttempts: world.splitBrainAttempts,
    migrations,
    replicas,
    unreachableDatastores: [...unreachable.keys()].sort(),
    secondaries: [...world.secondaries.values()].map((rec) => secondaryObservation(rec, load, now)),
    switchovers: [...world.switchovers.values()].map(switchoverObservation),
    conversions: [...world.conversions.values()].map((c) => conversionObservation(c, now)),
  };
}

/**
 * A migration's target holds the VM's vCPUs and memory from the start, and the memory copied so far is
 * in use there; the VM itself is the source's until it switches over. A secondary's host holds the same
 * for it (secondaries.ts).
 */
function addIncomingMigrations(world: World, host: string, tally: HostTally): HostTally {
  for (const m of migrationsUnderWay(world)) {
    if (m.target !== host) continue;
    tally.allocated.cpu += m.cpu;
    tally.allocated.memoryMiB += m.memoryMiB;
    tally.usedMemoryMiB += Math.min(m.memoryMiB, Math.round(m.transferredMiB));
  }
  if (world.secondaries.size === 0) return tally;
  const held = heldBySecondaries(world, host);
  tally.allocated.cpu += held.cpu;
  tally.allocated.memoryMiB += held.memoryMiB;
  tally.usedMemoryMiB += held.usedMemoryMiB;
  return tally;
}

export function migrationObservation(m: MigrationRecord): MigrationObservation {
  return {
    vm: m.vm,
    key: m.key,
    source: m.source,
    target: m.target,
    phase: m.phase,
    startedAt: m.startedAt,
    ...(m.endedAt !== undefined ? { endedAt: m.endedAt } : {}),
    rounds: m.rounds,
    transferredMiB: thousandths(m.transferredMiB),
    remainingMiB: thousandths(m.remainingMiB),
    bandwidthMiBps: thousandths(m.bandwidthMiBps),
    dirtyRateMiBps: thousandths(m.dirtyRateMiBps),
    throttlePercent: m.throttlePercent,
    ...(m.downtimeMs !== undefined ? { downtimeMs: thousandths(m.downtimeMs) } : {}),
    ...(m.reason !== undefined ? { reason: m.reason } : {}),
  };
}

/** Figures to a thousandth: the model's floating point is not news to an observer. */
function thousandths(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/**
 * vCPUs and memory the host has handed to its powered-on VMs and holds for VMs migrating to it and for
 * secondaries, in truth.
 */
export function allocatedOn(world: World, host: string): Resources {
  const allocated = reservedOn(world, host);
  const held = heldBySecondaries(world, host);
  allocated.cpu += held.cpu;
  allocated.memoryMiB += held.memoryMiB;
  for (const vm of vmsOnHost(world, host)) {
    if (!isPoweredOn(vm.power)) continue;
    allocated.cpu += vm.config.cpu;
    allocated.memoryMiB += vm.config.memoryMiB;
  }
  return allocated;
}

export function hostOf(world: World, vm: VmRecord): HostRecord {
  const host = world.hosts.get(vm.host);
  if (!host) throw new Error(`simulator invariant broken: VM ${vm.id} is on unknown host ${vm.host}`);
  return host;
}

function lastReportOf(vm: VmRecord): VmObservation {
  if (!vm.lastReport) throw new Error(`simulator invariant broken: VM ${vm.id} is on a crashed host but has no last report`);
  return vm.lastReport;
}

function lastHostReportOf(host: HostRecord): HostObservation {
  if (!host.lastReport) throw new Error(`simulator invariant broken: crashed host ${host.name} has no last report`);
  return host.lastReport;
}
