// The explanation of an unschedulable VM, worded as kube-scheduler words a pending pod's:
// "0/12 hosts fit: 7 insufficient memory, 3 missing CPU feature avx512f, 2 in maintenance".

import { byCodeUnits } from "../api/selectors.ts";

/** Reasons by how many hosts they rejected, most first, then by name. */
export function reasonsByCount(reasons: Readonly<Record<string, number>>): [reason: string, hosts: number][] {
  return Object.entries(reasons).sort(([a, m], [b, n]) => n - m || byCodeUnits(a, b));
}

export function unschedulableMessage(hostCount: number, reasons: Readonly<Record<string, number>>): string {
  const parts = reasonsByCount(reasons).map(([reason, hosts]) => `${hosts} ${reason}`);
  return `0/${hostCount} hosts fit: ${parts.length > 0 ? parts.join(", ") : "the cluster has no hosts"}`;
}
