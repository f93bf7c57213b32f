// Drift on the virtual clock: an administrator changes the hosts behind Vireo's back; the next observation
// shows it as drift (status.drift and the Drifted condition) within one reconcile, Vireo heals it, and the
// condition goes away. Drift it cannot heal stays reported with the reason; a VM nobody declared is
// reported on its host and left alone.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import type { DriftStatus, VirtualMachineStatus } from "../../controller/api/types.ts";
import { objectKey } from "../../controller/api/types.ts";
import { attachStoreGauges } from "../../controller/observe/metrics.ts";

const VM_KEY = objectKey("VirtualMachine", "web", "default");

/** Three hosts in rack r1 and r2, one VM `web` Running; every status written is kept. */
async function fleet(options: { vm?: Parameters<typeof vmYaml>[1]; hosts?: string } = {}): Promise<{ s: Scenario; writes: { key: string; status: VirtualMachineStatus }[] }> {
  const hosts = options.hosts ?? hostYaml("esx-01", { rack: "r1", networks: ["prod", "lab"] }) + hostYaml("esx-02", { rack: "r1", networks: ["prod", "lab"] }) + hostYaml("esx-03", { rack: "r2", networks: ["prod", "lab"] });
  const s = await Scenario.start(clusterYaml() + hosts + vmYaml("web", options.vm));
  await s.until(() => s.vm("web").status?.phase === "Running");
  const writes: { key: string; status: VirtualMachineStatus }[] = [];
  s.onStatus = (key, status) => writes.push({ key, status: status as VirtualMachineStatus });
  return { s, writes };
}

/** The first status of `key` written after the out-of-band change: drift must already be in it. */
function firstWrite(writes: readonly { key: string; status: VirtualMachineStatus }[], key = VM_KEY): VirtualMachineStatus {
  const write = writes.find((w) => w.key === key);
  assert.ok(write, `no status written for ${key}`);
  return write.status;
}

function drifted(status: { conditions?: readonly { type: string; status: string; reason: string; message: string; lastTransitionTime: string }[] } | undefined) {
  return status?.conditions?.find((c) => c.type === "Drifted");
}

async function healed(s: Scenario, phase = "Running"): Promise<void> {
  await s.until(() => s.vm("web").status?.phase === phase && drifted(s.vm("web").status) === undefined, 300_000);
  assert.equal(s.vm("web").status?.drift, undefined, "status.drift is gone once healed");
  assert.equal(condition(s.vm("web"), "Ready")?.status, "True");
}

test("a VM powered off behind Vireo's back is drifted in the next reconcile, started again, and the condition clears", async () => {
  const { s, writes } = await fleet();
  await s.sim.adminPowerOff("default/web");
  const at = new Date(s.clock.now()).toISOString();
  await s.controller.observe();
  await s.controller.idle();

  const first = firstWrite(writes);
  assert.deepEqual(first.drift?.operations, [{ op: "replace", path: "/power", value: "Off" }]);
  assert.equal(first.drift?.count, 1);
  assert.equal(first.drift?.since, at);
  const c = drifted(first);
  assert.equal(c?.status, "True");
  assert.equal(c?.reason, "PowerState");
  assert.equal(c?.lastTransitionTime, at, "the condition says when drift began");
  assert.match(c!.message, /^observed power Off; correcting: /);

  await healed(s);
  assert.equal(s.sim.observeVm("default/web")?.power, "Running");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a Halted VM powered on behind Vireo's back is drifted, shut down again, and the condition clears", async () => {
  const { s, writes } = await fleet();
  s.apply(vmYaml("web", { runStrategy: "Halted" }));
  await s.until(() => s.vm("web").status?.phase === "Stopped");
  writes.length = 0;
  await s.sim.adminPowerOn("default/web");
  await s.controller.observe();
  await s.controller.idle();

  const first = firstWrite(writes);
  assert.deepEqual(first.drift?.operations[0], { op: "replace", path: "/power", value: "On" });
  assert.match(drifted(first)!.message, /correcting: shutting down/);
  await healed(s, "Stopped");
  assert.equal(s.sim.observeVm("default/web")?.power, "Off");
  await s.stop();
});

test("a VM moved to a host its required affinity forbids is drifted and moved back; a move its rules allow is no drift", async () => {
  const affinity = `  placement:
    cluster: prod
    hostAffinity:
      required: [{matchExpressions: [{key: topology.vireo.dev/rack, operator: In, values: [r1]}]}]
`;
  const { s, writes } = await fleet({ vm: { extra: "" } });
  s.apply(vmYaml("web").replace("  placement: {cluster: prod}\n", affinity));
  await s.advance(5_000);
  const home = s.vm("web").status!.host!;
  assert.notEqual(home, "esx-03");

  // Allowed: the other r1 host. Observed, reconciled, and no drift at any point.
  const other = home === "esx-01" ? "esx-02" : "esx-01";
  writes.length = 0;
  await s.sim.adminMove("default/web", other);
  await s.controller.observe();
  await s.controller.idle();
  assert.equal(s.vm("web").status?.host, other);
  assert.ok(writes.every((w) => w.key !== VM_KEY || drifted(w.status) === undefined), "a move the rules allow is not drift");

  // Forbidden: rack r2.
  writes.length = 0;
  await s.sim.adminMove("default/web", "esx-03");
  await s.controller.observe();
  await s.controller.idle();
  const first = firstWrite(writes);
  assert.deepEqual(first.drift?.operations, [{ op: "replace", path: "/placement", value: "Forbidden on esx-03: host does not match the required host affinity" }]);
  assert.equal(drifted(first)?.reason, "Placement");
  assert.match(drifted(first)!.message, /correcting: shutting down \(its rules forbid host esx-03/);

  await healed(s);
  assert.notEqual(s.vm("web").status?.host, "esx-03");
  await s.stop();
});

test("memory taken away and a network added behind Vireo's back are drifted and healed by a power cycle", async () => {
  const { s, writes } = await fleet({ vm: { memoryMiB: 8192 } });
  await s.sim.adminSetMemory("default/web", 4096);
  await s.sim.adminSetNetworks("default/web", ["prod", "lab"]);
  await s.controller.observe();
  await s.controller.idle();

  const first = firstWrite(writes);
  assert.deepEqual(first.drift?.operations, [
    { op: "add", path: "/networks/1", value: "lab" },
    { op: "replace", path: "/memoryMiB", value: "4096" },
  ]);
  assert.equal(drifted(first)?.reason, "Configuration");
  assert.match(drifted(first)!.message, /^observed networks\/1 \+lab, memoryMiB 4096; correcting: shutting down \(spec changed/);

  await healed(s);
  const running = s.sim.observeVm("default/web")!;
  assert.equal(running.config.memoryMiB, 8192);
  assert.deepEqual(running.config.nics.map((n) => n.network), ["prod"]);
  assert.equal(running.config.nics[0]!.macAddress, s.vm("web").status!.networks![0]!.macAddress, "the VM keeps its MAC");
  await s.stop();
});

test("a VM nobody declared is reported on its host as an orphan, with an event, and never deleted", async () => {
  const { s } = await fleet();
  await s.sim.adminCreateVm("ops/rogue", "esx-02", { cpu: 1, memoryMiB: 1024, networks: ["prod"] });
  await s.controller.observe();
  await s.controller.idle();

  const host = s.host("esx-02");
  assert.deepEqual(host.status?.drift?.operations, [{ op: "add", path: "/unknownVms/0", value: "ops/rogue" }]);
  const c = drifted(host.status);
  assert.equal(c?.reason, "UnknownVms");
  assert.match(c!.message, /Vireo never deletes a VM it did not create/);
  assert.equal(s.events.filter((e) => e.reason === "UnknownVm" && e.object === "Host/esx-02").length, 1);

  await s.advance(600_000);
  assert.equal(s.sim.observeVm("ops/rogue")?.power, "Running", "the orphan is left alone");
  assert.equal(s.events.filter((e) => e.reason === "UnknownVm").length, 1, "one event, not one per reconcile");
  assert.ok(drifted(s.host("esx-02").status));
  assert.equal(drifted(s.host("esx-01").status), undefined);
  attachStoreGauges(s.controller.ctx.metrics, s.store);
  const scrape = await s.controller.ctx.metrics.registry.metrics();
  assert.match(scrape, /^vireo_object_drifted\{kind="Host",namespace="",name="esx-02"\} 1$/m);
  assert.match(scrape, /^vireo_objects_drifted\{kind="Host"\} 1$/m);
  await s.stop();
});

test("drift that cannot be healed for want of capacity stays reported with the reason until capacity returns", async () => {
  const { s, writes } = await fleet({ hosts: hostYaml("esx-01", { memoryMiB: 8192 }), vm: { memoryMiB: 6144 } });
  // Behind Vireo's back: the VM is powered off and someone else's VM takes its room.
  await s.sim.adminPowerOff("default/web");
  await s.sim.adminCreateVm("ops/squatter", "esx-01", { cpu: 2, memoryMiB: 6144 });
  await s.controller.observe();
  await s.controller.idle();
  assert.deepEqual(firstWrite(writes).drift?.operations, [{ op: "replace", path: "/power", value: "Off" }]);

  await s.advance(120_000);
  const vm = s.vm("web");
  const c = drifted(vm.status);
  assert.equal(c?.status, "True");
  assert.match(c!.message, /^observed power Off; cannot correct yet: .*0\/1 hosts fit: 1 insufficient memory$/);
  const since: DriftStatus["since"] | undefined = vm.status?.drift?.since;
  assert.ok(since && Date.parse(since) < s.clock.now() - 60_000, "drift keeps the time it began");
  assert.equal(s.sim.observeVm("ops/squatter")?.power, "Running", "Vireo does not make room by deleting what it did not create");

  // The administrator removes the squatter: Vireo heals the drift.
  await s.sim.removeVm("ops/squatter");
  await healed(s);
  await s.stop();
});

test("two VMs that must not share a host, put together by hand, are drifted: the later by name moves away", async () => {
  const antiAffinity = `  placement:
    cluster: prod
    vmAntiAffinity:
      required: [{labelSelector: {matchLabels: {tier: db}}, topologyKey: vireo.dev/host}]
`;
  const db = (name: string) => vmYaml(name, { labels: { tier: "db" } }).replace("  placement: {cluster: prod}\n", antiAffinity);
  const s = await Scenario.start(clusterYaml() + hostYaml("esx-01") + hostYaml("esx-02") + db("db-a") + db("db-b"));
  await s.until(() => s.vm("db-a").status?.phase === "Running" && s.vm("db-b").status?.phase === "Running");
  const hostOfA = s.vm("db-a").status!.host!;
  assert.notEqual(s.vm("db-b").status?.host, hostOfA);
  const writes: { key: string; status: VirtualMachineStatus }[] = [];
  s.onStatus = (key, status) => writes.push({ key, status: status as VirtualMachineStatus });

  await s.sim.adminMove("default/db-b", hostOfA);
  await s.controller.observe();
  await s.controller.idle();
  const first = firstWrite(writes, objectKey("VirtualMachine", "db-b", "default"));
  assert.equal(drifted(first)?.reason, "Placement");
  assert.match(first.drift!.operations[0]!.value ?? "", /VM anti-affinity with default\/db-a on host /);
  assert.equal(writes.some((w) => w.key.endsWith("/db-a") && drifted(w.status) !== undefined), false, "only one of the two is asked to move");

  await s.until(() => s.vm("db-b").status?.phase === "Running" && drifted(s.vm("db-b").status) === undefined, 300_000);
  assert.notEqual(s.vm("db-b").status?.host, s.vm("db-a").status?.host);
  assert.equal(s.vm("db-a").status?.host, hostOfA, "the VM that did not break the rule stays");
  await s.stop();
});
