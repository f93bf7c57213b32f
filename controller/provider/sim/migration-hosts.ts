// What live migrations cost the hosts they run between: a share of each host's migration link, and the
// target's vCPUs and memory, held from the first round to the end.

import { DEFAULT_MIGRATION_LINK_MIBPS } from "../../core/migration.ts";
import type { Resources } from "./hosts.ts";
import { isUnderWay } from "./precopy.ts";
import type { MigrationRecord, World } from "./world.ts";

export function migrationsUnderWay(world: World): MigrationRecord[] {
  return [...world.migrations.values()].filter(isUnderWay);
}

/** The VM's migration, while one is under way. */
export function migrationOf(world: World, vmId: string): MigrationRecord | undefined {
  const m = world.migrations.get(vmId);
  return m && isUnderWay(m) ? m : undefined;
}

/** What the host holds for VMs migrating to it: counted in its allocation as if they ran there. */
export function reservedOn(world: World, host: string): Resources {
  const reserved = { cpu: 0, memoryMiB: 0 };
  for (const m of migrationsUnderWay(world)) {
    if (m.target !== host) continue;
    reserved.cpu += m.cpu;
    reserved.memoryMiB += m.memoryMiB;
  }
  return reserved;
}

/**
 * The bandwidth `m` gets now: its own cap, and an even share of the source's and the target's migration
 * links (DEFAULT_MIGRATION_LINK_MIBPS), split among every migration leaving or entering each host.
 */
export function linkShare(world: World, m: MigrationRecord): number {
  const under = migrationsUnderWay(world);
  const users = (host: string) => under.filter((other) => other.source === host || other.target === host).length;
  return Math.min(
    m.settings.bandwidthMiBps,
    DEFAULT_MIGRATION_LINK_MIBPS / Math.max(1, users(m.source)),
    DEFAULT_MIGRATION_LINK_MIBPS / Math.max(1, users(m.target)),
  );
}
