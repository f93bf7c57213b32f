// The engine's side of replication: where each replicated VM belongs this round (home, away on its
// replica, recovering) and the VM as declared there, the site state of each cluster, and what the
// replicas may be placed on — gathered from the store and the observation for the planners.

import type { HostCluster, RecoveryPlan, VirtualMachine, VmStatusNetwork } from "../api/types.ts";
import { clusterOf } from "../api/membership.ts";
import { vmId } from "../api/types.ts";
import { byCodeUnits, selectorMatches } from "../api/selectors.ts";
import { protectionOf } from "../planners/ha/protection.ts";
import { clusterOfRole, mappingOf, recoveredVm, replicaRole, type PlanFacts, type ReplicaRole } from "../planners/replication/role.ts";
import type { ReplicaSite } from "../planners/replication/settings.ts";
import { siteState, type SiteState } from "../planners/replication/site.ts";
import type { ReconcileContext } from "./context.ts";
import { withLease } from "../planners/labs/lease.ts";
import { hostByName } from "./context.ts";
import { viewHost, type HostView } from "./views.ts";

/** A VM as the planners see it this round: where it belongs, and as declared there. */
export interface PlacedView {
  /** As declared where it belongs now (recovered when away from home). */
  vm: VirtualMachine;
  declared: VirtualMachine;
  role: ReplicaRole;
  plans: PlanFacts[];
  /** The MACs of its NICs where it belongs now. */
  networks: VmStatusNetwork[];
}

/** What one pass over the fleet needs more than once: host views and site states, computed once each. */
export class FleetView {
  private readonly ctx: ReconcileContext;
  private readonly clusters: HostCluster[];
  private readonly members = new Map<string, HostView[]>();
  private plansByNamespace: Map<string, RecoveryPlan[]> | undefined;

  constructor(ctx: ReconcileContext) {
    this.ctx = ctx;
    this.clusters = ctx.store.list("HostCluster");
  }

  /** The cluster's member hosts, viewed (their phase, as the last observation has them). */
  membersOf(cluster: string): HostView[] {
    let views = this.members.get(cluster);
    if (!views) {
      views = this.ctx.store.list("Host")
        .filter((h) => clusterOf(h, this.clusters)?.metadata.name === cluster)
        .map((h) => viewHost(this.ctx, h.metadata.name, this.clusters));
      this.members.set(cluster, views);
    }
    return views;
  }

  /** The cluster of the host a VM is registered on, if it has one. */
  clusterOfHost(name: string): string | undefined {
    const host = hostByName(this.ctx, name);
    return host ? clusterOf(host, this.clusters)?.metadata.name : undefined;
  }

  /**
   * Whether the cluster's site is lost, as of the last observation: kept with it, since every replicated
   * VM's reconcile asks and only a new observation (or a new host) can change the answer.
   */
  site(cluster: string): SiteState {
    const cache = this.ctx.replication.sites;
    const at = this.ctx.observed.at();
    const hosts = this.ctx.store.count("Host");
    if (cache.at !== at || cache.hosts !== hosts) {
      cache.at = at;
      cache.hosts = hosts;
      cache.states.clear();
    }
    let state = cache.states.get(cluster);
    if (!state) {
      state = siteState(cluster, this.membersOf(cluster).map((h) => ({
        name: h.name,
        phase: h.phase,
        ...(h.observed ? { lastDatastoreHeartbeat: h.observed.lastDatastoreHeartbeat } : {}),
        storageUnreadable: h.unconfirmed === true,
      })));
      cache.states.set(cluster, state);
    }
    return state;
  }

  /** A cluster's hosts that take VMs, as a place for replicas and recovered VMs. */
  replicaSite(cluster: string): ReplicaSite {
    const declared = this.clusters.find((c) => c.metadata.name === cluster);
    const datastores = new Map<string, number>();
    const networks = new Set<string>();
    for (const h of this.membersOf(cluster)) {
      if (!h.host || h.unavailable) continue;
      for (const d of h.host.spec.datastores) datastores.set(d, (datastores.get(d) ?? 0) + 1);
      for (const n of h.host.spec.networks) networks.add(n);
    }
    return { ...(declared ? { cluster: declared } : {}), datastores, networks };
  }

  /** The RecoveryPlans (not Test) selecting the VM, newest first. */
  plansFor(vm: Readonly<VirtualMachine>): PlanFacts[] {
    if (!this.plansByNamespace) {
      this.plansByNamespace = new Map();
      for (const plan of this.ctx.store.list("RecoveryPlan")) {
        if (plan.spec.action === "Test" || plan.metadata.deletionTimestamp) continue;
        const ns = plan.metadata.namespace ?? "default";
        this.plansByNamespace.set(ns, [...(this.plansByNamespace.get(ns) ?? []), plan]);
      }
      for (const plans of this.plansByNamespace.values()) plans.sort(newestFirst);
    }
    const id = vmId(vm);
    const labels = vm.metadata.labels ?? {};
    return (this.plansByNamespace.get(vm.metadata.namespace ?? "default") ?? [])
      .filter((p) => selectorMatches(p.spec.selector, labels))
      .map((p) => {
        const result = p.status?.vms?.find((v) => v.vm === id)?.result;
        return {
          name: `${p.metadata.namespace ?? "default"}/${p.metadata.name}`,
          action: p.spec.action,
          active: p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed",
          ...(result ? { result } : {}),
          networkMapping: p.spec.networkMapping ?? [],
        };
      });
  }

  /** Where the VM belongs this round, and as declared there. */
  place(written: VirtualMachine): PlacedView {
    // A VM whose lease ran out is Halted, wherever it belongs.
    const declared = withLease(written, this.ctx.clock.now());
    const macs = this.ctx.macs.macsFor(declared);
    if (!declared.spec.replication) return { vm: declared, declared, role: { kind: "Home" }, plans: [], networks: macs };
    const id = vmId(declared);
    const instance = this.ctx.observed.vm(id);
    const replica = this.ctx.observed.replica(id);
    const plans = this.plansFor(declared);
    const instanceCluster = instance ? this.clusterOfHost(instance.host) : undefined;
    const home = declared.spec.placement.cluster;
    const policies = this.ctx.store.list("HAPolicy");
    const homeCluster = this.clusters.find((c) => c.metadata.name === home);
    const role = replicaRole({
      vm: declared,
      ...(replica ? { replica } : {}),
      ...(instanceCluster ? { instanceCluster } : {}),
      homeSite: this.site(home),
      replicate: protectionOf(declared, policies, homeCluster).replicate,
      plans,
    });
    const cluster = clusterOfRole(declared, role);
    if (cluster === home) return { vm: declared, declared, role, plans, networks: macs };
    const datastore = replica?.settings.targetDatastore ?? instance?.config.disks[0]?.datastore ?? declared.spec.disks[0]?.datastore ?? "";
    const vm = recoveredVm(declared, { cluster, datastore, mapping: mappingOf(declared, plans), macs });
    return { vm, declared, role, plans, networks: vm.spec.networks.map((n) => ({ name: n.name, macAddress: n.macAddress! })) };
  }

  /** Every VM that belongs to `cluster` this round. */
  vmsOf(cluster: string): PlacedView[] {
    const placed: PlacedView[] = [];
    for (const vm of this.ctx.store.list("VirtualMachine")) {
      const mayBelong = vm.spec.placement.cluster === cluster || vm.spec.replication?.targetCluster === cluster;
      if (!mayBelong) continue;
      const view = this.place(vm);
      if (view.vm.spec.placement.cluster === cluster) placed.push(view);
    }
    return placed;
  }
}

/** The clusters a VM's reconcile may concern: its own, and its replica's. */
export function clustersOfVm(vm: Readonly<VirtualMachine>): string[] {
  const target = vm.spec.replication?.targetCluster;
  return target && target !== vm.spec.placement.cluster ? [vm.spec.placement.cluster, target] : [vm.spec.placement.cluster];
}

function newestFirst(a: RecoveryPlan, b: RecoveryPlan): number {
  const at = (p: RecoveryPlan) => (p.metadata.creationTimestamp ? Date.parse(p.metadata.creationTimestamp) : 0);
  return at(b) - at(a) || byCodeUnits(a.metadata.name, b.metadata.name);
}
