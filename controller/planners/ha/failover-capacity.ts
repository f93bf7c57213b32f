// How many host failures a cluster survives right now, found by real re-placement: fail a set of hosts,
// ask the placement code to put every protected VM they run on the hosts that remain (with everything
// already running there, and every placement rule), and see whether any is left without a host. Not
// vSphere's slot arithmetic (BEHAVIOUR.md, Admission control), so a VM with a datastore, a CPU feature
// or an anti-affinity rule that only some hosts satisfy is counted as it really is. Pure.

import { byCodeUnits } from "../../api/selectors.ts";
import { placeBatch } from "../../placement/index.ts";
import type { CandidateHost, ClusterSnapshot, VmRequest } from "../../placement/index.ts";
import { primaryOf } from "./fault-tolerance.ts";

/** A host failed in a what-if: placement reads it as unavailable. */
const FAILED_IN_WHAT_IF = "failed (what-if)";

export interface FailoverCapacityInput {
  snapshot: Readonly<ClusterSnapshot>;
  /** The requests of the protected VMs, by VM id: the ones placed on a failed host must find another. */
  protectedVms: ReadonlyMap<string, Readonly<VmRequest>>;
  /** The search stops here: the answer is "at least this many" when every set tried survives. */
  maxFailures: number;
}

export interface FailoverCapacity {
  /** Host failures survived by every failure set tried, at most `maxFailures`. */
  tolerates: number;
  /** The first failure set tried that leaves a protected VM without a host (smallest first). */
  worstCase?: string[];
  /** The protected VMs of the worst case that find no host. */
  unplaceable?: string[];
  /** Failure sets re-placed, for the benchmark. */
  setsTried: number;
}

/**
 * The failure sets tried for `k` failures, among the hosts that take VMs now (the others have failed
 * already). Two of them: the k largest hosts (memory, then vCPUs), as vSphere HA assumes; and the k hosts
 * with the most protected memory to re-place, which is the worse case when VMs are unevenly spread. The
 * search is bounded this way, not over every k-subset, so it stays a handful of placements at any size;
 * docs/ha.md says what it can miss.
 */
export function failureSets(snapshot: Readonly<ClusterSnapshot>, protectedVms: ReadonlyMap<string, Readonly<VmRequest>>, k: number): string[][] {
  const usable = snapshot.hosts.filter((h) => h.unavailable === undefined);
  if (k <= 0 || usable.length === 0) return [];
  const load = protectedLoad(snapshot, protectedVms);
  const largest = [...usable].sort((a, b) => b.memoryMiB - a.memoryMiB || cpuCapacity(b) - cpuCapacity(a) || byCodeUnits(a.name, b.name));
  const busiest = [...usable].sort((a, b) => (load.get(b.name)?.memoryMiB ?? 0) - (load.get(a.name)?.memoryMiB ?? 0) || (load.get(b.name)?.cpu ?? 0) - (load.get(a.name)?.cpu ?? 0) || byCodeUnits(a.name, b.name));
  const sets: string[][] = [];
  for (const ranking of [busiest, largest]) {
    const set = ranking.slice(0, k).map((h) => h.name).sort(byCodeUnits);
    if (!sets.some((s) => s.join() === set.join())) sets.push(set);
  }
  return sets;
}

/** The protected VMs of `failed` that find no host once those hosts are gone. */
export function unplaceableAfter(snapshot: Readonly<ClusterSnapshot>, protectedVms: ReadonlyMap<string, Readonly<VmRequest>>, failed: readonly string[]): string[] {
  const down = new Set(failed);
  // A fault-tolerant VM whose secondary survives goes live there by itself: it needs no room of anyone.
  const goLive = new Set(snapshot.placed.filter((vm) => !down.has(vm.host)).map((vm) => primaryOf(vm.id)).filter((id) => id !== undefined));
  const requests = snapshot.placed.filter((vm) => down.has(vm.host) && !goLive.has(vm.id)).map((vm) => protectedVms.get(vm.id)).filter((r): r is Readonly<VmRequest> => r !== undefined);
  if (requests.length === 0) return [];
  const hosts: CandidateHost[] = snapshot.hosts.map((h) => down.has(h.name) ? { ...h, unavailable: FAILED_IN_WHAT_IF } : h);
  return placeBatch({ ...snapshot, hosts }, requests).unschedulable.map((u) => u.vm).sort(byCodeUnits);
}

export function failoverCapacity(input: Readonly<FailoverCapacityInput>): FailoverCapacity {
  const usable = input.snapshot.hosts.filter((h) => h.unavailable === undefined);
  let setsTried = 0;
  for (let k = 1; k <= input.maxFailures; k++) {
    // Losing every host that is left strands every protected VM still running: no placement needed to know.
    if (k >= usable.length) {
      const names = new Set(usable.map((h) => h.name));
      const stranded = input.snapshot.placed.filter((vm) => names.has(vm.host) && input.protectedVms.has(vm.id)).map((vm) => vm.id).sort(byCodeUnits);
      if (stranded.length === 0) return { tolerates: input.maxFailures, setsTried };
      return { tolerates: k - 1, worstCase: [...names].sort(byCodeUnits), unplaceable: stranded, setsTried };
    }
    for (const set of failureSets(input.snapshot, input.protectedVms, k)) {
      setsTried++;
      const unplaceable = unplaceableAfter(input.snapshot, input.protectedVms, set);
      if (unplaceable.length > 0) return { tolerates: k - 1, worstCase: set, unplaceable, setsTried };
    }
  }
  return { tolerates: input.maxFailures, setsTried };
}

function protectedLoad(snapshot: Readonly<ClusterSnapshot>, protectedVms: ReadonlyMap<string, Readonly<VmRequest>>): Map<string, { memoryMiB: number; cpu: number }> {
  const load = new Map<string, { memoryMiB: number; cpu: number }>();
  for (const vm of snapshot.placed) {
    if (!protectedVms.has(vm.id)) continue;
    const sum = load.get(vm.host) ?? { memoryMiB: 0, cpu: 0 };
    sum.memoryMiB += vm.memoryMiB;
    sum.cpu += vm.cpu;
    load.set(vm.host, sum);
  }
  return load;
}

function cpuCapacity(host: Readonly<CandidateHost>): number {
  return host.cpu.cores * host.cpu.overcommitRatio;
}

export interface FailoverCapacityReport extends FailoverCapacity {
  /** Host failures the policy asks the cluster to survive, when it asks for a number. */
  required?: number;
}

/**
 * The failover capacity a cluster reports: searched up to one failure more than the policy requires (so
 * "more than required" shows as required + 1), or up to 2 when the policy names no number of hosts.
 */
export function failoverCapacityReport(requiredFailures: number | undefined, snapshot: Readonly<ClusterSnapshot>, protectedVms: ReadonlyMap<string, Readonly<VmRequest>>): FailoverCapacityReport {
  const maxFailures = (requiredFailures ?? 1) + 1;
  const found = failoverCapacity({ snapshot, protectedVms, maxFailures });
  return { ...found, ...(requiredFailures !== undefined ? { required: requiredFailures } : {}) };
}
