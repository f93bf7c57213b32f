// Live migration through the real API server, driven with the real kubectl: a VirtualMachineMigration
// applied and waited for with `kubectl wait`, a host emptied by `kubectl patch … maintenance`, `vireo migrate
// --kubeconfig`, the CRD's refusal of a changed spec, a migration of a missing VM that ends Stalled, and a
// migration deleted while it copies, which is cancelled before its finalizer lets it go. `vireo plan` shows
// the copy under way with its estimate.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Host, VirtualMachine, VirtualMachineMigration } from "../../controller/api/types.ts";
import type { PlanReport } from "../../controller/engine/dry-run.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { VireoProcess, tempDir, vireoCommand } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const NS = "mig";
const PROD = ["h1", "h2", "h3"];

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-migration");

/**
 * Cluster prod: three hosts and three small VMs that move in seconds. Cluster slow: a link of 8 MiB/s and a
 * 16 GiB guest that rewrites 6 MiB/s of it, whose first full copy alone takes 2048 s of simulated time
 * (about 40 s at --time-scale 50) and which never converges before minutes more: time enough to delete it.
 */
function fleet(): string {
  const slow = clusterYaml("slow").replace("placement: {strategy: Spread}\n", "placement: {strategy: Spread}\n  migration: {bandwidthMiBps: 8}\n");
  const vms = ["web-1", "web-2", "web-3"].map((n) => vmYaml(n, { namespace: NS, extra: "  workload: {profile: Idle}\n" })).join("");
  const big = vmYaml("big", { namespace: NS, cluster: "slow", memoryMiB: 16384, extra: "  workload: {profile: Steady, dirtyRateMiBps: 6}\n" });
  return clusterYaml() + PROD.map((h) => hostYaml(h)).join("") + slow + hostYaml("s1", { cluster: "slow" }) + hostYaml("s2", { cluster: "slow" }) + vms + big;
}

function migrationYaml(name: string, vm: string, target?: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: ${NS}}\nspec: {vmName: ${vm}${target ? `, targetHost: ${target}` : ""}}\n`;
}

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["create", "namespace", NS]);
  await kubectlOk(cp, ["apply", "-f", "-"], fleet());
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 5 hosts in 2 clusters, 4 VMs/);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", NS, "--timeout=180s"]);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function vm(name: string): Promise<VirtualMachine> {
  return JSON.parse(await kubectlOk(cp, ["get", "vm", name, "-n", NS, "-o", "json"])) as VirtualMachine;
}

async function vms(): Promise<VirtualMachine[]> {
  return (JSON.parse(await kubectlOk(cp, ["get", "vm", "-n", NS, "-o", "json"])) as { items: VirtualMachine[] }).items;
}

async function request(name: string): Promise<VirtualMachineMigration> {
  return JSON.parse(await kubectlOk(cp, ["get", "vmim", name, "-n", NS, "-o", "json"])) as VirtualMachineMigration;
}

function otherThan(host: string | undefined, hosts: readonly string[]): string {
  const other = hosts.find((h) => h !== host);
  assert.ok(other && host, `no host other than ${host}`);
  return other;
}

test("kubectl apply of a VirtualMachineMigration moves a running VM live: kubectl wait --for=condition=Ready succeeds, the VM runs on the target, not rebooted", async () => {
  const before = await vm("web-1");
  const source = before.status?.host;
  const target = otherThan(source, PROD);
  await kubectlOk(cp, ["apply", "-f", "-"], migrationYaml("move-web-1", "web-1", target));
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vmim/move-web-1", "-n", NS, "--timeout=120s"]);

  const done = await request("move-web-1");
  assert.deepEqual([done.status?.phase, done.status?.sourceHost, done.status?.targetHost], ["Succeeded", source, target]);
  assert.equal(done.status?.observedGeneration, done.metadata.generation);
  assert.ok(done.status?.estimate?.converges, "estimated before it began");
  assert.ok((done.status?.downtimeMs ?? Infinity) <= 300, `${done.status?.downtimeMs} ms of downtime`);
  await eventually(async () => !(await request("move-web-1")).metadata.finalizers?.length, 30_000, () => "the finalizer of an ended migration stays");

  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm/web-1", "-n", NS, "--timeout=60s"]);
  assert.match(await kubectlOk(cp, ["get", "vm", "web-1", "-n", NS]), new RegExp(`^web-1\\s+Running\\s+${target}\\s`, "m"));
  const after = await vm("web-1");
  assert.equal(after.status?.startedAt, before.status?.startedAt, "moved live: the guest was not rebooted");
  await eventually(() => worldVms(state.path).get(`${NS}/web-1`)?.host === target, 30_000, () => `the saved world has web-1 on ${worldVms(state.path).get(`${NS}/web-1`)?.host}`);

  // The printer columns, in kubectl and in vireo get; the kind is in the vireo category.
  const columns = new RegExp(`^move-web-1\\s+web-1\\s+Live\\s+Succeeded\\s+${source}\\s+${target}\\s+\\d+[smh]\\S*$`, "m");
  const table = await kubectlOk(cp, ["get", "vmim", "-n", NS]);
  assert.match(table, /^NAME\s+VM\s+MODE\s+PHASE\s+SOURCE\s+TARGET\s+AGE$/m);
  assert.match(table, columns);
  const ours = await vireoCommand(["get", "vmim", "-n", NS, "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(ours.code, 0, ours.stderr);
  assert.match(ours.stdout, columns, "vireo get prints the table kubectl prints");
  const wide = await vireoCommand(["get", "virtualmachinemigrations", "move-web-1", "-n", NS, "-o", "wide", "--kubeconfig", cp.kubeconfigPath]);
  assert.match(wide.stdout, new RegExp(`^move-web-1\\s+web-1\\s+Live\\s+Succeeded\\s+${source}\\s+${target}\\s+\\d+[smh]\\S*\\s+\\d+\\s+\\d+\\s*$`, "m"));
  assert.match(await kubectlOk(cp, ["get", "vireo", "-n", NS]), /virtualmachinemigration\.vireo\.dev\/move-web-1/);
  await eventually(async () => /MigrationSucceeded/.test(await kubectlOk(cp, ["get", "events", "-n", NS, "--field-selector", "involvedObject.name=move-web-1"])), 60_000, () => "no MigrationSucceeded event");
});

test("a host put into maintenance with kubectl patch empties by live migration: its VMs run elsewhere, none rebooted", async () => {
  const host = (await vm("web-2")).status!.host!;
  const leaving = (await vms()).filter((v) => v.status?.host === host);
  assert.ok(leaving.length >= 1);
  await kubectlOk(cp, ["patch", "host", host, "--type", "merge", "-p", '{"spec":{"maintenance":true}}']);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Maintenance", `host/${host}`, "--timeout=180s"]);

  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", NS, "--timeout=120s"]);
  const now = new Map((await vms()).map((v) => [v.metadata.name, v]));
  for (const v of leaving) {
    const moved = now.get(v.metadata.name)!;
    assert.equal(moved.status?.phase, "Running", `${v.metadata.name} runs`);
    assert.notEqual(moved.status?.host, host, `${v.metadata.name} left ${host}`);
    assert.equal(moved.status?.startedAt, v.status?.startedAt, `${v.metadata.name} moved live, not rebooted`);
  }
  await eventually(() => ![...worldVms(state.path).values()].some((v) => v.host === host), 30_000, () => `the saved world still has VMs on ${host}`);

  await kubectlOk(cp, ["patch", "host", host, "--type", "merge", "-p", '{"spec":{"maintenance":false}}']);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Ready", `host/${host}`, "--timeout=120s"]);
  const back = JSON.parse(await kubectlOk(cp, ["get", "host", host, "-o", "json"])) as Host;
  assert.equal(back.status?.phase, "Ready");
});

test("vireo migrate NS/VM --kubeconfig creates the request, prints its progress and exits 0 when the VM has moved", async () => {
  const before = await vm("web-3");
  const result = await vireoCommand(["migrate", `${NS}/web-3`, "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
  const name = /virtualmachinemigration\.vireo\.dev\/(\S+) created in namespace mig/.exec(result.stdout)?.[1];
  assert.ok(name, result.stdout);
  const target = /^Succeeded: running on (\S+) after \d+ ms of downtime$/m.exec(result.stdout)?.[1];
  assert.ok(target, `no Succeeded line:\n${result.stdout}`);
  assert.notEqual(target, before.status?.host);
  assert.ok(result.stdout.trim().split("\n").length >= 3, `progress lines, not only the outcome:\n${result.stdout}`);

  await kubectlOk(cp, ["wait", "--for=condition=Ready", `vmim/${name}`, "-n", NS, "--timeout=30s"]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.host}=" + target, "vm/web-3", "-n", NS, "--timeout=60s"]);
  const after = await vm("web-3");
  assert.equal(after.status?.phase, "Running");
  assert.equal(after.status?.startedAt, before.status?.startedAt, "moved live: the guest was not rebooted");
});

test("the API server refuses a change to a migration's spec (the CRD's CEL rule); a migration of a missing VM ends Failed, Stalled, with the reason", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vmim/move-web-1", "-n", NS, "--timeout=30s"]);
  const patched = await cp.kubectl(["patch", "vmim", "move-web-1", "-n", NS, "--type", "merge", "-p", '{"spec":{"targetHost":"h3"}}']);
  assert.notEqual(patched.code, 0, "the API server accepted a new spec");
  assert.match(patched.stderr, /a migration's spec cannot change; delete it and create another/);
  const applied = await cp.kubectl(["apply", "-f", "-"], { input: migrationYaml("move-web-1", "web-2") });
  assert.notEqual(applied.code, 0, "kubectl apply of another spec was accepted");
  assert.match(applied.stderr, /spec: Invalid value: .*a migration's spec cannot change/);
  assert.equal((await request("move-web-1")).spec.vmName, "web-1");

  await kubectlOk(cp, ["apply", "-f", "-"], migrationYaml("ghost", "nobody"));
  await kubectlOk(cp, ["wait", "--for=condition=Stalled", "vmim/ghost", "-n", NS, "--timeout=60s"]);
  const ghost = await request("ghost");
  assert.equal(ghost.status?.phase, "Failed");
  assert.equal(ghost.status?.failureReason, `VirtualMachine ${NS}/nobody does not exist`);
  const stalled = ghost.status?.conditions?.find((c) => c.type === "Stalled");
  assert.deepEqual([stalled?.status, stalled?.reason, stalled?.message], ["True", "Failed", `VirtualMachine ${NS}/nobody does not exist`]);
  assert.equal(ghost.status?.conditions?.find((c) => c.type === "Ready")?.status, "False");
  await eventually(async () => /MigrationFailed/.test(await kubectlOk(cp, ["get", "events", "-n", NS, "--field-selector", "involvedObject.name=ghost"])), 60_000, () => "no MigrationFailed event");
});

test("deleting a VirtualMachineMigration while it copies cancels it: the VM stays on its source, the object goes once the copy stopped; vireo plan showed the copy with its estimate", async () => {
  const before = await vm("big");
  const source = before.status!.host!;
  await kubectlOk(cp, ["apply", "-f", "-"], migrationYaml("move-big", "big"));
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=PreCopy", "vmim/move-big", "-n", NS, "--timeout=120s"]);
  const copying = await request("move-big");
  const target = otherThan(source, ["s1", "s2"]);
  assert.deepEqual([copying.status?.sourceHost, copying.status?.targetHost], [source, target]);
  assert.ok(copying.metadata.finalizers?.includes("vireo.dev/cleanup"), `finalizers: ${JSON.stringify(copying.metadata.finalizers)}`);
  assert.ok((copying.status?.estimate?.durationSeconds ?? 0) > 2048, `a long copy is expected: ${JSON.stringify(copying.status?.estimate)}`);

  // vireo plan lists it: under way, its target and what was expected of it.
  const planned = await vireoCommand(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "-o", "json"]);
  assert.equal(planned.code, 0, planned.stderr);
  const entry = (JSON.parse(planned.stdout) as PlanReport).migrations.find((m) => m.name === "move-big");
  assert.ok(entry, `move-big is not in the plan: ${planned.stdout}`);
  assert.deepEqual([entry.namespace, entry.vm, entry.verdict, entry.target], [NS, "big", "Live", target]);
  assert.deepEqual(entry.estimate, copying.status?.estimate);
  const table = await vireoCommand(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path]);
  assert.match(table.stdout, new RegExp(`^VirtualMachineMigration ${NS}/move-big\\s+${NS}/big\\s+${target}\\s+(PreCopy|Scheduling); (\\d+ rounds, |no convergence expected: )`, "m"));

  await kubectlOk(cp, ["delete", "vmim", "move-big", "-n", NS, "--timeout=120s"]);
  const gone = await cp.kubectl(["get", "vmim", "move-big", "-n", NS]);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /NotFound/);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm/big", "-n", NS, "--timeout=60s"]);
  const after = await vm("big");
  assert.deepEqual([after.status?.phase, after.status?.host], ["Running", source], "the VM stays on its source");
  assert.equal(after.status?.startedAt, before.status?.startedAt);
  const world = worldVms(state.path).get(`${NS}/big`);
  assert.deepEqual([world?.host, world?.power], [source, "Running"], "the hosts run it on its source");
});
