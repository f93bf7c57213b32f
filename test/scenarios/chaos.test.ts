// The chaos property: random small fleets under random fault timelines (crashes, isolations with random
// responses, partitions, storage path losses, guest hangs, recoveries), with live migrations asked for and
// cancelled, hosts put into maintenance and taken out, and automatic balancing, driven on the virtual clock through
// the whole controller and the simulated hosts. After every step nothing unsafe has happened (no second
// copy attempted, no host's memory overcommitted — a migrating VM counted on its target too —, no required
// placement rule broken by a running VM); once
// every fault has healed and enough time has passed, every VM that should run runs and none is lost.
// Some policies protect with FaultTolerance: no secondary ever goes live while its primary still runs, and a
// fault-tolerant VM whose host crashes while it has a secondary in lockstep on a healthy host runs on from
// it with its uptime unbroken (no data lost, no reboot); a secondary's memory counts on its host.
//
// fast-check prints the seed and path of a failure; replay it with VIREO_CHAOS_SEED=<seed>
// (and VIREO_CHAOS_PATH=<path> for the shrunk case). VIREO_QUICK=1 runs ~50 fleets instead of 1,000+.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Scenario } from "../support/scenario.ts";

const QUICK = process.env.VIREO_QUICK === "1";
const REPLAY_SEED = process.env.VIREO_CHAOS_SEED;
/** Runs per test(); four of them make the 1,000+ of the full suite. */
const RUNS_PER_TEST = REPLAY_SEED ? 1 : QUICK ? 13 : 260;
const STEP_MS = 10_000;
/** After the last heal: long enough for detection, lease expiry, a boot and a retry at +2 min. */
const SETTLE_MS = 8 * 60_000;
const DATASTORES = ["ds1", "ds2"] as const;
const RACKS = ["r1", "r2"] as const;

interface HostPlan { cores: number; memoryMiB: number }
interface VmPlan {
  cpu: number;
  memoryMiB: number;
  runStrategy: "Always" | "RerunOnFailure" | "Halted";
  tier: "gold" | "silver";
  datastore: (typeof DATASTORES)[number];
  /** Required anti-affinity to every other "spread" VM, one per host. */
  spread: boolean;
  /** Required host affinity to rack r1. */
  rackR1: boolean;
  migration: "Live" | "LiveIfPossible" | "Cold" | "Never";
  dirtyRateMiBps: number;
}
interface PolicyPlan { priority: string; isolationResponse: string; protection: "Restart" | "FaultTolerance" }
type FaultPlan =
  | { type: "HostCrash"; host: number }
  | { type: "NetworkIsolation"; host: number }
  | { type: "NetworkPartition"; hosts: number[] }
  | { type: "StoragePathLoss"; host: number; datastore?: (typeof DATASTORES)[number]; up: number }
  | { type: "GuestHang"; vm: number }
  /** A VirtualMachineMigration (to a host, or where placement chooses); its heal deletes it, cancelling it if it still runs. */
  | { type: "Migration"; vm: number; host?: number; cold: boolean }
  | { type: "Maintenance"; host: number };
interface TimedFault { at: number; durationMs: number; fault: FaultPlan }
interface Fleet { seed: number; hosts: HostPlan[]; vms: VmPlan[]; policies: Record<"gold" | "silver", PolicyPlan>; balancing: "Disabled" | "Automatic"; faults: TimedFault[] }

const hostArb = fc.record({ cores: fc.constantFrom(8, 16), memoryMiB: fc.constantFrom(24_576, 32_768) });
const vmArb = fc.record({
  cpu: fc.integer({ min: 1, max: 2 }),
  memoryMiB: fc.constantFrom(1_024, 2_048),
  runStrategy: fc.constantFrom("Always", "Always", "RerunOnFailure", "Halted") as fc.Arbitrary<VmPlan["runStrategy"]>,
  tier: fc.constantFrom("gold", "silver") as fc.Arbitrary<VmPlan["tier"]>,
  datastore: fc.constantFrom(...DATASTORES),
  spread: fc.boolean(),
  rackR1: fc.boolean(),
  migration: fc.constantFrom("Live", "Live", "LiveIfPossible", "Cold", "Never") as fc.Arbitrary<VmPlan["migration"]>,
  dirtyRateMiBps: fc.constantFrom(2, 24, 24, 300),
});
const policyArb = fc.record({
  priority: fc.constantFrom("Highest", "High", "Medium", "Low", "Lowest"),
  isolationResponse: fc.constantFrom("LeavePoweredOn", "PowerOff", "Shutdown"),
  protection: fc.constantFrom("Restart", "Restart", "FaultTolerance") as fc.Arbitrary<PolicyPlan["protection"]>,
});
const faultArb: fc.Arbitrary<FaultPlan> = fc.oneof(
  fc.record({ type: fc.constant("HostCrash" as const), host: fc.nat(5) }),
  fc.record({ type: fc.constant("NetworkIsolation" as const), host: fc.nat(5) }),
  fc.record({ type: fc.constant("NetworkPartition" as const), hosts: fc.uniqueArray(fc.nat(5), { minLength: 1, maxLength: 2 }) }),
  fc.record({ type: fc.constant("StoragePathLoss" as const), host: fc.nat(5), datastore: fc.option(fc.constantFrom(...DATASTORES), { nil: undefined }), up: fc.integer({ min: 0, max: 1 }) }),
  fc.record({ type: fc.constant("GuestHang" as const), vm: fc.nat(11) }),
  fc.record({ type: fc.constant("Migration" as const), vm: fc.nat(11), host: fc.option(fc.nat(5), { nil: undefined }), cold: fc.boolean() }),
  fc.record({ type: fc.constant("Maintenance" as const), host: fc.nat(5) }),
);
const fleetArb: fc.Arbitrary<Fleet> = fc.record({
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  hosts: fc.array(hostArb, { minLength: 2, maxLength: 6 }),
  vms: fc.array(vmArb, { minLength: 1, maxLength: 12 }),
  policies: fc.record({ gold: policyArb, silver: policyArb }),
  balancing: fc.constantFrom("Disabled", "Automatic") as fc.Arbitrary<Fleet["balancing"]>,
  faults: fc.array(fc.record({
    at: fc.integer({ min: 0, max: 30 }).map((steps) => steps * STEP_MS),
    durationMs: fc.integer({ min: 1, max: 45 }).map((steps) => steps * STEP_MS),
    fault: faultArb,
  }), { minLength: 1, maxLength: 4 }),
});

function hostName(i: number): string {
  return `h${i}`;
}

/** Anti-affine VMs are at most one per host, so the fleet can always hold them all once faults heal. */
function feasible(fleet: Fleet): Fleet {
  let spread = 0;
  const vms = fleet.vms.map((vm) => {
    if (!vm.spread) return vm;
    spread++;
    return spread <= fleet.hosts.length ? { ...vm, rackR1: false } : { ...vm, spread: false };
  });
  return { ...fleet, vms };
}

function manifests(fleet: Fleet): string {
  let yaml = `apiVersion: vireo.dev/v1alpha1
kind: HostCluster
metadata: {name: prod}
spec:
  hostSelector: {matchLabels: {vireo.dev/cluster: prod}}
  placement: {strategy: Spread}
  # Admission control may rightly keep a VM off for want of failover capacity: liveness here is HA's own.
  ha: {enabled: true, admissionControl: {policy: Disabled}}
  balancing: {mode: ${fleet.balancing}, threshold: 5, intervalSeconds: 60}
---
`;
  fleet.hosts.forEach((host, i) => { yaml += hostManifest(i, host, false); });
  for (const [tier, policy] of Object.entries(fleet.policies)) {
    yaml += `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${tier}, namespace: default}
spec: {selector: {matchLabels: {tier: ${tier}}}, restartPriority: ${policy.priority}, isolationResponse: ${policy.isolationResponse}, protection: ${policy.protection}}
---
`;
  }
  fleet.vms.forEach((vm, i) => {
    const rules = [
      ...(vm.rackR1 ? ["hostAffinity: {required: [{matchExpressions: [{key: topology.vireo.dev/rack, operator: In, values: [r1]}]}]}"] : []),
      ...(vm.spread ? ["vmAntiAffinity: {required: [{labelSelector: {matchLabels: {spread: \"yes\"}}, topologyKey: vireo.dev/host}]}"] : []),
    ];
    yaml += `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: vm${i}, namespace: default, labels: {tier: ${vm.tier}, spread: "${vm.spread ? "yes" : "no"}"}}
spec:
  runStrategy: ${vm.runStrategy}
  cpu: ${vm.cpu}
  memoryMiB: ${vm.memoryMiB}
  disks: [{name: root, sizeGiB: 10, datastore: ${vm.datastore}}]
  networks: [{name: prod}]
  placement: {cluster: prod${rules.map((r) => `, ${r}`).join("")}}
  migration: {policy: ${vm.migration}}
  workload: {profile: Steady, dirtyRateMiBps: ${vm.dirtyRateMiBps}}
---
`;
  });
  return yaml;
}

function hostManifest(i: number, host: HostPlan, maintenance: boolean): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: Host
metadata: {name: ${hostName(i)}, labels: {vireo.dev/cluster: prod, topology.vireo.dev/rack: ${RACKS[i % 2]}}}
spec:
  hypervisor: esx
  cpu: {cores: ${host.cores}, vendor: intel, features: [sse4_2], overcommitRatio: 4}
  memoryMiB: ${host.memoryMiB}
  datastores: [${DATASTORES.join(", ")}]
  networks: [prod]
  storagePaths: 2
  maintenance: ${maintenance}
---
`;
}

/** Injects or heals one fault through the simulator's fault hooks; a fault on a host already down is a no-op. */
async function apply(s: Scenario, fleet: Fleet, fault: FaultPlan, heal: boolean, index: number): Promise<void> {
  const host = (i: number) => hostName(i % fleet.hosts.length);
  switch (fault.type) {
    case "Migration": {
      const name = `m${index}`;
      if (heal) return s.store.get(`VirtualMachineMigration/default/${name}`) ? s.delete("VirtualMachineMigration", name, "default") : undefined;
      const target = fault.host === undefined ? "" : `, targetHost: ${host(fault.host)}`;
      return s.apply(`apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: default}\nspec: {vmName: vm${fault.vm % fleet.vms.length}, mode: ${fault.cold ? "Cold" : "Live"}${target}}\n`);
    }
    case "Maintenance": {
      const i = fault.host % fleet.hosts.length;
      return s.apply(hostManifest(i, fleet.hosts[i]!, !heal));
    }
    case "HostCrash": {
      if (heal) return s.sim.recoverHost(host(fault.host));
      protectedBy.push(...guardedByASecondary(s, host(fault.host)));
      return s.sim.crashHost(host(fault.host));
    }
    case "NetworkIsolation": return heal ? s.sim.healIsolation(host(fault.host)) : s.sim.isolateHost(host(fault.host));
    case "NetworkPartition": {
      const hosts = [...new Set(fault.hosts.map(host))];
      return heal ? s.sim.healPartition(hosts) : s.sim.partitionHosts(hosts);
    }
    case "StoragePathLoss": return s.sim.setStoragePathsUp(host(fault.host), heal ? 2 : fault.up, fault.datastore);
    case "GuestHang": {
      const id = `default/vm${fault.vm % fleet.vms.length}`;
      const vm = s.sim.observeVm(id);
      if (heal) return vm ? s.sim.healGuestHang(id) : undefined;
      // Only a powered-on guest on a host that is up can hang.
      const truth = s.sim.groundTruth();
      const up = truth.hosts.find((h) => h.name === vm?.host)?.up;
      return vm && up && truth.vms.find((v) => v.id === id)?.power !== "Off" ? s.sim.hangGuest(id) : undefined;
    }
  }
}

/** Fault-tolerant VMs of a host about to crash, with a secondary in lockstep on a healthy host: they must run on. */
interface Guarded { vm: string; secondaryHost: string; poweredOnAt: number | undefined }
let protectedBy: Guarded[] = [];

function guardedByASecondary(s: Scenario, crashing: string): Guarded[] {
  const truth = s.sim.groundTruth();
  const healthy = new Set(truth.hosts.filter((h) => h.up && !h.isolated && !h.partitioned && h.storagePathsUp === 2).map((h) => h.name));
  const primaries = new Map(truth.vms.filter((vm) => vm.host === crashing && vm.power === "Running").map((vm) => [vm.id, vm]));
  const crashingHost = truth.hosts.find((h) => h.name === crashing);
  if (!crashingHost?.up || crashingHost.isolated || crashingHost.partitioned) return [];
  return truth.secondaries
    .filter((x) => x.state === "Lockstep" && primaries.has(x.vm) && healthy.has(x.host) && !truth.migrations.some((m) => m.vm === x.vm))
    .map((x) => ({ vm: x.vm, secondaryHost: x.host, poweredOnAt: s.sim.observeVm(x.vm)?.poweredOnAt }));
}

/** Each guarded VM runs from its secondary's host with the uptime it had: nothing lost, no reboot. */
function assertSwitchedOver(s: Scenario, when: string): void {
  for (const g of protectedBy) {
    const now = s.sim.observeVm(g.vm);
    assert.equal(now?.power, "Running", `${when}: ${g.vm} had a secondary in lockstep on ${g.secondaryHost} when its host crashed, and does not run`);
    assert.equal(now?.poweredOnAt, g.poweredOnAt, `${when}: ${g.vm} had a secondary in lockstep on ${g.secondaryHost} when its host crashed, and booted again`);
  }
  protectedBy = [];
}

/** What must hold at every step, from the simulator's ground truth. */
function assertSafe(s: Scenario, fleet: Fleet, when: string): void {
  assert.equal(s.sim.splitBrainAttempts(), 0, `${when}: a power-on was refused as a possible second copy`);
  const truth = s.sim.groundTruth();
  const on = truth.vms.filter((vm) => vm.power !== "Off");
  const plans = new Map(fleet.vms.map((vm, i) => [`default/vm${i}`, vm]));
  const memory = new Map<string, number>();
  for (const vm of on) memory.set(vm.host, (memory.get(vm.host) ?? 0) + plans.get(vm.id)!.memoryMiB);
  // A VM migrating live holds its memory on the target too, until it switches over; a secondary holds it on its host.
  for (const m of truth.migrations) memory.set(m.target, (memory.get(m.target) ?? 0) + plans.get(m.vm)!.memoryMiB);
  for (const x of truth.secondaries) if (x.state !== "Failed") memory.set(x.host, (memory.get(x.host) ?? 0) + plans.get(x.vm)!.memoryMiB);
  assert.equal(truth.twoPrimaries, 0, `${when}: a secondary went live while its primary still ran`);
  for (const x of truth.switchovers) assert.equal(x.lostMiB, 0, `${when}: ${x.vm}'s switch-over lost data`);
  for (const [host, used] of memory) {
    const capacity = fleet.hosts[Number(host.slice(1))]!.memoryMiB;
    assert.ok(used <= capacity, `${when}: host ${host} runs ${used} MiB of VMs on ${capacity} MiB`);
  }
  const spreadOn = new Map<string, string>();
  for (const vm of on) {
    const plan = plans.get(vm.id)!;
    if (plan.rackR1) assert.equal(RACKS[Number(vm.host.slice(1)) % 2], "r1", `${when}: ${vm.id} runs on ${vm.host}, outside rack r1`);
    if (!plan.spread) continue;
    assert.equal(spreadOn.get(vm.host), undefined, `${when}: ${vm.id} and ${spreadOn.get(vm.host)} are anti-affine but both run on ${vm.host}`);
    spreadOn.set(vm.host, vm.id);
  }
}

async function runFleet(generated: Fleet): Promise<void> {
  const fleet = feasible(generated);
  protectedBy = [];
  const s = await Scenario.start(manifests(fleet), { seed: fleet.seed, observeIntervalMs: 5_000 });
  try {
    await s.advance(60_000);
    const start = s.clock.now();
    const events = fleet.faults.flatMap((f, index) => [{ at: f.at, fault: f.fault, heal: false, index }, { at: f.at + f.durationMs, fault: f.fault, heal: true, index }])
      .sort((a, b) => a.at - b.at || Number(a.heal) - Number(b.heal));
    let next = 0;
    const end = Math.max(...events.map((e) => e.at));
    for (let t = 0; t <= end; t += STEP_MS) {
      while (next < events.length && events[next]!.at <= t) {
        const event = events[next++]!;
        await apply(s, fleet, event.fault, event.heal, event.index);
      }
      // The go-live happens within a second of the crash: look before anything else can happen to the VM.
      if (protectedBy.length > 0) {
        await s.advance(2_000);
        assertSwitchedOver(s, `t=${(s.clock.now() - start) / 1000}s`);
        await s.advance(STEP_MS - 2_000);
      } else {
        await s.advance(STEP_MS);
      }
      assertSafe(s, fleet, `t=${(s.clock.now() - start) / 1000}s`);
    }
    // Every fault has healed (a crash heals by the host's recovery): let HA and placement finish.
    for (let t = 0; t < SETTLE_MS; t += 4 * STEP_MS) {
      await s.advance(4 * STEP_MS);
      assertSafe(s, fleet, `settling, t=${(s.clock.now() - start) / 1000}s`);
    }
    assert.equal(s.vms().length, fleet.vms.length, "no VM object is lost");
    const truth = new Map(s.sim.groundTruth().vms.map((vm) => [vm.id, vm]));
    fleet.vms.forEach((plan, i) => {
      if (plan.runStrategy === "Halted") return;
      const vm = s.vm(`vm${i}`);
      assert.equal(truth.get(`default/vm${i}`)?.power, "Running", `vm${i} (${plan.runStrategy}) should run once every fault healed; status: ${JSON.stringify(vm.status?.conditions?.find((c) => c.type === "Ready"))}`);
    });
  } finally {
    await s.stop();
  }
}

function parameters(): fc.Parameters<[Fleet]> {
  if (REPLAY_SEED) return { seed: Number(REPLAY_SEED), numRuns: 1, ...(process.env.VIREO_CHAOS_PATH ? { path: process.env.VIREO_CHAOS_PATH } : {}), endOnFailure: true };
  return { numRuns: RUNS_PER_TEST, endOnFailure: true };
}

for (const part of REPLAY_SEED ? [1] : [1, 2, 3, 4]) {
  test(`random fleets under random faults never run a VM twice, never overcommit memory or break a required rule, and run every VM again once the faults heal (part ${part})`, async (t) => {
    const started = performance.now();
    await fc.assert(fc.asyncProperty(fleetArb, runFleet), parameters());
    t.diagnostic(`${parameters().numRuns} fleets in ${Math.round(performance.now() - started)} ms`);
  });
}
