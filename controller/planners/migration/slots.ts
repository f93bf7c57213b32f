// How many live migrations may begin now: the cluster's limit on migrations under way, and each host's on
// migrations leaving it (BEHAVIOUR.md, Live migration: KubeVirt 5 per cluster, 2 outbound per host). The
// migrations the hosts report under way count, so do those the stages before planned this round, and so
// do the cluster's own moves asked for in an earlier round that the hosts have not reported yet: a round
// may be planned on an observation taken before the last round's migrations began.

import type { ClusterSituation, StageState } from "../cluster/types.ts";

export interface MigrationSlots {
  /** Migrations the cluster may still begin. */
  cluster: number;
  /** Migrations a host may still send, by host name (hosts absent: the full per-host limit). */
  outbound: Map<string, number>;
  /** The per-host limit. */
  perHost: number;
}

/**
 * How long a move the cluster asked for holds its slot before the hosts report it: as long as evacuation
 * waits for that report before it counts the attempt as lost (the hosts report every second).
 */
export const ASKED_UNREPORTED_MS = 30_000;

export function migrationSlots(s: Readonly<ClusterSituation>, state: Readonly<StageState>): MigrationSlots {
  const limits = s.cluster.spec.migration;
  const sources: string[] = s.migrations.filter((m) => m.phase === "PreCopy" || m.phase === "Switchover").map((m) => m.source);
  for (const [vm, move] of s.memory.moves) {
    if (s.now - move.startedAt >= ASKED_UNREPORTED_MS || s.migrations.some((m) => m.vm === vm && m.key === move.key)) continue;
    const from = s.vms.find((f) => f.id === vm)?.instance?.host;
    if (from) sources.push(from);
  }
  for (const step of state.actions) {
    if (step.action.type !== "Migrate") continue;
    const from = s.vms.find((f) => f.id === step.action.vm)?.instance?.host;
    if (from) sources.push(from);
  }
  const outbound = new Map<string, number>();
  for (const host of sources) outbound.set(host, (outbound.get(host) ?? limits.parallelOutboundPerHost) - 1);
  return { cluster: limits.parallelMigrations - sources.length, outbound, perHost: limits.parallelOutboundPerHost };
}

/** Whether one more migration may leave `host` now. */
export function maySend(slots: Readonly<MigrationSlots>, host: string): boolean {
  return slots.cluster > 0 && (slots.outbound.get(host) ?? slots.perHost) > 0;
}

/** Takes one slot for a migration leaving `host`. */
export function takeSlot(slots: MigrationSlots, host: string): void {
  slots.cluster -= 1;
  slots.outbound.set(host, (slots.outbound.get(host) ?? slots.perHost) - 1);
}
