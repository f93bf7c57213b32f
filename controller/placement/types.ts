// What placement reads and what it answers. Placement is pure: the same snapshot and requests give the
// same answer, whatever the order of the arrays in them.

import type { CpuVendor, Hypervisor, PlacementStrategy, VmAffinityTerm, VmPlacement } from "../api/types.ts";

/** One host as placement sees it. */
export interface CandidateHost {
  name: string;
  /** The host's labels (rack, zone, …). `vireo.dev/host=<name>` is always added if missing. */
  labels: Readonly<Record<string, string>>;
  hypervisor: Hypervisor;
  cpu: { cores: number; vendor: CpuVendor; features: readonly string[]; overcommitRatio: number };
  memoryMiB: number;
  datastores: readonly string[];
  networks: readonly string[];
  /** Why the host takes no new VMs now (e.g. "in maintenance", "not ready"), or undefined when it may. */
  unavailable?: string;
}

/** A VM that already holds resources on a host. */
export interface PlacedVm {
  id: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  host: string;
  cpu: number;
  memoryMiB: number;
  /** Its required VM anti-affinity: it keeps matching VMs out of its topology domain too (symmetry). */
  antiAffinity?: readonly VmAffinityTerm[];
}

/** A VM looking for a host. */
export interface VmRequest {
  id: string;
  namespace: string;
  labels: Readonly<Record<string, string>>;
  cpu: number;
  memoryMiB: number;
  cpuFeatures: readonly string[];
  /** The hypervisor the VM needs; `placement.hypervisor` is used when this is not set. */
  hypervisor?: Hypervisor;
  datastores: readonly string[];
  networks: readonly string[];
  placement: Readonly<VmPlacement>;
}

export interface CpuBaseline {
  vendor?: CpuVendor;
  /** The CPU features VMs of the cluster may see and require (EVC-style). */
  features: readonly string[];
}

/** One consistent view of a host cluster: everything a batch is planned from. */
export interface ClusterSnapshot {
  hosts: readonly CandidateHost[];
  placed: readonly PlacedVm[];
  strategy: PlacementStrategy;
  cpuBaseline?: CpuBaseline;
  /**
   * Hosts a VM may not go to, by request id, and why: a fault-tolerant VM and its secondary never share a
   * host (planners/ha/fault-tolerance.ts).
   */
  apart?: ReadonlyMap<string, readonly HostExclusion[]>;
}

export interface HostExclusion {
  host: string;
  reason: string;
}

export interface Placement {
  vm: string;
  host: string;
  /** The winning host's combined score (higher is better), rounded to two decimals. */
  score: number;
}

export interface Unschedulable {
  vm: string;
  /** As kube-scheduler says it: "0/12 hosts fit: 7 insufficient memory, 5 in maintenance". */
  message: string;
  /** How many hosts each reason rejected; every host is counted once, under the first reason that rejects it. */
  reasons: Record<string, number>;
}

export interface BatchPlan {
  /** In the order they were decided: later placements saw the earlier ones. */
  placements: Placement[];
  unschedulable: Unschedulable[];
}

export interface HostFit {
  /** The hosts that can take the VM now, best first (ties by name). */
  fits: string[];
  /** The hosts that cannot, counted by the first reason that rejects each. */
  rejected: Record<string, number>;
}
