// A VM's replication as its status reports it (vSphere Replication's and VolSync's fields) and the
// Replicated condition, from what the replica's site reports and what the cluster planner concluded. Pure.

import type { VmReplicaFailoverStatus, VmReplicationStatus, VirtualMachine } from "../../api/types.ts";
import type { ConditionInput } from "../../api/conditions.ts";
import { replicationLagMs, rpoViolated, type ReplicaObservation } from "../../core/replication.ts";
import type { DesiredReplication } from "./settings.ts";
import type { RecoveryTrigger } from "./role.ts";

/** What the cluster planner concluded of a VM's replication this round. */
export interface ReplicationNote {
  desired: DesiredReplication;
  /** Set when the link cannot carry what its VMs write within their RPOs: why, before it happens. */
  predictedViolation?: string;
}

/** What a failover to the replica cost, as the controller saw it when it began the recovery. */
export interface RecoveryRecord {
  trigger: RecoveryTrigger;
  fromCluster: string;
  toCluster: string;
  /** When the original stopped writing: its host's last datastore heartbeat, or when it went off. */
  stoppedWritingAt: number;
  /** When the recovery was asked for: a replica promoted since is this recovery's. */
  askedAt: number;
}

export interface ReplicationView {
  status?: VmReplicationStatus;
  condition?: ConditionInput;
}

export function replicationView(
  vm: Readonly<VirtualMachine>,
  replica: Readonly<ReplicaObservation> | undefined,
  note: Readonly<ReplicationNote> | undefined,
  recovery: Readonly<RecoveryRecord> | undefined,
  now: number,
): ReplicationView {
  const spec = vm.spec.replication;
  if (!spec) return {};
  const previous = vm.status?.replication;
  const targetCluster = note?.desired.kind === "Replicate" ? note.desired.targetCluster : replica ? previous?.targetCluster ?? spec.targetCluster : spec.targetCluster;
  if (note?.desired.kind === "Problem") {
    return {
      status: { state: "Error", targetCluster, rpoSeconds: spec.rpoSeconds, rpoViolated: false, ...kept(previous) },
      condition: { type: "Replicated", status: false, reason: note.desired.reason, message: note.desired.message },
    };
  }
  if (!replica) {
    return {
      status: { state: "Initializing", targetCluster, rpoSeconds: spec.rpoSeconds, rpoViolated: false, ...kept(previous) },
      condition: { type: "Replicated", status: false, reason: "Initializing", message: `configuring replication to cluster ${spec.targetCluster}` },
    };
  }
  const status: VmReplicationStatus = {
    state: replica.state,
    targetCluster,
    datastore: replica.settings.targetDatastore,
    rpoSeconds: Math.round(replica.settings.rpoMs / 1000),
    rpoViolated: replica.state !== "FailedOver" && rpoViolated(replica, now),
  };
  const last = replica.lastSync;
  if (last) {
    status.lastSyncTime = iso(last.endedAt);
    status.lastSyncDurationSeconds = round((last.endedAt - last.startedAt) / 1000);
    status.lastSyncMiB = round(last.transferredMiB);
  }
  if (replica.nextSyncAt !== undefined && replica.state !== "FailedOver") status.nextSyncTime = iso(replica.nextSyncAt);
  const lag = replicationLagMs(replica, now);
  if (lag !== undefined && replica.state !== "FailedOver") status.lagSeconds = Math.round(lag / 1000);
  if (replica.instances.length > 0) status.instances = replica.instances.map(iso);
  const failover = replica.recovery ? failoverStatus(replica, recovery, previous?.failover) : previous?.failover;
  if (failover) status.failover = failover;
  return { status, condition: conditionOf(replica, status, note, now) };
}

/**
 * When the replica, as it stands, would break its RPO: the sync under way running past half the RPO, or the
 * last completed sync's start falling more than the RPO behind. Undefined when nothing would, or it has.
 */
export function rpoBreachAt(replica: Readonly<ReplicaObservation> | undefined, now: number): number | undefined {
  if (!replica || replica.state === "FailedOver") return undefined;
  const rpo = replica.settings.rpoMs;
  const times = [replica.syncing ? replica.syncing.startedAt + rpo / 2 : Infinity, replica.lastSync ? replica.lastSync.startedAt + rpo : Infinity];
  const next = Math.min(...times.filter((t) => t > now));
  return Number.isFinite(next) ? next + 1 : undefined;
}

function conditionOf(replica: Readonly<ReplicaObservation>, status: VmReplicationStatus, note: Readonly<ReplicationNote> | undefined, now: number): ConditionInput {
  const target = `cluster ${status.targetCluster} (datastore ${replica.settings.targetDatastore})`;
  switch (replica.state) {
    case "FailedOver":
      return { type: "Replicated", status: false, reason: "FailedOver", message: `running from its replica in cluster ${status.targetCluster}; a Failback recovery plan protects it again` };
    case "Error":
    case "Paused":
      return { type: "Replicated", status: false, reason: replica.state, message: replica.reason ?? `replication to ${target} is ${replica.state}` };
    case "Initializing":
      // Told as early as it is known: a link that cannot keep up will violate every RPO on it.
      if (note?.predictedViolation) return { type: "Replicated", status: false, reason: "LinkTooSlow", message: `${note.predictedViolation}; ${initialSyncMessage(replica, target)}` };
      return { type: "Replicated", status: false, reason: "Initializing", message: initialSyncMessage(replica, target) };
    case "Replicating":
      break;
  }
  if (status.rpoViolated) {
    const lag = replicationLagMs(replica, now) ?? 0;
    return { type: "Replicated", status: false, reason: "RPOViolated", message: `the replica in ${target} is ${Math.round(lag / 1000)} s old, beyond the RPO of ${status.rpoSeconds} s${note?.predictedViolation ? `: ${note.predictedViolation}` : ""}` };
  }
  if (note?.predictedViolation) return { type: "Replicated", status: false, reason: "LinkTooSlow", message: note.predictedViolation };
  return { type: "Replicated", status: true, reason: "Replicating", message: `replicated to ${target} within the RPO of ${status.rpoSeconds} s` };
}

function initialSyncMessage(replica: Readonly<ReplicaObservation>, target: string): string {
  const sync = replica.syncing;
  if (!sync) return `waiting for the first full sync to ${target}`;
  return `first full sync to ${target}: ${Math.round(sync.sentMiB)} of ${Math.round(sync.totalMiB)} MiB`;
}

/**
 * What the failover cost: the writes from the start of the instance's sync until the original stopped
 * writing. Kept from the previous status once written; a controller that restarted between the recovery and
 * its status counts up to the recovery itself (an upper bound), and says so by the figure.
 */
function failoverStatus(replica: Readonly<ReplicaObservation>, record: Readonly<RecoveryRecord> | undefined, previous: VmReplicaFailoverStatus | undefined): VmReplicaFailoverStatus {
  const recovery = replica.recovery!;
  const time = iso(recovery.at);
  // A record asked for after this promotion is for the next one; it does not describe this.
  if (record && recovery.at < record.askedAt) record = undefined;
  if (previous && previous.time === time && !record) return previous;
  const stoppedAt = record?.stoppedWritingAt ?? recovery.at;
  const seconds = Math.max(0, stoppedAt - recovery.instanceAt) / 1000;
  return {
    kind: record?.trigger ?? previous?.kind ?? "Automatic",
    fromCluster: record?.fromCluster ?? previous?.fromCluster ?? "",
    toCluster: record?.toCluster ?? previous?.toCluster ?? "",
    host: recovery.host,
    instanceTime: iso(recovery.instanceAt),
    time,
    dataLossSeconds: round(seconds),
    dataLossMiB: round(seconds * replica.writeRateMiBps),
  };
}

/** Fields the status keeps while the replica cannot be read: the last failover. */
function kept(previous: VmReplicationStatus | undefined): Partial<VmReplicationStatus> {
  return previous?.failover ? { failover: previous.failover } : {};
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
