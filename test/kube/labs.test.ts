// Lab topologies through the real API server: labs applied with kubectl to a cluster `labs` of five
// simulated hosts, `vireo run --kubeconfig` making each lab's VirtualMachines there (server-side apply,
// owned by the lab), and the garbage collector of the real kube-controller-manager deleting them with
// their lab. Everything is checked as an operator would — kubectl wait, kubectl get — and against the
// simulated hosts themselves.
//
// The tests share one control plane and one controller and run in file order; the last two stop the
// controller (SIGKILL, then SIGTERM) and start it again over the same state directory.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Condition, LabTopology, VirtualMachine } from "../../controller/api/types.ts";
import { COPY_LABEL, LAB_LABEL, TIER_LABEL } from "../../controller/api/types.ts";
import type { VmObservation } from "../../controller/core/observation.ts";
import { HttpProvider } from "../../controller/provider/http/client.ts";
import { readSimEndpoint } from "../../controller/cli/sim-endpoint.ts";
import { FINALIZER } from "../../controller/sources/kube/writer.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { VireoProcess, WAIT_MS, tempDir, vireoCommand } from "../support/process.ts";
import { labFleetYaml, labYaml, tierYaml } from "../support/labs.ts";

const THREE_TIERS = tierYaml("db")
  + tierYaml("app", { replicas: 2, dependsOn: "{tier: db, waitFor: Ready, delaySeconds: 30}" })
  + tierYaml("web", { replicas: 2, dependsOn: "{tier: app, waitFor: Ready}" });

/** Seconds kubectl wait allows: generous, for a busy machine (a wait that succeeds returns at once). */
const WAIT = `--timeout=${WAIT_MS / 1000}s`;

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-labs");

before(async () => {
  cp = await ControlPlane.start({ controllerManager: true });
  await kubectlOk(cp, ["apply", "-f", "-"], labFleetYaml());
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 5 hosts in 1 clusters, 0 VMs/);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, ["get", ...args, "-o", "json"])) as T;
}

async function labOf(name: string): Promise<LabTopology> {
  return getJson<LabTopology>(["labtopology", name, "-n", "default"]);
}

/** The lab's VMs as the API server holds them, by name. */
async function labVms(lab: string): Promise<Map<string, VirtualMachine>> {
  const list = await getJson<{ items: VirtualMachine[] }>(["vm", "-n", "default", "-l", `${LAB_LABEL}=${lab}`]);
  return new Map(list.items.map((vm) => [vm.metadata.name, vm]));
}

function conditionOf(object: { status?: { conditions?: Condition[] } }, type: string): Condition | undefined {
  return object.status?.conditions?.find((c) => c.type === type);
}

/** Ready for the spec it has now: a VM whose spec changed is not Ready until Vireo has acted on the change. */
function isReady(vm: VirtualMachine): boolean {
  return vm.status?.phase === "Running" && conditionOf(vm, "Ready")?.status === "True" && vm.status.observedGeneration === vm.metadata.generation;
}

function readyAt(vm: VirtualMachine): number {
  const ready = conditionOf(vm, "Ready");
  assert.equal(ready?.status, "True", `${vm.metadata.name} is Ready`);
  return Date.parse(ready.lastTransitionTime);
}

function tierOf(vm: VirtualMachine): string {
  return vm.metadata.labels![TIER_LABEL]!;
}

/** A VM as its lab makes it: labelled with lab, copy and tier, controlled by the lab, held by Vireo's finalizer. */
function assertMadeBy(vm: VirtualMachine, lab: LabTopology): void {
  const name = vm.metadata.name;
  const labels = vm.metadata.labels ?? {};
  assert.deepEqual([labels[LAB_LABEL], labels[COPY_LABEL], labels[TIER_LABEL]], [lab.metadata.name, "0", name.split("-")[2]], name);
  assert.deepEqual(vm.metadata.ownerReferences?.map((o) => [o.apiVersion, o.kind, o.name, o.uid, o.controller]), [["vireo.dev/v1alpha1", "LabTopology", lab.metadata.name, lab.metadata.uid, true]], name);
  assert.ok(vm.metadata.finalizers?.includes(FINALIZER), `${name} carries Vireo's finalizer`);
  assert.equal(vm.spec.owner, lab.spec.owner, name);
  assert.ok(isReady(vm), `${name} is Ready`);
}

function startedAt(vm: VirtualMachine): number {
  assert.ok(vm.status?.startedAt, `${vm.metadata.name} has started`);
  return Date.parse(vm.status.startedAt);
}

function assertStartedAfter(vms: readonly VirtualMachine[], dependency: string, earliest: number): void {
  assert.ok(vms.length > 0);
  for (const vm of vms) assert.ok(startedAt(vm) >= earliest, `${vm.metadata.name} started at ${vm.status?.startedAt}, before ${dependency} allowed it (${new Date(earliest).toISOString()})`);
}

/** The lab's addresses from its status: VM name -> address. */
async function addressesOf(lab: string): Promise<Map<string, string>> {
  return new Map((await labOf(lab)).status!.addresses!.map((a) => [a.vm, a.address]));
}

/** The simulated hosts as they report now, through the running controller's simulator endpoint. */
async function simulatedVms(): Promise<Map<string, VmObservation>> {
  const endpoint = readSimEndpoint(state.path);
  const observation = await new HttpProvider({ url: endpoint.url, token: endpoint.token }).observe();
  return new Map(observation.vms.map((vm) => [vm.id, vm]));
}

/** The ids (namespace/name) of the lab's VMs on the simulated hosts. */
async function labVmsOnHosts(lab: string): Promise<string[]> {
  return [...(await simulatedVms()).keys()].filter((id) => id.startsWith(`default/${lab}-`)).sort();
}

async function applyLab(yaml: string): Promise<void> {
  await kubectlOk(cp, ["apply", "-f", "-"], yaml);
}

async function waitForPhase(lab: string, phase: string): Promise<void> {
  await kubectlOk(cp, ["wait", `--for=jsonpath={.status.phase}=${phase}`, `labtopology/${lab}`, "-n", "default", WAIT]);
}

/** kubectl apply that the API server must refuse: its stderr. */
async function refusedApply(yaml: string): Promise<string> {
  const r = await cp.kubectl(["apply", "-f", "-"], { input: yaml });
  assert.notEqual(r.code, 0, `the API server accepted:\n${yaml}\n${r.stdout}`);
  return r.stderr;
}

/**
 * Waits until kubectl lists no VM of the lab, `made` before. At every look, a VM whose object is gone must be
 * gone from the hosts too: Vireo's finalizer holds the object until then.
 */
async function waitUntilLabVmsGone(lab: string, made: readonly string[]): Promise<void> {
  const early: string[] = [];
  await eventually(async () => {
    const objects = await labVms(lab);
    const onHosts = await labVmsOnHosts(lab);
    early.push(...made.filter((n) => !objects.has(n) && onHosts.includes(`default/${n}`)));
    return objects.size === 0;
  }, WAIT_MS, async () => `VMs of ${lab} still there:\n${await kubectlOk(cp, ["get", "vm", "-n", "default", "-l", `${LAB_LABEL}=${lab}`, "-o", "wide"])}`);
  assert.deepEqual([...new Set(early)], [], "VM objects gone while their VMs were still on the hosts");
  assert.deepEqual(await labVmsOnHosts(lab), [], `no VM of ${lab} is left on the hosts`);
}

test("a three-tier lab applied with kubectl runs: owned, labelled VMs, app only after db was Ready, web only after app; kubectl get labs prints its columns", async () => {
  await applyLab(labYaml("shop", THREE_TIERS));
  await waitForPhase("shop", "Running");
  const lab = await labOf("shop");
  assert.equal(lab.status?.observedGeneration, lab.metadata.generation);
  assert.equal(conditionOf(lab, "Ready")?.status, "True");
  assert.deepEqual(lab.status?.copies?.map((c) => [c.name, c.ready, c.total, c.tiers.map((t) => [t.name, t.ready, t.total, t.state])]),
    [["0", 5, 5, [["db", 1, 1, "Running"], ["app", 2, 2, "Running"], ["web", 2, 2, "Running"]]]]);

  const vms = await labVms("shop");
  assert.deepEqual([...vms.keys()].sort(), ["shop-0-app-0", "shop-0-app-1", "shop-0-db-0", "shop-0-web-0", "shop-0-web-1"]);
  for (const vm of vms.values()) assertMadeBy(vm, lab);

  // Every VM powered on (status.startedAt) only once the tiers it depends on were Ready, plus their delay.
  const byTier = (tier: string) => [...vms.values()].filter((vm) => tierOf(vm) === tier);
  assertStartedAfter(byTier("app"), "db", Math.max(...byTier("db").map(readyAt)) + 30_000);
  assertStartedAfter(byTier("web"), "app", Math.max(...byTier("app").map(readyAt)));

  // What the hosts run is what the API says.
  const hosts = await simulatedVms();
  for (const vm of vms.values()) assert.equal(hosts.get(`default/${vm.metadata.name}`)?.host, vm.status?.host, vm.metadata.name);

  const table = await kubectlOk(cp, ["get", "labs", "-n", "default"]);
  assert.match(table, /^NAME\s+OWNER\s+PHASE\s+COPIES\s+READY\s+NEXT EXPIRY\s+AGE$/m);
  assert.match(table, /^shop\s+qa-team\s+Running\s+1\s+True\s+\d+[smh]\S*$/m);
  assert.match(await kubectlOk(cp, ["get", "labs", "shop", "-n", "default", "-o", "wide"]), /^NAME\s+OWNER\s+PHASE\s+COPIES\s+READY\s+NEXT EXPIRY\s+AGE\s+CLUSTER\s+MESSAGE$/m);
});

test("kubectl apply scales a tier up and down, kept VMs keep their addresses; a template change replaces the tier's VMs one at a time", async () => {
  const networks = "[{name: lab-net, cidr: 10.20.0.0/24, mode: Isolated, uplink: lab}]";
  const roll = (replicas: number, memoryMiB?: number) => labYaml("roll", tierYaml("web", { replicas, ...(memoryMiB ? { memoryMiB } : {}) }), { networks });
  await applyLab(roll(2));
  await waitForPhase("roll", "Running");
  const kept = await addressesOf("roll");
  assert.deepEqual([...kept.keys()].sort(), ["roll-0-web-0", "roll-0-web-1"]);

  // Up to four: the new VMs come, the kept ones keep their addresses.
  await applyLab(roll(4));
  await eventually(async () => (await labVms("roll")).size === 4, WAIT_MS, async () => `VMs: ${[...(await labVms("roll")).keys()].join(", ")}`);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "-n", "default", "-l", `${LAB_LABEL}=roll`, WAIT]);
  await waitForPhase("roll", "Running");
  const four = await addressesOf("roll");
  assert.equal(four.size, 4);
  assert.equal(new Set(four.values()).size, 4, `no address twice: ${JSON.stringify([...four])}`);
  for (const [vm, address] of kept) assert.equal(four.get(vm), address, `${vm} keeps its address`);

  // Down to three: the last VM goes, from the API and from the hosts.
  await applyLab(roll(3));
  await eventually(async () => (await labVms("roll")).size === 3, WAIT_MS, async () => `VMs: ${[...(await labVms("roll")).keys()].join(", ")}`);
  const three = ["roll-0-web-0", "roll-0-web-1", "roll-0-web-2"];
  assert.deepEqual([...(await labVms("roll")).keys()].sort(), three);
  assert.deepEqual(await labVmsOnHosts("roll"), three.map((n) => `default/${n}`), "the dropped VM is gone from the hosts once its object is");
  await waitForPhase("roll", "Running");
  assert.deepEqual(await addressesOf("roll"), new Map([...four].filter(([vm]) => vm !== "roll-0-web-3")));

  // A new template: replaced one VM at a time, each keeping its address.
  const before = await labVms("roll");
  await applyLab(roll(3, 3072));
  await assertReplacedOneAtATime("roll", 3, (vm) => vm.spec.memoryMiB === 3072);
  const after = await labVms("roll");
  for (const vm of after.values()) assert.ok(startedAt(vm) > startedAt(before.get(vm.metadata.name)!), `${vm.metadata.name} was power cycled`);
  const hosts = await simulatedVms();
  for (const vm of after.values()) assert.equal(hosts.get(`default/${vm.metadata.name}`)?.config.memoryMiB, 3072, `${vm.metadata.name} runs the new template`);
  await waitForPhase("roll", "Running");
  assert.deepEqual(await addressesOf("roll"), new Map([...four].filter(([vm]) => vm !== "roll-0-web-3")), "the replaced VMs keep their addresses");
});

/**
 * Watches a template change of a lab's tier until its `count` VMs are Ready on the new template (`changed`):
 * every observation must find at most one VM not Ready, and from the end state, each VM must have powered
 * on again only once the one replaced before it was Ready. Polled as fast as kubectl answers: at this time
 * scale each VM is away for about half a second.
 */
async function assertReplacedOneAtATime(lab: string, count: number, changed: (vm: VirtualMachine) => boolean): Promise<void> {
  const observations: string[][] = [];
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const vms = [...(await labVms(lab)).values()];
    observations.push(vms.filter((vm) => !isReady(vm)).map((vm) => `${vm.metadata.name} ${vm.status?.phase} (${conditionOf(vm, "Ready")?.reason})`));
    if (vms.length === count && vms.every((vm) => isReady(vm) && changed(vm))) break;
    assert.ok(Date.now() < deadline, `the template change did not finish within ${WAIT_MS} ms: ${JSON.stringify(observations.at(-1))}`);
  }
  assert.deepEqual(observations.filter((away) => away.length > 1), [], `more than one VM of the tier was not Ready at once (of ${observations.length} observations)`);
  assert.ok(observations.some((away) => away.length === 1), `the replacement was seen under way in none of ${observations.length} observations`);

  const inOrder = [...(await labVms(lab)).values()].sort((a, b) => startedAt(a) - startedAt(b));
  for (const [i, vm] of inOrder.entries()) {
    const previous = inOrder[i - 1];
    if (previous) assert.ok(startedAt(vm) >= readyAt(previous), `${vm.metadata.name} started at ${vm.status?.startedAt}, before ${previous.metadata.name} was Ready again`);
  }
}

test("kubectl delete labtopology: the garbage collector deletes every VM the lab made, and each is gone from the hosts before its object is", async () => {
  await waitForPhase("shop", "Running");
  const made = [...(await labVms("shop")).keys()].sort();
  assert.equal(made.length, 5);
  assert.deepEqual(await labVmsOnHosts("shop"), made.map((n) => `default/${n}`));
  const others = await labVmsOnHosts("roll");

  await kubectlOk(cp, ["delete", "labtopology", "shop", "-n", "default", WAIT]);
  await waitUntilLabVmsGone("shop", made);
  assert.deepEqual(await labVmsOnHosts("roll"), others, "another lab's VMs stay");
  assert.equal((await labVms("roll")).size, 3);
});

test("bad input is refused by the API server with the field path; a dependency cycle and overlapping CIDRs stall the lab with the reason and make nothing", async () => {
  const running = new Map([...(await labVms("roll"))].map(([n, vm]) => [n, `${vm.status?.phase} on ${vm.status?.host} since ${vm.status?.startedAt}`]));

  const duplicate = await refusedApply(labYaml("dup", tierYaml("db") + tierYaml("db")));
  assert.match(duplicate, /spec\.tiers\[1\]: Duplicate value: .*"name":"db"/);
  const missingTier = await refusedApply(labYaml("orphan", tierYaml("db") + tierYaml("app", { dependsOn: "{tier: cache}" })));
  assert.match(missingTier, /spec\.tiers: Invalid value: .*every dependsOn must name a tier of the lab/);
  const noOwner = await refusedApply(labYaml("nobody", tierYaml("db")).replace("  owner: qa-team\n", ""));
  assert.match(noOwner, /spec\.owner: Required value/);
  const platform = await refusedApply(labYaml("vmware", tierYaml("db"), { platforms: ["esx", "vmware"] }));
  assert.match(platform, /spec\.platforms\[1\]: Unsupported value: "vmware": supported values: "esx", "hyperv", "kvm", "xen"/);
  const fenced = await refusedApply(labYaml("unfenced", tierYaml("db"), { networks: "[{name: lab-net, cidr: 192.168.50.0/24, mode: Fenced, uplink: lab}]" }));
  assert.match(fenced, /spec\.networks\[0\]\.externalCidr: Required value: externalCidr is required when mode is Fenced/);
  for (const name of ["dup", "orphan", "nobody", "vmware", "unfenced"]) {
    const r = await cp.kubectl(["get", "labtopology", name, "-n", "default"]);
    assert.match(r.stderr, /NotFound/, `${name} was not created`);
  }

  // Valid for the schema; Vireo refuses them, says why, and makes nothing.
  await applyLab(labYaml("loop", tierYaml("a", { dependsOn: "{tier: b}" }) + tierYaml("b", { dependsOn: "{tier: a}" })));
  const overlapping = "[{name: lab-net, cidr: 10.30.0.0/16, uplink: lab}, {name: side, cidr: 10.30.4.0/24, uplink: lab}]";
  await applyLab(labYaml("overlap", tierYaml("db", { networks: ["lab-net", "side"] }), { networks: overlapping }));
  for (const [name, reason, message] of [
    ["loop", "DependencyCycle", /^tiers depend on each other in a cycle: /],
    ["overlap", "OverlappingCIDRs", /^network lab-net \(10\.30\.0\.0\/16\) and network side \(10\.30\.4\.0\/24\) overlap$/],
  ] as const) {
    await kubectlOk(cp, ["wait", "--for=condition=Stalled", `labtopology/${name}`, "-n", "default", WAIT]);
    const lab = await labOf(name);
    assert.equal(lab.status?.phase, "Stalled", name);
    assert.equal(lab.status?.observedGeneration, lab.metadata.generation, name);
    const stalled = conditionOf(lab, "Stalled");
    assert.equal(stalled?.reason, reason, name);
    assert.match(stalled!.message, message, name);
    assert.equal(conditionOf(lab, "Ready")?.status, "False", name);
    assert.equal((await labVms(name)).size, 0, `${name} made no VM`);
    assert.deepEqual(await labVmsOnHosts(name), [], `${name} put nothing on the hosts`);
    assert.match(await kubectlOk(cp, ["get", "labs", name, "-n", "default"]), new RegExp(`^${name}\\s+qa-team\\s+Stalled\\s+1\\s+False\\s`, "m"));
  }
  for (const name of ["loop", "overlap"]) await kubectlOk(cp, ["delete", "labtopology", name, "-n", "default", WAIT]);

  // Nothing else was disturbed.
  await waitForPhase("roll", "Running");
  assert.deepEqual(new Map([...(await labVms("roll"))].map(([n, vm]) => [n, `${vm.status?.phase} on ${vm.status?.host} since ${vm.status?.startedAt}`])), running);
});

test("the controller killed, a lab deleted meanwhile, the controller started again: nothing of the lab is left, and another lab runs on", async () => {
  await applyLab(labYaml("doomed", tierYaml("db") + tierYaml("app", { replicas: 2, dependsOn: "{tier: db}" })));
  await waitForPhase("doomed", "Running");
  await waitForPhase("roll", "Running");
  const made = [...(await labVms("doomed")).keys()].sort();
  assert.deepEqual(made, ["doomed-0-app-0", "doomed-0-app-1", "doomed-0-db-0"]);
  assert.deepEqual(await labVmsOnHosts("doomed"), made.map((n) => `default/${n}`));
  const survivor = new Map([...(await labVms("roll"))].map(([n, vm]) => [n, `on ${vm.status?.host} since ${vm.status?.startedAt}`]));

  assert.equal(await vireo.stop("SIGKILL"), null, "vireo was killed");
  await kubectlOk(cp, ["delete", "labtopology", "doomed", "-n", "default", WAIT]);
  // The collector deletes the VMs while no controller runs; Vireo's finalizer holds each until it is off the hosts.
  await eventually(async () => {
    const vms = [...(await labVms("doomed")).values()];
    return vms.length === made.length && vms.every((vm) => vm.metadata.deletionTimestamp !== undefined);
  }, WAIT_MS, async () => `not every VM of doomed is being deleted:\n${await kubectlOk(cp, ["get", "vm", "-n", "default", "-l", `${LAB_LABEL}=doomed`, "-o", "yaml"])}`);
  const saved = worldVms(state.path);
  assert.deepEqual(made.filter((n) => !saved.has(`default/${n}`)), [], "the killed controller left the lab's VMs on the hosts, for its successor to remove");

  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 5 hosts in 1 clusters, \d+ VMs/);
  await waitUntilLabVmsGone("doomed", made);
  const listed = await vireoCommand(["get", "vms", "-n", "default", "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.doesNotMatch(listed.stdout, /doomed/);

  // The other lab ran on through the kill: the same VMs on the same hosts, never restarted.
  await waitForPhase("roll", "Running");
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "-n", "default", "-l", `${LAB_LABEL}=roll`, WAIT]);
  assert.deepEqual(new Map([...(await labVms("roll"))].map(([n, vm]) => [n, `on ${vm.status?.host} since ${vm.status?.startedAt}`])), survivor);
  assert.deepEqual(await labVmsOnHosts("roll"), [...survivor.keys()].map((n) => `default/${n}`).sort());
});

/** The simulated hosts' clock, through the running controller's simulator endpoint. */
async function hostsClock(): Promise<number> {
  const endpoint = readSimEndpoint(state.path);
  return (await new HttpProvider({ url: endpoint.url, token: endpoint.token }).clock()).now;
}

test("a restarted controller's simulated hosts carry on from the time they had reached, not from the wall clock", async () => {
  await waitForPhase("roll", "Running");
  const reached = await hostsClock();
  await vireo.stop();
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 5 hosts in 1 clusters, \d+ VMs/);
  const resumed = await hostsClock();
  const startedLast = Math.max(...[...(await labVms("roll")).values()].map(startedAt));
  assert.ok(resumed >= reached, `the hosts' clock went back ${Math.round((reached - resumed) / 1000)} s across the restart, to ${new Date(resumed).toISOString()}; the lab's last VM started at ${new Date(startedLast).toISOString()}`);
});
