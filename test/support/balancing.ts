// Clusters for the balancing tests and benchmark: hosts that all report, VMs running where they are put
// with the CPU load they are given, and the situation the engine would gather from them. No simulator.

import type { HAPolicy, Host, HostCluster, HostClusterSpec, VirtualMachine } from "../../controller/api/types.ts";
import type { MigrationObservation } from "../../controller/core/migration.ts";
import type { VmObservation } from "../../controller/core/observation.ts";
import type { CandidateHost, PlacedVm } from "../../controller/placement/index.ts";
import type { BalancingMemory, ClusterSituation, HostFacts, VmFacts } from "../../controller/planners/cluster/types.ts";
import { protectionOf } from "../../controller/planners/ha/protection.ts";
import { hostPhase, unavailableReason } from "../../controller/planners/hosts.ts";
import { T0, candidateOf, clusterObject, hostReport, networksOf, vmReport, type HostReportOptions } from "./objects.ts";

export const NOW = T0 + 3_600_000;

export interface RunningVm {
  vm: VirtualMachine;
  host: string;
  /** Physical cores the guest uses (0.5 unless said). */
  cpuUsage?: number;
}

export interface BalancingWorld {
  cluster?: HostCluster;
  hosts: Host[];
  /** Reports other than a fresh one, by host name (a crashed host, say). */
  reports?: Record<string, HostReportOptions>;
  vms: RunningVm[];
  policies?: HAPolicy[];
  balancing?: BalancingMemory;
  migrations?: MigrationObservation[];
  approved?: string[];
  now?: number;
}

/** Cluster prod with these balancing settings (and admission control, when given). */
export function balancingCluster(balancing: Partial<HostClusterSpec["balancing"]>, admissionControl?: HostClusterSpec["ha"]["admissionControl"], migration: Partial<HostClusterSpec["migration"]> = {}): HostCluster {
  const cluster = clusterObject(admissionControl);
  return { ...cluster, spec: { ...cluster.spec, balancing: { ...cluster.spec.balancing, ...balancing }, migration: { ...cluster.spec.migration, ...migration } } };
}

/** What the engine's gather() makes of the world. */
export function balancingSituation(w: BalancingWorld): ClusterSituation {
  const now = w.now ?? NOW;
  const cluster = w.cluster ?? balancingCluster({ mode: "Automatic" });
  const instances = new Map<string, VmObservation>();
  const byHost = new Map<string, VmObservation[]>();
  for (const { vm, host, cpuUsage } of w.vms) {
    const instance = { ...vmReport(vm, host, "Running", { since: now - 3_000_000 }), cpuUsage: cpuUsage ?? 0.5 };
    instances.set(instance.id, instance);
    byHost.set(host, [...(byHost.get(host) ?? []), instance]);
  }
  const hosts: HostFacts[] = w.hosts.map((host) => {
    const name = host.metadata.name;
    const observed = hostReport(host, { at: now - 2_000, ...w.reports?.[name], vms: byHost.get(name) ?? [] });
    const phase = hostPhase(host, observed, byHost.get(name)?.length ?? 0, now, cluster.spec.ha.failureDetectionSeconds);
    const unavailable = unavailableReason(phase, false);
    return { name, host, observed, cluster, phase, ...(unavailable ? { unavailable } : {}) };
  });
  const hostFacts = new Map(hosts.map((h) => [h.name, h]));
  const vms: VmFacts[] = w.vms.map(({ vm, host }) => {
    const id = `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`;
    const instanceHost = hostFacts.get(host);
    return { vm, declared: vm, role: { kind: "Home" }, plans: [], id, instance: instances.get(id)!, ...(instanceHost ? { instanceHost } : {}), protection: protectionOf(vm, w.policies ?? [], cluster), networks: networksOf(vm) };
  });
  const candidates: CandidateHost[] = hosts.map(candidateOf);
  const placed: PlacedVm[] = w.vms.map(({ vm, host }) => ({
    id: `${vm.metadata.namespace ?? "default"}/${vm.metadata.name}`,
    namespace: vm.metadata.namespace ?? "default",
    labels: vm.metadata.labels ?? {},
    host,
    cpu: vm.spec.cpu,
    memoryMiB: vm.spec.memoryMiB,
    ...(vm.spec.placement.vmAntiAffinity?.required ? { antiAffinity: vm.spec.placement.vmAntiAffinity.required } : {}),
  }));
  return {
    cluster,
    hosts,
    vms,
    site: { kind: "Up" },
    replicaSites: new Map(),
    snapshot: { hosts: candidates, placed, strategy: cluster.spec.placement.strategy },
    memory: { attempts: new Map(), failovers: new Map(), balancing: w.balancing ?? { holdDowns: new Map() }, moves: new Map() },
    migrations: w.migrations ?? [],
    requests: [],
    hostClusters: new Map(w.hosts.map((h) => [h.metadata.name, cluster.metadata.name])),
    ...(w.approved ? { approvedRecommendations: w.approved } : {}),
    now,
  };
}
