// Conversions between hypervisor types through the real API server, driven with the real kubectl: a
// VirtualMachineMigration with targetHypervisor applied and waited for with `kubectl wait`, the VM on the
// KVM host afterwards with its MACs; one the pre-check refuses, Stalled with the blocker, the VM untouched;
// `vireo migrate --to-hypervisor --new-macs`; and `vireo plan` showing the pre-check of a conversion that
// waits, which is cancelled by deleting it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { VirtualMachine, VirtualMachineMigration } from "../../controller/api/types.ts";
import type { PlanReport } from "../../controller/engine/dry-run.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { VireoProcess, tempDir, vireoCommand } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const NS = "v2v";

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-conversion");

/** A VM of the namespace that prefers esx-1, so the test knows where it runs before it is converted. */
function onEsx1(name: string, options: Parameters<typeof vmYaml>[1] = {}): string {
  return vmYaml(name, { namespace: NS, ...options })
    .replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-1}}}]}}");
}

/** ESXi hosts with avx512f, one KVM host of 16 GiB without it; four VMs on esx-1, big too large for the KVM host. */
function fleet(): string {
  const esx = ["sse4_2", "avx", "avx2", "avx512f"];
  return clusterYaml() + hostYaml("esx-1", { features: esx }) + hostYaml("esx-2", { features: esx }) + hostYaml("kvm-1", { hypervisor: "kvm", memoryMiB: 16384 })
    + onEsx1("web", { labels: { app: "web", tier: "front" } }) + onEsx1("fast", { features: ["avx512f"] }) + onEsx1("app") + onEsx1("big", { memoryMiB: 32768 });
}

function conversionYaml(name: string, vm: string): string {
  return `apiVersion: vireo.dev/v1alpha1\nkind: VirtualMachineMigration\nmetadata: {name: ${name}, namespace: ${NS}}\nspec: {vmName: ${vm}, targetHypervisor: kvm}\n`;
}

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["create", "namespace", NS]);
  await kubectlOk(cp, ["apply", "-f", "-"], fleet());
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 3 hosts in 1 clusters?, 4 VMs/);
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

async function request(name: string): Promise<VirtualMachineMigration> {
  return JSON.parse(await kubectlOk(cp, ["get", "vmim", name, "-n", NS, "-o", "json"])) as VirtualMachineMigration;
}

async function events(name: string): Promise<string> {
  return kubectlOk(cp, ["get", "events", "-n", NS, "--field-selector", `involvedObject.name=${name}`]);
}

test("kubectl apply of a conversion to kvm: kubectl wait for phase Succeeded, the VM Ready on the KVM host with its name, labels and MACs", async () => {
  const before = await vm("web");
  assert.equal(before.status?.host, "esx-1");
  await kubectlOk(cp, ["apply", "-f", "-"], conversionYaml("web-to-kvm", "web"));
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.phase}=Succeeded", "vmim/web-to-kvm", "-n", NS, "--timeout=180s"]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vmim/web-to-kvm", "-n", NS, "--timeout=30s"]);

  const done = await request("web-to-kvm");
  assert.deepEqual([done.status?.sourceHost, done.status?.targetHost, done.status?.preCheck?.from, done.status?.preCheck?.to], ["esx-1", "kvm-1", "esx", "kvm"]);
  assert.deepEqual(done.status?.preCheck?.blockers, []);
  assert.equal(done.status?.preCheck?.estimatedSeconds, 204.8);
  assert.deepEqual([done.status?.conversion?.convertedMiB, done.status?.conversion?.totalMiB], [20480, 20480]);
  assert.equal(done.status?.observedGeneration, done.metadata.generation);
  await eventually(async () => !(await request("web-to-kvm")).metadata.finalizers?.length, 30_000, () => "the finalizer of an ended conversion stays");

  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.host}=kvm-1", "vm/web", "-n", NS, "--timeout=60s"]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm/web", "-n", NS, "--timeout=60s"]);
  const after = await vm("web");
  assert.deepEqual([after.metadata.name, after.metadata.labels, after.status?.phase], ["web", { app: "web", tier: "front" }, "Running"]);
  assert.deepEqual(after.status?.networks, before.status?.networks, "its MACs are kept");
  assert.equal(after.status?.drift, undefined);
  await eventually(() => worldVms(state.path).get(`${NS}/web`)?.host === "kvm-1", 30_000, () => `the saved world has web on ${worldVms(state.path).get(`${NS}/web`)?.host}`);
  assert.match(await kubectlOk(cp, ["get", "vmim", "web-to-kvm", "-n", NS]), /^web-to-kvm\s+web\s+Live\s+Succeeded\s+esx-1\s+kvm-1\s/m);
  await eventually(async () => /ConversionStarted/.test(await events("web-to-kvm")) && /ConversionSucceeded/.test(await events("web-to-kvm")), 60_000, () => events("web-to-kvm"));
});

test("a conversion the pre-check refuses (a CPU feature no KVM host has) ends Stalled with the blocker; the VM runs on where it was", async () => {
  const before = await vm("fast");
  await kubectlOk(cp, ["apply", "-f", "-"], conversionYaml("fast-to-kvm", "fast"));
  await kubectlOk(cp, ["wait", "--for=condition=Stalled", "vmim/fast-to-kvm", "-n", NS, "--timeout=60s"]);
  const refused = await request("fast-to-kvm");
  assert.equal(refused.status?.phase, "Failed");
  assert.deepEqual(refused.status?.preCheck?.blockers, ["CPU feature avx512f: no kvm host has it"]);
  assert.equal(refused.status?.failureReason, "refused by its pre-check: CPU feature avx512f: no kvm host has it");
  const stalled = refused.status?.conditions?.find((c) => c.type === "Stalled");
  assert.deepEqual([stalled?.status, stalled?.reason], ["True", "Failed"]);
  await eventually(async () => /PreCheckFailed/.test(await events("fast-to-kvm")), 60_000, () => events("fast-to-kvm"));
  const after = await vm("fast");
  assert.deepEqual([after.status?.phase, after.status?.host, after.status?.startedAt], ["Running", "esx-1", before.status?.startedAt], "never shut down");
});

test("vireo migrate --to-hypervisor kvm --new-macs prints the pre-check and its progress, and exits 0 with the VM on kvm under new MACs", async () => {
  const before = await vm("app");
  const result = await vireoCommand(["migrate", `${NS}/app`, "--to-hypervisor", "kvm", "--new-macs", "--kubeconfig", cp.kubeconfigPath, "--timeout", "180"]);
  assert.equal(result.code, 0, `${result.stdout}${result.stderr}`);
  assert.match(result.stdout, /^pre-check esx → kvm: passed; 20480 MiB of disks, ~205 s to convert$/m);
  assert.match(result.stdout, /^ {2}warning: keepMacAddresses is false: its NICs on network prod get new MAC addresses/m);
  assert.match(result.stdout, /^Succeeded: converted esx → kvm: on kvm-1$/m);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.host}=kvm-1", "vm/app", "-n", NS, "--timeout=60s"]);
  await kubectlOk(cp, ["wait", "--for=condition=Ready", "vm/app", "-n", NS, "--timeout=60s"]);
  await eventually(async () => (await vm("app")).status?.networks?.[0]?.macAddress !== before.status?.networks?.[0]?.macAddress, 30_000, async () => `MACs ${JSON.stringify((await vm("app")).status?.networks)}`);
});

test("vireo plan shows the pre-check of a conversion that waits for room; deleting it cancels it and the VM is untouched", async () => {
  const before = await vm("big");
  await kubectlOk(cp, ["apply", "-f", "-"], conversionYaml("big-to-kvm", "big"));
  await eventually(async () => (await request("big-to-kvm")).status?.preCheck !== undefined, 60_000, async () => JSON.stringify((await request("big-to-kvm")).status));
  const waiting = await request("big-to-kvm");
  assert.equal(waiting.status?.phase, "Pending");
  assert.match(waiting.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "", /no kvm host can take it now \(1 insufficient memory\)/);

  const planned = await vireoCommand(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "-o", "json"]);
  assert.equal(planned.code, 0, planned.stderr);
  const entry = (JSON.parse(planned.stdout) as PlanReport).migrations.find((m) => m.name === "big-to-kvm");
  assert.ok(entry?.preCheck, `no pre-check in the plan: ${planned.stdout}`);
  assert.deepEqual([entry.verdict, entry.preCheck.from, entry.preCheck.to, entry.preCheck.blockers], ["Conversion", "esx", "kvm", []]);
  const table = await vireoCommand(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path]);
  assert.match(table.stdout, new RegExp(`^Pre-check of VirtualMachineMigration ${NS}/big-to-kvm \\(${NS}/big, esx → kvm\\): passes; 20480 MiB of disks, ~205 s to convert$`, "m"));
  assert.match(table.stdout, /^ {2}warning: VMware Tools stops working on kvm/m);

  await kubectlOk(cp, ["delete", "vmim", "big-to-kvm", "-n", NS, "--timeout=60s"]);
  const after = await vm("big");
  assert.deepEqual([after.status?.phase, after.status?.host, after.status?.startedAt], ["Running", "esx-1", before.status?.startedAt]);
});
