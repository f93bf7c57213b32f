// HA drills in file mode, end to end: a `vireo run --manifests DIR` process with the simulated hosts in
// it, a small HA-enabled fleet, and a `Fault` manifest written into DIR. Everything is read back from the
// state directory: the objects' status (objects.json), the simulated world (world.json) and the clock note.

import { test } from "node:test";
import type { TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Fault, Host, VirtualMachine, VireoObject } from "../../controller/api/types.ts";
import type { StateSnapshot } from "../../controller/state/state-dir.ts";
import { VireoProcess, WAIT_MS, tempDir, waitForState } from "../support/process.ts";
import { HIGH, HOSTS, VMS, drillFleetYaml } from "../support/drill-fleet.ts";

const TIME_SCALE = "50";
function faultYaml(name: string, spec: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
}

function objects<T extends VireoObject>(s: StateSnapshot, kind: T["kind"]): T[] {
  return s.objects.map((o) => o.object).filter((o): o is T => o.kind === kind);
}
const vms = (s: StateSnapshot) => objects<VirtualMachine>(s, "VirtualMachine");
const vm = (s: StateSnapshot, name: string) => vms(s).find((v) => v.metadata.name === name);
const host = (s: StateSnapshot, name: string) => objects<Host>(s, "Host").find((h) => h.metadata.name === name);
const fault = (s: StateSnapshot, name: string) => objects<Fault>(s, "Fault").find((f) => f.metadata.name === name);

function allRunning(s: StateSnapshot): boolean {
  return VMS.every((n) => vm(s, n)?.status?.phase === "Running");
}

interface WorldVm {
  id: string;
  host: string;
  power: string;
  poweredOnAt?: number;
}

/** Every VM record of the simulated world, as saved in the state directory (duplicates kept, if any). */
function worldVms(state: string): WorldVm[] {
  return (JSON.parse(readFileSync(join(state, "world.json"), "utf8")) as { vms: WorldVm[] }).vms;
}

function splitBrainAttempts(state: string): number {
  return (JSON.parse(readFileSync(join(state, "world.json"), "utf8")) as { splitBrainAttempts: number }).splitBrainAttempts;
}

/** Each VM appears once in the world, on one host, and at most one copy of it is powered on. */
function assertNoVmTwice(state: string): Map<string, WorldVm> {
  const records = worldVms(state);
  const ids = records.map((r) => r.id);
  assert.deepEqual([...new Set(ids)].sort(), [...ids].sort(), "a VM id appears twice in the simulated world");
  assert.deepEqual(new Set(ids), new Set(VMS.map((n) => `default/${n}`)), "the world holds exactly the declared VMs");
  for (const r of records) assert.equal(typeof r.host, "string", `${r.id} has one host`);
  assert.equal(splitBrainAttempts(state), 0, "a VM was started while its disks were locked by another host");
  return new Map(records.map((r) => [r.id, r]));
}

/** The simulated time the process last noted (once a second of real time). */
function notedTime(state: string): number {
  const path = join(state, "clock");
  return existsSync(path) ? Number(readFileSync(path, "utf8")) : 0;
}

async function startFleet(t: TestContext, prefix: string) {
  const dir = tempDir(prefix);
  const manifests = join(dir.path, "manifests");
  const state = join(dir.path, "state");
  mkdirSync(manifests, { recursive: true });
  writeFileSync(join(manifests, "fleet.yaml"), drillFleetYaml("  isolationResponse: LeavePoweredOn\n"));
  const vireo = new VireoProcess(
    ["run", "--manifests", manifests, "--state-dir", state, "--metrics-addr", "127.0.0.1:0", "--time-scale", TIME_SCALE],
    { env: { VIREO_LOG_LEVEL: "debug" } },
  );
  // Stop the process before removing its directories, or its last save would write them again.
  t.after(async () => {
    await vireo.stop("SIGKILL");
    dir.remove();
  });
  const metrics = (await vireo.waitForLog(/metrics on http:\/\/([^/\s"]+)\/metrics/))[1]!;
  const up = await waitForState(state, (s) => allRunning(s) && HOSTS.every((h) => host(s, h)?.status?.phase === "Ready"), WAIT_MS, () => vireo.logs());
  return { manifests, state, vireo, metrics, up };
}

/** The host running the most VMs (the first such by name on a tie). */
function busiestHost(s: StateSnapshot): string {
  const counts = new Map(HOSTS.map((h) => [h, 0]));
  for (const v of vms(s)) counts.set(v.status!.host!, (counts.get(v.status!.host!) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
}

test("a HostCrash drill: the host fails, its VMs restart elsewhere once each, the fault heals and the host rejoins empty", async (t) => {
  const { manifests, state, vireo, metrics, up } = await startFleet(t, "drill-crash");
  const victim = busiestHost(up);
  const victims = vms(up).filter((v) => v.status?.host === victim).map((v) => v.metadata.name);
  const survivors = new Map(vms(up).filter((v) => v.status?.host !== victim).map((v) => [v.metadata.name, { host: v.status!.host, startedAt: v.status!.startedAt }]));
  assert.ok(victims.length >= 2, `${victim} runs ${victims.join(", ")}`);
  assert.ok(victims.some((n) => HIGH.has(n)), `a VM protected by the High policy runs on ${victim}: ${victims.join(", ")}`);

  // No duration yet: the host stays down until HA has acted, however long a busy machine makes that take
  // (at 50x, a fixed duration of a few minutes is a few seconds of real time, and could end first).
  writeFileSync(join(manifests, "crash.yaml"), faultYaml("crash", `{type: HostCrash, target: {host: ${victim}}}`));
  const active = await waitForState(state, (s) => fault(s, "crash")?.status?.phase === "Active", WAIT_MS, () => vireo.logs());
  assert.match(fault(active, "crash")!.status!.message!, new RegExp(`host ${victim} crashed; until the Fault is deleted`));
  const struck = Date.parse(fault(active, "crash")!.status!.startTime!);

  // The controller learns of the crash from the heartbeats alone.
  const failed = await waitForState(state, (s) => host(s, victim)?.status?.phase === "Failed", WAIT_MS, () => vireo.logs());
  assert.equal(fault(failed, "crash")?.status?.phase, "Active", "the host failed while the fault was active");

  // Every protected VM of the crashed host is restarted on another host, while the host is still down.
  const failedOver = await waitForState(state, (s) => victims.every((n) => {
    const v = vm(s, n);
    return v?.status?.phase === "Running" && v.status.host !== victim && v.status.lastFailover?.toHost === v.status.host;
  }), WAIT_MS, () => vireo.logs());
  assert.equal(fault(failedOver, "crash")?.status?.phase, "Active", "the VMs came back before the fault healed");
  for (const n of victims) {
    const v = vm(failedOver, n)!;
    assert.notEqual(v.status!.host, victim, `${n} runs on another host`);
    assert.equal(v.status!.lastFailover?.fromHost, victim, `${n}: lastFailover names the failed host`);
    assert.equal(v.status!.lastFailover?.reason, "HostFailure", `${n}: the failover reason`);
    assert.ok((v.status!.restarts ?? 0) >= 1, `${n}: the restart is counted in status.restarts`);
  }
  // The world is saved apart from the objects, a moment later or earlier: wait until it shows the restarts too.
  await waitForState(state, () => victims.every((n) => {
    const record = worldVms(state).find((r) => r.id === `default/${n}`);
    return record?.power === "Running" && record.host === vm(failedOver, n)!.status!.host;
  }), WAIT_MS, () => `the world: ${JSON.stringify(worldVms(state))}`);
  const world = assertNoVmTwice(state);
  for (const [n, was] of survivors) {
    const v = vm(failedOver, n)!;
    assert.equal(v.status?.host, was.host, `${n} was not on the crashed host and stays where it was`);
    assert.equal(v.status?.startedAt, was.startedAt, `${n} was not restarted`);
  }
  // Each decision is an event naming the VM, the old host and the new one (events go to the log in file mode,
  // through a pipe: the line can arrive after the state file shows the restart).
  for (const n of victims) {
    const to = vm(failedOver, n)!.status!.host!;
    await vireo.waitForLog(new RegExp(`VirtualMachine/default/${n}: restarting on host ${to} \\(was on ${victim}\\)`));
  }

  // Now the drill gets its duration, 300 s from the crash: it heals when they are up (at once, if they have
  // passed already). The host boots again, empty, and is Ready; nothing runs twice.
  writeFileSync(join(manifests, "crash.yaml"), faultYaml("crash", `{type: HostCrash, target: {host: ${victim}}, durationSeconds: 300}`));
  const healed = await waitForState(state, (s) => fault(s, "crash")?.status?.phase === "Healed" && host(s, victim)?.status?.phase === "Ready", WAIT_MS, () => vireo.logs());
  const crash = fault(healed, "crash")!.status!;
  assert.ok(crash.startTime && crash.healTime, "the Fault records when it struck and when it healed");
  assert.equal(Date.parse(crash.startTime), struck, "the duration counts from the crash, not from the edit");
  assert.ok(Date.parse(crash.healTime) - struck >= 300_000, `healed after its duration: ${crash.startTime} → ${crash.healTime}`);
  assert.equal(crash.conditions?.find((c) => c.type === "Ready")?.status, "True");
  // Let the controller observe the rejoined host a while (simulated time) before the final look.
  const rejoined = Date.parse(crash.healTime);
  await waitForState(state, () => notedTime(state) > rejoined + 30_000);
  const settled = await waitForState(state, allRunning, WAIT_MS, () => vireo.logs());
  const after = assertNoVmTwice(state);
  for (const n of victims) {
    const v = vm(settled, n)!;
    assert.notEqual(v.status!.host, victim, `${n} was not resurrected on the rejoined host`);
    assert.equal(after.get(`default/${n}`)!.host, v.status!.host);
    assert.equal(after.get(`default/${n}`)!.poweredOnAt, world.get(`default/${n}`)!.poweredOnAt, `${n} started once after the failover`);
  }
  assert.equal(host(settled, victim)?.status?.phase, "Ready");

  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  assert.match(text, /^vireo_faults_injected_total\{type="HostCrash"\} 1$/m);
  assert.match(text, /^vireo_split_brain_attempts 0$/m);
  const failovers = [...text.matchAll(/^vireo_failovers_total\{[^}]*\} (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  assert.equal(failovers, victims.length, `one failover per VM of ${victim}:\n${text.split("\n").filter((l) => l.includes("failover")).join("\n")}`);
});

test("a NetworkIsolation drill with LeavePoweredOn: the VMs keep running on the isolated host, and removing the Fault file heals it", async (t) => {
  const { manifests, state, vireo, up } = await startFleet(t, "drill-isolate");
  const victim = busiestHost(up);
  const before = new Map(vms(up).map((v) => [v.metadata.name, { host: v.status!.host!, startedAt: v.status!.startedAt }]));
  const victims = [...before].filter(([, w]) => w.host === victim).map(([n]) => n);
  assert.ok(victims.length >= 2, `${victim} runs ${victims.join(", ")}`);

  // No duration: it lasts until the Fault is deleted.
  writeFileSync(join(manifests, "isolate.yaml"), faultYaml("isolate", `{type: NetworkIsolation, target: {host: ${victim}}}`));
  const active = await waitForState(state, (s) => fault(s, "isolate")?.status?.phase === "Active", WAIT_MS, () => vireo.logs());
  const struck = Date.parse(fault(active, "isolate")!.status!.startTime!);
  assert.match(fault(active, "isolate")!.status!.message!, /until the Fault is deleted/);

  // The host declares itself isolated 30 s after it lost the network; its datastore heartbeat stays fresh.
  await waitForState(state, (s) => host(s, victim)?.status?.phase === "Isolated", WAIT_MS, () => vireo.logs());
  // Past the isolation response (30 s after the declaration) and then some, in simulated time.
  await waitForState(state, () => notedTime(state) > struck + 120_000);
  const isolated = await waitForState(state, () => true);
  assert.equal(host(isolated, victim)?.status?.phase, "Isolated", "isolated, never treated as failed");
  assert.equal(fault(isolated, "isolate")?.status?.phase, "Active");
  const world = assertNoVmTwice(state);
  for (const [n, was] of before) {
    const v = vm(isolated, n)!;
    assert.equal(world.get(`default/${n}`)?.host, was.host, `${n} still runs where it ran`);
    assert.equal(world.get(`default/${n}`)?.power, "Running", `${n} is still running`);
    assert.equal(v.status?.host, was.host, `${n} was not restarted elsewhere`);
    assert.equal(v.status?.startedAt, was.startedAt, `${n} was not restarted`);
    assert.equal(v.status?.lastFailover, undefined, `${n} has no failover`);
  }
  assert.doesNotMatch(vireo.logs(), /restarting on host/);

  // Removing the Fault's file deletes the Fault, and deleting an active Fault heals it.
  unlinkSync(join(manifests, "isolate.yaml"));
  const healed = await waitForState(state, (s) => fault(s, "isolate") === undefined && host(s, victim)?.status?.phase === "Ready", WAIT_MS, () => vireo.logs());
  assertNoVmTwice(state);
  for (const [n, was] of before) {
    const v = vm(healed, n)!;
    assert.equal(v.status?.phase, "Running", n);
    assert.equal(v.status?.host, was.host, `${n} stayed on its host`);
    assert.equal(v.status?.startedAt, was.startedAt, `${n} was never restarted`);
    assert.equal(v.status?.restarts, undefined, `${n} counts no restart`);
  }
  await vireo.waitForLog(/Fault\/isolate/);
});
