// What the hosts' replication agents should do for one VM: replicate its disks to which datastore of which
// cluster, how fresh, over which link — or why they cannot. Forward from home to the target cluster; in
// reverse, from the target home again, while a failback prepares. Pure.

import type { HostCluster, VirtualMachine } from "../../api/types.ts";
import type { ReplicationSettings } from "../../core/replication.ts";
import type { PlanFacts, ReplicaRole } from "./role.ts";

/** A cluster a replica may live in: whether it exists, its link out, and the datastores its hosts see. */
export interface ReplicaSite {
  cluster?: HostCluster;
  /** Each datastore, with how many of the cluster's hosts that take VMs see it. */
  datastores: ReadonlyMap<string, number>;
  /** The networks some host of the cluster that takes VMs has. */
  networks: ReadonlySet<string>;
}

export type ReplicationProblem = "TargetClusterMissing" | "NoDatastore";

export type DesiredReplication =
  | { kind: "Replicate"; direction: "Forward" | "Reverse"; targetCluster: string; settings: ReplicationSettings }
  | { kind: "Problem"; reason: ReplicationProblem; message: string }
  /** Nothing to ask of the agents: no replication declared, or the replica is being or was promoted. */
  | { kind: "None" };

export function desiredReplication(
  vm: Readonly<VirtualMachine>,
  role: ReplicaRole,
  plans: readonly PlanFacts[],
  sites: ReadonlyMap<string, ReplicaSite>,
  currentDatastore: string | undefined,
): DesiredReplication {
  const replication = vm.spec.replication;
  if (!replication) return { kind: "None" };
  const home = vm.spec.placement.cluster;
  if (role.kind === "Home") {
    return toward(vm, "Forward", home, replication.targetCluster, sites, currentDatastore);
  }
  const preparing = plans.find((p) => p.active && p.action === "Failback" && (p.result === undefined || p.result === "Pending" || p.result === "Syncing"));
  if (role.kind === "Away" && preparing) {
    // Back onto the datastore the VM declares, so that once home it runs exactly as declared.
    return toward(vm, "Reverse", role.cluster, home, sites, vm.spec.disks[0]?.datastore ?? currentDatastore);
  }
  return { kind: "None" };
}

function toward(
  vm: Readonly<VirtualMachine>,
  direction: "Forward" | "Reverse",
  from: string,
  to: string,
  sites: ReadonlyMap<string, ReplicaSite>,
  preferred: string | undefined,
): DesiredReplication {
  const replication = vm.spec.replication!;
  const site = sites.get(to);
  if (!site?.cluster) return { kind: "Problem", reason: "TargetClusterMissing", message: `HostCluster ${to} does not exist` };
  const datastore = preferred !== undefined && site.datastores.has(preferred) ? preferred : widestDatastore(site.datastores);
  if (datastore === undefined) return { kind: "Problem", reason: "NoDatastore", message: `no host of cluster ${to} that takes VMs sees a datastore` };
  const source = sites.get(from)?.cluster;
  return {
    kind: "Replicate",
    direction,
    targetCluster: to,
    settings: {
      targetDatastore: datastore,
      rpoMs: replication.rpoSeconds * 1000,
      instances: replication.instances,
      link: linkName(from, to),
      linkBandwidthMiBps: source?.spec.replication.bandwidthMiBps ?? DEFAULT_LINK_BANDWIDTH_MIBPS,
    },
  };
}

/** A choice (docs/replication.md): a 1 Gbit/s site link carries about 110 MiB/s; 100 MiB/s. */
export const DEFAULT_LINK_BANDWIDTH_MIBPS = 100;

export function linkName(from: string, to: string): string {
  return `${from}->${to}`;
}

/** The datastore the most hosts see, so the recovered VM has the widest choice of host; ties by name. */
function widestDatastore(datastores: ReadonlyMap<string, number>): string | undefined {
  let best: [string, number] | undefined;
  for (const entry of datastores) {
    if (!best || entry[1] > best[1] || (entry[1] === best[1] && entry[0] < best[0])) best = entry;
  }
  return best?.[0];
}

/** Whether the agents already do what `settings` asks. */
export function sameSettings(a: Readonly<ReplicationSettings>, b: Readonly<ReplicationSettings>): boolean {
  return a.targetDatastore === b.targetDatastore && a.rpoMs === b.rpoMs && a.instances === b.instances
    && a.link === b.link && a.linkBandwidthMiBps === b.linkBandwidthMiBps;
}
