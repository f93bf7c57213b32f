// Scenarios of the VM lifecycle on the virtual clock: a fleet comes up, capacity runs out and returns,
// runStrategy changes take effect, deleted VMs free their hosts.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const EXAMPLES = join(import.meta.dirname, "..", "..", "manifests", "examples");

function examples(): string {
  return readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml")).sort().map((f) => readFileSync(join(EXAMPLES, f), "utf8")).join("\n---\n");
}

test("the example fleet comes up: every VM that should run is Running and Ready, the Halted one is Stopped and Ready", async () => {
  const s = await Scenario.start(examples());
  await s.until(() => s.vms().every((vm) => condition(vm, "Ready")?.status === "True"), 300_000);
  for (const vm of s.vms()) {
    const expected = vm.spec.runStrategy === "Halted" ? "Stopped" : "Running";
    assert.equal(vm.status?.phase, expected, `${vm.metadata.namespace}/${vm.metadata.name}`);
    assert.equal(vm.status?.observedGeneration, vm.metadata.generation);
  }
  const racks = ["db-1", "db-2", "db-3"].map((n) => s.host(s.vm(n, "shop").status!.host!).metadata.labels!["topology.vireo.dev/rack"]);
  assert.equal(new Set(racks).size, 3, `db VMs share a rack: ${racks.join(", ")}`);
  for (const name of ["esx-01", "kvm-01"]) assert.equal(s.host(name).status?.phase, "Ready");
  assert.equal(s.cluster("prod").status?.hostsReady, 6);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a full cluster leaves new VMs Unschedulable with the reasons, and adding a host schedules them", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1", { memoryMiB: 8192 }) + hostYaml("h2", { memoryMiB: 8192, maintenance: true })
    + vmYaml("a", { memoryMiB: 6144 }) + vmYaml("b", { memoryMiB: 6144 }));
  await s.advance(60_000);
  const placed = [s.vm("a"), s.vm("b")].filter((vm) => vm.status?.phase === "Running");
  const waiting = [s.vm("a"), s.vm("b")].filter((vm) => vm.status?.phase === "Unschedulable");
  assert.equal(placed.length, 1);
  assert.equal(waiting.length, 1);
  const stalled = condition(waiting[0]!, "Stalled");
  assert.equal(stalled?.status, "True");
  assert.equal(stalled?.message, "0/2 hosts fit: 1 in maintenance, 1 insufficient memory");
  assert.equal(condition(waiting[0]!, "Ready")?.status, "False");

  s.apply(hostYaml("h3", { memoryMiB: 8192 }));
  await s.until(() => s.vm(waiting[0]!.metadata.name).status?.phase === "Running", 120_000);
  assert.equal(s.vm(waiting[0]!.metadata.name).status?.host, "h3");
  assert.equal(condition(s.vm(waiting[0]!.metadata.name), "Stalled"), undefined);
  await s.stop();
});

test("deleting a VM frees its capacity for a VM that was waiting", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1", { memoryMiB: 8192 }) + vmYaml("a", { memoryMiB: 6144 }));
  await s.until(() => s.vm("a").status?.phase === "Running");
  s.apply(vmYaml("b", { memoryMiB: 6144 }));
  await s.advance(30_000);
  assert.equal(s.vm("b").status?.phase, "Unschedulable");
  s.delete("VirtualMachine", "a", "default");
  await s.until(() => s.vm("b").status?.phase === "Running", 120_000);
  assert.equal(s.sim.observeVm("default/a"), undefined, "the deleted VM is gone from the hosts");
  await s.stop();
});

test("runStrategy Halted stops a running VM and Always starts it again", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("a"));
  await s.until(() => s.vm("a").status?.phase === "Running");
  s.apply(vmYaml("a", { runStrategy: "Halted" }));
  await s.until(() => s.vm("a").status?.phase === "Stopped");
  assert.equal(condition(s.vm("a"), "Ready")?.status, "True", "a Halted VM that is stopped is Ready");
  assert.equal(s.sim.observeVm("default/a")?.power ?? "Off", "Off");
  s.apply(vmYaml("a", { runStrategy: "Always" }));
  await s.until(() => s.vm("a").status?.phase === "Running");
  assert.equal(s.vm("a").status?.restarts, undefined, "a start the user asked for is not a restart");
  await s.stop();
});

test("Always restarts a VM whose guest shut down; RerunOnFailure leaves it off but restarts it after a crash", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("always") + vmYaml("rerun", { runStrategy: "RerunOnFailure" }) + vmYaml("crashy", { runStrategy: "RerunOnFailure" }));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  await s.sim.guestShutdown("default/always");
  await s.sim.guestShutdown("default/rerun");
  await s.sim.crashVm("default/crashy");
  await s.advance(120_000);
  assert.equal(s.vm("always").status?.phase, "Running");
  assert.equal(s.vm("always").status?.restarts, 1);
  assert.equal(s.vm("rerun").status?.phase, "Stopped");
  assert.equal(s.vm("rerun").status?.lastExit?.reason, "GuestShutdown");
  assert.equal(condition(s.vm("rerun"), "Ready")?.status, "True");
  assert.equal(s.vm("crashy").status?.phase, "Running");
  assert.equal(s.vm("crashy").status?.restarts, 1);
  await s.stop();
});

test("Once runs a VM a single time: once its run ends, even by a crash, it stays off", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("job", { runStrategy: "Once" }));
  await s.until(() => s.vm("job").status?.phase === "Running");
  await s.sim.crashVm("default/job");
  await s.advance(120_000);
  assert.equal(s.vm("job").status?.phase, "Stopped");
  assert.equal(condition(s.vm("job"), "Ready")?.reason, "Completed");
  await s.stop();
});

test("Manual leaves the power state alone: Vireo neither starts nor stops the VM", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("m", { runStrategy: "Manual" }));
  await s.advance(60_000);
  assert.equal(s.vm("m").status?.phase, "Stopped");
  assert.equal(s.sim.observeVm("default/m"), undefined);
  await s.stop();
});

test("a memory increase the host cannot hold re-places the VM with a power cycle, keeping its MAC", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1", { memoryMiB: 16384 }) + hostYaml("h2", { memoryMiB: 65536 })
    + vmYaml("filler", { memoryMiB: 8192, extra: "  placement: {cluster: prod, hostAffinity: {required: [{matchLabels: {vireo.dev/host: h1}}]}}\n" }).replace("  placement: {cluster: prod}\n", "")
    + vmYaml("grow", { memoryMiB: 4096, extra: "  placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}\n" }).replace("  placement: {cluster: prod}\n", ""));
  await s.until(() => s.vm("grow").status?.phase === "Running" && s.vm("filler").status?.phase === "Running");
  assert.equal(s.vm("grow").status?.host, "h1");
  const mac = s.vm("grow").status?.networks?.[0]?.macAddress;
  assert.match(mac ?? "", /^02:76:69(:[0-9a-f]{2}){3}$/);

  s.apply(vmYaml("grow", { memoryMiB: 12288, extra: "  placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}\n" }).replace("  placement: {cluster: prod}\n", ""));
  await s.until(() => s.vm("grow").status?.phase === "Running" && s.sim.observeVm("default/grow")?.config.memoryMiB === 12288);
  assert.equal(s.vm("grow").status?.host, "h2");
  assert.equal(s.vm("grow").status?.networks?.[0]?.macAddress, mac, "the MAC survives re-placement");
  assert.equal(s.vm("grow").status?.observedGeneration, 2);
  await s.stop();
});

test("every VM gets a distinct, stable MAC; a MAC given in the spec is used as is", async () => {
  let yaml = clusterYaml() + hostYaml("h1", { memoryMiB: 262144, cores: 64 });
  for (let i = 0; i < 50; i++) yaml += vmYaml(`vm-${i}`, { memoryMiB: 1024, cpu: 1 });
  yaml += vmYaml("given", { extra: "" }).replace("networks: [{name: prod}]", "networks: [{name: prod, macAddress: \"02:00:00:00:00:01\"}]");
  const s = await Scenario.start(yaml);
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  const macs = s.vms().map((vm) => vm.status!.networks![0]!.macAddress);
  assert.equal(new Set(macs).size, macs.length);
  assert.equal(s.vm("given").status?.networks?.[0]?.macAddress, "02:00:00:00:00:01");
  assert.equal(s.sim.observeVm("default/given")?.config.nics[0]?.macAddress, "02:00:00:00:00:01");
  await s.stop();
});

test("a host put in maintenance is evacuated: its VMs restart elsewhere and it reaches Maintenance", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("a") + vmYaml("b") + vmYaml("c") + vmYaml("d"));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  s.apply(hostYaml("h1", { maintenance: true }));
  await s.until(() => s.host("h1").status?.phase === "Maintenance" && s.vms().every((vm) => vm.status?.phase === "Running"), 300_000);
  for (const vm of s.vms()) assert.equal(vm.status?.host, "h2");
  assert.equal(condition(s.host("h1"), "Ready")?.status, "True", "maintenance reached is the desired state");
  await s.stop();
});

test("a VM whose cluster does not exist is Stalled with the reason", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("lost", { cluster: "nowhere" }));
  await s.advance(10_000);
  assert.equal(s.vm("lost").status?.phase, "Pending");
  assert.equal(condition(s.vm("lost"), "Stalled")?.reason, "ClusterNotFound");
  await s.stop();
});

test("a guest that hangs while asked to shut down is powered off once the grace period is over", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("stuck"));
  await s.until(() => s.vm("stuck").status?.phase === "Running");
  await s.sim.hangGuest("default/stuck");
  s.apply(vmYaml("stuck", { runStrategy: "Halted" }));
  await s.advance(120_000);
  assert.equal(s.vm("stuck").status?.phase, "Stopping", "a hung guest ignores the shutdown request");
  await s.until(() => s.vm("stuck").status?.phase === "Stopped", 120_000);
  assert.equal(s.sim.observeVm("default/stuck")?.power, "Off");
  assert.equal(condition(s.vm("stuck"), "Ready")?.status, "True");
  await s.stop();
});

test("status that differs only in the order of its keys, as the API server returns it, is not written again", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + vmYaml("a") + vmYaml("b"));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"));
  // The API server hands custom resources back with their keys sorted; the store then holds that form.
  const sortKeys = (value: unknown): unknown => Array.isArray(value) ? value.map(sortKeys)
    : value && typeof value === "object" ? Object.fromEntries(Object.entries(value).sort(([x], [y]) => x.localeCompare(y)).map(([k, v]) => [k, sortKeys(v)])) : value;
  for (const vm of s.vms()) s.store.setStatus(`VirtualMachine/default/${vm.metadata.name}`, sortKeys(vm.status) as typeof vm.status);
  const written: string[] = [];
  s.onStatus = (key) => { if (key.startsWith("VirtualMachine/")) written.push(key); };
  await s.sim.crashVm("default/b"); // wakes both VMs' host, and with it every VM on it
  await s.until(() => s.vm("b").status?.restarts === 1 && s.vm("b").status?.phase === "Running");
  assert.equal(s.vm("a").status?.phase, "Running");
  assert.deepEqual(written.filter((key) => key.endsWith("/a")), [], "a's status did not change, so it was not written");
  await s.stop();
});

test("a host that refuses a power-on it was offered (cut off, its heartbeat not yet missed) is retried with backoff, not in a tight loop, and the VM starts once it answers", async () => {
  const pinned = vmYaml("b").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {required: [{matchLabels: {vireo.dev/host: h0}}]}}");
  const s = await Scenario.start(clusterYaml("prod", "Spread", "{enabled: false}") + hostYaml("h0") + hostYaml("h1"));
  await s.advance(5_000);
  await s.sim.isolateHost("h0");
  const rounds = async () => (await s.controller.ctx.metrics.reconciles.get()).values.filter((v) => v.labels["kind"] === "HostCluster").reduce((sum, v) => sum + v.value, 0);
  const before = await rounds();
  s.apply(pinned);
  await s.advance(10_000);
  assert.ok((await rounds()) - before < 100, `the cluster retried the refused start ${(await rounds()) - before} times in 10 s`);
  assert.notEqual(s.vm("b").status?.phase, "Running");
  await s.sim.healIsolation("h0");
  await s.until(() => s.vm("b").status?.phase === "Running" && s.vm("b").status?.host === "h0", 300_000);
  await s.stop();
});
