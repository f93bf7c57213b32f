// One consistent view of a cluster for placement: its hosts as candidates and the VMs holding resources
// on them, from the store and the latest observation. Shared by first placement and HA restarts.

import type { HostCluster, VirtualMachine } from "../api/types.ts";
import type { CandidateHost, ClusterSnapshot, PlacedVm } from "../placement/types.ts";
import { holdsResources } from "../planners/hosts.ts";
import { reachableDatastores } from "../planners/ha/storage.ts";
import type { ReconcileContext } from "./context.ts";
import { vmKeyOfId } from "./context.ts";
import type { HostView } from "./views.ts";
import { isLive, placedSecondary, withPairsApart, type FaultTolerantPair } from "../planners/ha/fault-tolerance.ts";

export function snapshotOf(ctx: ReconcileContext, cluster: HostCluster, members: HostView[]): ClusterSnapshot {
  const hosts: CandidateHost[] = [];
  const placed: PlacedVm[] = [];
  for (const member of members) {
    const spec = member.host!.spec;
    hosts.push({
      name: member.name,
      labels: member.observed?.config.labels ?? {},
      hypervisor: spec.hypervisor,
      cpu: { cores: spec.cpu.cores, vendor: spec.cpu.vendor, features: spec.cpu.features, overcommitRatio: spec.cpu.overcommitRatio },
      memoryMiB: spec.memoryMiB,
      // A datastore the host has no path left to (APD) takes no new VM there (VMCP restarts elsewhere).
      datastores: reachableDatastores(spec.datastores, member.observed),
      networks: spec.networks,
      ...(member.unavailable ? { unavailable: member.unavailable } : {}),
    });
    for (const instance of ctx.observed.vmsOn(member.name)) {
      if (!holdsResources(instance)) continue;
      const vm = ctx.store.get(vmKeyOfId(instance.id)) as VirtualMachine | undefined;
      const slash = instance.id.indexOf("/");
      placed.push({
        id: instance.id,
        namespace: instance.id.slice(0, slash),
        labels: vm?.metadata.labels ?? {},
        host: member.name,
        cpu: instance.config.cpu,
        memoryMiB: instance.config.memoryMiB,
        ...(vm?.spec.placement.vmAntiAffinity?.required ? { antiAffinity: vm.spec.placement.vmAntiAffinity.required } : {}),
      });
    }
  }
  // Fault-tolerant secondaries hold their primary's reservation where they are, and keep the pair apart.
  const pairs: FaultTolerantPair[] = [];
  const memberNames = new Set(members.map((m) => m.name));
  for (const secondary of ctx.observed.secondaries()) {
    if (!isLive(secondary)) continue;
    const primaryHost = ctx.observed.vm(secondary.vm)?.host ?? secondary.primaryHost;
    if (!memberNames.has(secondary.host) && !memberNames.has(primaryHost)) continue;
    if (memberNames.has(secondary.host)) placed.push(placedSecondary(secondary));
    pairs.push({ vm: secondary.vm, primaryHost, secondaryHost: secondary.host });
  }
  const baseline = cluster.spec.cpuBaseline;
  return {
    hosts,
    placed,
    ...(pairs.length > 0 ? { apart: withPairsApart(undefined, pairs) } : {}),
    strategy: cluster.spec.placement.strategy,
    ...(baseline ? { cpuBaseline: { ...(baseline.vendor ? { vendor: baseline.vendor } : {}), features: baseline.features } } : {}),
  };
}
