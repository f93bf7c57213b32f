// The API mode against a real kube-apiserver, etcd and kube-controller-manager, driven with the real
// kubectl: apply and wait, printer columns, field-level refusals from the CRDs, finalizers, namespace
// deletion, an API server restart, and the same placements as the file mode.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import type { VirtualMachine } from "../../controller/api/types.ts";
import { validateManifest } from "../../controller/api/schema.ts";
import { load } from "js-yaml";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { REPO, VireoProcess, tempDir, vireoCommand, vireoSync } from "../support/process.ts";
import { Scenario } from "../support/scenario.ts";
import { readFileSync, readdirSync } from "node:fs";

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("api");
const EXAMPLES = join(REPO, "manifests", "examples");

before(async () => {
  cp = await ControlPlane.start({ controllerManager: true });
  await kubectlOk(cp, ["apply", "-f", EXAMPLES]);
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 11 hosts in 3 clusters, 20 VMs/);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function vmsByName(namespace: string): Promise<Map<string, VirtualMachine>> {
  const list = JSON.parse(await kubectlOk(cp, ["get", "vm", "-n", namespace, "-o", "json"])) as { items: VirtualMachine[] };
  return new Map(list.items.map((vm) => [vm.metadata.name, vm]));
}

test("kubectl apply of the examples, then kubectl wait --for=condition=Ready on every VM, succeeds", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "virtualmachines", "--all", "--all-namespaces", "--timeout=90s"]);
  const shop = await vmsByName("shop");
  assert.equal(shop.get("db-1")?.status?.phase, "Running");
  assert.equal(shop.get("reports")?.status?.phase, "Stopped");
  assert.equal(shop.get("db-1")?.status?.observedGeneration, shop.get("db-1")?.metadata.generation);
  assert.ok(shop.get("db-1")?.metadata.finalizers?.includes("vireo.dev/cleanup"));
});

test("kubectl get vm shows the printer columns, and kubectl get vireo lists every kind", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "db-1", "-n", "shop", "--timeout=60s"]);
  const table = await kubectlOk(cp, ["get", "vm", "-n", "shop"]);
  assert.match(table, /^NAME\s+PHASE\s+HOST\s+CPU\s+MEMORY\s+READY\s+AGE$/m);
  assert.match(table, /^db-1\s+Running\s+esx-\d\d\s+8\s+32768\s+True\s/m);
  const all = await kubectlOk(cp, ["get", "vireo", "-A"]);
  for (const kind of ["virtualmachine.vireo.dev/db-1", "host.vireo.dev/esx-01", "hostcluster.vireo.dev/prod"]) assert.match(all, new RegExp(kind.replace(/\./g, "\\.")));
  const ours = vireoSync(["get", "vms", "-n", "shop", "--kubeconfig", cp.kubeconfigPath]);
  assert.equal(ours.code, 0, ours.stderr);
  assert.match(ours.stdout, /^db-1\s+Running\s+esx-\d\d\s+8\s+32768\s+True\s/m, "vireo get reads the API in this mode");
  const events = await kubectlOk(cp, ["get", "events", "-n", "shop", "--field-selector", "involvedObject.name=db-1"]);
  assert.match(events, /Scheduled\s+virtualmachine\/db-1\s+placed on host esx-/);
});

const VM = `apiVersion: vireo.dev/v1alpha1
kind: VirtualMachine
metadata: {name: bad, namespace: shop}
spec:
  cpu: 2
  memoryMiB: 4096
  disks: [{name: root, sizeGiB: 20, datastore: shared-ds1}]
  networks: [{name: prod}]
  placement: {cluster: prod}
`;

const MISTAKES: { what: string; yaml: string; path: string }[] = [
  { what: "missing required field", yaml: VM.replace("  memoryMiB: 4096\n", ""), path: "spec.memoryMiB" },
  { what: "zero memory", yaml: VM.replace("memoryMiB: 4096", "memoryMiB: 0"), path: "spec.memoryMiB" },
  { what: "negative memory", yaml: VM.replace("memoryMiB: 4096", "memoryMiB: -4096"), path: "spec.memoryMiB" },
  { what: "unknown enum value", yaml: VM.replace("  cpu: 2\n", "  cpu: 2\n  runStrategy: Sometimes\n"), path: "spec.runStrategy" },
  { what: "wrong type", yaml: VM.replace("cpu: 2", "cpu: two"), path: "spec.cpu" },
  { what: "unknown field", yaml: VM.replace("  cpu: 2\n", "  cpu: 2\n  turbo: true\n"), path: "spec.turbo" },
  { what: "bad MAC address", yaml: VM.replace("{name: prod}", "{name: prod, macAddress: \"zz:zz\"}"), path: "spec.networks[0].macAddress" },
  { what: "duplicate disk name", yaml: VM.replace("disks: [{name: root, sizeGiB: 20, datastore: shared-ds1}]", "disks: [{name: root, sizeGiB: 20, datastore: shared-ds1}, {name: root, sizeGiB: 5, datastore: shared-ds1}]"), path: "spec.disks[1]" },
  { what: "unknown migration policy", yaml: VM.replace("  cpu: 2\n", "  cpu: 2\n  migration: {policy: Teleport}\n"), path: "spec.migration.policy" },
  { what: "a CEL cross-field rule: the same MAC on two networks", yaml: VM.replace("networks: [{name: prod}]", "networks: [{name: prod, macAddress: \"02:00:00:00:00:01\"}, {name: lab, macAddress: \"02:00:00:00:00:01\"}]"), path: "spec.networks" },
  { what: "host overcommit ratio out of bounds", yaml: "apiVersion: vireo.dev/v1alpha1\nkind: Host\nmetadata: {name: bad-host}\nspec: {hypervisor: esx, cpu: {cores: 8, vendor: intel, overcommitRatio: 100}, memoryMiB: 1024}\n", path: "spec.cpu.overcommitRatio" },
  { what: "a CEL cross-field rule: admission control without hostFailures", yaml: "apiVersion: vireo.dev/v1alpha1\nkind: HostCluster\nmetadata: {name: bad-cluster}\nspec:\n  hostSelector: {matchLabels: {a: b}}\n  ha: {admissionControl: {policy: HostFailuresToTolerate}}\n", path: "spec.ha.admissionControl.hostFailures" },
];

test("the API server refuses ten kinds of mistake with the field path, and the file mode names the same path", async () => {
  for (const mistake of MISTAKES) {
    const result = await cp.kubectl(["apply", "--dry-run=server", "-f", "-"], { input: mistake.yaml });
    assert.notEqual(result.code, 0, `${mistake.what}: accepted by the API server`);
    assert.ok(result.stderr.includes(mistake.path), `${mistake.what}: API server error does not name ${mistake.path}:\n${result.stderr}`);
    const fileMode = validateManifest(load(mistake.yaml));
    assert.equal(fileMode.ok, false, `${mistake.what}: accepted by the file mode`);
    assert.ok(!fileMode.ok && fileMode.errors.some((e) => e.path === mistake.path), `${mistake.what}: file mode paths: ${JSON.stringify(!fileMode.ok && fileMode.errors)}`);
  }
});

test("deleting a VM removes it from the simulated hosts before the object disappears", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "web-1", "-n", "shop", "--timeout=60s"]);
  assert.equal(worldVms(state.path).get("shop/web-1")?.power, "Running");
  await kubectlOk(cp, ["delete", "vm", "web-1", "-n", "shop", "--wait=false"]);
  await eventually(async () => {
    const r = await cp.kubectl(["get", "vm", "web-1", "-n", "shop"]);
    if (r.code === 0) return false;
    assert.match(r.stderr, /NotFound/);
    return true;
  }, 30_000, () => "web-1 still exists");
  assert.equal(worldVms(state.path).has("shop/web-1"), false, "the object went before the VM left the hosts");
});

test("deleting a namespace cleans up every VM in it", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "ci", "--timeout=60s"]);
  assert.ok([...worldVms(state.path).keys()].some((id) => id.startsWith("ci/")));
  await kubectlOk(cp, ["delete", "namespace", "ci", "--timeout=60s"]);
  assert.deepEqual([...worldVms(state.path).keys()].filter((id) => id.startsWith("ci/")), []);
});

test("after kube-apiserver restarts, Vireo is synced again within seconds of the server being ready, without a failed reconcile, and converges what changed meanwhile", async () => {
  const count = (pattern: RegExp) => (vireo.logs().match(pattern) ?? []).length;
  const outages = () => count(/watch of \S+ ended|listing \S+ failed/g);
  const resyncs = () => count(/synced again after losing the API server/g);
  const failedReconciles = () => count(/reconcile failed/g);
  const before = { outages: outages(), resyncs: resyncs(), failed: failedReconciles() };
  await cp.stopApiServer();
  // Vireo must notice the server is gone: wait for its watches to end, not for a fixed time.
  await eventually(() => outages() > before.outages, 60_000, () => "no watch ended while the API server was down");
  await cp.startApiServer();
  // The server answers /readyz before its CRDs' storage is ready, and says "429 storage is (re)initializing,
  // Retry-After: 1" meanwhile: Vireo takes it at its word. A backoff grown while the server was down took 30 s.
  await eventually(() => resyncs() > before.resyncs, 20_000, () => `not synced again 20 s after the API server was ready:\n${vireo.logs().slice(-3000)}`);
  assert.equal(failedReconciles(), before.failed, `reconciles failed while the API server restarted:\n${vireo.logs().slice(-3000)}`);
  await kubectlOk(cp, ["apply", "-f", "-"], VM.replace("name: bad", "name: after-restart"));
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "after-restart", "-n", "shop", "--timeout=120s"]);
  // The simulated world is saved a moment after the status is written: wait for the save too.
  await eventually(() => worldVms(state.path).get("shop/after-restart")?.power === "Running", 60_000, () => `the saved world says ${worldVms(state.path).get("shop/after-restart")?.power}`);
});

test("a VM powered off behind Vireo's back, with vireo sim, is reported as drift and started again", async () => {
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "web-2", "-n", "shop", "--timeout=60s"]);
  const before = worldVms(state.path).get("shop/web-2")?.poweredOnAt;
  const result = await vireoCommand(["sim", "power-off", "shop/web-2", "--state-dir", state.path]);
  assert.equal(result.code, 0, result.stderr);
  await eventually(async () => {
    const events = await kubectlOk(cp, ["get", "events", "-n", "shop", "--field-selector", "involvedObject.name=web-2"]);
    return /Drifted/.test(events) && /DriftCorrected/.test(events);
  }, 60_000, () => "no Drifted and DriftCorrected events for web-2");
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm", "web-2", "-n", "shop", "--timeout=60s"]);
  const vm = JSON.parse(await kubectlOk(cp, ["get", "vm", "web-2", "-n", "shop", "-o", "json"])) as VirtualMachine;
  assert.equal(vm.status?.phase, "Running");
  assert.equal(vm.status?.conditions?.some((c) => c.type === "Drifted" && c.status === "True"), false, "the drift cleared");
  assert.notEqual(worldVms(state.path).get("shop/web-2")?.poweredOnAt, before, "a new run, started by Vireo");
});

test("vireo plan --kubeconfig reads the cluster and says what it would do, with the reason", async () => {
  await kubectlOk(cp, ["apply", "-f", "-"], VM.replace("name: bad", "name: too-big").replace("memoryMiB: 4096", "memoryMiB: 4194304"));
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Unschedulable", "vm", "too-big", "-n", "shop", "--timeout=60s"]);
  const result = vireoSync(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "-o", "json"]);
  assert.equal(result.code, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as { unschedulable: { namespace: string; name: string; message: string }[]; actions: unknown[] };
  const entry = plan.unschedulable.find((u) => u.name === "too-big");
  assert.ok(entry, `too-big is not in the plan: ${result.stdout}`);
  assert.match(entry.message, /insufficient memory/);
  await kubectlOk(cp, ["delete", "vm", "too-big", "-n", "shop"]);
});

test("the API mode and the file mode place the same fleet on the same hosts", async () => {
  const yaml = readdirSync(EXAMPLES).filter((f) => f.endsWith(".yaml")).sort().map((f) => readFileSync(join(EXAMPLES, f), "utf8")).join("\n---\n");
  const fileMode = await Scenario.start(yaml);
  await fileMode.until(() => fileMode.vms().every((vm) => vm.status?.phase === "Running" || vm.spec.runStrategy === "Halted"), 300_000);
  const expected = new Map(fileMode.vms().filter((vm) => vm.metadata.namespace === "shop").map((vm) => [vm.metadata.name, vm.status?.host]));
  await fileMode.stop();

  // A fresh control plane and controller, given the whole fleet before it starts, as the file mode is.
  const fresh = await ControlPlane.start();
  const freshState = tempDir("api-same");
  try {
    await kubectlOk(fresh, ["apply", "-f", EXAMPLES]);
    const second = vireoApiMode(fresh, freshState.path);
    try {
      await kubectlOk(fresh, ["wait", "--for=condition=Ready", "vm", "--all", "-n", "shop", "--timeout=90s"]);
      const list = JSON.parse(await kubectlOk(fresh, ["get", "vm", "-n", "shop", "-o", "json"])) as { items: VirtualMachine[] };
      const actual = new Map(list.items.map((vm) => [vm.metadata.name, vm.status?.host]));
      assert.deepEqual(actual, expected);
    } finally {
      await second.stop();
    }
  } finally {
    await fresh.stop();
    freshState.remove();
  }
});
