// Capacity: what is allocated on each host, whether a request still fits, and the resource scores of the
// two strategies. Memory is never overcommitted; vCPUs may be, up to cores × overcommit ratio.

import type { PlacementStrategy } from "../api/types.ts";
import type { HostTable } from "./hosts.ts";

export const INSUFFICIENT_MEMORY = "insufficient memory";
export const INSUFFICIENT_CPU = "insufficient cpu";

/** Per-host counters, updated as a batch places VMs. */
export interface Allocation {
  memoryMiB: Float64Array;
  cpu: Float64Array;
  vms: Int32Array;
}

export function emptyAllocation(hostCount: number): Allocation {
  return { memoryMiB: new Float64Array(hostCount), cpu: new Float64Array(hostCount), vms: new Int32Array(hostCount) };
}

export function allocate(allocation: Allocation, host: number, cpu: number, memoryMiB: number): void {
  allocation.memoryMiB[host] = (allocation.memoryMiB[host] ?? 0) + memoryMiB;
  allocation.cpu[host] = (allocation.cpu[host] ?? 0) + cpu;
  allocation.vms[host] = (allocation.vms[host] ?? 0) + 1;
}

export function capacityReason(table: HostTable, allocation: Allocation, host: number, cpu: number, memoryMiB: number): string | undefined {
  if ((allocation.memoryMiB[host] ?? 0) + memoryMiB > (table.memoryCapacity[host] ?? 0)) return INSUFFICIENT_MEMORY;
  if ((allocation.cpu[host] ?? 0) + cpu > (table.cpuCapacity[host] ?? 0)) return INSUFFICIENT_CPU;
  return undefined;
}

/**
 * 0–100, higher is better, for a host whose memory and vCPU utilization would be `memoryAfter` and
 * `cpuAfter` (fractions of its capacity) with the request on it.
 *
 * Spread: 100 × (1 − the dominant utilization), so the least loaded host, by its scarcer resource, wins
 * and utilization stays even.
 *
 * Pack: best fit, to keep whole hosts free. A host already running VMs scores 50–100, higher the less
 * room it has left in both resources (the L2 norm of what stays free: a host left with memory but no
 * vCPUs, or the reverse, has wasted room); an empty host scores below 50, so one is opened only when no
 * host in use fits, and then the largest (it will take the most VMs after).
 */
export function resourceScore(strategy: PlacementStrategy, table: HostTable, allocation: Allocation, host: number, memoryAfter: number, cpuAfter: number): number {
  if (strategy === "Spread") return 100 * (1 - Math.max(memoryAfter, cpuAfter));
  if ((allocation.vms[host] ?? 0) > 0) return 50 + 50 * (1 - Math.hypot(1 - memoryAfter, 1 - cpuAfter) / Math.SQRT2);
  const size = (fraction(table.memoryCapacity[host] ?? 0, table.maxMemoryCapacity) + fraction(table.cpuCapacity[host] ?? 0, table.maxCpuCapacity)) / 2;
  return 49 * size;
}

/** `used` as a fraction of `capacity`; nothing used is 0 even of nothing. */
export function fraction(used: number, capacity: number): number {
  return used === 0 ? 0 : used / capacity;
}
