// Placing a batch of VMs from one snapshot. Each decision updates the allocation and topology counters
// before the next is taken, so two VMs of a batch never take the last free slot of a host, and a VM's
// anti-affinity sees the VMs placed before it in the same batch.

import { byCodeUnits } from "../api/selectors.ts";
import { allocate, emptyAllocation, type Allocation } from "./capacity.ts";
import { preferredHostWeights, type PreferenceCache } from "./host-affinity.ts";
import { staticVerdict, type StaticVerdict, type VerdictCache } from "./host-filters.ts";
import { hostTable, type HostTable } from "./hosts.ts";
import { unschedulableMessage } from "./messages.ts";
import { bestHost, rankedHosts, rejectionCounts, scratchFor, type RequestInState, type Scratch } from "./scoring.ts";
import type { BatchPlan, ClusterSnapshot, HostExclusion, HostFit, Placement, Unschedulable, VmRequest } from "./types.ts";
import { assertUniqueIds, decisionOrder } from "./order.ts";
import { countVm, emptyAffinityIndex, registerHolders, registerRules, vmRules, type AffinityIndex } from "./vm-affinity.ts";

/** The mutable state of one batch: built from the snapshot, advanced by each placement. */
interface Batch {
  snapshot: Readonly<ClusterSnapshot>;
  table: HostTable;
  allocation: Allocation;
  affinity: AffinityIndex;
  verdicts: VerdictCache;
  preferences: PreferenceCache;
  scratch: Scratch;
}

/**
 * Places `requests` on the snapshot's hosts, most constrained first. The plan depends only on the
 * content of the inputs, not on the order of their arrays.
 */
export function placeBatch(snapshot: Readonly<ClusterSnapshot>, requests: readonly Readonly<VmRequest>[]): BatchPlan {
  assertUniqueIds(requests);
  const batch = openBatch(snapshot, requests);
  const ordered = orderIn(batch, requests);
  const placements: Placement[] = [];
  const unschedulable: Unschedulable[] = [];
  for (const request of ordered) {
    const state = judge(batch, request);
    const best = bestHost(state, batch.scratch);
    if (best === undefined) {
      const reasons = rejectionCounts(state);
      unschedulable.push({ vm: request.id, message: unschedulableMessage(batch.table.hosts.length, reasons), reasons });
      continue;
    }
    allocate(batch.allocation, best.host, request.cpu, request.memoryMiB);
    countVm(batch.affinity, best.host, { ...request, antiAffinity: request.placement.vmAntiAffinity?.required });
    placements.push({ vm: request.id, host: batch.table.hosts[best.host]?.name ?? "", score: Math.round(best.score * 100) / 100 });
  }
  return { placements, unschedulable };
}

/** The order `placeBatch` decides the requests in (see `decisionOrder`). */
export function batchOrder<T extends Readonly<VmRequest>>(snapshot: Readonly<ClusterSnapshot>, requests: readonly T[]): T[] {
  return orderIn({ snapshot, table: hostTable(snapshot.hosts), verdicts: new Map() }, requests);
}

/** Which hosts could take `request` on the snapshot as it is (best first), and why the others cannot. */
export function hostsThatFit(snapshot: Readonly<ClusterSnapshot>, request: Readonly<VmRequest>): HostFit {
  const batch = openBatch(snapshot, [request]);
  const state = judge(batch, request);
  return {
    fits: rankedHosts(state, batch.scratch).map(({ host }) => batch.table.hosts[host]?.name ?? ""),
    rejected: rejectionCounts(state),
  };
}

function openBatch(snapshot: Readonly<ClusterSnapshot>, requests: readonly Readonly<VmRequest>[]): Batch {
  const table = hostTable(snapshot.hosts);
  const allocation = emptyAllocation(table.hosts.length);
  const affinity = emptyAffinityIndex(table);
  // A requested VM that is also listed as placed is being moved (restart, rebalancing): it does not
  // compete with itself for capacity or count against its own rules.
  const moving = new Set(requests.map((r) => r.id));
  const placed = snapshot.placed.filter((vm) => !moving.has(vm.id)).sort((a, b) => byCodeUnits(a.id, b.id));
  // Registered in id order so that the index, too, is the same whatever the order of the requests.
  for (const request of [...requests].sort((a, b) => byCodeUnits(a.id, b.id))) registerRules(affinity, request);
  for (const vm of placed) registerHolders(affinity, vm.namespace, vm.antiAffinity);
  for (const vm of placed) {
    // A VM on a host outside the snapshot uses none of its capacity and has no known topology domain.
    const host = table.indexByName.get(vm.host);
    if (host === undefined) continue;
    allocate(allocation, host, vm.cpu, vm.memoryMiB);
    countVm(affinity, host, vm);
  }
  return { snapshot, table, allocation, affinity, verdicts: new Map(), preferences: new Map(), scratch: scratchFor(table.hosts.length) };
}

function orderIn<T extends Readonly<VmRequest>>(batch: Pick<Batch, "snapshot" | "table" | "verdicts">, requests: readonly T[]): T[] {
  const usable = batch.table.hosts.filter((host) => host.unavailable === undefined).length;
  const eligible = (request: T): number => staticVerdict(batch.table, batch.snapshot.cpuBaseline, request, batch.verdicts).eligible.length;
  return decisionOrder(requests, (request) => eligible(request) < usable);
}

function judge(batch: Batch, request: Readonly<VmRequest>): RequestInState {
  const shared = staticVerdict(batch.table, batch.snapshot.cpuBaseline, request, batch.verdicts);
  const excluded = batch.snapshot.apart?.get(request.id);
  return {
    table: batch.table,
    allocation: batch.allocation,
    strategy: batch.snapshot.strategy,
    request,
    verdict: excluded ? withExclusions(batch.table, shared, excluded) : shared,
    hostPreferences: preferredHostWeights(batch.table, request.placement, batch.preferences),
    rules: vmRules(batch.affinity, request),
  };
}

/** The shared verdict of the request's shape, with the hosts this one VM may not go to rejected too. */
function withExclusions(table: HostTable, verdict: StaticVerdict, excluded: readonly HostExclusion[]): StaticVerdict {
  const reasons = [...verdict.reasons];
  for (const { host, reason } of excluded) {
    const index = table.indexByName.get(host);
    if (index !== undefined && reasons[index] === undefined) reasons[index] = reason;
  }
  return { reasons, eligible: verdict.eligible.filter((index) => reasons[index] === undefined) };
}
