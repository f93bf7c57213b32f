// Shared by the live-migration tests: a small fleet on the virtual clock with running VMs, and ways to
// read a VM's migration and to run it event by event to its end.

import assert from "node:assert/strict";
import { VirtualClock } from "../../controller/core/clock.ts";
import { DEFAULT_MIGRATION_SETTINGS } from "../../controller/core/migration.ts";
import type { MigrationObservation, MigrationSettings } from "../../controller/core/migration.ts";
import type { HostConfig, VmConfig } from "../../controller/core/observation.ts";
import type { HypervisorProvider } from "../../controller/provider/provider.ts";
import { SimulatedHosts } from "../../controller/provider/sim/index.ts";
import type { SimOptions } from "../../controller/provider/sim/index.ts";
import { hostConfig, vmConfig } from "./provider.ts";

export { hostConfig, refusal, vmConfig } from "./provider.ts";

export function settings(overrides: Partial<MigrationSettings> = {}): MigrationSettings {
  return { ...DEFAULT_MIGRATION_SETTINGS, ...overrides };
}

/** A VM whose guest dirties memory at `dirtyRateMiBps` (Idle, 2 MiB/s, when not given). */
export function guest(memoryMiB: number, dirtyRateMiBps?: number, overrides: Partial<VmConfig> = {}): VmConfig {
  const workload: VmConfig["workload"] = dirtyRateMiBps === undefined
    ? { profile: "Idle", cpuPercent: 5 }
    : { profile: "Steady", cpuPercent: 50, dirtyRateMiBps };
  return vmConfig({ memoryMiB, workload, ...overrides });
}

/** Hosts h1…hN (all alike unless `hosts` says otherwise), on a virtual clock. */
export async function fleet(hosts: Record<string, Partial<HostConfig>> = { h1: {}, h2: {}, h3: {} }, options: Partial<SimOptions> = {}) {
  const clock = options.clock instanceof VirtualClock ? options.clock : new VirtualClock();
  const sim = new SimulatedHosts({ seed: 5, ...options, clock });
  for (const [name, overrides] of Object.entries(hosts)) await sim.registerHost(name, hostConfig(overrides));
  return { clock, sim };
}

/** Starts the VMs and lets them boot. */
export async function running(clock: VirtualClock, sim: SimulatedHosts, vms: Record<string, [host: string, config: VmConfig]>): Promise<void> {
  for (const [id, [host, config]] of Object.entries(vms)) await sim.startVm(id, host, config);
  await clock.advance(sim.timings.bootMs);
}

export async function migrationOf(provider: HypervisorProvider, vm: string): Promise<MigrationObservation | undefined> {
  return (await provider.observe()).migrations?.find((m) => m.vm === vm);
}

export function underWay(m: MigrationObservation | undefined): boolean {
  return m?.phase === "PreCopy" || m?.phase === "Switchover";
}

/**
 * Fires the clock's timers one at a time until the VM's migration has ended, calling `each` with the
 * migration after every event; returns how it ended.
 */
export async function runToEnd(clock: VirtualClock, sim: SimulatedHosts, vm: string, each?: (m: MigrationObservation) => void | Promise<void>): Promise<MigrationObservation> {
  for (let events = 0; events < 10_000; events++) {
    const m = await migrationOf(sim, vm);
    assert.ok(m, `VM ${vm} has no migration`);
    if (!underWay(m)) return m;
    await each?.(m);
    const next = clock.nextTimerAt();
    assert.ok(next !== undefined, `VM ${vm}'s migration is ${m.phase} with no timer pending`);
    await clock.advanceTo(next);
  }
  assert.fail(`VM ${vm}'s migration did not end within 10,000 events`);
}

/** Fires timers until the VM's migration reaches `phase` (or ends); returns it then. */
export async function runUntil(clock: VirtualClock, sim: SimulatedHosts, vm: string, until: (m: MigrationObservation) => boolean): Promise<MigrationObservation> {
  for (let events = 0; events < 10_000; events++) {
    const m = await migrationOf(sim, vm);
    assert.ok(m, `VM ${vm} has no migration`);
    if (until(m) || !underWay(m)) return m;
    const next = clock.nextTimerAt();
    assert.ok(next !== undefined, `VM ${vm}'s migration is ${m.phase} with no timer pending`);
    await clock.advanceTo(next);
  }
  assert.fail(`VM ${vm}'s migration did not reach the condition within 10,000 events`);
}

/** Every VM that really runs (powered on, on a live host), by id, with the hosts it runs on. */
export function copiesRunning(sim: SimulatedHosts): Map<string, string[]> {
  const truth = sim.groundTruth();
  const up = new Set(truth.hosts.filter((h) => h.up).map((h) => h.name));
  const copies = new Map<string, string[]>();
  for (const vm of truth.vms) {
    if (vm.power === "Off" || !up.has(vm.host)) continue;
    copies.set(vm.id, [...(copies.get(vm.id) ?? []), vm.host]);
  }
  return copies;
}

/** Hosts big enough for any VM of the estimate's range (64 GiB) beside nothing else. */
const ALONE_HOST_MEMORY_MIB = 131_072;

/**
 * Migrates one VM alone between two otherwise idle hosts, fresh on a virtual clock, and returns how the
 * migration ended: the hosts' ground truth for an estimate made of the same guest, settings and link.
 */
export async function migrateAlone(memoryMiB: number, dirtyRateMiBps: number, migration: MigrationSettings): Promise<MigrationObservation> {
  const { clock, sim } = await fleet({ h1: { memoryMiB: ALONE_HOST_MEMORY_MIB }, h2: { memoryMiB: ALONE_HOST_MEMORY_MIB } });
  try {
    await running(clock, sim, { "p/alone": ["h1", guest(memoryMiB, dirtyRateMiBps)] });
    await sim.migrateVm("p/alone", "h2", { key: "alone", settings: migration });
    // Timers fire at their own instants inside each step, so the step's size does not change the outcome.
    for (let steps = 0; underWay(await migrationOf(sim, "p/alone")); steps++) {
      assert.ok(steps < 1_000, "the migration did not end within 1,000 steps of 10 simulated minutes");
      await clock.advance(600_000);
    }
    const ended = await migrationOf(sim, "p/alone");
    assert.ok(ended, "the migration left no record");
    return ended;
  } finally {
    await sim.close();
  }
}
