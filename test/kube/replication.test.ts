// Replication and disaster recovery through the real API server: the two-site fleet applied with kubectl,
// `vireo run --kubeconfig` with the simulated hosts in it, and everything checked as an operator would —
// kubectl wait, kubectl get, kubectl describe, /metrics — and against the simulated hosts themselves.
//
// The tests share one control plane and one controller, and run in file order: the bad input and the Test
// plan leave production as it was (which they assert); the site loss comes last, because it ends prod.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Condition, RecoveryPlan, VirtualMachine, VmReplicaFailoverStatus } from "../../controller/api/types.ts";
import type { VmObservation } from "../../controller/core/observation.ts";
import { HttpProvider } from "../../controller/provider/http/client.ts";
import { readSimEndpoint } from "../../controller/cli/sim-endpoint.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode } from "../support/cluster.ts";
import { VireoProcess, WAIT_MS, tempDir, vireoCommand } from "../support/process.ts";
import { DR_HOSTS, PROD_HOSTS, drFleetYaml, drVmYaml, recoveryPlanYaml, type DrVm } from "../support/dr-fleet.ts";

/** Small disks on a fast link: the first full syncs take seconds of simulated time. */
const VMS: DrVm[] = [
  { name: "db-0", tier: "db", diskGiB: 1 },
  { name: "app-0", tier: "app", diskGiB: 1 },
  { name: "web-0", tier: "web", diskGiB: 1 },
  { name: "plain-0", tier: "none", diskGiB: 1, replicated: false },
];
const REPLICATED = VMS.filter((v) => v.replicated !== false).map((v) => v.name);
/** The replicated VMs, and not plain-0, which carries the same site label: a plan of it would be refused. */
const REPLICATED_SELECTOR = "{matchExpressions: [{key: tier, operator: In, values: [db, app, web]}]}";

/** Seconds kubectl wait allows: generous, for a busy machine (a wait that succeeds returns at once). */
const WAIT = `--timeout=${WAIT_MS / 1000}s`;

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-replication");

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["apply", "-f", "-"], drFleetYaml(VMS, { bandwidthMiBps: 1000 }));
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 6 hosts in 2 clusters, 4 VMs/);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "default", WAIT]);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, ["get", ...args, "-o", "json"])) as T;
}

async function vmsByName(): Promise<Map<string, VirtualMachine>> {
  const list = await getJson<{ items: VirtualMachine[] }>(["vm", "-n", "default"]);
  return new Map(list.items.map((vm) => [vm.metadata.name, vm]));
}

function conditionOf(object: { status?: { conditions?: Condition[] } }, type: string): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

/** The simulated hosts as they report now, through the running controller's simulator endpoint. */
async function simulatedVms(): Promise<Map<string, VmObservation>> {
  const endpoint = readSimEndpoint(state.path);
  const observation = await new HttpProvider({ url: endpoint.url, token: endpoint.token }).observe();
  return new Map(observation.vms.map((vm) => [vm.id, vm]));
}

/** The simulated world as saved: when hosts crashed, the replicas promoted, the refused starts of a second copy. */
interface SavedWorld {
  splitBrainAttempts: number;
  hosts: { name: string; crashedAt?: number }[];
  recoveries: { vm: string; instanceAt: number }[];
}

function savedWorld(): SavedWorld {
  return JSON.parse(readFileSync(join(state.path, "world.json"), "utf8")) as SavedWorld;
}

async function metrics(): Promise<string> {
  const address = vireo.logs().match(/metrics on http:\/\/([^/\s"]+)\/metrics/)![1]!;
  return (await fetch(`http://${address}/metrics`)).text();
}

/** Where each VM runs and since when: what must not change while nothing should touch production. */
async function production(): Promise<Map<string, string>> {
  const vms = await vmsByName();
  return new Map([...vms].map(([n, vm]) => [n, `${vm.status?.phase} on ${vm.status?.host} since ${vm.status?.startedAt}`]));
}

/** kubectl apply that the API server must refuse: its stderr. */
async function refusedApply(yaml: string): Promise<string> {
  const r = await cp.kubectl(["apply", "-f", "-"], { input: yaml });
  assert.notEqual(r.code, 0, `the API server accepted:\n${yaml}\n${r.stdout}`);
  return r.stderr;
}

test("the API server refuses bad replication and recovery input with the field path, and production runs on; a plan selecting no VM ends Failed, Stalled NoVMsSelected", async () => {
  const running = await production();

  const rpo = await refusedApply(drVmYaml({ name: "bad-rpo", tier: "web", diskGiB: 1, rpoSeconds: 60 }));
  assert.match(rpo, /spec\.replication\.rpoSeconds: Invalid value: 60: spec\.replication\.rpoSeconds in body should be greater than or equal to 300/);
  const sameCluster = await refusedApply(drVmYaml({ name: "bad-target", tier: "web", diskGiB: 1 }).replace("targetCluster: dr", "targetCluster: prod"));
  assert.match(sameCluster, /spec\.replication\.targetCluster: Invalid value: .*replication\.targetCluster must differ from placement\.cluster/);
  const unknownNetwork = await refusedApply(drVmYaml({ name: "bad-network", tier: "web", diskGiB: 1 }).replace("{source: prod, target: dr-net}", "{source: storage, target: dr-net}"));
  assert.match(unknownNetwork, /spec\.replication\.networkMapping: Invalid value: .*every replication\.networkMapping source must name one of the VM's networks/);
  const noTestNetwork = await refusedApply(recoveryPlanYaml("bad-test", "Test", "", REPLICATED_SELECTOR));
  assert.match(noTestNetwork, /spec\.testNetwork: Required value: testNetwork is required when action is Test/);
  // An edit of a running VM is refused the same way, and leaves its spec as it was.
  const edit = await refusedApply(drVmYaml({ name: "db-0", tier: "db", diskGiB: 1, rpoSeconds: 60 }));
  assert.match(edit, /spec\.replication\.rpoSeconds/);

  const vms = await vmsByName();
  assert.deepEqual([...vms.keys()].sort(), VMS.map((v) => v.name).sort(), "no refused VM was created");
  assert.equal(vms.get("db-0")?.spec.replication?.rpoSeconds, 300);
  assert.equal(vms.get("db-0")?.metadata.generation, 1);
  assert.deepEqual((await getJson<{ items: RecoveryPlan[] }>(["rp", "-n", "default"])).items, []);

  // Valid for the API server, but Vireo finds nothing to recover: it says so and touches nothing.
  await kubectlOk(cp, ["apply", "-f", "-"], recoveryPlanYaml("nobody", "Migrate", "", "{matchLabels: {site: elsewhere}}"));
  await kubectlOk(cp, ["wait", "--for=condition=Stalled", "rp/nobody", "-n", "default", WAIT]);
  const nobody = await getJson<RecoveryPlan>(["rp", "nobody", "-n", "default"]);
  assert.equal(nobody.status?.phase, "Failed");
  assert.equal(nobody.status?.observedGeneration, nobody.metadata.generation);
  const stalled = conditionOf(nobody, "Stalled");
  assert.deepEqual([stalled?.status, stalled?.reason, stalled?.message], ["True", "NoVMsSelected", "the selector selects no VirtualMachine in namespace default"]);
  assert.equal(conditionOf(nobody, "Ready")?.status, "False");
  assert.match(await kubectlOk(cp, ["get", "rp", "nobody", "-n", "default"]), /^nobody\s+Migrate\s+Failed\s+\d+[smh]\S*$/m);
  await kubectlOk(cp, ["delete", "rp", "nobody", "-n", "default", WAIT]);

  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "default", WAIT]);
  assert.deepEqual(await production(), running, "no VM moved or restarted");
});

test("a Test RecoveryPlan applied with kubectl runs copies in dr on dr-test with new MACs while production runs on; kubectl delete waits until the copies are gone", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Replicated", ...REPLICATED.map((n) => `vm/${n}`), "-n", "default", WAIT]);
  const running = await production();
  const macs = new Map([...(await vmsByName())].map(([n, vm]) => [n, vm.status?.networks?.[0]?.macAddress]));

  await kubectlOk(cp, ["apply", "-f", "-"], recoveryPlanYaml("drill", "Test", "  testNetwork: dr-test\n", REPLICATED_SELECTOR));
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Succeeded", "recoveryplan/drill", "-n", "default", WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "rp/drill", "-n", "default", WAIT]);
  const drill = await getJson<RecoveryPlan>(["rp", "drill", "-n", "default"]);
  assert.ok(drill.metadata.finalizers?.includes("vireo.dev/cleanup"), `a Test plan holds a finalizer: ${JSON.stringify(drill.metadata.finalizers)}`);
  assert.equal(drill.status?.message, "3 test copies run on network dr-test; they are removed when the plan is deleted");
  assert.deepEqual(drill.status?.vms?.map((v) => [v.vm, v.result, v.copy, v.cluster]), [...REPLICATED].sort().map((n) => [`default/${n}`, "Recovered", `${n}-test`, "dr"]));

  // The printer columns: kubectl get rp, its wide form with the message, and vireo get rp the same.
  const table = await kubectlOk(cp, ["get", "rp", "-n", "default"]);
  assert.match(table, /^NAME\s+ACTION\s+PHASE\s+STEP\s+AGE$/m);
  // STEP is empty: the plan is at no step once it has succeeded.
  const row = /^drill\s+Test\s+Succeeded\s+\d+[smh]\S*$/m;
  assert.match(table, row);
  assert.match(await kubectlOk(cp, ["get", "rp", "drill", "-n", "default", "-o", "wide"]), /^drill\s+Test\s+Succeeded\s+\d+[smh]\S*\s+3 test copies run on network dr-test; they are removed when the plan is deleted$/m);
  const ours = await vireoCommand(["get", "rp", "-n", "default", "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(ours.code, 0, ours.stderr);
  assert.match(ours.stdout, row, "vireo get prints the table kubectl prints");
  await eventually(async () => /TestCopyStarted/.test(await kubectlOk(cp, ["get", "events", "-n", "default", "--field-selector", "involvedObject.name=drill"])), WAIT_MS, () => "no TestCopyStarted event");

  // The simulated hosts run each copy in dr, on the test network with a MAC of its own; production is untouched.
  const hosts = await simulatedVms();
  for (const n of REPLICATED) {
    const copy = hosts.get(`default/${n}-test`);
    assert.ok(copy, `no copy of ${n} on the hosts`);
    assert.equal(copy.power, "Running", `${n}-test`);
    assert.ok(DR_HOSTS.includes(copy.host), `${n}-test runs in dr, on ${copy.host}`);
    assert.deepEqual(copy.config.nics.map((nic) => nic.network), ["dr-test"]);
    assert.notEqual(copy.config.nics[0]!.macAddress, macs.get(n), `${n}-test has a MAC of its own`);
    assert.deepEqual(copy.config.disks.map((d) => d.datastore), ["dr-ds"]);
    assert.ok(PROD_HOSTS.includes(hosts.get(`default/${n}`)!.host), `${n} stays in prod`);
  }
  const listed = await vireoCommand(["get", "vms", "-n", "default", "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.doesNotMatch(listed.stdout, /-test/, "a copy is no VirtualMachine");
  assert.deepEqual(await production(), running, "production runs on where it ran");

  // kubectl delete returns once the finalizer came off, which Vireo removes only when the copies are gone.
  await kubectlOk(cp, ["delete", "rp", "drill", "-n", "default", WAIT]);
  const after = await simulatedVms();
  assert.deepEqual([...after.keys()].filter((id) => id.endsWith("-test")), [], "no test copy remains on the hosts");
  assert.deepEqual([...after.keys()].sort(), VMS.map((v) => `default/${v.name}`).sort());
  await kubectlOk(cp, ["wait", "--for=condition=Replicated", ...REPLICATED.map((n) => `vm/${n}`), "-n", "default", WAIT]);
  assert.deepEqual(await production(), running, "production ran on through the test");
});

/** A replicated VM recovered in dr: running on a dr host with its MAC, its status saying where from. */
function assertFailedOverToDr(name: string, before: VirtualMachine, after: VirtualMachine): void {
  assert.equal(after.status?.phase, "Running", name);
  assert.ok(DR_HOSTS.includes(after.status!.host!), `${name} runs in dr, on ${after.status?.host}`);
  assert.deepEqual(after.status?.networks?.map((net) => net.macAddress), before.status?.networks?.map((net) => net.macAddress), `${name} keeps its MAC`);
  const failover = after.status?.replication?.failover;
  assert.ok(failover, `${name}: status.replication.failover is set`);
  assert.deepEqual([failover.fromCluster, failover.toCluster, failover.host], ["prod", "dr", after.status?.host], name);
}

/**
 * What the failover lost, as the VM's status tells it: the writes from the start of the instance it started
 * from until its prod host crashed, as closely as that host's last datastore heartbeat (one a second) lets
 * the controller know the instant.
 */
function assertDataLoss(name: string, prodHost: string, failover: VmReplicaFailoverStatus, world: SavedWorld): void {
  const recovery = world.recoveries.find((r) => r.vm === `default/${name}`);
  assert.ok(recovery, `the simulated hosts recorded no recovery of ${name}`);
  assert.equal(Date.parse(failover.instanceTime), recovery.instanceAt, `${name} started from the instance the hosts promoted`);
  const crashedAt = world.hosts.find((h) => h.name === prodHost)?.crashedAt;
  assert.ok(crashedAt !== undefined, `${name}'s host ${prodHost} crashed`);
  const lost = (crashedAt - recovery.instanceAt) / 1000;
  assert.ok(failover.dataLossSeconds >= lost - 1.01 && failover.dataLossSeconds <= lost + 0.01,
    `${name}: reported ${failover.dataLossSeconds} s lost; its host crashed ${lost} s after the instance began`);
  assert.ok(failover.dataLossSeconds > 0 && failover.dataLossSeconds <= 300, `${name}: ${failover.dataLossSeconds} s lost, within the RPO`);
  assert.ok(Math.abs(failover.dataLossMiB - failover.dataLossSeconds * 0.5) <= 0.01, `${name}: ${failover.dataLossMiB} MiB lost writing 0.5 MiB/s`);
}

test("site loss: every prod host crashes; the replicated VMs fail over to dr with their MACs, kubectl tells what was lost, the unreplicated VM says why it stays down", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Replicated", ...REPLICATED.map((n) => `vm/${n}`), "-n", "default", WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "default", WAIT]);
  const before = await vmsByName();
  for (const n of REPLICATED) {
    const replication = before.get(n)!.status!.replication!;
    assert.deepEqual([replication.state, replication.targetCluster, replication.datastore, replication.rpoViolated], ["Replicating", "dr", "dr-ds", false], n);
  }

  const faults = PROD_HOSTS.map((h) => `apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: crash-${h}}\nspec: {type: HostCrash, target: {host: ${h}}}\n---\n`).join("");
  await kubectlOk(cp, ["apply", "-f", "-"], faults);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Active", ...PROD_HOSTS.map((h) => `fault/crash-${h}`), WAIT]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Failed", ...PROD_HOSTS.map((h) => `host/${h}`), WAIT]);

  const replicated = REPLICATED.map((n) => `vm/${n}`);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.replication.state}=FailedOver", ...replicated, "-n", "default", WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", ...replicated, "-n", "default", WAIT]);

  const after = await vmsByName();
  const world = savedWorld();
  for (const n of REPLICATED) {
    assertFailedOverToDr(n, before.get(n)!, after.get(n)!);
    assertDataLoss(n, before.get(n)!.status!.host!, after.get(n)!.status!.replication!.failover!, world);
  }
  const hosts = await simulatedVms();
  for (const n of REPLICATED) {
    const instance = hosts.get(`default/${n}`)!;
    assert.equal(instance.host, after.get(n)!.status?.host, `${n}: the hosts and the status agree`);
    assert.deepEqual(instance.config.nics.map((nic) => nic.network), ["dr-net"], `${n} joins the mapped network`);
    assert.equal(instance.config.nics[0]!.macAddress, before.get(n)!.status!.networks![0]!.macAddress, `${n} keeps its MAC on the hosts`);
  }

  // kubectl describe tells each VM's failover and what it cost, as its status does.
  for (const n of REPLICATED) {
    const failover = after.get(n)!.status!.replication!.failover!;
    const told = new RegExp(`Warning\\s+FailedOverToReplica\\s+.*started on host ${failover.host} in cluster dr from the instance of ${failover.instanceTime.replaceAll(".", "\\.")}: ${failover.dataLossSeconds} s \\(${failover.dataLossMiB} MiB\\) of writes lost`);
    await eventually(async () => told.test(await kubectlOk(cp, ["describe", "vm", n, "-n", "default"])), WAIT_MS,
      async () => `${told}:\n${await kubectlOk(cp, ["describe", "vm", n, "-n", "default"])}`);
  }

  // plain-0 has no replica: it stays down and its Ready condition says why.
  await kubectlOk(cp, ["wait", '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=SiteLost', "vm/plain-0", "-n", "default", WAIT]);
  const plain = (await vmsByName()).get("plain-0")!;
  assert.notEqual(plain.status?.phase, "Running");
  const ready = conditionOf(plain, "Ready");
  assert.deepEqual([ready?.status, ready?.message], ["False", "every host of cluster prod failed and nothing recovers the VM elsewhere: the VM has no replica (spec.replication is not set)"]);

  assert.equal(savedWorld().splitBrainAttempts, 0, "no start was refused for a disk another host might still write");
  assert.match(await metrics(), /^vireo_split_brain_attempts 0$/m);
});
