// Fault tolerance on the virtual clock: a protected VM keeps a secondary in lockstep on another host (another
// rack when it can); its host's crash costs it no reboot and no data, a new secondary follows; a partition
// never makes two primaries; vSphere's per-host limits and admission control count the secondaries.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import { FT_GO_LIVE_MS } from "../../controller/core/fault-tolerance.ts";
import type { VirtualMachine } from "../../controller/api/types.ts";

const FT_POLICY = `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ft, namespace: default}
spec:
  selector: {matchLabels: {tier: db}}
  restartPriority: High
  protection: FaultTolerance
---
`;

/** A fault-tolerant VM that prefers `host`, so a test knows where its primary runs. */
function ftVm(name: string, host: string, options: Parameters<typeof vmYaml>[1] = {}): string {
  return vmYaml(name, { labels: { tier: "db" }, ...options })
    .replace("placement: {cluster: prod}", `placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: ${host}}}}]}}`);
}

/** Two racks of two hosts: esx-01 and esx-02 in r1, esx-03 and esx-04 in r2. */
function twoRacks(): string {
  return clusterYaml() + hostYaml("esx-01", { rack: "r1" }) + hostYaml("esx-02", { rack: "r1" }) + hostYaml("esx-03", { rack: "r2" }) + hostYaml("esx-04", { rack: "r2" });
}

function ft(vm: VirtualMachine) {
  return vm.status?.faultTolerance;
}

function protectedVm(s: Scenario, name: string): boolean {
  return ft(s.vm(name))?.state === "Protected";
}

test("a fault-tolerant VM gets a secondary on a host of another rack, holding its reservation there, and says so", async (t) => {
  const s = await Scenario.start(twoRacks() + FT_POLICY + ftVm("db-1", "esx-01", { memoryMiB: 8192 }));
  t.after(() => s.stop());
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  const vm = s.vm("db-1");
  assert.equal(vm.status?.host, "esx-01");
  const secondaryHost = ft(vm)!.secondaryHost!;
  assert.ok(["esx-03", "esx-04"].includes(secondaryHost), `the secondary went to ${secondaryHost}, not to rack r2`);
  const truth = s.sim.groundTruth().secondaries;
  assert.deepEqual(truth.map((x) => [x.vm, x.host, x.state]), [["default/db-1", secondaryHost, "Lockstep"]]);
  const observed = await s.sim.observe();
  assert.equal(observed.hosts.find((h) => h.name === secondaryHost)!.allocated.memoryMiB, 8192, "the secondary holds the VM's memory on its host");
  assert.equal(condition(vm, "FaultTolerant")?.status, "True");
  assert.match(condition(vm, "FaultTolerant")!.message, new RegExp(`lockstep on host ${secondaryHost}`));
  assert.ok(s.events.some((e) => e.reason === "SecondaryStarting" && e.object === "VirtualMachine/default/db-1"));
});

test("the primary's host crashes: the VM runs on from its secondary's host within about a second, no reboot, no restart counted, then gets a new secondary", async (t) => {
  const s = await Scenario.start(twoRacks() + FT_POLICY + ftVm("db-1", "esx-01"));
  t.after(() => s.stop());
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  const secondaryHost = ft(s.vm("db-1"))!.secondaryHost!;
  const before = s.sim.observeVm("default/db-1")!;
  await s.advance(30_000);

  const crashAt = s.clock.now();
  await s.sim.crashHost("esx-01");
  await s.advance(FT_GO_LIVE_MS);
  const after = s.sim.observeVm("default/db-1")!;
  assert.equal(after.host, secondaryHost, "the secondary went live");
  assert.equal(after.power, "Running");
  assert.equal(after.poweredOnAt, before.poweredOnAt, "the guest's uptime keeps counting: no boot");
  const switchover = s.sim.groundTruth().switchovers.find((x) => x.vm === "default/db-1")!;
  assert.ok(switchover.at - crashAt <= FT_GO_LIVE_MS, `went live ${switchover.at - crashAt} ms after the crash`);
  assert.equal(switchover.lostMiB, 0);

  await s.until(() => protectedVm(s, "db-1") && ft(s.vm("db-1"))!.secondaryHost !== secondaryHost, 120_000);
  const vm = s.vm("db-1");
  assert.equal(vm.status?.host, secondaryHost);
  assert.equal(vm.status?.restarts, undefined, "a switch-over is not a restart");
  assert.equal(vm.status?.lastFailover, undefined, "HA restarted nothing");
  assert.equal(ft(vm)!.switchovers, 1);
  assert.deepEqual({ from: ft(vm)!.lastSwitchover!.from, to: ft(vm)!.lastSwitchover!.to }, { from: "esx-01", to: secondaryHost });
  assert.ok(!["esx-01", secondaryHost].includes(ft(vm)!.secondaryHost!));
  assert.equal(s.sim.splitBrainAttempts(), 0);
  // Long after, when HA has declared esx-01 failed, nothing restarts the VM a second time.
  await s.advance(120_000);
  assert.equal(s.sim.observeVm("default/db-1")!.poweredOnAt, before.poweredOnAt);
  assert.equal(s.sim.splitBrainAttempts(), 0);
});

test("the secondary's host crashes: the primary runs on untouched and a new secondary is made", async (t) => {
  const s = await Scenario.start(twoRacks() + FT_POLICY + ftVm("db-1", "esx-01"));
  t.after(() => s.stop());
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  const first = ft(s.vm("db-1"))!.secondaryHost!;
  const poweredOnAt = s.sim.observeVm("default/db-1")!.poweredOnAt;
  await s.sim.crashHost(first);
  await s.until(() => ft(s.vm("db-1"))!.state !== "Protected", 30_000);
  assert.match(ft(s.vm("db-1"))!.state, /Starting|NeedsSecondary/);
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  const vm = s.vm("db-1");
  assert.notEqual(ft(vm)!.secondaryHost, first);
  assert.notEqual(ft(vm)!.secondaryHost, "esx-01");
  assert.equal(vm.status?.host, "esx-01");
  assert.equal(s.sim.observeVm("default/db-1")!.poweredOnAt, poweredOnAt);
  assert.equal(ft(vm)!.switchovers, undefined);
});

test("a partition cuts the primary's host off: the secondary loses the race to go live, and there are never two primaries", async (t) => {
  const s = await Scenario.start(twoRacks() + FT_POLICY + ftVm("db-1", "esx-01"));
  t.after(() => s.stop());
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  await s.sim.partitionHosts(["esx-01"]);
  for (let i = 0; i < 60; i++) {
    await s.advance(1_000);
    const truth = s.sim.groundTruth();
    assert.equal(truth.switchovers.length, 0, "the secondary never went live while the primary ran");
    assert.equal(truth.vms.find((v) => v.id === "default/db-1")?.host, "esx-01");
  }
  assert.ok(s.sim.groundTruth().goLiveRefused >= 1, "the secondary tried, and lost the disk lock to the running primary");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.sim.healPartition(["esx-01"]);
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  assert.equal(s.vm("db-1").status?.host, "esx-01");
});

test("vSphere's limits: four FT VMs fill two hosts, the fifth is refused protection with the reason, and so is a VM of 10 vCPUs", async (t) => {
  let yaml = clusterYaml() + hostYaml("esx-01") + hostYaml("esx-02") + FT_POLICY;
  const names = ["db-1", "db-2", "db-3", "db-4"];
  for (const name of names) yaml += vmYaml(name, { labels: { tier: "db" }, cpu: 1 });
  const s = await Scenario.start(yaml);
  t.after(() => s.stop());
  await s.until(() => names.every((n) => protectedVm(s, n)), 120_000);

  s.apply(vmYaml("db-5", { labels: { tier: "db" }, cpu: 1 }) + vmYaml("big", { labels: { tier: "db" }, cpu: 10 }));
  await s.until(() => ft(s.vm("db-5"))?.state === "NotProtected" && ft(s.vm("big"))?.state === "NotProtected", 120_000);
  const refused = s.vm("db-5");
  assert.match(ft(refused)!.reason!, /^no host can take its secondary: /);
  assert.match(ft(refused)!.reason!, /\b1 runs its fault-tolerant primary\b/);
  assert.match(ft(refused)!.reason!, /\b1 at the FT limit of 4 VMs per host\b/);
  assert.equal(refused.status?.phase, "Running", "refused protection, not refused to run");
  assert.equal(condition(refused, "FaultTolerant")?.status, "False");
  assert.match(ft(s.vm("big"))!.reason!, /10 vCPUs; fault tolerance allows at most 8 per VM/);
  assert.ok(names.every((n) => protectedVm(s, n)), "the four keep their secondaries");
  // Per host: four FT VMs at most once the primaries are counted, primaries and secondaries alike.
  const truth = s.sim.groundTruth();
  for (const host of ["esx-01", "esx-02"]) {
    const primaries = truth.vms.filter((v) => v.host === host && names.includes(v.id.slice("default/".length))).length;
    const secondaries = truth.secondaries.filter((x) => x.host === host).length;
    assert.equal(primaries + secondaries, 4, `${host} holds ${primaries} FT primaries and ${secondaries} secondaries`);
  }
});

test("admission control counts a fault-tolerant VM's secondary: refused where the same VM without fault tolerance is admitted", async (t) => {
  const ha = "{admissionControl: {policy: ReservedPercentage, cpuPercent: 0, memoryPercent: 50}}";
  // Three hosts of 16 GiB, half of it kept free: 24 GiB to run. app takes 12; db-1 (7) fits, not with its secondary (7 more).
  const base = clusterYaml("prod", "Spread", ha) + ["esx-01", "esx-02", "esx-03"].map((h) => hostYaml(h, { memoryMiB: 16384 })).join("") + FT_POLICY + vmYaml("app", { memoryMiB: 12288 });
  const s = await Scenario.start(base);
  t.after(() => s.stop());
  await s.until(() => s.vm("app").status?.phase === "Running", 60_000);
  s.apply(vmYaml("db-1", { labels: { tier: "db" }, memoryMiB: 7168 }));
  await s.advance(10_000);
  const db = s.vm("db-1");
  assert.equal(db.status?.phase, "Pending");
  const ready = condition(db, "Ready");
  assert.match(ready?.message ?? "", /counting its fault-tolerant secondary's reservation/);

  // The same VM without fault tolerance, of the same restart priority, is admitted.
  s.apply(FT_POLICY.replace("name: ft", "name: web").replace("tier: db", "tier: web").replace("protection: FaultTolerance", "protection: Restart") + vmYaml("plain", { labels: { tier: "web" }, memoryMiB: 7168 }));
  await s.until(() => s.vm("plain").status?.phase === "Running", 60_000);
  assert.equal(s.vm("db-1").status?.phase, "Pending", "still refused with the plain VM running");
});

test("a host that crashes as it is put into maintenance: the cold evacuation planned from the last observation never stops the VM where its secondary has gone live", async (t) => {
  const vm = ftVm("db-1", "esx-01").replace("placement: {cluster: prod,", "migration: {policy: Cold}\n  placement: {cluster: prod,");
  const s = await Scenario.start(twoRacks() + FT_POLICY + vm);
  t.after(() => s.stop());
  await s.until(() => protectedVm(s, "db-1"), 120_000);
  const secondaryHost = ft(s.vm("db-1"))!.secondaryHost!;
  const poweredOnAt = s.sim.observeVm("default/db-1")!.poweredOnAt;
  await s.sim.crashHost("esx-01");
  s.apply(hostYaml("esx-01", { rack: "r1", maintenance: true }));
  for (let i = 0; i < 10; i++) {
    await s.advance(1_000);
    const now = s.sim.observeVm("default/db-1")!;
    if (now.host === secondaryHost) assert.equal(now.power, "Running", `${i + 1} s after the crash: stopped on ${secondaryHost}`);
  }
  const now = s.sim.observeVm("default/db-1")!;
  assert.deepEqual([now.host, now.power, now.poweredOnAt], [secondaryHost, "Running", poweredOnAt]);
});
