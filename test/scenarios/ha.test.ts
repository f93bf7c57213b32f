// HA incidents replayed on the virtual clock: hosts crash, lose the network or their peers, come back and
// fail again; VMs come back elsewhere in priority order, fenced by their disk leases, never twice.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import type { VirtualMachine } from "../../controller/api/types.ts";

function policyYaml(name: string, spec: string, namespace = "default"): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec.split("\n").filter(Boolean).map((l) => `  ${l}`).join("\n")}
---
`;
}

function faultYaml(name: string, spec: string): string {
  return `apiVersion: vireo.dev/v1alpha1
kind: Fault
metadata: {name: ${name}}
spec: ${spec}
---
`;
}

/** Every protected VM of `names`, running and Ready on a host other than `notOn`. */
function readyElsewhere(s: Scenario, names: readonly string[], notOn: readonly string[]): boolean {
  return names.every((n) => {
    const vm = s.vm(n);
    return vm.status?.phase === "Running" && condition(vm, "Ready")?.status === "True" && !notOn.includes(vm.status.host ?? "");
  });
}

/** A VM that prefers `host`, so a test knows where it runs. */
function preferring(name: string, host: string, options: Parameters<typeof vmYaml>[1] = {}): string {
  return vmYaml(name, { ...options, extra: "" }).replace("placement: {cluster: prod}", `placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: ${host}}}}]}}`);
}

function on(s: Scenario, host: string): VirtualMachine[] {
  return s.vms().filter((vm) => vm.status?.host === host);
}

test("host esx-01 crashes with 40 VMs of three priorities: db VMs are powered on elsewhere before app VMs start, web VMs last, all within the floor", async (t) => {
  let yaml = clusterYaml() + ["esx-01", "esx-02", "esx-03", "esx-04"].map((h) => hostYaml(h, { cores: 64, memoryMiB: 262144 })).join("");
  yaml += policyYaml("db", "selector: {matchLabels: {tier: db}}\nrestartPriority: Highest\nreadyCondition: PoweredOn");
  yaml += policyYaml("app", "selector: {matchLabels: {tier: app}}\nrestartPriority: Medium\nstartAfter: [db]");
  yaml += policyYaml("web", "selector: {matchLabels: {tier: web}}\nrestartPriority: Low");
  const tiers = { db: 10, app: 15, web: 15 };
  const names: string[] = [];
  for (const [tier, count] of Object.entries(tiers)) {
    for (let i = 0; i < count; i++) {
      names.push(`${tier}-${i}`);
      yaml += vmYaml(`${tier}-${i}`, { labels: { tier }, cpu: 1, memoryMiB: 2048, extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-01}}}]}}");
    }
  }
  const s = await Scenario.start(yaml);
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  const victims = on(s, "esx-01").map((vm) => vm.metadata.name);
  assert.equal(victims.length, 40, "every VM prefers esx-01 and fits there");

  await s.advance(7_300);
  const crashAt = s.clock.now();
  await s.sim.crashHost("esx-01");
  await s.until(() => readyElsewhere(s, victims, ["esx-01"]), 300_000);
  const recovery = s.clock.now() - crashAt;

  const poweredOn = (n: string) => s.sim.observeVm(`default/${n}`)!.poweredOnAt!;
  const running = (n: string) => s.sim.observeVm(`default/${n}`)!.since;
  const db = names.filter((n) => n.startsWith("db-"));
  const app = names.filter((n) => n.startsWith("app-"));
  const web = names.filter((n) => n.startsWith("web-"));
  const lastDbRunning = Math.max(...db.map(running));
  assert.ok(Math.min(...app.map(poweredOn)) >= lastDbRunning, "app VMs start only once every db VM is powered on (startAfter: [db], readyCondition PoweredOn)");
  assert.ok(Math.min(...web.map(poweredOn)) >= Math.max(...app.map(poweredOn)), "Low priority starts after Medium");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  assert.equal(s.host("esx-01").status?.phase, "Failed");

  const { bootMs, lockExpiryMs } = s.sim.timings;
  const floor = 15_000 + 0 + bootMs; // detection, then boot; the lease (≤ lockExpiryMs after the crash) overlaps detection
  const floorWithLease = Math.max(15_000, lockExpiryMs) + bootMs;
  t.diagnostic(`crash to last VM Ready: ${recovery / 1000}s; floor (detection ${15}s, lease expiry ≤ ${lockExpiryMs / 1000}s, boot ${bootMs / 1000}s): ${floorWithLease / 1000}s; three tiers in sequence add a boot per readyCondition PoweredOn`);
  assert.ok(recovery >= floor, "nothing restarts before detection and boot");
  assert.ok(recovery <= floorWithLease + 2 * bootMs + 5_000, `recovered in ${recovery / 1000}s`);
  const failover = s.vm("db-0").status?.lastFailover;
  assert.equal(failover?.fromHost, "esx-01");
  assert.equal(failover?.reason, "HostFailure");
  assert.ok(s.events.some((e) => e.reason === "FailoverRestart" && /was on esx-01/.test(e.message)));
  await s.stop();
});

test("a VM is not restarted before the failed host's lease on its disks can have expired: zero split-brain attempts", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + preferring("a", "h1"), { timings: { lockRenewIntervalMs: 20_000, lockExpiryMs: 80_000 } });
  await s.until(() => s.vm("a").status?.phase === "Running");
  assert.equal(s.vm("a").status?.host, "h1");
  await s.sim.crashHost("h1");
  await s.advance(30_000);
  assert.equal(s.host("h1").status?.phase, "Failed");
  assert.equal(s.vm("a").status?.phase, "Pending");
  assert.equal(condition(s.vm("a"), "Ready")?.reason, "WaitingForLeaseExpiry");
  await s.until(() => readyElsewhere(s, ["a"], ["h1"]), 200_000);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

for (const response of ["PowerOff", "Shutdown", "LeavePoweredOn"] as const) {
  test(`host h1 is isolated with isolation response ${response}: ${response === "LeavePoweredOn" ? "its VMs keep running there and are never started twice" : "its VMs are turned off by the host and restarted elsewhere"}`, async () => {
    const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2")
      + policyYaml("all", `selector: {}\nisolationResponse: ${response}`)
      + vmYaml("a", { extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}"));
    await s.until(() => s.vm("a").status?.phase === "Running");
    assert.equal(s.vm("a").status?.host, "h1");
    await s.sim.isolateHost("h1");
    await s.advance(40_000);
    assert.equal(s.host("h1").status?.phase, "Isolated", "silent on the network, datastore heartbeat fresh, declared itself isolated");
    if (response === "LeavePoweredOn") {
      await s.advance(600_000);
      assert.equal(s.sim.observeVm("default/a")?.host, "h1");
      assert.equal(s.sim.observeVm("default/a")?.power, "Running");
    } else {
      await s.until(() => readyElsewhere(s, ["a"], ["h1"]), 200_000);
      assert.equal(s.sim.observeVm("default/a")?.host, "h2");
      const exit = s.vm("a").status?.lastExit;
      assert.equal(exit?.reason, "IsolationResponse");
      assert.equal(s.vm("a").status?.lastFailover?.reason, "HostIsolation");
    }
    await s.sim.healIsolation("h1");
    await s.advance(30_000);
    assert.equal(s.host("h1").status?.phase, "Ready");
    assert.equal(s.sim.groundTruth().vms.filter((vm) => vm.power !== "Off").length, 1, "exactly one copy runs");
    assert.equal(s.sim.splitBrainAttempts(), 0);
    await s.stop();
  });
}

test("hosts h1 and h2 are partitioned from the rest: they are Partitioned, never Failed, and their VMs keep running there", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + hostYaml("h3") + vmYaml("a") + vmYaml("b") + vmYaml("c"));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  const before = new Map(s.vms().map((vm) => [vm.metadata.name, vm.status?.host]));
  await s.sim.partitionHosts(["h1", "h2"]);
  await s.advance(300_000);
  assert.equal(s.host("h1").status?.phase, "Partitioned");
  assert.equal(s.host("h2").status?.phase, "Partitioned");
  for (const vm of s.vms()) assert.equal(s.sim.observeVm(`default/${vm.metadata.name}`)?.host, before.get(vm.metadata.name));
  await s.sim.healPartition(["h1", "h2"]);
  await s.advance(5_000);
  assert.equal(s.host("h1").status?.phase, "Ready");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  assert.equal(s.events.filter((e) => e.reason === "FailoverRestart").length, 0);
  await s.stop();
});

test("host h1 flaps (down, up, down): its VM restarts elsewhere once, and the returning host resurrects nothing", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + hostYaml("h3")
    + vmYaml("a", { extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  await s.sim.crashHost("h1");
  await s.advance(10_000);
  await s.sim.recoverHost("h1");
  await s.advance(5_000);
  await s.sim.crashHost("h1");
  await s.until(() => readyElsewhere(s, ["a"], ["h1"]), 300_000);
  await s.sim.recoverHost("h1");
  await s.advance(120_000);
  assert.equal(s.sim.groundTruth().vms.filter((vm) => vm.power !== "Off").length, 1);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("two hosts fail at once: every protected VM of both is Ready on the third", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + hostYaml("h3", { memoryMiB: 262144, cores: 64 })
    + ["a", "b", "c", "d", "e", "f"].map((n) => vmYaml(n)).join(""));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  const victims = s.vms().filter((vm) => vm.status?.host !== "h3").map((vm) => vm.metadata.name);
  await s.sim.crashHost("h1");
  await s.sim.crashHost("h2");
  await s.until(() => readyElsewhere(s, victims, ["h1", "h2"]), 300_000);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("the failed host returns while its VMs restart elsewhere: no VM runs twice", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2")
    + ["a", "b", "c"].map((n) => vmYaml(n, { extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}")).join(""));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  await s.sim.crashHost("h1");
  await s.until(() => s.events.some((e) => e.reason === "FailoverRestart"), 120_000, 500);
  await s.sim.recoverHost("h1");
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running" && condition(vm, "Ready")?.status === "True"), 300_000);
  const running = s.sim.groundTruth().vms.filter((vm) => vm.power !== "Off");
  assert.equal(running.length, 3);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a VM on a local datastore of the failed host cannot restart elsewhere, and says so", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1", { datastores: ["shared", "local-h1"] }) + hostYaml("h2")
    + vmYaml("local").replace("datastore: shared", "datastore: local-h1"));
  await s.until(() => s.vm("local").status?.phase === "Running");
  await s.sim.crashHost("h1");
  await s.advance(120_000);
  const vm = s.vm("local");
  assert.equal(vm.status?.phase, "Pending");
  assert.equal(condition(vm, "Ready")?.reason, "InsufficientCapacity");
  assert.match(condition(vm, "Ready")?.message ?? "", /datastore/);
  await s.stop();
});

test("a crash beyond the cluster's capacity: the highest priorities run, the rest wait Pending and start when the host returns", async () => {
  let yaml = clusterYaml() + hostYaml("h1", { memoryMiB: 16384 }) + hostYaml("h2", { memoryMiB: 16384 });
  yaml += policyYaml("gold", "selector: {matchLabels: {tier: gold}}\nrestartPriority: Highest");
  yaml += policyYaml("bronze", "selector: {matchLabels: {tier: bronze}}\nrestartPriority: Lowest\nreadyTimeoutSeconds: 60");
  for (const [name, tier, host] of [["g1", "gold", "h1"], ["g2", "gold", "h1"], ["b1", "bronze", "h1"], ["b2", "bronze", "h1"], ["x1", "bronze", "h2"], ["x2", "bronze", "h2"]] as const) {
    yaml += vmYaml(name, { labels: { tier }, memoryMiB: 4096, extra: "" }).replace("placement: {cluster: prod}", `placement: {cluster: prod, hostAffinity: {required: [{matchExpressions: [{key: vireo.dev/host, operator: In, values: [h1, h2]}]}], preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: ${host}}}}]}}`);
  }
  const s = await Scenario.start(yaml);
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  await s.sim.crashHost("h1");
  await s.until(() => readyElsewhere(s, ["g1", "g2"], ["h1"]), 300_000);
  await s.advance(120_000);
  assert.deepEqual(["b1", "b2"].map((n) => s.vm(n).status?.phase), ["Pending", "Pending"]);
  assert.equal(condition(s.vm("b1"), "Ready")?.reason, "InsufficientCapacity");
  await s.sim.recoverHost("h1");
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"), 300_000);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a hung guest is reset by VM monitoring, at most maxResets times, then marked Failed", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1")
    + policyYaml("watched", "selector: {}\nvmMonitoring: {enabled: true, sensitivity: High, maxResets: 2}") + vmYaml("a"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  await s.advance(150_000);
  for (let reset = 1; reset <= 2; reset++) {
    await s.sim.hangGuest("default/a");
    await s.until(() => s.vm("a").status?.monitoringResets?.count === reset, 600_000);
    await s.until(() => s.vm("a").status?.phase === "Running", 120_000);
    await s.advance(150_000);
  }
  await s.sim.hangGuest("default/a");
  await s.until(() => s.vm("a").status?.phase === "Failed", 600_000);
  assert.equal(condition(s.vm("a"), "Stalled")?.reason, "ResetLimitReached");
  assert.equal(s.events.filter((e) => e.reason === "VmMonitoringReset").length, 2);
  await s.stop();
});

test("VM monitoring's reset count is reported while its window lasts and goes once the window is over", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1")
    + policyYaml("watched", "selector: {}\nvmMonitoring: {enabled: true, sensitivity: High, resetWindowSeconds: 600}") + vmYaml("a"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  await s.advance(150_000);
  await s.sim.hangGuest("default/a");
  await s.until(() => s.vm("a").status?.monitoringResets?.count === 1, 600_000);
  await s.until(() => s.vm("a").status?.phase === "Running", 120_000);
  const windowStart = Date.parse(s.vm("a").status!.monitoringResets!.windowStart);
  await s.until(() => s.clock.now() > windowStart + 600_000 && s.vm("a").status?.monitoringResets === undefined, 900_000);
  assert.equal(s.vm("a").status?.phase, "Running");
  await s.stop();
});

test("a Fault drill crashes esx-01 for two minutes: its VMs restart elsewhere, the Fault goes Pending → Active → Healed", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("esx-01") + hostYaml("esx-02")
    + vmYaml("a", { extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-01}}}]}}"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  s.apply(faultYaml("crash-esx-01", "{type: HostCrash, target: {host: esx-01}, startAfterSeconds: 10, durationSeconds: 120}"));
  await s.advance(2_000);
  assert.equal(s.store.list("Fault")[0]?.status?.phase, "Pending");
  await s.advance(10_000);
  assert.equal(s.store.list("Fault")[0]?.status?.phase, "Active");
  await s.until(() => readyElsewhere(s, ["a"], ["esx-01"]), 120_000);
  await s.until(() => s.store.list("Fault")[0]?.status?.phase === "Healed", 200_000);
  await s.until(() => s.host("esx-01").status?.phase === "Ready", 30_000);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("deleting an active NetworkIsolation Fault heals the host", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("a"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  s.apply(faultYaml("isolate-h1", "{type: NetworkIsolation, target: {host: h1}}"));
  await s.advance(40_000);
  assert.equal(s.host("h1").status?.phase, "Isolated");
  s.delete("Fault", "isolate-h1");
  await s.advance(5_000);
  assert.equal(s.host("h1").status?.phase, "Ready");
  await s.stop();
});

test("the controller is killed in the middle of a failover and a new one finishes it: no VM started twice", async () => {
  let yaml = clusterYaml() + hostYaml("h1", { memoryMiB: 262144, cores: 64 }) + hostYaml("h2", { memoryMiB: 262144, cores: 64 }) + hostYaml("h3", { memoryMiB: 262144, cores: 64 });
  yaml += policyYaml("first", "selector: {matchLabels: {tier: first}}\nrestartPriority: Highest\nreadyCondition: PoweredOn");
  yaml += policyYaml("second", "selector: {matchLabels: {tier: second}}\nrestartPriority: Low");
  for (let i = 0; i < 10; i++) {
    yaml += vmYaml(`v${i}`, { labels: { tier: i < 5 ? "first" : "second" }, extra: "" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}");
  }
  const s = await Scenario.start(yaml);
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  await s.sim.crashHost("h1");
  await s.until(() => s.events.filter((e) => e.reason === "FailoverRestart").length >= 5, 120_000, 500);
  assert.ok(s.events.filter((e) => e.reason === "FailoverRestart").length < 10, "killed between the two priorities");
  const poweredOnBefore = new Map(s.sim.groundTruth().vms.filter((vm) => vm.power !== "Off").map((vm) => [vm.id, s.sim.observeVm(vm.id)!.poweredOnAt]));
  await s.restartController();
  await s.until(() => readyElsewhere(s, s.vms().map((vm) => vm.metadata.name), ["h1"]), 300_000);
  for (const [id, at] of poweredOnBefore) assert.equal(s.sim.observeVm(id)?.poweredOnAt, at, `${id} was not started again`);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});
