// The chaos property for replication and disaster recovery: random two-site fleets (prod replicating to
// dr) under random timelines of whole-site losses, single host crashes on either site, partitions of the
// primary (with or without its storage) and recoveries, driven on the virtual clock through the whole
// controller and the simulated hosts. At every step no power-on is ever refused as a second copy; at the
// end, every VM protected by a replica that had a completed sync runs somewhere, and no failover lost more
// than the last sync completed before the failure allows.
//
// fast-check prints the seed and path of a failure; replay it with VIREO_CHAOS_SEED=<seed>
// (and VIREO_CHAOS_PATH=<path>). VIREO_QUICK=1 runs a few fleets instead of a hundred.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Scenario, clusterYaml, hostYaml } from "../support/scenario.ts";

const QUICK = process.env.VIREO_QUICK === "1";
const REPLAY_SEED = process.env.VIREO_CHAOS_SEED;
const RUNS = REPLAY_SEED ? 1 : QUICK ? 8 : 100;
const STEP_MS = 10_000;
/** After the last heal: detection, lease expiry, recovery in priority order, a boot and a retry. */
const SETTLE_MS = 10 * 60_000;

interface VmPlan { replicated: boolean; tier: "gold" | "silver"; writeRate: number }
type FaultPlan =
  | { type: "SiteLoss" }
  | { type: "HostCrash"; site: "prod" | "dr"; host: number }
  | { type: "Partition"; storage: boolean };
interface TimedFault { at: number; durationMs: number; heals: boolean; fault: FaultPlan }
interface Fleet { seed: number; prodHosts: number; drHosts: number; vms: VmPlan[]; faults: TimedFault[] }

const fleetArb: fc.Arbitrary<Fleet> = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  prodHosts: fc.integer({ min: 2, max: 3 }),
  drHosts: fc.integer({ min: 2, max: 3 }),
  vms: fc.array(fc.record({
    replicated: fc.constantFrom(true, true, false),
    tier: fc.constantFrom("gold", "silver") as fc.Arbitrary<VmPlan["tier"]>,
    writeRate: fc.constantFrom(0.1, 0.5, 2),
  }), { minLength: 1, maxLength: 8 }),
  faults: fc.array(fc.record({
    at: fc.integer({ min: 0, max: 40 }).map((steps) => steps * STEP_MS),
    durationMs: fc.integer({ min: 1, max: 60 }).map((steps) => steps * STEP_MS),
    heals: fc.boolean(),
    fault: fc.oneof(
      fc.constant({ type: "SiteLoss" as const }),
      fc.record({ type: fc.constant("HostCrash" as const), site: fc.constantFrom("prod", "dr") as fc.Arbitrary<"prod" | "dr">, host: fc.nat(2) }),
      fc.record({ type: fc.constant("Partition" as const), storage: fc.boolean() }),
    ),
  }), { minLength: 1, maxLength: 3 }),
});

function prodHost(i: number): string {
  return `p${i}`;
}

function drHost(i: number): string {
  return `d${i}`;
}

function manifests(fleet: Fleet): string {
  let yaml = clusterYaml("prod").replace("  placement: {strategy: Spread}\n", "  placement: {strategy: Spread}\n  replication: {bandwidthMiBps: 200}\n");
  yaml += clusterYaml("dr");
  for (let i = 0; i < fleet.prodHosts; i++) yaml += hostYaml(prodHost(i), { cluster: "prod", cores: 16, memoryMiB: 65536, datastores: ["prod-ds"], networks: ["prod"] });
  // dr holds every VM even with one host down: recovery is never short of room.
  for (let i = 0; i < fleet.drHosts; i++) yaml += hostYaml(drHost(i), { cluster: "dr", cores: 16, memoryMiB: 65536, datastores: ["dr-ds"], networks: ["dr-net"] });
  for (const [tier, priority] of [["gold", "High"], ["silver", "Low"]] as const) {
    yaml += `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${tier}, namespace: default}
spec: {selector: {matchLabels: {tier: ${tier}}}, restartPriority: ${priority}, protection: Replicate}
---
`;
  }
  fleet.vms.forEach((vm, i) => {
    yaml += `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: vm${i}, namespace: default, labels: {tier: ${vm.replicated ? vm.tier : "none"}}}
spec:
  runStrategy: Always
  cpu: 1
  memoryMiB: 2048
  disks: [{name: root, sizeGiB: 1, datastore: prod-ds}]
  networks: [{name: prod}]
  placement: {cluster: prod}
  workload: {profile: Steady, cpuPercent: 10, diskWriteRateMiBps: ${vm.writeRate}}
${vm.replicated ? "  replication: {targetCluster: dr, rpoSeconds: 300, networkMapping: [{source: prod, target: dr-net}]}\n" : ""}---
`;
  });
  return yaml;
}

function prodHosts(fleet: Fleet): string[] {
  return Array.from({ length: fleet.prodHosts }, (_, i) => prodHost(i));
}

async function apply(s: Scenario, fleet: Fleet, fault: FaultPlan, heal: boolean): Promise<void> {
  switch (fault.type) {
    case "SiteLoss":
      for (const h of prodHosts(fleet)) await (heal ? s.sim.recoverHost(h) : s.sim.crashHost(h));
      return;
    case "HostCrash": {
      const name = fault.site === "prod" ? prodHost(fault.host % fleet.prodHosts) : drHost(fault.host % fleet.drHosts);
      return heal ? s.sim.recoverHost(name) : s.sim.crashHost(name);
    }
    case "Partition":
      return heal ? s.sim.healPartition(prodHosts(fleet)) : s.sim.partitionHosts(prodHosts(fleet), { storage: fault.storage });
  }
}

/** Across the runs: failovers to replicas, and VMs found running in dr at the end (the property is not vacuous). */
const tally = { recoveries: 0, inDr: 0 };

async function runFleet(fleet: Fleet): Promise<void> {
  const s = await Scenario.start(manifests(fleet), { seed: fleet.seed, observeIntervalMs: 5_000 });
  // By VM: the start of each sync the hosts had completed, as seen step by step.
  const completed = new Map<string, number[]>();
  const note = () => {
    for (const r of s.sim.groundTruth().replicas) {
      if (r.lastSyncStartedAt === undefined) continue;
      const seen = completed.get(r.vm) ?? [];
      if (seen.at(-1) !== r.lastSyncStartedAt) seen.push(r.lastSyncStartedAt);
      completed.set(r.vm, seen);
    }
  };
  try {
    await s.advance(120_000);
    const events = fleet.faults.flatMap((f) => [{ at: f.at, fault: f.fault, heal: false }, ...(f.heals ? [{ at: f.at + f.durationMs, fault: f.fault, heal: true }] : [])])
      .sort((a, b) => a.at - b.at || Number(a.heal) - Number(b.heal));
    const end = Math.max(0, ...events.map((e) => e.at));
    let next = 0;
    for (let t = 0; t <= end; t += STEP_MS) {
      while (next < events.length && events[next]!.at <= t) {
        const event = events[next++]!;
        await apply(s, fleet, event.fault, event.heal);
      }
      await s.advance(STEP_MS);
      note();
      assert.equal(s.sim.splitBrainAttempts(), 0, `t=${t / 1000}s: a power-on was refused as a possible second copy`);
    }
    // Partitions heal at the end (a site cut off for ever is a person's call); crashes may stay.
    await s.sim.healPartition(prodHosts(fleet));
    for (let t = 0; t < SETTLE_MS; t += 3 * STEP_MS) {
      await s.advance(3 * STEP_MS);
      note();
      assert.equal(s.sim.splitBrainAttempts(), 0, "settling: a power-on was refused as a possible second copy");
    }
    const truth = s.sim.groundTruth();
    const hostUp = new Map(truth.hosts.map((h) => [h.name, h.up]));
    const anyUp = (names: string[]) => names.some((h) => hostUp.get(h));
    const drUp = anyUp(Array.from({ length: fleet.drHosts }, (_, i) => drHost(i)));
    const prodUp = anyUp(prodHosts(fleet));
    const power = new Map(truth.vms.map((vm) => [vm.id, vm.power]));
    fleet.vms.forEach((plan, i) => {
      const id = `default/vm${i}`;
      const hadReplica = (completed.get(id)?.length ?? 0) > 0;
      // Somewhere to run: home while a prod host is up; dr for a VM with a replica, while a dr host is up.
      if (prodUp || (plan.replicated && hadReplica && drUp)) {
        assert.equal(power.get(id), "Running", `${id} (replicated: ${plan.replicated}, synced: ${hadReplica}) should run; Ready: ${JSON.stringify(s.vm(`vm${i}`).status?.conditions?.find((c) => c.type === "Ready"))}`);
      }
    });
    tally.recoveries += truth.recoveries.length;
    tally.inDr += truth.vms.filter((vm) => vm.host.startsWith("d") && vm.power === "Running").length;
    for (const r of truth.recoveries) {
      // The instance a failover ran from is the last sync completed before the original stopped writing.
      const before = (completed.get(r.vm) ?? []).filter((at) => at <= r.stoppedWritingAt);
      const allowed = before.at(-1);
      if (allowed !== undefined) assert.ok(r.instanceAt >= allowed, `${r.vm}: recovered from the instance of ${r.instanceAt}, older than the sync of ${allowed} completed before it stopped writing`);
    }
  } finally {
    await s.stop();
  }
}

function parameters(): fc.Parameters<[Fleet]> {
  if (REPLAY_SEED) return { seed: Number(REPLAY_SEED), numRuns: 1, ...(process.env.VIREO_CHAOS_PATH ? { path: process.env.VIREO_CHAOS_PATH } : {}), endOnFailure: true };
  return { numRuns: RUNS, endOnFailure: true };
}

test("random two-site fleets under site losses, crashes and partitions never run a VM twice, lose no VM that had a replica, and lose no more than the last completed sync allows", async (t) => {
  const started = performance.now();
  await fc.assert(fc.asyncProperty(fleetArb, runFleet), parameters());
  t.diagnostic(`${parameters().numRuns} fleets in ${Math.round(performance.now() - started)} ms: ${tally.recoveries} failovers to replicas, ${tally.inDr} VMs running in dr at the end`);
});
