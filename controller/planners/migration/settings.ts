// The settings one VM's live migration runs with: its cluster's (HostCluster.spec.migration), with the VM's
// own overrides (VirtualMachine.spec.migration), in the provider's units.

import type { HostCluster, VirtualMachine } from "../../api/types.ts";
import { DIRTY_RATE_MIBPS, type MigrationSettings } from "../../core/migration.ts";

export function migrationSettingsOf(cluster: Readonly<HostCluster>, vm: Readonly<VirtualMachine>): MigrationSettings {
  const c = cluster.spec.migration;
  const v = vm.spec.migration;
  return {
    bandwidthMiBps: v.bandwidthMiBps ?? c.bandwidthMiBps,
    downtimeLimitMs: v.downtimeLimitMs ?? c.downtimeLimitMs,
    maxRounds: c.maxRounds,
    noProgressTimeoutMs: c.noProgressTimeoutSeconds * 1000,
    completionTimeoutPerGiBMs: c.completionTimeoutPerGiBSeconds * 1000,
    autoConverge: v.autoConverge ?? c.autoConverge,
  };
}

/** How fast the VM's guest dirties its memory, MiB/s: as declared, or its workload profile's default. */
export function dirtyRateOf(vm: Readonly<VirtualMachine>): number {
  return vm.spec.workload?.dirtyRateMiBps ?? DIRTY_RATE_MIBPS[vm.spec.workload?.profile ?? "Steady"];
}
