// Live migration driven through the controller on the virtual clock: a VirtualMachineMigration moves a VM
// live (Migrating while it moves, no reboot), bad requests are refused with the reason and touch nothing,
// and a host put into maintenance empties by live migration without breaking a rule.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Scenario, clusterYaml, condition, hostYaml, vmYaml } from "../support/scenario.ts";
import type { VirtualMachineMigration } from "../../controller/api/types.ts";
import { objectKey } from "../../controller/api/types.ts";

/** A VM's placement, and the same placement preferring host h1 (so a test knows where it starts). */
const PLACEMENT = "placement: {cluster: prod}";
const PREFERS_H1 = "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: h1}}}]}}";

function migrationYaml(name: string, vm: string, extra = ""): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: default}\nspec: {vmName: ${vm}${extra}}\n---\n`;
}

function request(s: Scenario, name: string): VirtualMachineMigration {
  const r = s.store.get(objectKey("VirtualMachineMigration", name, "default")) as VirtualMachineMigration | undefined;
  assert.ok(r, `no VirtualMachineMigration ${name}`);
  return r;
}

const ended = (s: Scenario, name: string) => ["Succeeded", "Failed", "Cancelled"].includes(request(s, name).status?.phase ?? "");

test("a VirtualMachineMigration moves an idle VM live to the host it names: Migrating while it moves, Succeeded with its downtime, no reboot", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("web", { extra: "  workload: {profile: Idle}\n" }).replace(PLACEMENT, PREFERS_H1));
  await s.until(() => s.vm("web").status?.phase === "Running");
  assert.equal(s.vm("web").status?.host, "h1");
  const bootedAt = s.vm("web").status?.startedAt;
  const phases = new Set<string>();
  s.onStatus = (key, status) => { if (key === "VirtualMachine/default/web") phases.add((status as { phase?: string }).phase ?? ""); };

  s.apply(migrationYaml("move-web", "web", ", targetHost: h2"));
  await s.until(() => ended(s, "move-web"), 600_000);
  const done = request(s, "move-web").status!;
  assert.equal(done.phase, "Succeeded", done.failureReason);
  assert.equal(done.sourceHost, "h1");
  assert.equal(done.targetHost, "h2");
  assert.ok(done.estimate?.converges, "estimated before it began");
  assert.ok((done.rounds ?? 0) >= 1 && (done.rounds ?? 0) <= 5, `${done.rounds} rounds`);
  assert.ok((done.downtimeMs ?? Infinity) <= 300, `${done.downtimeMs} ms of downtime`);
  assert.equal(condition(request(s, "move-web") as never, "Ready")?.status, "True");
  await s.until(() => s.vm("web").status?.host === "h2" && s.vm("web").status?.phase === "Running", 60_000);
  assert.ok(phases.has("Migrating"), `the VM said Migrating while it moved: ${[...phases].join(", ")}`);
  assert.equal(s.vm("web").status?.startedAt, bootedAt, "the guest was not rebooted");
  assert.equal(s.vm("web").status?.restarts ?? 0, 0);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("bad migration requests are refused with the reason and nothing moves: a missing VM, a missing host, another cluster's host, a Halted VM, a second migration of a VM that migrates", async () => {
  let yaml = clusterYaml() + clusterYaml("lab") + hostYaml("h1") + hostYaml("h2") + hostYaml("l1", { cluster: "lab" });
  yaml += vmYaml("web", { memoryMiB: 16384, extra: "  workload: {profile: Steady, dirtyRateMiBps: 20}\n" }) + vmYaml("parked", { runStrategy: "Halted" });
  const s = await Scenario.start(yaml);
  await s.until(() => s.vm("web").status?.phase === "Running" && s.vm("parked").status?.phase === "Stopped");
  const where = s.vm("web").status?.host;
  s.apply(migrationYaml("ghost", "nobody") + migrationYaml("nowhere", "web", ", targetHost: h9") + migrationYaml("elsewhere", "web", ", targetHost: l1") + migrationYaml("halted", "parked"));
  await s.until(() => ["ghost", "nowhere", "elsewhere", "halted"].every((n) => ended(s, n)), 60_000);
  const why = (n: string) => `${request(s, n).status?.phase}: ${request(s, n).status?.failureReason}`;
  assert.equal(why("ghost"), "Failed: VirtualMachine default/nobody does not exist");
  assert.equal(why("nowhere"), "Failed: host h9 does not exist");
  assert.equal(why("elsewhere"), "Failed: host l1 is in cluster lab, not in VM default/web's cluster prod");
  assert.match(why("halted"), /^Failed: VM default\/parked is not running \(Stopped, runStrategy Halted\)/);
  for (const n of ["ghost", "nowhere", "elsewhere", "halted"]) assert.equal(condition(request(s, n) as never, "Stalled")?.status, "True");
  assert.equal(s.vm("web").status?.host, where, "nothing moved");

  s.apply(migrationYaml("first", "web"));
  await s.until(() => ["PreCopy", "Switchover"].includes(request(s, "first").status?.phase ?? ""), 60_000);
  s.apply(migrationYaml("second", "web"));
  await s.until(() => ended(s, "second"), 60_000);
  assert.match(why("second"), /^Failed: VM default\/web already migrates/);
  await s.until(() => ended(s, "first"), 600_000);
  assert.equal(request(s, "first").status?.phase, "Succeeded");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("deleting a VirtualMachineMigration while it copies cancels it: the VM stays where it was", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("db", { memoryMiB: 32768, extra: "  workload: {profile: Steady, dirtyRateMiBps: 60}\n" }));
  await s.until(() => s.vm("db").status?.phase === "Running");
  const where = s.vm("db").status?.host;
  s.apply(migrationYaml("move-db", "db"));
  await s.until(() => request(s, "move-db").status?.phase === "PreCopy", 60_000);
  s.delete("VirtualMachineMigration", "move-db", "default");
  await s.until(() => s.sim.observe !== undefined && (s.controller.ctx.observed.migration("default/db")?.phase === "Cancelled"), 120_000);
  await s.advance(10_000);
  assert.equal(s.vm("db").status?.host, where);
  assert.equal(s.vm("db").status?.phase, "Running");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

/** `count` VMs that prefer `host`; every third shares a tier whose members must run on distinct hosts. */
function crowdOn(host: string, count: number): string {
  let yaml = "";
  for (let i = 0; i < count; i++) {
    const tier = `t${i % 10}`;
    yaml += vmYaml(`vm-${String(i).padStart(2, "0")}`, { memoryMiB: 2048, labels: { tier }, extra: "  workload: {profile: Steady}\n" })
      .replace("placement: {cluster: prod}", `placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: ${host}}}}]}, vmAntiAffinity: {required: [{labelSelector: {matchLabels: {tier: ${tier}}}, topologyKey: vireo.dev/host}]}}`);
  }
  return yaml;
}

test("a host with 30 VMs under anti-affinity rules enters maintenance: it empties by live migration, no rule broken, no guest rebooted, the limits held", async () => {
  const hosts = ["h1", "h2", "h3", "h4", "h5"].map((h) => hostYaml(h, { memoryMiB: 131072, cores: 32 })).join("");
  // Ten tiers of three: each tier's VMs on three distinct hosts, so the 30 cannot all start on h1.
  const s = await Scenario.start(clusterYaml() + hosts + crowdOn("h1", 30));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running"), 300_000);
  const onH1 = s.vms().filter((vm) => vm.status?.host === "h1").map((vm) => vm.metadata.name);
  assert.ok(onH1.length >= 10, `${onH1.length} VMs on h1`);
  const started = new Map(s.vms().map((vm) => [vm.metadata.name, vm.status?.startedAt]));
  let peak = 0;
  let broken = 0;
  s.onStatus = () => {
    const inFlight = s.controller.ctx.observed.migrations().filter((m) => m.phase === "PreCopy" || m.phase === "Switchover");
    peak = Math.max(peak, inFlight.length);
    const seen = new Map<string, string>();
    for (const vm of s.vms()) {
      const key = `${vm.metadata.labels?.["tier"]}@${vm.status?.host}`;
      if (vm.status?.host && seen.has(key)) broken++;
      if (vm.status?.host) seen.set(key, vm.metadata.name);
    }
  };

  s.apply(hostYaml("h1", { memoryMiB: 131072, cores: 32, maintenance: true }));
  await s.until(() => s.host("h1").status?.phase === "Maintenance", 900_000);
  assert.equal(s.vms().filter((vm) => vm.status?.host === "h1").length, 0);
  assert.ok(s.vms().every((vm) => vm.status?.phase === "Running"));
  for (const name of onH1) assert.equal(s.vm(name).status?.startedAt, started.get(name), `${name} was not rebooted`);
  assert.equal(broken, 0, "no required anti-affinity broken at any point");
  assert.ok(peak >= 2 && peak <= 5, `at most 5 migrations at once (KubeVirt's default), saw ${peak}`);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("the limits hold from the moment a migration is asked for: with one at a time, the next waits for the last to end, though a round may be planned before the hosts report it", async () => {
  const serial = clusterYaml("prod", "Pack").replace("placement: {strategy: Pack}", "placement: {strategy: Pack}\n  migration: {parallelMigrations: 1, parallelOutboundPerHost: 1}");
  const onH1 = (name: string, memoryMiB: number, profile: string) => vmYaml(name, { memoryMiB, extra: `  workload: {profile: ${profile}}\n` })
    .replace(PLACEMENT, PREFERS_H1);
  const s = await Scenario.start(serial + hostYaml("h1") + hostYaml("h2") + hostYaml("h3") + onH1("a", 8192, "Steady") + onH1("b", 4096, "Steady") + onH1("c", 2048, "Idle") + onH1("d", 2048, "Idle"));
  await s.until(() => s.vms().every((vm) => vm.status?.phase === "Running" && vm.status.host === "h1"));
  // The hosts' own count, at every change: the controller's view of it may lag a round.
  let peak = 0;
  const stop = s.sim.onChange(() => { peak = Math.max(peak, s.sim.groundTruth().migrations.length); });
  s.apply(hostYaml("h1", { maintenance: true }));
  await s.until(() => s.host("h1").status?.phase === "Maintenance", 900_000);
  stop();
  assert.equal(peak, 1, "never two migrations at once");
  assert.ok(s.vms().every((vm) => vm.status?.host !== "h1" && vm.status?.phase === "Running"));
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a VM pinned to its host blocks maintenance with a clear reason on the host; the others leave", async () => {
  const pinned = vmYaml("pinned").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {required: [{matchLabels: {vireo.dev/host: h1}}]}}");
  const free = vmYaml("free").replace(PLACEMENT, PREFERS_H1);
  // Without HA: admission control would rightly refuse a protected VM no other host may take.
  const s = await Scenario.start(clusterYaml("prod", "Pack", "{enabled: false}") + hostYaml("h1") + hostYaml("h2") + hostYaml("h3") + pinned + free);
  await s.until(() => s.vm("pinned").status?.phase === "Running" && s.vm("free").status?.host === "h1");
  s.apply(hostYaml("h1", { maintenance: true }));
  await s.until(() => s.vm("free").status?.host !== "h1" && (s.host("h1").status?.evacuationBlocked?.length ?? 0) === 1, 300_000);
  assert.equal(s.host("h1").status?.phase, "EnteringMaintenance");
  assert.deepEqual(s.host("h1").status?.evacuationBlocked?.map((b) => b.vm), ["default/pinned"]);
  assert.match(s.host("h1").status!.evacuationBlocked![0]!.reason, /no host can take VM default\/pinned: .*host affinity/);
  assert.equal(condition(s.host("h1"), "EvacuationBlocked")?.status, "True");
  assert.equal(s.vm("pinned").status?.phase, "Running", "a VM that cannot leave keeps running");
  assert.equal(condition(s.vm("pinned"), "Ready")?.reason, "EvacuationBlocked");

  s.apply(hostYaml("h1"));
  await s.until(() => s.host("h1").status?.phase === "Ready" && s.host("h1").status?.evacuationBlocked === undefined, 60_000);
  await s.stop();
});

test("LiveIfPossible: a VM that dirties memory faster than the link sends it fails its live attempts, then moves cold; Live would stay blocked", async () => {
  const busy = (name: string, policy: string) => vmYaml(name, { memoryMiB: 16384, extra: `  migration: {policy: ${policy}}\n  workload: {profile: Bursty, dirtyRateMiBps: 400}\n` })
    .replace(PLACEMENT, PREFERS_H1);
  const s = await Scenario.start(clusterYaml("prod", "Pack") + hostYaml("h1") + hostYaml("h2") + busy("flexible", "LiveIfPossible") + busy("strict", "Live"));
  await s.until(() => ["flexible", "strict"].every((n) => s.vm(n).status?.host === "h1" && s.vm(n).status?.phase === "Running"));
  s.apply(hostYaml("h1", { maintenance: true }));
  await s.until(() => s.vm("flexible").status?.host === "h2" && s.vm("flexible").status?.phase === "Running", 3_600_000);
  assert.equal(s.vm("flexible").status?.restarts ?? 0, 0, "a cold move is a planned power cycle, not a restart after a failure");
  assert.ok(s.events.some((e) => e.object === "VirtualMachine/default/flexible" && e.reason === "Stopping" && /cold after 3 failed live attempts/.test(e.message)), "moved cold after its live attempts failed");
  await s.until(() => (s.host("h1").status?.evacuationBlocked ?? []).some((b) => b.vm === "default/strict"), 600_000);
  assert.match(s.host("h1").status!.evacuationBlocked!.find((b) => b.vm === "default/strict")!.reason, /3 live migrations of VM default\/strict failed .* set LiveIfPossible/);
  assert.equal(s.vm("strict").status?.host, "h1");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("CPU compatibility: AMD→Intel is refused; a feature the target lacks is refused without a baseline and allowed with one; a raised baseline waits for a power cycle", async () => {
  const yaml = clusterYaml() + hostYaml("old", { features: ["sse4_2", "avx"] }) + hostYaml("new", { features: ["sse4_2", "avx", "avx2", "avx512f"] }) + hostYaml("amd", { vendor: "amd", features: ["sse4_2", "avx", "avx2", "avx512f"] })
    + vmYaml("app").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {required: [{matchExpressions: [{key: vireo.dev/host, operator: In, values: [new, old]}]}], preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: new}}}]}}");
  const s = await Scenario.start(yaml);
  await s.until(() => s.vm("app").status?.host === "new" && s.vm("app").status?.phase === "Running");
  s.apply(migrationYaml("to-amd", "app", ", targetHost: amd") + migrationYaml("to-old", "app", ", targetHost: old"));
  await s.until(() => ended(s, "to-amd") && ended(s, "to-old"), 60_000);
  assert.match(request(s, "to-amd").status?.failureReason ?? "", /host amd has an amd CPU, the VM runs on intel: live migration between CPU vendors is refused/);
  assert.match(request(s, "to-old").status?.failureReason ?? "", /host old lacks CPU features avx2, avx512f the guest sees/);
  assert.equal(s.vm("app").status?.host, "new", "nothing moved");

  // With a baseline the guest sees only sse4_2 and avx — after a power cycle, as on vSphere with EVC.
  s.apply(clusterYaml("prod", "Spread").replace("placement: {strategy: Spread}", "placement: {strategy: Spread}\n  cpuBaseline: {vendor: intel, features: [sse4_2, avx]}"));
  await s.until(() => condition(s.vm("app"), "PowerCycleNeeded")?.status === "True", 60_000);
  assert.match(condition(s.vm("app"), "PowerCycleNeeded")!.message, /guest sees \[avx, avx2, avx512f, sse4_2\] until it is powered off and on/);
  s.apply(vmYaml("app", { runStrategy: "Halted" }).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {required: [{matchExpressions: [{key: vireo.dev/host, operator: In, values: [new, old]}]}], preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: new}}}]}}"));
  await s.until(() => s.vm("app").status?.phase === "Stopped", 120_000);
  s.apply(yaml.split("---\n").filter((d) => d.includes("name: app")).join("---\n") + "---\n");
  await s.until(() => s.vm("app").status?.phase === "Running", 120_000);
  assert.equal(condition(s.vm("app"), "PowerCycleNeeded"), undefined);
  s.apply(migrationYaml("to-old-again", "app", ", targetHost: old"));
  await s.until(() => ended(s, "to-old-again"), 600_000);
  assert.equal(request(s, "to-old-again").status?.phase, "Succeeded", request(s, "to-old-again").status?.failureReason);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a controller killed mid-migration finds the migration on the hosts after its restart and reports how it ended; nothing runs twice", async () => {
  const s = await Scenario.start(clusterYaml() + hostYaml("h1") + hostYaml("h2") + vmYaml("db", { memoryMiB: 32768, extra: "  workload: {profile: Steady, dirtyRateMiBps: 20}\n" }));
  await s.until(() => s.vm("db").status?.phase === "Running");
  const from = s.vm("db").status?.host;
  s.apply(migrationYaml("move-db", "db"));
  await s.until(() => request(s, "move-db").status?.phase === "PreCopy", 60_000);
  await s.restartController();
  await s.until(() => ended(s, "move-db"), 900_000);
  assert.equal(request(s, "move-db").status?.phase, "Succeeded");
  assert.notEqual(s.vm("db").status?.host, from);
  assert.equal(s.sim.groundTruth().vms.filter((vm) => vm.id === "default/db" && vm.power !== "Off").length, 1);
  assert.equal(s.vm("db").status?.restarts ?? 0, 0);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});
