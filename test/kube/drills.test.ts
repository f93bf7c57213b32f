// An HA drill through the real API server: a fleet and an HAPolicy applied with kubectl, `vireo run
// --kubeconfig` as a process with the simulated hosts in it, then `kubectl apply -f` of a HostCrash Fault.
// Everything is checked as an operator would: kubectl wait, kubectl get, kubectl get events, /metrics;
// and the simulated world the controller saved in its state directory.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Fault, Host, HostCluster, RecoveryPlan, VirtualMachine } from "../../controller/api/types.ts";
import { selectorMatches } from "../../controller/api/selectors.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { parseManifestFile, formatManifestError } from "../../controller/sources/files/manifests.ts";
import { REPO, VireoProcess, WAIT_MS, tempDir } from "../support/process.ts";
import { HIGH, HOSTS, VMS, drillFleetYaml } from "../support/drill-fleet.ts";

const FLEET = drillFleetYaml();

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-drill");
/** Where the Fault manifest is written for `kubectl apply -f`. */
const drills = tempDir("kube-drill-faults");

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["apply", "-f", "-"], FLEET);
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 3 hosts in 1 clusters, 6 VMs/);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
  drills.remove();
});

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, ["get", ...args, "-o", "json"])) as T;
}

async function vmsByName(): Promise<Map<string, VirtualMachine>> {
  const list = await getJson<{ items: VirtualMachine[] }>(["vm", "-n", "default"]);
  return new Map(list.items.map((vm) => [vm.metadata.name, vm]));
}

async function hostPhase(name: string): Promise<string | undefined> {
  return (await getJson<Host>(["host", name])).status?.phase;
}

/** A VM's name, phase and host, and why it is not Ready: what a failed wait needs to show. */
function whyNot(vm: VirtualMachine): string {
  const ready = vm.status?.conditions?.find((c) => c.type === "Ready");
  return `${vm.metadata.name} ${vm.status?.phase ?? "-"} on ${vm.status?.host ?? "-"}${ready?.status === "True" ? "" : `: ${ready?.message ?? "no Ready condition"}`}`;
}

/** The simulated world's own records: each VM id once, and the refused starts of a second copy. */
function world(): { ids: string[]; splitBrainAttempts: number } {
  const file = JSON.parse(readFileSync(join(state.path, "world.json"), "utf8")) as { vms: { id: string }[]; splitBrainAttempts: number };
  return { ids: file.vms.map((vm) => vm.id), splitBrainAttempts: file.splitBrainAttempts };
}

/** Seconds kubectl wait allows: generous, for a busy machine (a wait that succeeds returns at once). */
const WAIT = `--timeout=${WAIT_MS / 1000}s`;

function faultYaml(name: string, spec: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
}

test("kubectl apply -f of a HostCrash Fault: the host fails, its protected VMs are Ready elsewhere, events name each move, the fault heals", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "default", WAIT]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Ready", "host", "--all", WAIT]);
  const before = await vmsByName();
  const counts = new Map(HOSTS.map((h) => [h, [...before.values()].filter((vm) => vm.status?.host === h).length]));
  const victim = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
  const victims = [...before.values()].filter((vm) => vm.status?.host === victim).map((vm) => vm.metadata.name);
  assert.ok(victims.some((n) => HIGH.has(n)), `a High-priority VM runs on ${victim}: ${victims.join(", ")}`);

  // No duration yet: the host stays down until HA has acted, however long a busy machine makes that take (at
  // 50x, a duration of minutes is seconds of real time, and could end before a lagging controller acts).
  const faultFile = join(drills.path, "crash.yaml");
  writeFileSync(faultFile, faultYaml(`crash-${victim}`, `{type: HostCrash, target: {host: ${victim}}}`));
  await kubectlOk(cp, ["apply", "-f", faultFile]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Active", `fault/crash-${victim}`, WAIT]);
  const table = await kubectlOk(cp, ["get", "fault", `crash-${victim}`]);
  assert.match(table, new RegExp(`^crash-${victim}\\s+HostCrash\\s+${victim}\\s+Active\\s`, "m"));
  const struck = (await getJson<Fault>(["fault", `crash-${victim}`])).status?.startTime;
  assert.ok(struck, "the Fault records when it struck");

  // Failed from its heartbeats, then every protected VM of it Ready on another host.
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Failed", `host/${victim}`, WAIT]);
  await eventually(async () => {
    const now = await vmsByName();
    return victims.every((n) => {
      const vm = now.get(n);
      return vm?.status?.host !== undefined && vm.status.host !== victim && vm.status.lastFailover?.toHost === vm.status.host;
    });
  }, WAIT_MS, async () => `not all of ${victims.join(", ")} restarted away from ${victim}:\n${[...(await vmsByName()).values()].map(whyNot).join("\n")}\n${vireo.logs().slice(-4000)}`);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", ...victims.map((n) => `vm/${n}`), "-n", "default", WAIT]);
  const moved = await vmsByName();
  const fault = await getJson<Fault>(["fault", `crash-${victim}`]);
  assert.equal(fault.status?.phase, "Active", "the VMs are back while the host is still down");
  assert.equal(await hostPhase(victim), "Failed");
  for (const n of victims) {
    const vm = moved.get(n)!;
    assert.equal(vm.status?.phase, "Running", n);
    assert.notEqual(vm.status?.host, victim, `${n} moved`);
    assert.equal(vm.status?.lastFailover?.fromHost, victim, n);
    assert.ok((vm.status?.restarts ?? 0) >= 1, `${n}: status.restarts counts the failover`);
  }
  for (const [n, was] of before) {
    if (victims.includes(n)) continue;
    assert.equal(moved.get(n)?.status?.host, was.status?.host, `${n} was not on ${victim} and stays`);
    assert.equal(moved.get(n)?.status?.startedAt, was.status?.startedAt, `${n} was not restarted`);
  }

  // kubectl get events: one failover decision per VM, naming the VM, the old host and the new one.
  await eventually(async () => {
    const events = await getJson<{ items: { involvedObject: { name: string }; reason: string; message: string }[] }>(["events", "-n", "default", "--field-selector", "reason=FailoverRestart"]);
    return victims.every((n) => events.items.some((e) => e.involvedObject.name === n && e.message.includes(`restarting on host ${moved.get(n)!.status!.host} (was on ${victim})`)));
  }, WAIT_MS, async () => await kubectlOk(cp, ["get", "events", "-n", "default", "--field-selector", "reason=FailoverRestart"]));
  const listed = await kubectlOk(cp, ["get", "events", "-n", "default", "--field-selector", "reason=FailoverRestart"]);
  for (const n of victims) assert.match(listed, new RegExp(`FailoverRestart\\s+virtualmachine/${n}\\s+restarting on host h\\d \\(was on ${victim}\\)`));

  // Now the drill gets its duration, 400 s from the crash: it heals when they are up (at once, if they have
  // passed already). The host boots again, Ready, running nothing twice.
  await kubectlOk(cp, ["patch", "fault", `crash-${victim}`, "--type=merge", "-p", JSON.stringify({ spec: { durationSeconds: 400 } })]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Healed", `fault/crash-${victim}`, WAIT]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Ready", `host/${victim}`, WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "fault", `crash-${victim}`, WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "default", WAIT]);
  const healed = (await getJson<Fault>(["fault", `crash-${victim}`])).status!;
  assert.equal(healed.startTime, struck, "the duration counts from the crash, not from the edit");
  assert.ok(Date.parse(healed.healTime!) - Date.parse(struck) >= 400_000, `healed after its duration: ${struck} → ${healed.healTime}`);
  const final = await vmsByName();
  for (const n of victims) assert.equal(final.get(n)?.status?.host, moved.get(n)?.status?.host, `${n} stays where HA restarted it`);
  const { ids, splitBrainAttempts } = world();
  assert.equal(splitBrainAttempts, 0, "no start was refused for a disk locked by another host");
  assert.deepEqual([...ids].sort(), VMS.map((n) => `default/${n}`).sort(), "each VM once in the simulated world");
  const placed = worldVms(state.path);
  for (const [n, vm] of final) {
    assert.equal(placed.get(`default/${n}`)?.host, vm.status?.host, `${n}: the world and the status agree`);
    assert.equal(placed.get(`default/${n}`)?.power, "Running", n);
  }
  const address = vireo.logs().match(/metrics on http:\/\/([^/\s"]+)\/metrics/)![1]!;
  const metrics = await (await fetch(`http://${address}/metrics`)).text();
  assert.match(metrics, /^vireo_split_brain_attempts 0$/m);
  assert.match(metrics, /^vireo_faults_injected_total\{type="HostCrash"\} 1$/m);

  // Deleting the healed Fault is clean: its finalizer comes off.
  await kubectlOk(cp, ["delete", "fault", `crash-${victim}`, WAIT]);
});

test("the ready drills in manifests/drills are accepted by the API server and the file mode, and aim at the example fleet", async () => {
  // A RecoveryPlan is namespaced: the examples' namespaces exist first, as they would for `kubectl apply -f manifests/examples`.
  await kubectlOk(cp, ["apply", "-f", join(REPO, "manifests", "examples", "00-namespaces.yaml")]);
  const drillsDir = join(REPO, "manifests", "drills");
  const examples = join(REPO, "manifests", "examples");
  const fleet = readdirSync(examples).filter((f) => f.endsWith(".yaml")).flatMap((f) => {
    const parsed = parseManifestFile(f, readFileSync(join(examples, f), "utf8"));
    assert.ok(parsed.ok, f);
    return parsed.documents.map((d) => d.object);
  });
  const hosts = new Set(fleet.filter((o) => o.kind === "Host").map((o) => o.metadata.name));
  const vms = new Set(fleet.filter((o) => o.kind === "VirtualMachine").map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
  const declaredVms = fleet.filter((o): o is VirtualMachine => o.kind === "VirtualMachine");
  const clusters = fleet.filter((o): o is HostCluster => o.kind === "HostCluster");
  const files = readdirSync(drillsDir).filter((f) => f.endsWith(".yaml")).sort();
  assert.ok(files.length >= 5);
  for (const file of files) {
    const parsed = parseManifestFile(file, readFileSync(join(drillsDir, file), "utf8"));
    assert.ok(parsed.ok, `${file}: ${parsed.ok ? "" : parsed.errors.map(formatManifestError).join("; ")}`);
    for (const { object } of parsed.documents) {
      if (object.kind === "RecoveryPlan") {
        assertPlanAimsAtExamples(file, object, { vms: declaredVms, clusters, hosts: fleet.filter((o): o is Host => o.kind === "Host") });
        continue;
      }
      assert.equal(object.kind, "Fault", file);
      const { target } = (object as Fault).spec;
      for (const h of [...(target.host ? [target.host] : []), ...(target.hosts ?? [])]) assert.ok(hosts.has(h), `${file}: no host ${h} in the examples`);
      if (target.vm) assert.ok(vms.has(`${target.vm.namespace}/${target.vm.name}`), `${file}: no VM ${target.vm.namespace}/${target.vm.name} in the examples`);
    }
    await kubectlOk(cp, ["apply", "--dry-run=server", "-f", join(drillsDir, file)]);
  }
});

/** A drill's RecoveryPlan selects replicated example VMs of its namespace, and a Test's network is in their target cluster. */
function assertPlanAimsAtExamples(file: string, plan: RecoveryPlan, examples: { vms: readonly VirtualMachine[]; clusters: readonly HostCluster[]; hosts: readonly Host[] }): void {
  const { vms, clusters, hosts } = examples;
  const selected = vms.filter((vm) => vm.metadata.namespace === plan.metadata.namespace && selectorMatches(plan.spec.selector, vm.metadata.labels ?? {}));
  assert.ok(selected.length > 0, `${file}: selects no example VM in namespace ${plan.metadata.namespace}`);
  for (const vm of selected) {
    const target = vm.spec.replication?.targetCluster;
    assert.ok(target, `${file}: selects ${vm.metadata.name}, which is not replicated`);
    const cluster = clusters.find((c) => c.metadata.name === target);
    assert.ok(cluster, `${file}: ${vm.metadata.name} replicates to cluster ${target}, which the examples do not declare`);
    if (plan.spec.action !== "Test") continue;
    const members = hosts.filter((h) => selectorMatches(cluster.spec.hostSelector, h.metadata.labels ?? {}));
    assert.ok(members.some((h) => h.spec.networks.includes(plan.spec.testNetwork!)), `${file}: no host of cluster ${target} has network ${plan.spec.testNetwork}`);
  }
}
