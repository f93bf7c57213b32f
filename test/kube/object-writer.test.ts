// The VMs a lab makes, through the real API server: KubeObjectWriter creates a VM owned by its
// LabTopology, applies changes to it (taking back a person's edit of what the lab states, keeping what it
// does not state), deletes it, and leaves the rest to Kubernetes — the garbage collector of the real
// kube-controller-manager removes a lab's VMs once the lab is deleted. Every answer is in the store at once.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { API_VERSION, COPY_LABEL, LAB_LABEL, TIER_LABEL, objectKey } from "../../controller/api/types.ts";
import type { LabTopology, LabTopologyStatus, VirtualMachine } from "../../controller/api/types.ts";
import { RealClock } from "../../controller/core/clock.ts";
import { ObjectStore } from "../../controller/sources/store.ts";
import { KubeClient } from "../../controller/sources/kube/client.ts";
import { KubeObjectWriter } from "../../controller/sources/kube/object-writer.ts";
import { FINALIZER, KubeStatusWriter } from "../../controller/sources/kube/writer.ts";
import { LAST_APPLIED_ANNOTATION } from "../../controller/sources/kube/stored-form.ts";
import { ControlPlane, eventually, kubectlOk } from "../support/cluster.ts";

const NS = "qa";
const LAB = `apiVersion: vireo.dev/v1alpha1
kind: LabTopology
metadata: {name: shop, namespace: ${NS}}
spec:
  owner: team-qa
  cluster: lab
  networks: [{name: back, cidr: 10.0.2.0/24}]
  tiers:
    - {name: db, template: {cpu: 2, memoryMiB: 2048}, networks: [back]}
    - {name: web, replicas: 2, template: {cpu: 1, memoryMiB: 1024}, networks: [back], dependsOn: [{tier: db}]}
`;

let cp: ControlPlane;
let client: KubeClient;

before(async () => {
  cp = await ControlPlane.start({ controllerManager: true });
  await kubectlOk(cp, ["create", "namespace", NS]);
  client = new KubeClient({ kubeconfig: cp.kubeconfigPath, clock: new RealClock() });
});

after(async () => {
  await cp?.stop();
});

async function getJson<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(cp, ["get", ...args, "-o", "json"])) as T;
}

async function createLab(name: string): Promise<LabTopology> {
  await kubectlOk(cp, ["apply", "-f", "-"], LAB.replace("name: shop,", `name: ${name},`));
  return getJson<LabTopology>(["lab", name, "-n", NS]);
}

/** A VM of the lab as a lab's planner would state it: labels, an owner reference to the lab, a spec. */
function labVm(lab: LabTopology, tier: string, index: number, cpu = 2): VirtualMachine {
  return {
    apiVersion: API_VERSION,
    kind: "VirtualMachine",
    metadata: {
      name: `${lab.metadata.name}-0-${tier}-${index}`,
      namespace: NS,
      labels: { [LAB_LABEL]: lab.metadata.name, [COPY_LABEL]: "0", [TIER_LABEL]: tier },
      ownerReferences: [{ apiVersion: API_VERSION, kind: "LabTopology", name: lab.metadata.name, uid: lab.metadata.uid!, controller: true, blockOwnerDeletion: true }],
    },
    spec: { cpu, memoryMiB: 2048, cpuFeatures: [], disks: [], networks: [{ name: "back" }], placement: { cluster: "lab" }, runStrategy: "Always", migration: { policy: "Live" }, owner: "team-qa" },
  };
}

async function gone(name: string): Promise<boolean> {
  const r = await cp.kubectl(["get", "vm", name, "-n", NS, "-o", "name"]);
  return r.code !== 0 && /NotFound|not found/.test(r.stderr);
}

test("apply creates a VM owned by its lab, applies changes to what the lab states and keeps the rest, delete deletes it", async () => {
  const store = new ObjectStore();
  const writer = new KubeObjectWriter(client, store);
  const lab = await createLab("shop");
  const vm = labVm(lab, "db", 0);
  const key = objectKey("VirtualMachine", vm.metadata.name, NS);

  await writer.apply(vm);
  const created = await getJson<VirtualMachine>(["vm", vm.metadata.name, "-n", NS]);
  assert.deepEqual(created.metadata.ownerReferences, vm.metadata.ownerReferences);
  assert.deepEqual(created.metadata.labels, vm.metadata.labels);
  assert.equal(created.spec.owner, "team-qa");
  const stored = store.get(key) as VirtualMachine | undefined;
  assert.equal(stored?.metadata.uid, created.metadata.uid, "the server's answer is in the store at once");
  assert.equal(stored?.metadata.resourceVersion, created.metadata.resourceVersion);
  const owned = await getJson<VirtualMachine>(["vm", vm.metadata.name, "-n", NS, "--show-managed-fields"]);
  assert.ok((owned.metadata as { managedFields?: unknown }).managedFields, "the server keeps who owns which field");
  assert.equal((stored?.metadata as { managedFields?: unknown }).managedFields, undefined, "the store does not: Vireo never reads it");

  // Vireo's finalizer goes on as usual; a person edits what the lab states and adds what it does not.
  await new KubeStatusWriter(client, store).ensureFinalizer(store.get(key)!);
  await kubectlOk(cp, ["patch", "vm", vm.metadata.name, "-n", NS, "--type=merge", "-p", '{"spec":{"cpu":8},"metadata":{"labels":{"note":"mine"}}}']);

  const changed = labVm(lab, "db", 0, 4);
  changed.metadata.annotations = { "vireo.dev/template-hash": "abc" };
  await writer.apply(changed);
  const updated = await getJson<VirtualMachine>(["vm", vm.metadata.name, "-n", NS]);
  assert.equal(updated.spec.cpu, 4, "the lab's value wins over the edit");
  assert.equal(updated.metadata.labels?.["note"], "mine", "a label the lab does not state is kept");
  assert.equal(updated.metadata.annotations?.["vireo.dev/template-hash"], "abc");
  assert.deepEqual(updated.metadata.finalizers, [FINALIZER], "the finalizer is not the apply's to remove");
  assert.equal(store.get(key)?.metadata.resourceVersion, updated.metadata.resourceVersion);

  // Applying the same again changes nothing on the server.
  await writer.apply(changed);
  assert.equal((await getJson<VirtualMachine>(["vm", vm.metadata.name, "-n", NS])).metadata.resourceVersion, updated.metadata.resourceVersion);

  // A field the lab stated before and states no more is removed.
  const { annotations: _dropped, ...withoutAnnotations } = changed.metadata;
  await writer.apply({ ...changed, metadata: withoutAnnotations });
  assert.equal((await getJson<VirtualMachine>(["vm", vm.metadata.name, "-n", NS])).metadata.annotations?.["vireo.dev/template-hash"], undefined);

  // Deleting waits for the finalizer, and the store says so; once it is removed, the VM is gone.
  await writer.delete(store.get(key)!);
  assert.ok(store.get(key)?.metadata.deletionTimestamp, "the store holds the VM with its deletion time");
  await new KubeStatusWriter(client, store).removeFinalizer(store.get(key)!);
  await eventually(() => gone(vm.metadata.name), 30_000, () => `${vm.metadata.name} still there`);

  // Deleting what is gone is no error, and clears it from the store.
  await writer.delete(store.get(key)!);
  assert.equal(store.get(key), undefined);
});

test("delete removes the VM Vireo read, never a namesake created since", async () => {
  const store = new ObjectStore();
  const writer = new KubeObjectWriter(client, store);
  const lab = await createLab("namesake");
  const vm = labVm(lab, "db", 0);
  await writer.apply(vm);
  const first = store.get(objectKey("VirtualMachine", vm.metadata.name, NS))!;
  await kubectlOk(cp, ["delete", "vm", vm.metadata.name, "-n", NS]);
  await writer.apply(vm);
  await assert.rejects(writer.delete(first), { name: "ConflictError" });
  assert.equal(await gone(vm.metadata.name), false);
});

test("apply of a VM the CRD refuses fails with the server's field path", async () => {
  const writer = new KubeObjectWriter(client, new ObjectStore());
  const lab = await createLab("invalid");
  await assert.rejects(writer.apply(labVm(lab, "db", 0, 0)), /applying VirtualMachine qa\/invalid-0-db-0: HTTP 422: .*spec\.cpu/);
});

test("the garbage collector of kube-controller-manager deletes a lab's VMs once the lab is deleted", async () => {
  assert.ok(cp.hasControllerManager, "the test control plane runs kube-controller-manager");
  const store = new ObjectStore();
  const writer = new KubeObjectWriter(client, store);
  const lab = await createLab("doomed");
  const vms = [labVm(lab, "db", 0), labVm(lab, "web", 0), labVm(lab, "web", 1)];
  for (const vm of vms) await writer.apply(vm);
  const other = await createLab("kept");
  await writer.apply(labVm(other, "db", 0));

  await kubectlOk(cp, ["delete", "lab", "doomed", "-n", NS, "--wait=false"]);
  await eventually(async () => (await Promise.all(vms.map((vm) => gone(vm.metadata.name)))).every(Boolean), 60_000, () => "the lab's VMs are still there");
  assert.equal(await gone("kept-0-db-0"), false, "another lab's VM stays");
});

test("the status subresource takes a lab's full status as Vireo writes it", async () => {
  const store = new ObjectStore();
  const lab = await createLab("reported");
  store.upsert(lab);
  const now = new Date().toISOString();
  const status: LabTopologyStatus = {
    observedGeneration: 1,
    phase: "Running",
    copies: [{
      name: "esx-0", platform: "esx", ready: 3, total: 3, message: "all placed",
      tiers: [{ name: "db", ready: 1, total: 1, state: "Running", since: now }, { name: "web", ready: 2, total: 2, state: "Running", since: now, message: "up" }],
    }],
    addresses: [{ vm: "reported-esx-0-db-0", network: "back", segment: "back/esx-0", address: "10.0.2.2", externalAddress: "192.168.0.2", macAddress: "02:00:00:00:00:01" }],
    startedAt: now, stoppedAt: now,
    nextExpiry: { time: now, action: "Stop" },
    leaseStopped: { time: now, generation: 1 },
    message: "esx-0 3/3",
    conditions: [{ type: "Ready", status: "True", reason: "Running", message: "all tiers are up", lastTransitionTime: now, observedGeneration: 1 }],
  };
  await new KubeStatusWriter(client, store).writeStatus(lab, status);
  const written = await getJson<LabTopology>(["lab", "reported", "-n", NS]);
  assert.deepEqual(written.status, status);
  // kubectl apply left its copy of the manifest on the lab; the store keeps the answer without it.
  assert.ok(written.metadata.annotations?.[LAST_APPLIED_ANNOTATION]);
  const stored = store.get(objectKey("LabTopology", "reported", NS))!;
  assert.deepEqual(stored.status, status);
  assert.equal(stored.metadata.annotations, undefined);
  assert.equal((stored.metadata as { managedFields?: unknown }).managedFields, undefined);
  const table = await kubectlOk(cp, ["get", "labs", "reported", "-n", NS]);
  assert.match(table, /^NAME\s+OWNER\s+PHASE\s+COPIES\s+READY\s+NEXT EXPIRY\s+AGE\n/);
  assert.match(table, new RegExp(`reported\\s+team-qa\\s+Running\\s+1\\s+True\\s+${now.replaceAll(".", "\\.")}`));
});
