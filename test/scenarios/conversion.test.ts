// Moves between hypervisor types (V2V) driven through the controller on the virtual clock: a VM converted
// from esx to kvm keeps its name, labels and MACs and takes its guest's shutdown, its disks at the
// conversion rate and its boot; a pre-check refuses, before the VM is shut down, what the target platform
// cannot give; deleting the request before the conversion began leaves the VM where it was; new MACs on
// request; a conversion whose target fails sends the VM back up on its source; a restarted controller
// carries a conversion on.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Scenario, condition, clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";
import type { VirtualMachine, VirtualMachineMigration } from "../../controller/api/types.ts";
import { objectKey } from "../../controller/api/types.ts";
import { DEFAULT_CONVERSION_RATE_MIBPS } from "../../controller/core/conversion.ts";
import { DEFAULT_SIM_TIMINGS } from "../../controller/provider/sim/timings.ts";

const REPO = join(import.meta.dirname, "..", "..");
const ESX_FEATURES = ["sse4_2", "avx", "avx2", "avx512f"];

/** Two ESXi hosts (with avx512f) and two KVM hosts (without), all seeing datastore shared and networks prod and lab. */
function mixedFleet(kvmMemoryMiB = 65536, kvmFeatures?: string[]): string {
  const networks = ["prod", "lab"];
  const kvm = { hypervisor: "kvm", memoryMiB: kvmMemoryMiB, networks, ...(kvmFeatures ? { features: kvmFeatures } : {}) };
  return clusterYaml()
    + hostYaml("esx-1", { features: ESX_FEATURES, networks }) + hostYaml("esx-2", { features: ESX_FEATURES, networks })
    + hostYaml("kvm-1", kvm) + hostYaml("kvm-2", kvm);
}

/** A VM that prefers esx-1, so a test knows where it runs before it is converted. */
function onEsx1(name: string, options: Parameters<typeof vmYaml>[1] = {}, spec: { disks?: string; networks?: string } = {}): string {
  let yaml = vmYaml(name, options).replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-1}}}]}}");
  if (spec.disks) yaml = yaml.replace("disks: [{name: root, sizeGiB: 20, datastore: shared}]", `disks: ${spec.disks}`);
  if (spec.networks) yaml = yaml.replace("networks: [{name: prod}]", `networks: ${spec.networks}`);
  return yaml;
}

function conversionYaml(name: string, vm: string, extra = ", targetHypervisor: kvm"): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: default}\nspec: {vmName: ${vm}${extra}}\n---\n`;
}

function request(s: Scenario, name: string): VirtualMachineMigration {
  const r = s.store.get(objectKey("VirtualMachineMigration", name, "default")) as VirtualMachineMigration | undefined;
  assert.ok(r, `no VirtualMachineMigration ${name}`);
  return r;
}

const ended = (s: Scenario, name: string) => ["Succeeded", "Failed", "Cancelled"].includes(request(s, name).status?.phase ?? "");

/** Every host the VM is ever powered on on, and the most copies of it ever on at once, as the hosts count them. */
function watchHosts(s: Scenario, id: string): { hosts: Set<string>; maxCopies: number; stopped: boolean; stop: () => void } {
  const seen = { hosts: new Set<string>(), maxCopies: 0, stopped: false, stop: () => undefined as void };
  seen.stop = s.sim.onChange(() => {
    const on = s.sim.groundTruth().vms.filter((v) => v.id === id && v.power !== "Off");
    for (const v of on) seen.hosts.add(v.host);
    if (on.some((v) => v.power === "Stopping") || (on.length === 0 && seen.hosts.size > 0)) seen.stopped = true;
    seen.maxCopies = Math.max(seen.maxCopies, on.length);
  });
  return seen;
}

async function conversions(s: Scenario): Promise<Record<string, number>> {
  const metric = await s.controller.ctx.metrics.conversions.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.result), v.value]));
}

test("esx → kvm keeps the VM's name, labels and MACs, and takes its shutdown, its disks at 100 MiB/s and its boot; it never runs anywhere else meanwhile", async () => {
  const disks = "[{name: root, sizeGiB: 20, datastore: shared}, {name: data, sizeGiB: 30, datastore: shared}]";
  const s = await Scenario.start(mixedFleet() + onEsx1("web", { labels: { app: "shop", tier: "web" } }, { disks, networks: "[{name: prod}, {name: lab}]" }));
  await s.until(() => s.vm("web").status?.phase === "Running");
  const before = s.vm("web");
  assert.equal(before.status?.host, "esx-1");
  const macs = before.status?.networks;
  assert.equal(macs?.length, 2);
  const phases: string[] = [];
  const vmStates = new Set<string>();
  s.onStatus = (key, status) => {
    const phase = (status as { phase?: string }).phase ?? "";
    if (key === "VirtualMachineMigration/default/to-kvm" && phases.at(-1) !== phase) phases.push(phase);
    if (key === "VirtualMachine/default/web") {
      const vmStatus = status as NonNullable<VirtualMachine["status"]>;
      vmStates.add(`${phase}/${vmStatus.conditions?.find((c) => c.type === "Ready")?.reason}${vmStatus.drift ? "/drifted" : ""}`);
    }
  };
  const watch = watchHosts(s, "default/web");

  const askedAt = s.clock.now();
  s.apply(conversionYaml("to-kvm", "web", ", targetHypervisor: kvm, targetHost: kvm-2"));
  await s.until(() => ended(s, "to-kvm"), 900_000, 500);
  watch.stop();
  const done = request(s, "to-kvm").status!;
  assert.equal(done.phase, "Succeeded", done.failureReason);
  assert.deepEqual(phases.filter((p) => p !== "Pending"), ["ShuttingDown", "Converting", "Starting", "Succeeded"]);
  assert.deepEqual([done.sourceHost, done.targetHost, done.preCheck?.from, done.preCheck?.to], ["esx-1", "kvm-2", "esx", "kvm"]);
  assert.deepEqual([done.preCheck?.blockers, done.preCheck?.diskMiB, done.preCheck?.estimatedSeconds], [[], 51_200, 512]);
  assert.deepEqual([done.conversion?.convertedMiB, done.conversion?.totalMiB], [51_200, 51_200]);
  assert.equal(condition(request(s, "to-kvm"), "Ready")?.status, "True");

  // The guest's shutdown, 50 GiB at 100 MiB/s, its boot; the hosts report every second, so each step may wait up to one report.
  const expected = DEFAULT_SIM_TIMINGS.guestShutdownMs + (51_200 / DEFAULT_CONVERSION_RATE_MIBPS) * 1000 + DEFAULT_SIM_TIMINGS.bootMs;
  const took = Date.parse(done.completionTime!) - askedAt;
  assert.ok(took >= expected && took <= expected + 5_000, `took ${took / 1000} s, expected ${expected / 1000} s`);
  assert.equal(Date.parse(done.conversion!.completionTime!) - Date.parse(done.conversion!.startTime!), 512_000, "the conversion itself: the disks at the rate");

  await s.until(() => s.vm("web").status?.phase === "Running" && condition(s.vm("web"), "Ready")?.status === "True", 60_000);
  const after = s.vm("web");
  assert.deepEqual([after.metadata.name, after.metadata.labels, after.status?.host], ["web", { app: "shop", tier: "web" }, "kvm-2"]);
  assert.deepEqual(after.status?.networks, macs, "the MACs are kept");
  const instance = s.controller.ctx.observed.vm("default/web")!;
  assert.deepEqual(instance.config.nics, [{ network: "prod", macAddress: macs![0]!.macAddress, model: "virtio" }, { network: "lab", macAddress: macs![1]!.macAddress, model: "virtio" }]);
  assert.deepEqual(instance.config.disks.map((d) => d.name), ["root", "data"], "its disks came along");
  assert.equal(after.status?.restarts ?? 0, 0, "a planned power cycle, not a restart after a failure");
  assert.equal(after.status?.drift, undefined, "what runs is what its spec implies");
  assert.deepEqual([...watch.hosts].sort(), ["esx-1", "kvm-2"], "on its source, then on its target only");
  assert.equal(watch.maxCopies, 1);
  assert.ok(vmStates.has("Stopping/Converting") && vmStates.has("Migrating/Converting"), `the VM said it was being converted: ${[...vmStates].join(", ")}`);
  assert.ok(![...vmStates].some((st) => st.endsWith("/drifted")), "a planned power-off is not drift");
  for (const reason of ["PreCheckPassed", "ConversionStarted", "ConversionSucceeded"]) {
    assert.ok(s.events.some((e) => e.object === "VirtualMachineMigration/default/to-kvm" && e.reason === reason), `event ${reason}`);
  }
  assert.deepEqual(await conversions(s), { Succeeded: 1, Failed: 0, Refused: 0, Cancelled: 0 });

  // The same request again (re-applied from a checkout, say) has nothing to convert, and moves nothing.
  s.apply(conversionYaml("again", "web"));
  await s.until(() => ended(s, "again"), 60_000, 500);
  assert.equal(request(s, "again").status?.failureReason, "VM default/web already runs on kvm (host kvm-2): there is nothing to convert");
  assert.equal(s.vm("web").status?.host, "kvm-2");
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a VM needing a CPU feature or a NIC model the target platform lacks is refused by the pre-check before it is shut down: still running where it was, not restarted", async () => {
  const yaml = mixedFleet() + onEsx1("fast", { features: ["avx512f"] }) + onEsx1("legacy", {}, { networks: "[{name: prod, model: vmxnet3}]" }) + onEsx1("ok");
  const s = await Scenario.start(yaml);
  await s.until(() => ["fast", "legacy", "ok"].every((n) => s.vm(n).status?.phase === "Running"));
  const started = new Map(["fast", "legacy"].map((n) => [n, s.vm(n).status?.startedAt]));
  const watches = ["fast", "legacy"].map((n) => watchHosts(s, `default/${n}`));
  s.apply(conversionYaml("fast-to-kvm", "fast") + conversionYaml("legacy-to-kvm", "legacy"));
  await s.until(() => ended(s, "fast-to-kvm") && ended(s, "legacy-to-kvm"), 60_000, 500);
  for (const w of watches) w.stop();

  const fast = request(s, "fast-to-kvm").status!;
  assert.equal(fast.phase, "Failed");
  assert.deepEqual(fast.preCheck?.blockers, ["CPU feature avx512f: no kvm host has it"]);
  assert.equal(fast.failureReason, "refused by its pre-check: CPU feature avx512f: no kvm host has it");
  const legacy = request(s, "legacy-to-kvm").status!;
  assert.deepEqual(legacy.preCheck?.blockers, ["its NIC on network prod is vmxnet3, which kvm lacks (kvm has virtio, e1000, e1000e, rtl8139)"]);
  assert.ok((legacy.preCheck?.warnings.length ?? 0) > 0, "the warnings are reported with the refusal");
  for (const name of ["fast-to-kvm", "legacy-to-kvm"]) {
    assert.equal(condition(request(s, name), "Stalled")?.status, "True");
    assert.ok(s.events.some((e) => e.object === `VirtualMachineMigration/default/${name}` && e.reason === "PreCheckFailed"), `PreCheckFailed for ${name}`);
  }
  for (const [i, name] of ["fast", "legacy"].entries()) {
    const vm = s.vm(name);
    assert.deepEqual([vm.status?.phase, vm.status?.host, vm.status?.startedAt, vm.status?.restarts ?? 0], ["Running", "esx-1", started.get(name), 0], `${name} untouched`);
    assert.equal(watches[i]!.stopped, false, `${name} was never shut down`);
    assert.ok(!s.events.some((e) => e.object === `VirtualMachine/default/${name}` && e.reason === "Stopping"));
  }
  assert.equal(s.controller.ctx.observed.conversion("default/fast"), undefined, "the hosts were never asked");
  assert.deepEqual(await conversions(s), { Succeeded: 0, Failed: 0, Refused: 2, Cancelled: 0 });
  await s.stop();
});

test("deleting the request before the conversion began leaves the VM running where it was: untouched while it waited, started again on its source while it shut down", async () => {
  // The KVM hosts have 6 GiB: the 8 GiB VM waits for room there, before anything is touched.
  const s = await Scenario.start(mixedFleet(6144) + onEsx1("big", { memoryMiB: 8192 }) + onEsx1("small"));
  await s.until(() => s.vm("big").status?.phase === "Running" && s.vm("small").status?.phase === "Running");
  const bigStarted = s.vm("big").status?.startedAt;
  const watchBig = watchHosts(s, "default/big");
  s.apply(conversionYaml("big-to-kvm", "big"));
  await s.until(() => /no kvm host can take it now \(2 insufficient memory\)/.test(condition(request(s, "big-to-kvm"), "Ready")?.message ?? ""), 30_000, 500);
  assert.equal(request(s, "big-to-kvm").status?.phase, "Pending");
  assert.equal(request(s, "big-to-kvm").status?.preCheck?.blockers.length, 0, "the pre-check passed: it only waits");
  await s.advance(30_000);
  s.delete("VirtualMachineMigration", "big-to-kvm", "default");
  await s.advance(30_000);
  watchBig.stop();
  assert.deepEqual([s.vm("big").status?.phase, s.vm("big").status?.host, s.vm("big").status?.startedAt], ["Running", "esx-1", bigStarted]);
  assert.equal(watchBig.stopped, false, "never shut down");

  // Deleted while the guest shuts down: the shutdown cannot be taken back, but nothing is converted and it comes back up where it was.
  const watchSmall = watchHosts(s, "default/small");
  s.apply(conversionYaml("small-to-kvm", "small"));
  await s.until(() => request(s, "small-to-kvm").status?.phase === "ShuttingDown", 30_000, 500);
  s.delete("VirtualMachineMigration", "small-to-kvm", "default");
  await s.until(() => s.vm("small").status?.phase === "Running" && s.controller.ctx.observed.vm("default/small")?.power === "Running", 120_000, 500);
  await s.advance(30_000);
  watchSmall.stop();
  assert.deepEqual([s.vm("small").status?.phase, s.vm("small").status?.host], ["Running", "esx-1"]);
  assert.equal(watchSmall.stopped, true, "its guest did shut down");
  assert.deepEqual([...watchSmall.hosts], ["esx-1"], "never anywhere else");
  assert.equal(s.controller.ctx.observed.conversion("default/small"), undefined, "nothing was converted");
  assert.equal(s.vm("small").status?.restarts ?? 0, 0);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("keepMacAddresses false gives the NICs new MACs, except one the spec gives; the VM runs with them, not drifted", async () => {
  const networks = "[{name: prod}, {name: lab, macAddress: \"02:00:00:00:0a:01\"}]";
  const s = await Scenario.start(mixedFleet() + onEsx1("app", {}, { networks }));
  await s.until(() => s.vm("app").status?.phase === "Running");
  const before = s.vm("app").status!.networks!;
  s.apply(conversionYaml("app-to-kvm", "app", ", targetHypervisor: kvm, keepMacAddresses: false"));
  await s.until(() => ended(s, "app-to-kvm"), 900_000, 500);
  assert.equal(request(s, "app-to-kvm").status?.phase, "Succeeded", request(s, "app-to-kvm").status?.failureReason);
  assert.ok(request(s, "app-to-kvm").status?.preCheck?.warnings.some((w) => /new MAC addresses/.test(w)));
  await s.until(() => s.vm("app").status?.phase === "Running" && condition(s.vm("app"), "Ready")?.status === "True", 60_000);
  await s.advance(10_000);
  const after = s.vm("app").status!.networks!;
  assert.notEqual(after[0]!.macAddress, before[0]!.macAddress, "a new MAC on prod");
  assert.match(after[0]!.macAddress, /^02:76:69:/);
  assert.equal(after[1]!.macAddress, "02:00:00:00:0a:01", "the MAC the spec gives stays");
  const instance = s.controller.ctx.observed.vm("default/app")!;
  assert.deepEqual(instance.config.nics.map((n) => n.macAddress), after.map((n) => n.macAddress), "it runs with the MACs its status reports");
  assert.equal(instance.host.startsWith("kvm-"), true);
  assert.equal(s.vm("app").status?.drift, undefined);
  assert.equal(s.vm("app").status?.restarts ?? 0, 0);
  await s.stop();
});

test("a VM that is off is converted as it is, without a shutdown, and stays off on the target when its runStrategy says so", async () => {
  const s = await Scenario.start(mixedFleet() + onEsx1("parked"));
  await s.until(() => s.vm("parked").status?.phase === "Running");
  s.apply(onEsx1("parked", { runStrategy: "Halted" }));
  await s.until(() => s.vm("parked").status?.phase === "Stopped" && s.controller.ctx.observed.vm("default/parked")?.power === "Off", 60_000);
  const askedAt = s.clock.now();
  s.apply(conversionYaml("parked-to-kvm", "parked"));
  await s.until(() => ended(s, "parked-to-kvm"), 900_000, 500);
  const done = request(s, "parked-to-kvm").status!;
  assert.equal(done.phase, "Succeeded", done.failureReason);
  assert.ok(Date.parse(done.completionTime!) - askedAt <= 205_000 + 3_000, "no shutdown, no boot: the disks only");
  const instance = s.controller.ctx.observed.vm("default/parked")!;
  assert.deepEqual([instance.host.startsWith("kvm-"), instance.power], [true, "Off"]);
  await s.advance(30_000);
  assert.equal(s.vm("parked").status?.phase, "Stopped");
  await s.stop();
});

test("the target host fails while the VM converts: the request fails with the hosts' reason and the VM runs again on its source", async () => {
  const s = await Scenario.start(mixedFleet() + onEsx1("web"));
  await s.until(() => s.vm("web").status?.phase === "Running");
  s.apply(conversionYaml("web-to-kvm", "web", ", targetHost: kvm-1"));
  await s.until(() => request(s, "web-to-kvm").status?.phase === "Converting" && (request(s, "web-to-kvm").status?.conversion?.convertedMiB ?? 0) > 0, 120_000, 500);
  await s.sim.crashHost("kvm-1");
  await s.until(() => ended(s, "web-to-kvm"), 120_000, 500);
  const done = request(s, "web-to-kvm").status!;
  assert.equal(done.phase, "Failed");
  assert.match(done.failureReason ?? "", /^the conversion failed: host kvm-1 failed; the VM stays on host esx-1; it starts again on esx-1$/);
  await s.until(() => s.vm("web").status?.phase === "Running", 120_000);
  assert.equal(s.vm("web").status?.host, "esx-1");
  assert.ok(s.events.some((e) => e.object === "VirtualMachineMigration/default/web-to-kvm" && e.reason === "ConversionFailed"));
  assert.deepEqual(await conversions(s), { Succeeded: 0, Failed: 1, Refused: 0, Cancelled: 0 });
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("the source host fails while the VM converts: the VM, unconverted, starts on another host of its own type, never on a KVM host", async () => {
  const s = await Scenario.start(mixedFleet() + onEsx1("web"));
  await s.until(() => s.vm("web").status?.phase === "Running");
  const watch = watchHosts(s, "default/web");
  s.apply(conversionYaml("web-to-kvm", "web"));
  await s.until(() => request(s, "web-to-kvm").status?.phase === "Converting" && (request(s, "web-to-kvm").status?.conversion?.convertedMiB ?? 0) > 0, 120_000, 500);
  await s.sim.crashHost("esx-1");
  await s.until(() => ended(s, "web-to-kvm"), 120_000, 500);
  // The hosts end the conversion at once; the controller knows esx-1 failed only once its heartbeats are missed for 15 s.
  assert.match(request(s, "web-to-kvm").status?.failureReason ?? "", /^the conversion failed: host esx-1 failed; the VM stays on host esx-1; it starts again on esx-[12]$/);
  await s.until(() => s.vm("web").status?.phase === "Running", 180_000);
  await s.advance(60_000);
  watch.stop();
  assert.equal(s.vm("web").status?.host, "esx-2");
  assert.deepEqual([...watch.hosts].sort(), ["esx-1", "esx-2"]);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a controller killed mid-conversion finds it on the hosts after its restart and carries it to the end: the VM starts once, on the target", async () => {
  const s = await Scenario.start(mixedFleet() + onEsx1("db", { memoryMiB: 8192 }));
  await s.until(() => s.vm("db").status?.phase === "Running");
  const macs = s.vm("db").status?.networks;
  const watch = watchHosts(s, "default/db");
  s.apply(conversionYaml("db-to-kvm", "db"));
  await s.until(() => request(s, "db-to-kvm").status?.phase === "Converting", 120_000, 500);
  await s.restartController();
  await s.until(() => ended(s, "db-to-kvm"), 900_000, 500);
  watch.stop();
  assert.equal(request(s, "db-to-kvm").status?.phase, "Succeeded", request(s, "db-to-kvm").status?.failureReason);
  await s.until(() => s.vm("db").status?.phase === "Running", 60_000);
  assert.ok(s.vm("db").status?.host?.startsWith("kvm-"));
  assert.deepEqual(s.vm("db").status?.networks, macs);
  assert.equal(watch.maxCopies, 1);
  assert.equal(watch.hosts.size, 2, `ran on ${[...watch.hosts].join(", ")}`);
  assert.equal(s.sim.splitBrainAttempts(), 0);
  await s.stop();
});

test("a conversion applied together with its VM waits for the VM's first host, then converts it; a live move in a mixed cluster goes only to a host of the VM's own type", async () => {
  // mover prefers esx-1, then kvm-2: once it leaves esx-1, placement's choice would be kvm-2.
  const mover = vmYaml("mover").replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-1}}}, {weight: 50, preference: {matchLabels: {vireo.dev/host: kvm-2}}}]}}");
  // The KVM hosts have every CPU feature the ESXi hosts have: only their type keeps a live move off them.
  const s = await Scenario.start(mixedFleet(65536, ESX_FEATURES) + onEsx1("fresh") + conversionYaml("fresh-to-kvm", "fresh") + mover);
  await s.until(() => ended(s, "fresh-to-kvm"), 900_000, 500);
  assert.equal(request(s, "fresh-to-kvm").status?.phase, "Succeeded", request(s, "fresh-to-kvm").status?.failureReason);
  assert.equal(request(s, "fresh-to-kvm").status?.sourceHost, "esx-1");
  await s.until(() => s.vm("mover").status?.phase === "Running");
  // Placement would rather take it to kvm-2, but a running guest cannot change hypervisor: only esx-2 will do.
  s.apply(conversionYaml("mover-live", "mover", ""));
  await s.until(() => ended(s, "mover-live"), 600_000, 500);
  assert.equal(request(s, "mover-live").status?.phase, "Succeeded", request(s, "mover-live").status?.failureReason);
  assert.equal(s.vm("mover").status?.host, "esx-2");
  await s.stop();
});

test("the example: manifests/requests/convert-legacy-crm.yaml converts ci/legacy-crm from cluster lab's ESXi hosts to its KVM hosts", async () => {
  const read = (...path: string[]) => readFileSync(join(REPO, "manifests", ...path), "utf8");
  const fleet = ["hosts.yaml", "clusters.yaml"].map((f) => read("examples", f)).join("\n---\n") + "\n---\n" + read("examples", "labs", "hosts.yaml") + "\n---\n" + read("examples", "v2v", "legacy-crm.yaml");
  const s = await Scenario.start(fleet);
  await s.until(() => s.vm("legacy-crm", "ci").status?.phase === "Running", 120_000);
  assert.equal(s.vm("legacy-crm", "ci").status?.host, "esx-lab-01");
  s.apply(read("requests", "convert-legacy-crm.yaml"));
  const done = () => s.store.get(objectKey("VirtualMachineMigration", "legacy-crm-to-kvm", "ci")) as VirtualMachineMigration;
  await s.until(() => done().status?.phase === "Succeeded", 900_000, 1_000);
  assert.deepEqual(done().status?.preCheck?.blockers, []);
  await s.until(() => s.vm("legacy-crm", "ci").status?.phase === "Running", 60_000);
  assert.match(s.vm("legacy-crm", "ci").status?.host ?? "", /^kvm-0[12]$/);
  assert.equal(s.controller.ctx.observed.vm("ci/legacy-crm")?.config.firmware, "EFI", "its firmware came along");
  await s.stop();
});
