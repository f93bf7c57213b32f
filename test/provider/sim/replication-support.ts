// Shared by the replication tests: two sites on a virtual clock (hosts a1, a2 see datastore site-a; b1, b2
// see site-b), a VM on site A that writes at a known rate, and ways to read its replica and to run the
// clock event by event until the replica is as a test wants it.

import assert from "node:assert/strict";
import type { VirtualClock } from "../../../controller/core/clock.ts";
import type { VmConfig } from "../../../controller/core/observation.ts";
import type { ReplicaObservation, ReplicationSettings } from "../../../controller/core/replication.ts";
import type { HypervisorProvider } from "../../../controller/provider/provider.ts";
import type { SimOptions, SimulatedHosts } from "../../../controller/provider/sim/index.ts";
import { fleet, hostConfig, vmConfig } from "../../support/migration.ts";

export const RPO_MS = 900_000;
export const HALF_RPO_MS = RPO_MS / 2;
/** MiB/s: what the test VM writes, unless a test says otherwise. */
export const WRITE_RATE = 2;

/** 15 min RPO, 2 instances besides the latest, a 100 MiB/s link a-b to site-b. */
export function replication(overrides: Partial<ReplicationSettings> = {}): ReplicationSettings {
  return { targetDatastore: "site-b", rpoMs: RPO_MS, instances: 2, link: "a-b", linkBandwidthMiBps: 100, ...overrides };
}

/** A VM with one disk of `sizeGiB` on site-a, writing `writeRate` MiB/s. */
export function siteAVm(sizeGiB = 20, writeRate = WRITE_RATE): VmConfig {
  return vmConfig({
    memoryMiB: 2048,
    disks: [{ name: "root", sizeGiB, datastore: "site-a" }],
    workload: { profile: "Steady", cpuPercent: 20, diskWriteRateMiBps: writeRate },
  });
}

/** The same VM as its replica's site runs it: its disks on site-b. */
export function atSiteB(config: VmConfig): VmConfig {
  return { ...config, disks: config.disks.map((disk) => ({ ...disk, datastore: "site-b" })) };
}

/** Each site's hosts also see a local datastore, a second heartbeat datastore that outlives APD on the shared one. */
export async function twoSites(options: Partial<SimOptions> = {}) {
  const siteA = hostConfig({ datastores: ["site-a", "a-local"] });
  const siteB = hostConfig({ datastores: ["site-b", "b-local"] });
  return fleet({ a1: siteA, a2: siteA, b1: siteB, b2: siteB }, options);
}

/** The simulated hosts of a test and the clock they run on. */
export interface Sites {
  clock: VirtualClock;
  sim: SimulatedHosts;
}

export async function replicaOf(provider: HypervisorProvider, vm: string): Promise<ReplicaObservation> {
  const replica = (await provider.observe()).replicas?.find((r) => r.vm === vm);
  assert.ok(replica, `VM ${vm} has no replica`);
  return replica;
}

/**
 * Fires the clock's timers one at a time until the VM's replica satisfies `until` (checked before each),
 * calling `each` with it after every event; returns it then.
 */
export async function runUntil(
  { clock, sim }: Sites,
  vm: string,
  until: (replica: ReplicaObservation) => boolean,
  each?: (replica: ReplicaObservation) => void,
): Promise<ReplicaObservation> {
  for (let events = 0; events < 10_000; events++) {
    const replica = await replicaOf(sim, vm);
    if (until(replica)) return replica;
    each?.(replica);
    const next = clock.nextTimerAt();
    assert.ok(next !== undefined, `VM ${vm}'s replica is ${replica.state} with no timer pending`);
    await clock.advanceTo(next);
  }
  assert.fail(`VM ${vm}'s replica did not reach the condition within 10,000 events`);
}

/** Runs until the replica has completed `count` syncs in all since `after` (its first sync's start by default). */
export async function syncsCompleted(sites: Sites, vm: string, count: number, after = 0): Promise<ReplicaObservation> {
  let seen = 0;
  let lastSeen: number | undefined;
  return runUntil(sites, vm, (replica) => {
    const last = replica.lastSync?.startedAt;
    if (last !== undefined && last !== lastSeen && last >= after) {
      seen += 1;
      lastSeen = last;
    }
    return seen >= count;
  });
}
