// Admission control without head-of-line blocking through the real API server: the fleet a new user tried
// (test/support/head-of-line-fleet.ts), applied with kubectl. Every VM that fits runs; the fifth database
// says why it waits, in its conditions and in an Event `kubectl describe` shows; the VM larger than any
// host is Unschedulable and Stalled, which kstatus calls Failed.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import type { VirtualMachine } from "../../controller/api/types.ts";
import { ControlPlane, eventually, kubectlOk, vireoApiMode } from "../support/cluster.ts";
import { VireoProcess, tempDir, vireoCommand } from "../support/process.ts";
import { DATABASES, HOL_NAMESPACE, HUGE, WEB, headOfLineFleet } from "../support/head-of-line-fleet.ts";
import { ensureKstatus } from "../tools/setup.ts";

let cp: ControlPlane;
let vireo: VireoProcess;
const state = tempDir("admission");

before(async () => {
  cp = await ControlPlane.start();
  await kubectlOk(cp, ["create", "namespace", HOL_NAMESPACE]);
  await kubectlOk(cp, ["apply", "-f", "-"], headOfLineFleet());
  vireo = vireoApiMode(cp, state.path);
});

after(async () => {
  await vireo?.stop();
  await cp?.stop();
  state.remove();
});

async function vms(): Promise<Map<string, VirtualMachine>> {
  const list = JSON.parse(await kubectlOk(cp, ["get", "vm", "-n", HOL_NAMESPACE, "-o", "json"])) as { items: VirtualMachine[] };
  return new Map(list.items.map((vm) => [vm.metadata.name, vm]));
}

function ready(vm: VirtualMachine | undefined) {
  return vm?.status?.conditions?.find((c) => c.type === "Ready");
}

test("through the API server every VM that fits runs, the one admission control refuses says why with an Event, the one that fits nowhere is Stalled", async () => {
  let fleet = new Map<string, VirtualMachine>();
  const databaseWaits = () => DATABASES.some((n) => ready(fleet.get(n))?.reason === "InsufficientFailoverCapacity");
  await eventually(async () => {
    fleet = await vms();
    return WEB.every((n) => fleet.get(n)?.status?.phase === "Running") && DATABASES.filter((n) => fleet.get(n)?.status?.phase === "Running").length === 4 && databaseWaits();
  }, 180_000, () => [...fleet.values()].map((vm) => `${vm.metadata.name}=${vm.status?.phase}/${ready(vm)?.reason}`).join(" "));

  const fifth = DATABASES.find((n) => fleet.get(n)?.status?.phase !== "Running")!;
  assert.equal(fleet.get(fifth)?.status?.phase, "Pending");
  assert.match(ready(fleet.get(fifth))?.message ?? "", /refused on its own \(its required VM anti-affinity\)/);
  await eventually(async () => /InsufficientFailoverCapacity/.test(await kubectlOk(cp, ["get", "events", "-n", HOL_NAMESPACE, "--field-selector", `involvedObject.name=${fifth}`])), 60_000, () => "no InsufficientFailoverCapacity event");
  const describe = await kubectlOk(cp, ["describe", "vm", fifth, "-n", HOL_NAMESPACE]);
  assert.match(describe, /Warning\s+InsufficientFailoverCapacity/);

  await eventually(async () => (await vms()).get(HUGE)?.status?.phase === "Unschedulable", 60_000, () => `huge is ${fleet.get(HUGE)?.status?.phase}`);
  const huge = (await vms()).get(HUGE)!;
  const stalled = huge.status?.conditions?.find((c) => c.type === "Stalled");
  assert.equal(stalled?.status, "True");
  assert.match(stalled?.message ?? "", /^0\/6 hosts fit: .*insufficient memory/);
  const kstatus = spawnSync(await ensureKstatus(), [], { input: JSON.stringify([huge, fleet.get(fifth)]), encoding: "utf8" });
  assert.equal(kstatus.status, 0, kstatus.stderr);
  const [hugeStatus, fifthStatus] = kstatus.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { status: string }).status);
  assert.equal(hugeStatus, "Failed");
  assert.equal(fifthStatus, "InProgress");

  const plan = await vireoCommand(["plan", "--kubeconfig", cp.kubeconfigPath, "--state-dir", state.path, "-o", "json"]);
  assert.equal(plan.code, 0, plan.stderr);
  const report = JSON.parse(plan.stdout) as { waiting: { name: string; reason: string }[]; unschedulable: { name: string }[] };
  assert.deepEqual(report.waiting.map((w) => [w.name, w.reason]), [[fifth, "InsufficientFailoverCapacity"]]);
  assert.deepEqual(report.unschedulable.map((u) => u.name), [HUGE]);
});
