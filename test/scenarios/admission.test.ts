// HA admission control replayed on the virtual clock: power-ons beyond the failover budget wait
// InsufficientFailoverCapacity until capacity grows; failover restarts are never gated; the cluster says
// how many host failures it really tolerates, and which hosts are its worst case.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import type { VirtualMachine } from "../../controller/api/types.ts";

const TOLERATE_ONE = "{enabled: true, admissionControl: {policy: HostFailuresToTolerate, hostFailures: 1}}";

function policyYaml(name: string, spec: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: HAPolicy\nmetadata: {name: ${name}, namespace: default}\nspec: ${spec}\n---\n`;
}

/** A VM that prefers `host`, so a test knows where it runs. */
function preferring(name: string, host: string, options: Parameters<typeof vmYaml>[1] = {}): string {
  return vmYaml(name, { ...options, extra: "" }).replace("placement: {cluster: prod}", `placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: ${host}}}}]}}`);
}

function inPhase(s: Scenario, phase: string): VirtualMachine[] {
  return s.vms().filter((vm) => vm.status?.phase === phase);
}

function awaitingFailoverCapacity(s: Scenario): VirtualMachine[] {
  return s.vms().filter((vm) => vm.status?.phase === "Pending" && condition(vm, "Ready")?.reason === "InsufficientFailoverCapacity");
}

async function gauge(s: Scenario, name: "tolerableHostFailures" | "vmsAwaitingCapacity", cluster = "prod"): Promise<number | undefined> {
  const metric = await s.controller.ctx.metrics[name].get();
  return metric.values.find((v) => v.labels["cluster"] === cluster)?.value;
}

test("with HostFailuresToTolerate 1 on three hosts, VMs beyond the budget stay Pending InsufficientFailoverCapacity and start when a fourth host joins", async () => {
  // 3 × 16 GiB: one failure leaves 32 GiB, so at most eight of the ten 4 GiB VMs may run.
  const s = await Scenario.start(clusterYaml("prod", "Spread", TOLERATE_ONE) + ["h1", "h2", "h3"].map((h) => hostYaml(h, { memoryMiB: 16384 })).join("")
    + Array.from({ length: 10 }, (_, i) => vmYaml(`vm-${i}`, { memoryMiB: 4096 })).join(""));
  await s.until(() => inPhase(s, "Running").length + awaitingFailoverCapacity(s).length === 10, 120_000);
  const running = inPhase(s, "Running").length;
  assert.ok(running >= 6 && running <= 8, `${running} VMs admitted`);
  const waiting = awaitingFailoverCapacity(s);
  assert.equal(waiting.length, 10 - running);
  assert.match(condition(waiting[0]!, "Ready")?.message ?? "", /HostFailuresToTolerate 1\)/);
  assert.equal(s.cluster("prod").status?.vmsAwaitingCapacity, 10 - running);
  assert.equal(await gauge(s, "vmsAwaitingCapacity"), 10 - running);
  assert.ok((s.cluster("prod").status?.failoverCapacity?.tolerates ?? 0) >= 1, "what was admitted keeps the policy");
  assert.equal(condition(s.cluster("prod"), "FailoverCapacity")?.status, "True");

  s.apply(hostYaml("h4", { memoryMiB: 16384 }));
  await s.until(() => inPhase(s, "Running").length === 10, 120_000);
  assert.equal(s.cluster("prod").status?.vmsAwaitingCapacity, 0);
  assert.equal(await gauge(s, "vmsAwaitingCapacity"), 0);
  await s.stop();
});

test("a crash beyond the admission control budget: failover is not gated, the highest priorities win, new power-ons wait, the rest start when a host returns", async () => {
  let yaml = clusterYaml("prod", "Spread", TOLERATE_ONE) + ["h1", "h2", "h3", "h4"].map((h) => hostYaml(h, { memoryMiB: 16384 })).join("");
  yaml += policyYaml("gold", "{selector: {matchLabels: {tier: gold}}, restartPriority: Highest}");
  yaml += policyYaml("bronze", "{selector: {matchLabels: {tier: bronze}}, restartPriority: Lowest, readyTimeoutSeconds: 60}");
  // 40 GiB on 64: one failure is covered, two are not.
  yaml += ["g1", "g2"].map((n) => preferring(n, "h1", { labels: { tier: "gold" }, memoryMiB: 4096 })).join("");
  yaml += Array.from({ length: 8 }, (_, i) => vmYaml(`b${i}`, { labels: { tier: "bronze" }, memoryMiB: 4096 })).join("");
  const s = await Scenario.start(yaml);
  await s.until(() => inPhase(s, "Running").length === 10, 120_000);
  assert.equal(s.vm("g1").status?.host, "h1");

  await s.sim.crashHost("h1");
  await s.sim.crashHost("h2");
  await s.until(() => ["g1", "g2"].every((n) => s.vm(n).status?.phase === "Running" && !["h1", "h2"].includes(s.vm(n).status?.host ?? "")), 300_000);
  await s.advance(120_000);
  const stranded = s.vms().filter((vm) => vm.status?.phase === "Pending");
  assert.ok(stranded.length > 0, "32 GiB left for 40 GiB of VMs");
  assert.ok(stranded.every((vm) => vm.metadata.labels?.["tier"] === "bronze"), "the gold VMs won the room");
  assert.ok(stranded.every((vm) => condition(vm, "Ready")?.reason === "InsufficientCapacity"), "HA restarts wait for capacity, not for admission control");
  assert.equal(condition(s.cluster("prod"), "FailoverCapacity")?.status, "False");
  assert.equal(await gauge(s, "tolerableHostFailures"), 0);

  s.apply(vmYaml("newcomer", { memoryMiB: 1024 }));
  await s.advance(10_000);
  assert.equal(s.vm("newcomer").status?.phase, "Pending");
  assert.equal(condition(s.vm("newcomer"), "Ready")?.reason, "InsufficientFailoverCapacity");

  await s.sim.recoverHost("h2");
  await s.until(() => s.vms().filter((vm) => vm.metadata.name !== "newcomer").every((vm) => vm.status?.phase === "Running"), 300_000);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("ReservedPercentage 50 % of memory: VMs that would eat into the reserve wait, and one starts when another is deleted", async () => {
  const reserved = "{enabled: true, admissionControl: {policy: ReservedPercentage, cpuPercent: 0, memoryPercent: 50}}";
  const s = await Scenario.start(clusterYaml("prod", "Spread", reserved) + ["h1", "h2", "h3"].map((h) => hostYaml(h, { memoryMiB: 16384 })).join("")
    + Array.from({ length: 8 }, (_, i) => vmYaml(`vm-${i}`, { memoryMiB: 4096 })).join(""));
  await s.until(() => inPhase(s, "Running").length + awaitingFailoverCapacity(s).length === 8, 120_000);
  assert.equal(inPhase(s, "Running").length, 6, "24 of 48 GiB may be reserved");
  const waiting = awaitingFailoverCapacity(s);
  assert.equal(waiting.length, 2);
  assert.match(condition(waiting[0]!, "Ready")?.message ?? "", /ReservedPercentage cpu 0%, memory 50%\): with it running 41\.7% of memory free, below 50% \(4096 MiB short\)/);
  assert.equal(condition(s.cluster("prod"), "FailoverCapacity")?.status, "True");

  s.delete("VirtualMachine", inPhase(s, "Running")[0]!.metadata.name, "default");
  await s.until(() => inPhase(s, "Running").length === 6 && awaitingFailoverCapacity(s).length === 1, 120_000);
  await s.stop();
});

test("dedicated failover host spare runs nothing until h1 crashes, then takes h1's VMs first", async () => {
  const dedicated = "{enabled: true, admissionControl: {policy: DedicatedFailoverHosts, failoverHosts: [spare]}}";
  const s = await Scenario.start(clusterYaml("prod", "Spread", dedicated) + ["h1", "h2", "spare"].map((h) => hostYaml(h, { memoryMiB: 32768 })).join("")
    + ["a", "b", "c"].map((n) => preferring(n, "h1", { memoryMiB: 4096 })).join("") + ["d", "e", "f"].map((n) => vmYaml(n, { memoryMiB: 4096 })).join(""));
  await s.until(() => inPhase(s, "Running").length === 6, 120_000);
  assert.deepEqual(s.vms().filter((vm) => vm.status?.host === "spare"), [], "ordinary placement leaves the failover host empty");
  assert.equal(s.cluster("prod").status?.failoverCapacity?.required, 1);
  assert.equal(condition(s.cluster("prod"), "FailoverCapacity")?.status, "True");
  const victims = s.vms().filter((vm) => vm.status?.host === "h1").map((vm) => vm.metadata.name);
  assert.ok(victims.length >= 3);

  await s.sim.crashHost("h1");
  await s.until(() => victims.every((n) => s.vm(n).status?.phase === "Running" && s.vm(n).status?.host !== "h1"), 300_000);
  assert.deepEqual(victims.map((n) => s.vm(n).status?.host), victims.map(() => "spare"), "the failover host is tried first");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("the cluster reports how many host failures it tolerates and the worst case, before and after a VM is added", async () => {
  const s = await Scenario.start(clusterYaml("prod", "Spread", TOLERATE_ONE) + ["h1", "h2", "h3"].map((h) => hostYaml(h, { memoryMiB: 16384 })).join("")
    + preferring("a", "h1", { memoryMiB: 6144 }) + preferring("b", "h2", { memoryMiB: 6144 }));
  await s.until(() => inPhase(s, "Running").length === 2, 120_000);
  // Losing h1 and h2 leaves h3 with room for both: more than the one failure required.
  assert.deepEqual(s.cluster("prod").status?.failoverCapacity, { tolerates: 2, required: 1 });
  assert.match(condition(s.cluster("prod"), "FailoverCapacity")?.message ?? "", /tolerates more than 1 host failure/);
  assert.equal(await gauge(s, "tolerableHostFailures"), 2);

  s.apply(preferring("c", "h3", { memoryMiB: 6144 }));
  await s.until(() => s.vm("c").status?.phase === "Running", 120_000);
  assert.deepEqual(s.cluster("prod").status?.failoverCapacity, { tolerates: 1, required: 1, worstCase: ["h1", "h2"], unplaceable: 1 });
  assert.equal(condition(s.cluster("prod"), "FailoverCapacity")?.status, "True");
  assert.equal(condition(s.cluster("prod"), "Ready")?.status, "True");
  assert.equal(await gauge(s, "tolerableHostFailures"), 1);
  await s.stop();
});
