// Stage 7, replication: what the hosts' replication agents should do for each replicated VM of the cluster
// (replicate where, or stop), and whether each link out of the cluster can carry what its VMs write within
// their RPOs — told before a sync falls behind. Last, because it takes no capacity from anyone.

import { writeRateOf } from "../../core/replication.ts";
import { desiredReplication, sameSettings } from "../replication/settings.ts";
import type { ReplicationNote } from "../replication/status.ts";
import type { ClusterSituation, StageState } from "./types.ts";

export function replicationStage(s: Readonly<ClusterSituation>, state: StageState): Map<string, ReplicationNote> {
  const notes = new Map<string, ReplicationNote>();
  const byLink = new Map<string, { bandwidth: number; vms: { id: string; rate: number }[] }>();
  for (const f of s.vms) {
    if (f.vm.metadata.deletionTimestamp) continue;
    const replica = f.replica;
    if (!f.declared.spec.replication) {
      // Replication taken out of the spec: the replica goes too, unless it ran the VM (it is the VM's disks then).
      if (replica && replica.state !== "FailedOver" && f.role.kind === "Home") {
        state.actions.push({ stage: "replication", action: { type: "StopReplication", vm: f.id, reason: "spec.replication was removed" } });
      }
      continue;
    }
    const desired = desiredReplication(f.declared, f.role, f.plans, s.replicaSites, replica?.state === "FailedOver" ? undefined : replica?.settings.targetDatastore);
    notes.set(f.id, { desired });
    if (desired.kind !== "Replicate") continue;
    // A promoted replica is replaced only once the VM's status has told what its recovery cost.
    const untold = replica?.recovery !== undefined && f.declared.status?.replication?.failover?.time !== new Date(replica.recovery.at).toISOString();
    // The hosts replicate a VM they have: one not yet registered on a host is replicated once it is.
    if (!untold && f.instance && (!replica || !sameSettings(replica.settings, desired.settings))) {
      const reason = !replica ? `replication to cluster ${desired.targetCluster} is declared`
        : replica.state === "FailedOver" ? `${desired.direction === "Reverse" ? "a failback" : "the VM is home again and"} needs a new replica in cluster ${desired.targetCluster}`
        : "the replication settings changed";
      state.actions.push({ stage: "replication", action: { type: "Replicate", vm: f.id, settings: desired.settings, reason } });
    }
    const link = byLink.get(desired.settings.link) ?? { bandwidth: desired.settings.linkBandwidthMiBps, vms: [] };
    link.vms.push({ id: f.id, rate: replica?.writeRateMiBps ?? writeRateOf(f.declared.spec.workload ?? { profile: "Steady", cpuPercent: 20 }) });
    byLink.set(desired.settings.link, link);
  }
  for (const [name, link] of byLink) {
    const demand = link.vms.reduce((sum, v) => sum + v.rate, 0);
    if (demand <= link.bandwidth) continue;
    // Syncs share a link evenly: a VM writing less than its fair share keeps up; those above it fall behind.
    const share = fairShare(link.vms.map((v) => v.rate), link.bandwidth);
    const behind = link.vms.filter((v) => v.rate > share);
    const message = `link ${name} must carry ${round(demand)} MiB/s of writes from ${link.vms.length} VMs on ${round(link.bandwidth)} MiB/s: `
      + `shared evenly, each sync gets ${round(share)} MiB/s, and the ${behind.length} VMs writing faster fall ever further behind their RPO`;
    for (const v of behind) notes.set(v.id, { ...notes.get(v.id)!, predictedViolation: message });
  }
  return notes;
}

/**
 * The max-min fair share of `bandwidth` among flows wanting `rates`: what each flow that wants more gets
 * once every flow wanting less has what it wants (water-filling).
 */
export function fairShare(rates: readonly number[], bandwidth: number): number {
  const sorted = [...rates].sort((a, b) => a - b);
  let left = bandwidth;
  for (let i = 0; i < sorted.length; i++) {
    const level = left / (sorted.length - i);
    if (sorted[i]! > level) return level;
    left -= sorted[i]!;
  }
  return Infinity;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
