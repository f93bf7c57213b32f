// The simulated world as plain data: what every host and VM really is, and the disk locks between them.
// Heartbeats, lock renewals and CPU usage are not stored: they are derived from these records and the
// clock when asked for, so a thousand idle hosts cost nothing between observations.

import type { VmExitReason } from "../../api/types.ts";
import type { ConversionObservation } from "../../core/conversion.ts";
import type { FaultToleranceSettings, SecondaryObservation, SwitchoverObservation } from "../../core/fault-tolerance.ts";
import type { MigrationPhase, MigrationSettings } from "../../core/migration.ts";
import type { HostConfig, HostObservation, VmConfig, VmObservation, VmPowerState } from "../../core/observation.ts";
import type { ReplicationSettings } from "../../core/replication.ts";

export interface HostRecord {
  name: string;
  config: HostConfig;
  /** When the host last booted (registered, or recovered from a crash). */
  bootedAt: number;
  /** Network heartbeats tick from here: the boot, or the end of the last isolation. */
  networkSince: number;
  /** Set while the host is cut off from the network: its network heartbeat stopped then. */
  isolatedAt?: number;
  /** Set once the isolated host has applied its isolation response (powered off or shut down its VMs). */
  isolationRespondedAt?: number;
  /** Set once guests that ignored a Shutdown isolation response have been powered off. */
  isolationEnforcedAt?: number;
  /** Set while the host is on the far side of a network partition: it still reaches its peers there. */
  partitionedAt?: number;
  /**
   * Set while the partition cuts the host's storage network off from the observer too: its datastores that
   * no host outside sees are unreachable, and their heartbeat regions read as they were at the cut.
   */
  storageCutAt?: number;
  /** SlowHost: boots and guest shutdowns take this many times longer. */
  slowdown?: number;
  /** The paths that work to the host's worst-served datastore (all of them when no fault is on). */
  storagePathsUp: number;
  /** Per datastore, once a StoragePathLoss touched it: its paths up, since when all are down (APD). */
  datastorePaths?: Record<string, DatastorePaths>;
  /** Datastore heartbeats and lock renewals tick from here: the boot, or storage coming back. */
  storageSince: number;
  /**
   * Set while the host has lost its heartbeat datastores (every one of them all paths down): its datastore
   * heartbeat and every lock renewal stopped then (sanlock: resource leases live by the host lease).
   */
  storageLostAt?: number;
  /** Set while the host is down. */
  crashedAt?: number;
  /** The last report the host sent before it went down; observers see only this until it recovers. */
  lastReport?: HostObservation;
}

/** The host's paths to one datastore (vSphere: each HBA is one path to every datastore it zones in). */
export interface DatastorePaths {
  up: number;
  /** Set while no path reaches the datastore (all paths down, APD): its VMs freeze, its locks go unrenewed. */
  allDownSince?: number;
  /** When the datastore last came back from APD: lock renewals on it tick from here. */
  since?: number;
}

export interface VmRecord {
  id: string;
  host: string;
  config: VmConfig;
  /** The truth, which observers see only while the host reports. */
  power: VmPowerState;
  since: number;
  poweredOnAt?: number;
  lastExit?: { reason: VmExitReason; at: number };
  /** When the boot or guest shutdown under way completes; absent when none is, or the guest ignores it. */
  transitionDueAt?: number;
  /** Guest heartbeats tick from here once the guest has booted. */
  guestSince?: number;
  /** Set when the guest stopped heartbeating (hang, power-off). */
  guestStoppedAt?: number;
  guestHung: boolean;
  /** Why the shutdown under way was begun when nobody outside asked for it (the isolation response). */
  stopCause?: VmExitReason;
  /** The key of the last reset applied, so a retried reset is a no-op. */
  lastResetKey?: string;
  /**
   * Share of the guest's vCPUs taken away while it migrates, percent: auto-converge's throttle, and 100
   * while it is paused for the switch-over. Absent when nothing holds it back.
   */
  cpuThrottlePercent?: number;
  revision: number;
  /** While the VM's host is down: the last report of the VM that the host sent. */
  lastReport?: VmObservation;
  /** Set when the VM was powered on from a replica (a failover or a test copy): which one, as of which instance. */
  recoveredFrom?: { replicaOf: string; instanceAt: number };
}

/** A lock on one disk of one VM, held by the host that runs it (VMFS lock / sanlock resource lease). */
export interface DiskLock {
  key: string;
  datastore: string;
  disk: string;
  vmId: string;
  host: string;
  acquiredAt: number;
  /** Fixed when the holder can never renew again (its host crashed); otherwise derived from the host. */
  renewedUntil?: number;
}

/**
 * One live migration (pre-copy), under way or ended: the last one of its VM, kept until the VM's next
 * migration or its removal. Figures are booked at each event (a round's end, a change of bandwidth), so
 * what observers see changes only with the world's revision.
 */
export interface MigrationRecord {
  vm: string;
  key: string;
  source: string;
  target: string;
  phase: MigrationPhase;
  settings: MigrationSettings;
  /** The VM's vCPUs and memory when it began: what the target holds for it until it ends. */
  cpu: number;
  memoryMiB: number;
  /** How fast the guest dirties memory of its own accord, before any throttle, MiB/s. */
  guestDirtyRateMiBps: number;
  startedAt: number;
  endedAt?: number;
  /** Rounds begun; round 0, the full copy, is the first. */
  rounds: number;
  /** When the current round began: the dirty bitmap was synced then, and the guest dirties from there. */
  roundStartedAt: number;
  /** What the current round sends: the memory dirty when it began (all of it, in round 0). */
  roundSizeMiB: number;
  /** What the current round had sent at `bookedAt`; the rest goes at `bandwidthMiBps` from then. */
  roundSentMiB: number;
  bookedAt: number;
  /** Sent in all, as of `bookedAt`. */
  transferredMiB: number;
  /** Still to send as of `bookedAt`: the round's unsent memory and what the guest dirtied since it began. */
  remainingMiB: number;
  bandwidthMiBps: number;
  /** The guest's dirty rate under the throttle, MiB/s. */
  dirtyRateMiBps: number;
  throttlePercent: number;
  /** Rounds whose dirtied memory passed auto-converge's share of what they sent, since the last throttle step. */
  highDirtyRounds: number;
  /** The least ever left to send, and when it last shrank: the no-progress timeout counts from there. */
  lowestRemainingMiB: number;
  lastProgressAt: number;
  /** While switching over: when the guest, paused, resumes on the target. */
  switchoverEndsAt?: number;
  downtimeMs?: number;
  reason?: string;
}

/**
 * What the VM has written to its disks since replication was configured, booked at `bookedAt`: from then
 * on it writes `rateMiBps` while `writing`. Re-booked at every change to the world, so the instant the
 * VM stops writing (a crash, a power-off, APD) is exact.
 */
export interface WriteBooking {
  bookedAt: number;
  writtenMiB: number;
  writing: boolean;
  rateMiBps: number;
  /** When the VM last stopped writing (or the booking began, if it was not writing then). */
  stoppedAt?: number;
}

/** A point-in-time instance of the replica: the VM as of the start of the sync that made it. */
export interface ReplicaInstance {
  startedAt: number;
  /** The VM's writes booked up to that start (WriteBooking.writtenMiB's scale). */
  writtenMiB: number;
  endedAt: number;
  transferredMiB: number;
  key?: string;
}

/** A sync under way, over `link` at its share of the link's bandwidth, booked at `bookedAt`. */
export interface SyncRecord {
  startedAt: number;
  totalMiB: number;
  full: boolean;
  key?: string;
  link: string;
  /** The VM's writes booked up to the start: what the instance will reflect. */
  writtenMiB: number;
  sentMiB: number;
  bookedAt: number;
  bandwidthMiBps: number;
  /** When it has sent everything at the share it has now (whole ms, rounded up). */
  endsAt: number;
}

/** What a failover from the replica cost, as the ground truth knows it. */
export interface RecoveryRecord {
  vm: string;
  at: number;
  host: string;
  instanceAt: number;
  /** When the original last stopped writing. */
  stoppedWritingAt: number;
  /** What the original wrote after the instance's start: lost with the failover. */
  lostMiB: number;
}

/** One VM's replica (vSphere Replication), by VM id: it outlives the VM's registration, for a failover. */
export interface ReplicaRecord {
  vm: string;
  settings: ReplicationSettings;
  writes: WriteBooking;
  /** Kept instances, oldest first; the last is the latest completed sync. */
  instances: ReplicaInstance[];
  syncing?: SyncRecord;
  /** When the next sync begins; absent while one is under way or none can or need run. */
  nextSyncAt?: number;
  /** Keys of syncs asked for whose sync has not completed: each gets a sync of its own, at once. */
  requestedKeys: string[];
  /** Keys of the latest syncs asked for and completed, so that asking again is a no-op. */
  doneKeys: string[];
  /** Set once the replica was promoted to run the VM. */
  recovery?: { at: number; instanceAt: number; host: string };
}

/** A replication link between two sites: the syncs under way on it share its bandwidth evenly. */
export interface ReplicationLink {
  name: string;
  bandwidthMiBps: number;
}

/**
 * Derived from the replicas, never saved: the queue of their next events (each replica has at most one:
 * its sync's end, or its next sync's start) and the syncs under way on each link.
 */
export interface ReplicationIndex {
  /** A binary heap by (due, vm); an entry is live while `scheduled` holds its due for its VM. */
  queue: { due: number; vm: string }[];
  scheduled: Map<string, number>;
  syncsByLink: Map<string, Set<string>>;
  /** The datastores some registered host sees: a replica whose target is not among them is in Error. */
  datastoresSeen: Set<string>;
  /**
   * Links whose syncs are to be shared out anew as of `sharesDueAt`: the syncs that begin or end at one
   * instant change the shares once, however many they are.
   */
  linksToShare: Set<string>;
  sharesDueAt?: number;
}

/**
 * A fault-tolerant VM's secondary (vSphere FT), by VM id: made by a live copy over the FT logging link,
 * then kept in lockstep. At most one per VM, but a move keeps the secondary it replaces in `replacing`. Its
 * `primaryHost` follows the primary wherever it migrates; `cpu` and `memoryMiB` are the VM's when it was
 * protected, what the secondary holds on its host.
 */
export interface SecondaryRecord extends Pick<SecondaryObservation, "vm" | "key" | "host" | "primaryHost" | "state" | "since" | "cpu" | "memoryMiB" | "reason"> {
  settings: FaultToleranceSettings;
  /** The primary's run when it was protected: a secondary that goes live carries it on, unbroken. */
  poweredOnAt: number;
  lastExit?: { reason: VmExitReason; at: number };
  /** While Copying: the live copy that makes it (precopy.ts's record, over the logging link). */
  copy?: MigrationRecord;
  /** Lockstep: when the primary stopped answering over the logging link; it tries to go live FT_GO_LIVE_MS later. */
  primaryLostAt?: number;
  /** While a move copies: the secondary in lockstep that it replaces, which protects the VM until then. */
  replacing?: ReplacedSecondary;
}

export interface ReplacedSecondary {
  key: string;
  host: string;
  since: number;
  settings: FaultToleranceSettings;
}

/** A secondary that went live (the last one of each VM): kept as the hosts report it. */
export type SwitchoverRecord = SwitchoverObservation;

/** One conversion to another hypervisor type (V2V), under way or ended: the last one of its VM. */
export interface ConversionRecord extends Omit<ConversionObservation, "convertedMiB"> {
  rateMiBps: number;
  /** What the VM becomes on the target: its devices for the target's hypervisor. */
  config: VmConfig;
  /** Set when it ended early: what it had converted then. */
  convertedMiB?: number;
}

export interface World {
  seed: number;
  hosts: Map<string, HostRecord>;
  vms: Map<string, VmRecord>;
  /** Index of `vms` by host, so per-host work does not scan every VM. */
  vmsByHost: Map<string, Set<string>>;
  locks: Map<string, DiskLock>;
  /** By VM id: each VM's migration under way, or its last one. */
  migrations: Map<string, MigrationRecord>;
  /** By VM id. */
  replicas: Map<string, ReplicaRecord>;
  /** By name; a link's bandwidth is the last one configured for it. */
  links: Map<string, ReplicationLink>;
  /** Every failover from a replica, for the ground truth. */
  recoveries: RecoveryRecord[];
  replication: ReplicationIndex;
  /** By VM id: each fault-tolerant VM's secondary. */
  secondaries: Map<string, SecondaryRecord>;
  /** By VM id: the last switch-over to a secondary. */
  switchovers: Map<string, SwitchoverRecord>;
  /** By VM id: each VM's conversion under way, or its last one. */
  conversions: Map<string, ConversionRecord>;
  splitBrainAttempts: number;
  /** Secondaries that tried to go live and lost the disk locks' test-and-set to a primary that still ran. */
  goLiveRefused: number;
  /**
   * Secondaries that went live while their primary's host still ran the VM: a check, counted apart from the
   * decision, that must stay 0 (no VM ever executes on two hosts).
   */
  twoPrimaries: number;
  /** The last revision handed out: revisions are unique across the world, so a re-created VM never repeats one. */
  revision: number;
}

export function emptyWorld(seed: number): World {
  return {
    seed,
    hosts: new Map(),
    vms: new Map(),
    vmsByHost: new Map(),
    locks: new Map(),
    migrations: new Map(),
    replicas: new Map(),
    links: new Map(),
    recoveries: [],
    replication: { queue: [], scheduled: new Map(), syncsByLink: new Map(), datastoresSeen: new Set(), linksToShare: new Set() },
    secondaries: new Map(),
    switchovers: new Map(),
    conversions: new Map(),
    splitBrainAttempts: 0,
    goLiveRefused: 0,
    twoPrimaries: 0,
    revision: 0,
  };
}

export function isPoweredOn(power: VmPowerState): boolean {
  return power !== "Off";
}

/** A host the management network can reach: up and not isolated. Only such a host takes commands. */
export function isReachable(host: HostRecord): boolean {
  return host.crashedAt === undefined && host.isolatedAt === undefined && host.partitionedAt === undefined;
}

/** The time of the last tick of a periodic event that started at `anchor`, at or before `end`. */
export function lastTick(anchor: number, interval: number, end: number): number | undefined {
  if (end < anchor) return undefined;
  return anchor + Math.floor((end - anchor) / interval) * interval;
}

export function vmsOnHost(world: World, host: string): VmRecord[] {
  const ids = world.vmsByHost.get(host);
  if (!ids) return [];
  const vms: VmRecord[] = [];
  for (const id of ids) {
    const vm = world.vms.get(id);
    if (vm) vms.push(vm);
  }
  return vms;
}

export function attachVm(world: World, vm: VmRecord): void {
  world.vms.set(vm.id, vm);
  let ids = world.vmsByHost.get(vm.host);
  if (!ids) {
    ids = new Set();
    world.vmsByHost.set(vm.host, ids);
  }
  ids.add(vm.id);
}

export function detachVm(world: World, vm: VmRecord): void {
  world.vms.delete(vm.id);
  const ids = world.vmsByHost.get(vm.host);
  ids?.delete(vm.id);
  if (ids && ids.size === 0) world.vmsByHost.delete(vm.host);
}

/** Marks a VM as changed: a new world-wide revision. */
export function touch(world: World, vm: VmRecord): void {
  world.revision += 1;
  vm.revision = world.revision;
}

export function copyHostConfig(config: HostConfig): HostConfig {
  const cpu: HostConfig["cpu"] = {
    cores: config.cpu.cores,
    vendor: config.cpu.vendor,
    features: [...config.cpu.features],
    overcommitRatio: config.cpu.overcommitRatio,
  };
  if (config.cpu.model !== undefined) cpu.model = config.cpu.model;
  return {
    hypervisor: config.hypervisor,
    cpu,
    memoryMiB: config.memoryMiB,
    datastores: [...config.datastores],
    networks: [...config.networks],
    storagePaths: config.storagePaths,
    labels: { ...config.labels },
  };
}

export function copyVmConfig(config: VmConfig): VmConfig {
  return {
    cpu: config.cpu,
    memoryMiB: config.memoryMiB,
    cpuFeatures: [...config.cpuFeatures],
    disks: config.disks.map((disk) => ({ name: disk.name, sizeGiB: disk.sizeGiB, datastore: disk.datastore })),
    nics: config.nics.map((nic) => ({ network: nic.network, macAddress: nic.macAddress, ...(nic.model !== undefined ? { model: nic.model } : {}) })),
    ...(config.firmware !== undefined ? { firmware: config.firmware } : {}),
    workload: {
      profile: config.workload.profile,
      cpuPercent: config.workload.cpuPercent,
      ...(config.workload.dirtyRateMiBps !== undefined ? { dirtyRateMiBps: config.workload.dirtyRateMiBps } : {}),
      ...(config.workload.diskWriteRateMiBps !== undefined ? { diskWriteRateMiBps: config.workload.diskWriteRateMiBps } : {}),
    },
    ...(config.isolationResponse !== undefined ? { isolationResponse: config.isolationResponse } : {}),
    ...(config.managedBy !== undefined ? { managedBy: config.managedBy } : {}),
  };
}

export function copyHostObservation(report: HostObservation): HostObservation {
  return {
    ...report,
    config: copyHostConfig(report.config),
    ...(report.datastores ? { datastores: report.datastores.map((datastore) => ({ ...datastore })) } : {}),
    allocated: { ...report.allocated },
    used: { ...report.used },
  };
}

export function copyVmObservation(report: VmObservation): VmObservation {
  const copy: VmObservation = { ...report, config: copyVmConfig(report.config) };
  if (report.lastExit) copy.lastExit = { ...report.lastExit };
  return copy;
}
