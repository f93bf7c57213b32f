// Disk replication as both sides see it: what a host's replication agent is told to do for one VM, and
// what the replica's site reports of it (vSphere Replication's model, BEHAVIOUR.md "Replication and fault
// tolerance"). A leaf module: the simulator replicates by it, the planners and the engine read it.

import type { VmConfig, WorkloadProfile } from "./observation.ts";

/** What the agent on the VM's host is told: where the replica lives, how fresh it must stay, and over which link. */
export interface ReplicationSettings {
  /** The datastore of the target cluster that holds the replica's disks. */
  targetDatastore: string;
  /** The recovery point objective: no replica older than this, ms. */
  rpoMs: number;
  /** Point-in-time instances kept besides the latest (0–24). */
  instances: number;
  /** The replication link the syncs share (one per source and target cluster), and its bandwidth. */
  link: string;
  linkBandwidthMiBps: number;
}

/**
 * The replica's state: Initializing until the first full sync completes, Replicating after, Paused while
 * the VM writes nothing a sync could ship (off, or its host not answering), Error when syncs fail
 * (the target datastore unknown), FailedOver once the replica was promoted to run the VM.
 */
export type ReplicaState = "Initializing" | "Replicating" | "Paused" | "Error" | "FailedOver";

/** One completed sync: the replica reflects the VM as of `startedAt`. */
export interface ReplicaSync {
  startedAt: number;
  endedAt: number;
  transferredMiB: number;
  /** The key of a sync asked for by `syncReplica`, so the asker can tell its own sync from a scheduled one. */
  key?: string;
}

/** A sync under way. */
export interface ReplicaSyncInProgress {
  startedAt: number;
  totalMiB: number;
  sentMiB: number;
  /** Whether it copies the whole disk (the first sync), or what changed since the last sync's start. */
  full: boolean;
  key?: string;
}

/** What promoting a replica cost, as the hosts saw it: for the VM's status and the simulator's ground truth. */
export interface ReplicaRecovery {
  /** When the replica was promoted. */
  at: number;
  /** The instance it was promoted from: the start of the sync it reflects. */
  instanceAt: number;
  /** The host it started on. */
  host: string;
}

export interface ReplicaObservation {
  /** The VM's id ("namespace/name"). */
  vm: string;
  state: ReplicaState;
  /** Why the state is Paused or Error. */
  reason?: string;
  settings: ReplicationSettings;
  /** The last completed sync. */
  lastSync?: ReplicaSync;
  syncing?: ReplicaSyncInProgress;
  /** When the agent means to begin the next sync, if it can. */
  nextSyncAt?: number;
  /** The point-in-time instances kept, oldest first: the start of the sync each reflects. */
  instances: number[];
  /** How fast the VM writes to its disks, MiB/s: what each sync must ship per second since the last. */
  writeRateMiBps: number;
  /** Set once the replica was promoted (FailedOver). */
  recovery?: ReplicaRecovery;
}

/**
 * How fast a guest writes to its disks by workload profile, MiB/s, unless the VM says. A choice: vSphere
 * Replication's sizing assumes about 10 % of a disk changes per day; a 100 GiB server disk at 10 %/day is
 * 0.12 MiB/s. An idle guest writes little, a bursty one (batch jobs, logs) an order of magnitude more.
 */
export const WRITE_RATE_MIBPS: Readonly<Record<WorkloadProfile, number>> = Object.freeze({ Idle: 0.02, Steady: 0.12, Diurnal: 0.25, Bursty: 1 });

/** How fast the guest writes to its disks, MiB/s: its own figure, else its profile's. */
export function writeRateOf(workload: Readonly<VmConfig["workload"]>): number {
  return workload.diskWriteRateMiBps ?? WRITE_RATE_MIBPS[workload.profile];
}

/** BEHAVIOUR.md, Replication: an RPO of 5 min … 24 h. */
export const RPO_RANGE_SECONDS = Object.freeze({ min: 300, max: 86_400 });
/** BEHAVIOUR.md, Replication: up to 24 point-in-time instances. */
export const MAX_INSTANCES = 24;

/**
 * vSphere Replication's rule (BEHAVIOUR.md): the RPO is violated now when the last completed sync began
 * longer than the RPO ago, or when a sync has been running longer than half the RPO.
 */
export function rpoViolated(replica: Readonly<ReplicaObservation>, now: number): boolean {
  const rpo = replica.settings.rpoMs;
  if (replica.syncing && now - replica.syncing.startedAt > rpo / 2) return true;
  const anchor = replica.lastSync?.startedAt;
  return anchor !== undefined && now - anchor > rpo;
}

/** How old the replica is: from the start of the last completed sync to now, ms (undefined before the first). */
export function replicationLagMs(replica: Readonly<ReplicaObservation>, now: number): number | undefined {
  return replica.lastSync === undefined ? undefined : Math.max(0, now - replica.lastSync.startedAt);
}
