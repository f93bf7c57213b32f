// The order a batch is decided in. Earlier VMs choose first, so the order decides both who gets the last
// room and how well hosts fill.

import { byCodeUnits } from "../api/selectors.ts";
import type { VmRequest } from "./types.ts";
import { hasVmRules } from "./vm-affinity.ts";

/**
 * Most constrained first, in three groups: VMs with required placement rules; then VMs that some usable
 * hosts cannot take at all (a CPU feature, datastore, network or hypervisor they need is missing there);
 * then VMs that can go anywhere. A VM with few choices placed late finds them taken by VMs that had many.
 * Within a group: largest first — memory, then vCPUs, then id — as first-fit-decreasing does, because
 * big VMs placed late fit badly; then interleaved by shape (see `interleaveShapes`).
 */
export function decisionOrder<T extends Readonly<VmRequest>>(requests: readonly T[], isRestricted: (request: T) => boolean): T[] {
  assertUniqueIds(requests);
  const largestFirst = [...requests].sort((a, b) => b.memoryMiB - a.memoryMiB || b.cpu - a.cpu || byCodeUnits(a.id, b.id));
  const group = (request: T): number => (hasRequiredRules(request) ? 0 : isRestricted(request) ? 1 : 2);
  return [0, 1, 2].flatMap((g) => interleaveShapes(largestFirst.filter((request) => group(request) === g)));
}

export function hasRequiredRules(request: Readonly<VmRequest>): boolean {
  return (request.placement.hostAffinity?.required?.length ?? 0) > 0 || hasVmRules(request);
}

/** Request ids must be unique within a batch: a duplicate is a caller's bug, and would make the plan depend on input order. */
export function assertUniqueIds(requests: readonly Readonly<VmRequest>[]): void {
  const ids = new Set<string>();
  for (const { id } of requests) {
    if (ids.has(id)) throw new RangeError(`VM ${id} is requested twice in one batch`);
    ids.add(id);
  }
}

/**
 * Merges the memory-heavy and the CPU-heavy VMs (more or fewer MiB per vCPU than the group as a whole),
 * each list still largest first, taking from whichever brings the running total back towards the
 * group's own MiB per vCPU. A long run of one shape (say sixteen 16-vCPU/32-GiB VMs in a row) fills
 * hosts along one resource and strands the other.
 */
export function interleaveShapes<T extends Readonly<VmRequest>>(largestFirst: readonly T[]): T[] {
  const totalMemory = largestFirst.reduce((sum, r) => sum + r.memoryMiB, 0);
  const totalCpu = largestFirst.reduce((sum, r) => sum + r.cpu, 0);
  if (totalMemory === 0 || totalCpu === 0) return [...largestFirst];
  const mibPerCpu = totalMemory / totalCpu;
  const memoryHeavy = largestFirst.filter((r) => r.memoryMiB >= r.cpu * mibPerCpu);
  const cpuHeavy = largestFirst.filter((r) => r.memoryMiB < r.cpu * mibPerCpu);
  const rank = new Map(largestFirst.map((r, i) => [r, i]));
  const merged: T[] = [];
  let memory = 0;
  let cpu = 0;
  let m = 0;
  let c = 0;
  while (m < memoryHeavy.length || c < cpuHeavy.length) {
    const nextMemoryHeavy = memoryHeavy[m];
    const nextCpuHeavy = cpuHeavy[c];
    const target = cpu * mibPerCpu;
    // Short of memory-heavy VMs: take one; short of CPU-heavy ones: take one; in balance: the larger.
    const takeMemoryHeavy =
      nextCpuHeavy === undefined ||
      (nextMemoryHeavy !== undefined &&
        (memory < target || (memory === target && (rank.get(nextMemoryHeavy) ?? 0) < (rank.get(nextCpuHeavy) ?? 0))));
    const next = takeMemoryHeavy ? nextMemoryHeavy : nextCpuHeavy;
    if (next === undefined) break;
    if (takeMemoryHeavy) m++;
    else c++;
    memory += next.memoryMiB;
    cpu += next.cpu;
    merged.push(next);
  }
  return merged;
}
