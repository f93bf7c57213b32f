// Where a replicated VM belongs now: at home in its own cluster, recovering into its replica's cluster, or
// away there, running from its replica — and the VM as it is declared there (its networks mapped, its disks
// on the replica's datastore). Decided afresh each round from the declared objects and what the hosts
// report, so a restarted controller finds every VM where it was. Pure.

import type { NetworkMapping, RecoveryAction, RecoveryVmResult, VirtualMachine, VmStatusNetwork } from "../../api/types.ts";
import type { ReplicaObservation } from "../../core/replication.ts";
import { fnv1a, MAC_PREFIX } from "../macs.ts";
import type { SiteState } from "./site.ts";

export type RecoveryTrigger = "Automatic" | Exclude<RecoveryAction, "Test">;

export type ReplicaRole =
  | { kind: "Home" }
  /** Registered in the target cluster: it runs from its replica there. */
  | { kind: "Away"; cluster: string }
  /**
   * To start from its replica in `cluster` (the target, or home again for a failback). `hold` says why it
   * may not start yet (a recovery plan's step before Starting).
   */
  | { kind: "Recovering"; cluster: string; trigger: RecoveryTrigger; plan?: string; hold?: string };

/** A RecoveryPlan that selects the VM, as far as the VM's role cares. */
export interface PlanFacts {
  /** "namespace/name". */
  name: string;
  action: RecoveryAction;
  /** Not yet Succeeded or Failed. */
  active: boolean;
  /** The plan's result for this VM, once it has one. */
  result?: RecoveryVmResult;
  networkMapping: readonly NetworkMapping[];
}

export interface RoleFacts {
  vm: Readonly<VirtualMachine>;
  replica?: Readonly<ReplicaObservation>;
  /** The cluster of the host the VM is registered on, if any. */
  instanceCluster?: string;
  homeSite: SiteState;
  /** Whether the VM's HAPolicy says `protection: Replicate`. */
  replicate: boolean;
  /** The plans selecting the VM, newest first. */
  plans: readonly PlanFacts[];
}

const RELEASED: ReadonlySet<RecoveryVmResult | undefined> = new Set(["Starting", "Recovered"]);

export function replicaRole(f: Readonly<RoleFacts>): ReplicaRole {
  const replication = f.vm.spec.replication;
  if (!replication) return { kind: "Home" };
  const home = f.vm.spec.placement.cluster;
  const target = replication.targetCluster;
  const failback = f.plans.find((p) => p.active && p.action === "Failback");
  if (failback && f.instanceCluster === target) {
    if (RELEASED.has(failback.result)) return { kind: "Recovering", cluster: home, trigger: "Failback", plan: failback.name };
    // Shut down for the final sync: held, so that nothing starts it again where it is.
    if (failback.result === "Syncing" || failback.result === "Fencing") return { kind: "Recovering", cluster: home, trigger: "Failback", plan: failback.name, hold: `recovery plan ${failback.name} is at its final sync` };
    return { kind: "Away", cluster: target };
  }
  if (f.instanceCluster === target) return { kind: "Away", cluster: target };
  const planned = f.plans.find((p) => p.active && (p.action === "Failover" || p.action === "Migrate"));
  if (planned) {
    return {
      kind: "Recovering",
      cluster: target,
      trigger: planned.action as RecoveryTrigger,
      plan: planned.name,
      ...(RELEASED.has(planned.result) ? {} : { hold: `recovery plan ${planned.name} has not reached its Starting step` }),
    };
  }
  const promotable = f.replica !== undefined && f.replica.state !== "FailedOver" && f.replica.lastSync !== undefined;
  if (f.replicate && f.homeSite.kind === "Lost" && promotable) return { kind: "Recovering", cluster: target, trigger: "Automatic" };
  return { kind: "Home" };
}

/** The cluster whose planner owns the VM this round. */
export function clusterOfRole(vm: Readonly<VirtualMachine>, role: ReplicaRole): string {
  return role.kind === "Home" ? vm.spec.placement.cluster : role.cluster;
}

/** Whether the VM runs, or is to start, from its replica away from home. */
export function awayFromHome(vm: Readonly<VirtualMachine>, role: ReplicaRole): boolean {
  return clusterOfRole(vm, role) !== vm.spec.placement.cluster;
}

/** The network mapping in force: the newest plan's (Failover or Migrate) over the VM's own, network by network. */
export function mappingOf(vm: Readonly<VirtualMachine>, plans: readonly PlanFacts[]): NetworkMapping[] {
  const plan = plans.find((p) => p.action === "Failover" || p.action === "Migrate");
  const byNetwork = new Map((vm.spec.replication?.networkMapping ?? []).map((m) => [m.source, m.target]));
  for (const m of plan?.networkMapping ?? []) byNetwork.set(m.source, m.target);
  return vm.spec.networks.filter((n) => byNetwork.has(n.name)).map((n) => ({ source: n.name, target: byNetwork.get(n.name)! }));
}

/**
 * The VM as declared in its replica's cluster: placed there, its disks on the replica's datastore, each NIC
 * on its mapped network with its MAC kept — or a new one derived from the VM's identity, when the
 * replication says not to keep MACs. Host affinity is dropped: host labels belong to a site.
 */
export function recoveredVm(
  vm: Readonly<VirtualMachine>,
  options: { cluster: string; datastore: string; mapping: readonly NetworkMapping[]; macs: readonly VmStatusNetwork[] },
): VirtualMachine {
  const target = new Map(options.mapping.map((m) => [m.source, m.target]));
  const keep = vm.spec.replication?.keepMacAddresses ?? true;
  const networks = vm.spec.networks.map((n, i) => {
    const mac = options.macs[i]?.macAddress ?? n.macAddress;
    const name = target.get(n.name) ?? n.name;
    return { name, macAddress: keep && mac ? mac : recoveryMac(vm, n.name) };
  });
  const { hostAffinity: _hostAffinity, ...placement } = vm.spec.placement;
  const { replication: _replication, ...spec } = vm.spec;
  return {
    ...vm,
    spec: {
      ...spec,
      placement: { ...placement, cluster: options.cluster },
      disks: vm.spec.disks.map((d) => ({ ...d, datastore: options.datastore })),
      networks,
    },
  };
}

/** A MAC for a recovered NIC that does not keep its own: stable for the VM and network, in Vireo's range. */
export function recoveryMac(vm: Readonly<VirtualMachine>, network: string): string {
  const hash = fnv1a(`${vm.metadata.uid ?? ""}/${vm.metadata.namespace ?? "default"}/${vm.metadata.name}/${network}#recovered`);
  const bytes = [(hash >>> 16) & 0xff, (hash >>> 8) & 0xff, hash & 0xff];
  return `${MAC_PREFIX}:${bytes.map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}
