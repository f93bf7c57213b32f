// Fault tolerance through the real API server, driven with the real kubectl: an HAPolicy with protection
// FaultTolerance and a VM applied with kubectl apply, its secondary waited for with kubectl wait and shown
// by kubectl get -o wide; bad limits refused by the API server with the field path; then the drill — the
// primary's host crashes (a Fault applied with kubectl) and the VM runs on from its secondary's host with
// its uptime unbroken, and gets a new secondary.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import type { VirtualMachine } from "../../controller/api/types.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode, worldVms } from "../support/cluster.ts";
import { VireoProcess, WAIT_MS, tempDir } from "../support/process.ts";
import { clusterYaml, hostYaml, vmYaml } from "../support/scenario.ts";

const NS = "ft";
const WAIT = `--timeout=${WAIT_MS / 1000}s`;

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("kube-fault-tolerance");

const POLICY = `apiVersion: vireo.dev/v1alpha1
kind: HAPolicy
metadata: {name: ledger, namespace: ${NS}}
spec:
  selector: {matchLabels: {protection: fault-tolerant}}
  restartPriority: Highest
  protection: FaultTolerance
---
`;

/** Two racks of two hosts, the ledger preferring esx-1 in r1. */
function fleet(): string {
  const hosts = hostYaml("esx-1", { rack: "r1" }) + hostYaml("esx-2", { rack: "r1" }) + hostYaml("esx-3", { rack: "r2" }) + hostYaml("esx-4", { rack: "r2" });
  const ledger = vmYaml("ledger", { namespace: NS, labels: { protection: "fault-tolerant" }, cpu: 4, memoryMiB: 8192 })
    .replace("placement: {cluster: prod}", "placement: {cluster: prod, hostAffinity: {preferred: [{weight: 100, preference: {matchLabels: {vireo.dev/host: esx-1}}}]}}");
  return clusterYaml() + hosts + POLICY + ledger;
}

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["create", "namespace", NS]);
  await kubectlOk(cp, ["apply", "-f", "-"], fleet());
  vireo = vireoApiMode(cp, state.path);
  await vireo.waitForLog(/synced: 4 hosts in 1 clusters/);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function ledger(): Promise<VirtualMachine> {
  return JSON.parse(await kubectlOk(cp, ["get", "vm", "ledger", "-n", NS, "-o", "json"])) as VirtualMachine;
}

test("kubectl wait sees the ledger Protected, with its secondary on the other rack; kubectl get -o wide shows it", async () => {
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.faultTolerance.state}=Protected", "vm/ledger", "-n", NS, WAIT]);
  await kubectlOk(cp, ["wait", "--for=condition=FaultTolerant", "vm/ledger", "-n", NS, WAIT]);
  const vm = await ledger();
  assert.equal(vm.status?.host, "esx-1");
  const secondary = vm.status?.faultTolerance?.secondaryHost;
  assert.ok(secondary === "esx-3" || secondary === "esx-4", `secondary on ${secondary}, not in rack r2`);
  const wide = await kubectlOk(cp, ["get", "vm", "ledger", "-n", NS, "-o", "wide"]);
  assert.match(wide.split("\n")[0]!, /\bFT\s+SECONDARY\b/);
  assert.match(wide.split("\n")[1]!, new RegExp(`\\bProtected\\s+${secondary}\\b`));
});

test("limits the API server refuses, with the field path, and nothing else changes", async () => {
  const bad = clusterYaml().replace("placement: {strategy: Spread}", "placement: {strategy: Spread}\n  faultTolerance: {maxVmsPerHost: 0}");
  const refused = await cp.kubectl(["apply", "-f", "-"], { input: bad });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /spec\.faultTolerance\.maxVmsPerHost/);
  const vm = await ledger();
  assert.equal(vm.status?.faultTolerance?.state, "Protected");
});

test("the primary's host crashes: the ledger runs on from its secondary's host with its uptime unbroken, no restart counted, and gets a new secondary", async () => {
  const before = await ledger();
  const secondary = before.status!.faultTolerance!.secondaryHost!;
  const poweredOnAt = worldVms(state.path).get(`${NS}/ledger`)?.poweredOnAt;
  assert.ok(poweredOnAt !== undefined);
  await kubectlOk(cp, ["apply", "-f", "-"], "apiVersion: vireo.dev/v1alpha1\nkind: Fault\nmetadata: {name: crash-esx-1}\nspec: {type: HostCrash, target: {host: esx-1}}\n");
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.faultTolerance.switchovers}=1", "vm/ledger", "-n", NS, WAIT]);
  await kubectlOk(cp, ["wait", "--for=jsonpath={.status.faultTolerance.state}=Protected", "vm/ledger", "-n", NS, WAIT]);
  const after = await ledger();
  assert.equal(after.status?.host, secondary, "it runs where its secondary was");
  assert.ok(!["esx-1", secondary].includes(after.status!.faultTolerance!.secondaryHost!), "a new secondary on a third host");
  assert.equal(after.status?.restarts, undefined);
  assert.equal(after.status?.faultTolerance?.lastSwitchover?.from, "esx-1");
  await eventually(() => worldVms(state.path).get(`${NS}/ledger`)?.host === secondary, WAIT_MS, () => "the saved world does not show the switch-over yet");
  assert.equal(worldVms(state.path).get(`${NS}/ledger`)?.poweredOnAt, poweredOnAt, "no reboot");
  const events = await kubectlOk(cp, ["get", "events", "-n", NS, "--field-selector", "involvedObject.name=ledger", "-o", "jsonpath={.items[*].reason}"]);
  assert.match(events, /SecondaryStarting/);
  assert.doesNotMatch(events, /FailoverRestart\b/);
});
